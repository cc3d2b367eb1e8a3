package storable_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/storable"
)

func TestText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{"storable text is kept", "HTTP 503: upstream down", 4096, "HTTP 503: upstream down"},
		{"empty", "", 10, ""},
		{"NUL", "bad\x00byte", 0, "bad\uFFFDbyte"},
		{"invalid UTF-8, one replacement per byte", "a\xff\xfeb", 0, "a\uFFFD\uFFFDb"},
		{"upstream body", "bad\x00byte \xff\xfe here", 4096, "bad\uFFFDbyte \uFFFD\uFFFD here"},
		{"truncated sequence", "caf\xc3", 0, "caf\uFFFD"},
		{"surrogate encoded in UTF-8", "x\xed\xa0\x80y", 0, "x\uFFFD\uFFFD\uFFFDy"},
		{"other control characters are kept", "tab\there\x01\x7f", 0, "tab\there\x01\x7f"},
		{"U+FFFD itself is kept", "\uFFFD", 0, "\uFFFD"},
		{"cut with an ellipsis", "abcdefghij", 8, "abcde…"},
		{"cut at a character boundary", "aaaaéé", 7, "aaaa…"},
		{"exactly the bound", "abcdefgh", 8, "abcdefgh"},
		{"one byte over", "abcdefghi", 8, "abcde…"},
		{"bound under the ellipsis", "abcdef", 2, "ab"},
		{"bound under the ellipsis, at a boundary", "éé", 2, "é"},
		{"replaced then cut", "\x00\x00\x00\x00", 8, "\uFFFD…"},
		{"no bound", strings.Repeat("x", 100_000), 0, strings.Repeat("x", 100_000)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := storable.Text(tt.in, tt.limit)
			require.Equal(t, tt.want, got)
			require.Equal(t, got, storable.Text(got, tt.limit), "idempotent")
			require.Equal(t, storable.Valid(tt.in) && (tt.limit <= 0 || len(tt.in) <= tt.limit), got == tt.in)
		})
	}
}

// A long text is cut after reading about limit bytes of it, so a huge
// upstream body costs no more than a short one.
func TestTextBoundsItsWork(t *testing.T) {
	huge := strings.Repeat("\x00", 64<<20)
	allocs := testing.AllocsPerRun(5, func() {
		got := storable.Text(huge, storable.MaxErrorBytes)
		if len(got) > storable.MaxErrorBytes {
			t.Fatal(len(got))
		}
	})
	require.LessOrEqual(t, allocs, 2.0)
	got := storable.Text(huge, storable.MaxErrorBytes)
	require.Equal(t, strings.Repeat("\uFFFD", (storable.MaxErrorBytes-3)/3)+"…", got)
}

func TestTextAllocatesNothingForStorableText(t *testing.T) {
	msg := "POST https://api.example.com/hook: HTTP 503 Service Unavailable"
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = storable.Text(msg, storable.MaxErrorBytes) }))
}

// FuzzText checks the rule on any input: the result is valid UTF-8 without
// NUL, within the bound, unchanged by a second pass, equal to the input when
// that was storable and fit, and PostgreSQL stores it both as text and, as
// json.Marshal writes it (which River does with error texts), as jsonb.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "ok", "bad\x00byte \xff\xfe here", "\xed\xa0\x80", "é\x00é", strings.Repeat("\xff", 5000), "\\u0000", "\u2028<>&"} {
		f.Add(s, uint16(4096))
		f.Add(s, uint16(3))
	}
	db := dbtest.New(f)
	f.Fuzz(func(t *testing.T, s string, limit uint16) {
		n := int(limit)
		got := storable.Text(s, n)
		if !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("Text(%q, %d) = %q: not storable", s, n, got)
		}
		if n > 0 && len(got) > n {
			t.Fatalf("Text(%q, %d) = %q: %d bytes", s, n, got, len(got))
		}
		if again := storable.Text(got, n); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
		if storable.Valid(s) && (n == 0 || len(s) <= n) && got != s {
			t.Fatalf("storable %q changed to %q", s, got)
		}
		js, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		var back string
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := db.Pool.QueryRow(ctx, "SELECT $1::jsonb #>> '{}' FROM (SELECT $2::text) t", string(js), got).Scan(&back); err != nil {
			t.Fatalf("PostgreSQL refused %q: %v", got, err)
		}
		if back != got {
			t.Fatalf("PostgreSQL stored %q as %q", got, back)
		}
	})
}
