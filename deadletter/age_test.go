package deadletter_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

func TestParseAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "30d", want: 30 * 24 * time.Hour},
		{in: "12h", want: 12 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1d12h", want: 36 * time.Hour},
		{in: "2w", want: 14 * 24 * time.Hour},
		{in: "1.5d", want: 36 * time.Hour},
		{in: " 45s ", want: 45 * time.Second},
		{in: "", wantErr: "empty age"},
		{in: "-3d", wantErr: "want a positive duration"},
		{in: "0d", wantErr: "want a positive duration"},
		{in: "30", wantErr: `"30" has no unit`},
		{in: "30x", wantErr: `unknown unit "x"`},
		{in: "d", wantErr: "want a number and a unit"},
		{in: "99999999999d", wantErr: "too large"},
		{in: "2000000h2000000h", wantErr: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := deadletter.ParseAge(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"30d", "12h", "90m", "1d12h", "1.5w", "-1d", "", "9223372036854775807ns", "1e9d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := deadletter.ParseAge(s)
		if err == nil && d <= 0 {
			t.Fatalf("ParseAge(%q) = %s without error", s, d)
		}
		if err != nil && d != 0 {
			t.Fatalf("ParseAge(%q) = %s with error %v", s, d, err)
		}
	})
}
