package retrypolicy

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// maxDeltaSeconds is the largest delta-seconds whose Duration fits in an
// int64 of nanoseconds (about 292 years).
const maxDeltaSeconds = math.MaxInt64 / int64(time.Second)

// ParseRetryAfter parses the value of an HTTP Retry-After header field (RFC
// 9110 §10.2.3) into a wait measured from now.
//
// The value is either delta-seconds (a non-negative decimal integer of
// seconds, e.g. "120") or an HTTP-date: IMF-fixdate ("Sun, 06 Nov 1994
// 08:49:37 GMT") or one of the two obsolete forms recipients must accept, RFC
// 850 ("Sunday, 06-Nov-94 08:49:37 GMT") and asctime ("Sun Nov  6 08:49:37
// 1994") — exactly the forms http.ParseTime accepts. Surrounding spaces and
// tabs are ignored.
//
// Results:
//   - delta-seconds: that many seconds, ok. Values too large for a
//     time.Duration saturate at math.MaxInt64 nanoseconds (~292 years; the
//     policy's retry_after_max caps it later); they never overflow.
//   - a negative integer ("-5") or a date at or before now: 0, ok (retry
//     now). RFC 9110 does not allow a sign; it is accepted as "no wait"
//     rather than ignored.
//   - a date after now: date - now, ok (a date has whole seconds, so the wait
//     is exact only when now has none).
//   - anything else (empty, "1.5", "soon", a malformed date): 0, false.
func ParseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.Trim(value, " \t")
	if value == "" {
		return 0, false
	}

	if digits, negative := strings.CutPrefix(value, "-"); allDigits(digits) {
		if negative {
			return 0, true
		}
		var secs int64
		for i := 0; i < len(digits); i++ {
			secs = secs*10 + int64(digits[i]-'0')
			if secs > maxDeltaSeconds {
				return math.MaxInt64, true
			}
		}
		return time.Duration(secs) * time.Second, true
	}

	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	// time.Time.Sub saturates, so a date centuries away cannot overflow.
	return max(t.Sub(now), 0), true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
