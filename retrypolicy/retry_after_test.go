package retrypolicy_test

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()

	// testNow is 2026-11-30 08:00:00 UTC, a Monday.
	cases := []struct {
		value string
		want  time.Duration
		ok    bool
	}{
		{"120", 120 * time.Second, true},
		{"0", 0, true},
		{"  3\t", 3 * time.Second, true},
		{"007", 7 * time.Second, true},
		{"-5", 0, true},
		{"9223372036", 9223372036 * time.Second, true},
		{"9223372037", math.MaxInt64, true},
		{"99999999999999999999999999999", math.MaxInt64, true},
		// IMF-fixdate, RFC 850 and asctime, 60s ahead.
		{"Mon, 30 Nov 2026 08:01:00 GMT", 60 * time.Second, true},
		{"Monday, 30-Nov-26 08:01:00 GMT", 60 * time.Second, true},
		{"Mon Nov 30 08:01:00 2026", 60 * time.Second, true},
		// Past and present dates: retry now.
		{"Mon, 30 Nov 2026 07:59:00 GMT", 0, true},
		{"Mon, 30 Nov 2026 08:00:00 GMT", 0, true},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 0, true},
		// Far future: saturates inside time.Time.Sub, no overflow.
		{"Fri, 31 Dec 9999 23:59:59 GMT", math.MaxInt64, true},
		// Garbage.
		{"", 0, false},
		{"   ", 0, false},
		{"1.5", 0, false},
		{"+5", 0, false},
		{"-", 0, false},
		{"--5", 0, false},
		{"5s", 0, false},
		{"soon", 0, false},
		{"Mon, 30 Nov 2026 08:01:00", 0, false},
		{"2026-11-30T08:01:00Z", 0, false},
		{"Mon, 31 Nov 2026 08:01:00 GMT", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			t.Parallel()
			got, ok := retrypolicy.ParseRetryAfter(tc.value, testNow)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseRetryAfterSubSecondClock(t *testing.T) {
	t.Parallel()

	// A date has whole seconds: with a clock 250ms past the second, "60s
	// ahead" of the truncated clock waits 59.75s.
	now := testNow.Add(250 * time.Millisecond)
	got, ok := retrypolicy.ParseRetryAfter(testNow.Add(time.Minute).Format(http.TimeFormat), now)
	require.True(t, ok)
	require.Equal(t, 59750*time.Millisecond, got)
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, seed := range []string{
		"120", "0", "-1", "99999999999999999999", " 7 ", "1.5", "",
		"Mon, 30 Nov 2026 08:01:00 GMT", "Monday, 30-Nov-26 08:01:00 GMT", "Mon Nov 30 08:01:00 2026",
		"Fri, 31 Dec 9999 23:59:59 GMT", "Thu, 01 Jan 1970 00:00:00 GMT",
	} {
		f.Add(seed, testNow.Unix())
	}
	f.Fuzz(func(t *testing.T, value string, nowUnix int64) {
		now := time.Unix(nowUnix, 0)
		got, ok := retrypolicy.ParseRetryAfter(value, now)
		if got < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", value, got)
		}
		if !ok && got != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, false: want 0 when not ok", value, got)
		}

		// delta-seconds: exact, or saturated.
		trimmed := strings.Trim(value, " \t")
		if n, err := strconv.ParseUint(trimmed, 10, 64); err == nil && trimmed != "" && trimmed[0] != '+' {
			want := time.Duration(math.MaxInt64)
			if n <= math.MaxInt64/uint64(time.Second) {
				want = time.Duration(n) * time.Second
			}
			if !ok || got != want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, true", value, got, ok, want)
			}
			return
		}

		// HTTP-dates: exactly what http.ParseTime says, relative to now.
		if ts, err := http.ParseTime(trimmed); err == nil {
			want := max(ts.Sub(now), 0)
			if !ok || got != want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, true", value, got, ok, want)
			}
		}
	})
}

func FuzzParseRetryAfterRoundTrip(f *testing.F) {
	f.Add(int64(60), testNow.Unix())
	f.Add(int64(-60), testNow.Unix())
	f.Add(int64(0), int64(0))
	f.Fuzz(func(t *testing.T, aheadSeconds, nowUnix int64) {
		// Fold the inputs so dates stay within years 1..9999 (formattable):
		// now within [year 318, year 9682], ahead within ±31 years.
		const lo, hi = -62135596800 + 1e10, 253402300799 - 1e10
		nowUnix = lo + int64(uint64(nowUnix)%uint64(hi-lo))
		aheadSeconds %= 1e9
		now := time.Unix(nowUnix, 0).UTC()
		header := now.Add(time.Duration(aheadSeconds) * time.Second).Format(http.TimeFormat)
		got, ok := retrypolicy.ParseRetryAfter(header, now)
		if !ok {
			t.Fatalf("ParseRetryAfter(%q) not ok", header)
		}
		want := max(time.Duration(aheadSeconds)*time.Second, 0)
		if got != want {
			t.Fatalf("ParseRetryAfter(%q, %v) = %v, want %v", header, now, got, want)
		}
	})
}
