package retrypolicy_test

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// TestHotPathAllocatesNothing pins the zero-allocation promise of the pieces
// every failed attempt runs. Not parallel: testing.AllocsPerRun refuses to
// run in a parallel test (other goroutines' allocations would count).
func TestHotPathAllocatesNothing(t *testing.T) {
	httpErr := fmt.Errorf("deliver: %w", fmt.Errorf("post: %w", &statusError{code: 503, retryAfter: time.Second}))
	netErr := fmt.Errorf("deliver: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	set, err := retrypolicy.NewPolicies(retrypolicy.Policy{}, map[string]retrypolicy.Policy{"http_request": {MaxAttempts: 9}})
	require.NoError(t, err)
	p := set.Lookup("http_request")

	for name, fn := range map[string]func(){
		"Classify HTTP error": func() { _ = retrypolicy.Classify(httpErr) },
		"Classify net error":  func() { _ = retrypolicy.Classify(netErr) },
		"Diagnose":            func() { _ = retrypolicy.Diagnose(httpErr) },
		"Lookup":              func() { _ = set.Lookup("http_request") },
		"Rule":                func() { _ = p.Rule(retrypolicy.ClassServerError) },
		"Delay": func() {
			_ = p.Delay(retrypolicy.DelayParams{Attempt: 7, Strategy: retrypolicy.StrategyFibonacci, RetryAfter: time.Second}, nil)
		},
	} {
		require.Zero(t, testing.AllocsPerRun(1000, fn), name)
	}
}
