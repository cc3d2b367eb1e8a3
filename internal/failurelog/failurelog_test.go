package failurelog_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/failurelog"
)

// TestHoldsBackRepeats feeds a Log passes a second apart and
// checks every line it writes, exactly.
func TestHoldsBackRepeats(t *testing.T) {
	t.Parallel()
	down := errors.New("database \"x\" does not exist")
	type pass struct {
		at  time.Duration // since the start
		err error
	}
	tests := []struct {
		name   string
		passes []pass
		want   []string
	}{
		{"healthy loop logs nothing", []pass{{0, nil}, {time.Second, nil}}, nil},
		{"first failure once, 60 repeats held back", func() []pass {
			var ps []pass
			for i := 0; i < 60; i++ {
				ps = append(ps, pass{time.Duration(i) * time.Second, down})
			}
			return ps
		}(), []string{`level=WARN msg=m error="database \"x\" does not exist"`}},
		{"a line a minute while failing, with the count", func() []pass {
			var ps []pass
			for i := 0; i <= 120; i++ {
				ps = append(ps, pass{time.Duration(i) * time.Second, down})
			}
			return ps
		}(), []string{
			`level=WARN msg=m error="database \"x\" does not exist"`,
			`level=WARN msg=m error="database \"x\" does not exist" held_back=60`,
			`level=WARN msg=m error="database \"x\" does not exist" held_back=60`,
		}},
		{"recovery logged once, then a new failure logs again", []pass{
			{0, down}, {time.Second, down}, {2 * time.Second, nil}, {3 * time.Second, nil}, {4 * time.Second, down},
		}, []string{
			`level=WARN msg=m error="database \"x\" does not exist"`,
			`level=INFO msg=r failed_passes=2`,
			`level=WARN msg=m error="database \"x\" does not exist"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				},
			}))
			f := failurelog.Log{Logger: logger, Msg: "m", Recovered: "r"}
			start := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
			for _, p := range tt.passes {
				f.Observe(context.Background(), start.Add(p.at), p.err)
			}
			var got []string
			if s := strings.TrimSpace(buf.String()); s != "" {
				got = strings.Split(s, "\n")
			}
			require.Equal(t, tt.want, got)
		})
	}
}
