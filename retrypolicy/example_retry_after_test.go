package retrypolicy_test

import (
	"fmt"
	"time"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func ExampleParseRetryAfter() {
	now := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	for _, v := range []string{
		"120",                            // delta-seconds
		"Mon, 30 Nov 2026 08:01:00 GMT",  // IMF-fixdate
		"Monday, 30-Nov-26 08:00:30 GMT", // obsolete RFC 850
		"Mon Nov 30 08:00:10 2026",       // obsolete asctime
		"Sun, 06 Nov 1994 08:49:37 GMT",  // in the past: retry now
		"soon",                           // not a Retry-After
	} {
		d, ok := retrypolicy.ParseRetryAfter(v, now)
		fmt.Println(d, ok)
	}
	// Output:
	// 2m0s true
	// 1m0s true
	// 30s true
	// 10s true
	// 0s true
	// 0s false
}
