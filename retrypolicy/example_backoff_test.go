package retrypolicy_test

import (
	"fmt"
	"time"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func ExamplePolicy_Delay() {
	p := retrypolicy.Policy{InitialDelay: 2 * time.Second, MaxDelay: 300 * time.Second, Jitter: retrypolicy.JitterNone}
	strategies := []retrypolicy.Strategy{retrypolicy.StrategyExponential, retrypolicy.StrategyLinear, retrypolicy.StrategyFibonacci, retrypolicy.StrategyAggressive}
	fmt.Println("n  exponential linear fibonacci aggressive")
	for _, n := range []int{1, 2, 3, 4, 5, 6, 10, 10000} {
		fmt.Printf("%-5d", n)
		for _, s := range strategies {
			fmt.Printf(" %9s", p.Delay(retrypolicy.DelayParams{Attempt: n, Strategy: s}, nil))
		}
		fmt.Println()
	}
	// A server's Retry-After raises the wait (up to retry_after_max, 1h).
	fmt.Println(p.Delay(retrypolicy.DelayParams{Attempt: 1, Strategy: retrypolicy.StrategyAggressive, RetryAfter: 2 * time.Minute}, nil))
	// Output:
	// n  exponential linear fibonacci aggressive
	// 1            2s        2s        2s        2s
	// 2            4s        4s        2s        6s
	// 3            8s        6s        4s       18s
	// 4           16s        8s        6s       54s
	// 5           32s       10s       10s     2m42s
	// 6          1m4s       12s       16s      5m0s
	// 10         5m0s       20s     1m50s      5m0s
	// 10000      5m0s      5m0s      5m0s      5m0s
	// 2m0s
}
