package retrypolicy_test

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

var (
	strategies = []retrypolicy.Strategy{retrypolicy.StrategyExponential, retrypolicy.StrategyLinear, retrypolicy.StrategyFibonacci, retrypolicy.StrategyAggressive}
	jitters    = []retrypolicy.Jitter{retrypolicy.JitterNone, retrypolicy.JitterFull, retrypolicy.JitterEqual, retrypolicy.JitterProportional, retrypolicy.JitterDecorrelated}
)

// bigFormula computes base*factor(n) exactly, the reference the saturating
// arithmetic is checked against: exponential 2^(n-1), linear n, fibonacci
// F(n), aggressive 3^(n-1).
func bigFormula(s retrypolicy.Strategy, base time.Duration, n int) *big.Int {
	var factor *big.Int
	switch s {
	case retrypolicy.StrategyExponential:
		factor = new(big.Int).Exp(big.NewInt(2), big.NewInt(int64(n-1)), nil)
	case retrypolicy.StrategyLinear:
		factor = big.NewInt(int64(n))
	case retrypolicy.StrategyFibonacci:
		a, b := big.NewInt(0), big.NewInt(1) // F(0), F(1)
		for i := 1; i < n; i++ {
			a.Add(a, b)
			a, b = b, a
		}
		factor = b
	case retrypolicy.StrategyAggressive:
		factor = new(big.Int).Exp(big.NewInt(3), big.NewInt(int64(n-1)), nil)
	}
	return factor.Mul(factor, big.NewInt(int64(base)))
}

// capped is min(bigFormula, limit) as a Duration.
func capped(s retrypolicy.Strategy, base time.Duration, n int, limit time.Duration) time.Duration {
	v := bigFormula(s, base, n)
	if v.Cmp(big.NewInt(int64(limit))) > 0 {
		return limit
	}
	return time.Duration(v.Int64())
}

func TestDelaySixAttempts(t *testing.T) {
	t.Parallel()

	p := retrypolicy.Policy{InitialDelay: 2 * time.Second, MaxDelay: 300 * time.Second, Jitter: retrypolicy.JitterNone}
	want := map[retrypolicy.Strategy][]int64{ // seconds, attempts 1..6
		retrypolicy.StrategyExponential: {2, 4, 8, 16, 32, 64},
		retrypolicy.StrategyLinear:      {2, 4, 6, 8, 10, 12},
		retrypolicy.StrategyFibonacci:   {2, 2, 4, 6, 10, 16},
		retrypolicy.StrategyAggressive:  {2, 6, 18, 54, 162, 300},
	}
	for _, s := range strategies {
		t.Run(string(s), func(t *testing.T) {
			t.Parallel()
			var got []int64
			for n := 1; n <= 6; n++ {
				d := p.Delay(retrypolicy.DelayParams{Attempt: n, Strategy: s}, nil)
				require.Zero(t, d%time.Second)
				got = append(got, int64(d/time.Second))
			}
			require.Equal(t, want[s], got)
		})
	}
}

func TestDelayWorkedTable(t *testing.T) {
	t.Parallel()

	// The table in Policy.Delay's doc, attempts 7..10 and where linear and
	// fibonacci reach the cap.
	p := retrypolicy.Policy{InitialDelay: 2 * time.Second, MaxDelay: 300 * time.Second, Jitter: retrypolicy.JitterNone}
	delay := func(s retrypolicy.Strategy, n int) time.Duration {
		return p.Delay(retrypolicy.DelayParams{Attempt: n, Strategy: s}, nil)
	}
	require.Equal(t, []time.Duration{128 * time.Second, 256 * time.Second, 300 * time.Second, 300 * time.Second},
		[]time.Duration{delay("exponential", 7), delay("exponential", 8), delay("exponential", 9), delay("exponential", 10)})
	require.Equal(t, []time.Duration{26 * time.Second, 42 * time.Second, 68 * time.Second, 110 * time.Second, 288 * time.Second, 300 * time.Second},
		[]time.Duration{delay("fibonacci", 7), delay("fibonacci", 8), delay("fibonacci", 9), delay("fibonacci", 10), delay("fibonacci", 12), delay("fibonacci", 13)})
	require.Equal(t, 298*time.Second, delay("linear", 149))
	require.Equal(t, 300*time.Second, delay("linear", 150))

	// Proportional jitter bounds at attempt 8: [204.8s, 307.2s] capped at 300s.
	pj := p
	pj.Jitter = retrypolicy.JitterProportional
	require.Equal(t, 204800*time.Millisecond, pj.Delay(retrypolicy.DelayParams{Attempt: 8}, lowRand))
	require.Equal(t, 300*time.Second, pj.Delay(retrypolicy.DelayParams{Attempt: 8}, highRand))
	require.Equal(t, 300*time.Second, pj.Delay(retrypolicy.DelayParams{Attempt: 9}, lowRand))

	// The raw strategy table in Strategy.Delay's doc.
	require.Equal(t, 486*time.Second, retrypolicy.StrategyAggressive.Delay(2*time.Second, 6))
	require.Equal(t, 39366*time.Second, retrypolicy.StrategyAggressive.Delay(2*time.Second, 10))
	require.Equal(t, 1024*time.Second, retrypolicy.StrategyExponential.Delay(2*time.Second, 10))
	require.Equal(t, 128*time.Second, retrypolicy.StrategyLinear.Delay(2*time.Second, 64))
	require.Equal(t, time.Duration(math.MaxInt64), retrypolicy.StrategyExponential.Delay(2*time.Second, 64))
	require.Equal(t, time.Duration(math.MaxInt64), retrypolicy.StrategyFibonacci.Delay(2*time.Second, 64))
	require.Equal(t, time.Duration(math.MaxInt64), retrypolicy.StrategyAggressive.Delay(2*time.Second, 64))
}

func TestDelaySaturation(t *testing.T) {
	t.Parallel()

	const (
		base     = 2 * time.Second
		maxDelay = 300 * time.Second
		minDelay = 100 * time.Millisecond
	)
	for _, n := range []int{33, 34, 63, 64, 150, 1000, 10000} {
		for _, s := range strategies {
			t.Run(fmt.Sprintf("%s/%d", s, n), func(t *testing.T) {
				t.Parallel()
				p := retrypolicy.Policy{InitialDelay: base, MaxDelay: maxDelay, MinDelay: minDelay, Jitter: retrypolicy.JitterNone}
				want := capped(s, base, n, maxDelay)
				require.Equal(t, want, p.Delay(retrypolicy.DelayParams{Attempt: n, Strategy: s}, nil))
				if s == retrypolicy.StrategyLinear && n < 150 {
					require.Equal(t, time.Duration(n)*base, want)
				} else {
					require.Equal(t, maxDelay, want)
				}

				// The raw strategy saturates instead of wrapping.
				raw := retrypolicy.Strategy(s).Delay(base, n)
				exact := bigFormula(s, base, n)
				if exact.IsInt64() {
					require.Equal(t, exact.Int64(), int64(raw))
				} else {
					require.Equal(t, time.Duration(math.MaxInt64), raw)
				}

				for _, j := range jitters {
					pj := p
					pj.Jitter = j
					for _, r := range []retrypolicy.Rand{lowRand, highRand, rand.New(rand.NewPCG(uint64(n), 7))} {
						for _, prev := range []time.Duration{0, base, maxDelay, math.MaxInt64} {
							d := pj.Delay(retrypolicy.DelayParams{Attempt: n, Strategy: s, Previous: prev}, r)
							require.GreaterOrEqual(t, d, minDelay, "jitter %s", j)
							require.LessOrEqual(t, d, maxDelay, "jitter %s", j)
						}
					}
				}
			})
		}
	}
}

func TestDelayJitterBounds(t *testing.T) {
	t.Parallel()

	// Strategy gives d = 10s (linear, base 2s, attempt 5); max 300s.
	p := retrypolicy.Policy{InitialDelay: 2 * time.Second, MaxDelay: 300 * time.Second}
	in := retrypolicy.DelayParams{Attempt: 5, Strategy: retrypolicy.StrategyLinear}
	cases := []struct {
		jitter   retrypolicy.Jitter
		previous time.Duration
		low      time.Duration
		high     time.Duration
	}{
		{retrypolicy.JitterNone, 0, 10 * time.Second, 10 * time.Second},
		{retrypolicy.JitterFull, 0, time.Nanosecond, 10 * time.Second},
		{retrypolicy.JitterEqual, 0, 5 * time.Second, 10 * time.Second},
		{retrypolicy.JitterProportional, 0, 8 * time.Second, 12 * time.Second},
		{"", 0, 8 * time.Second, 12 * time.Second}, // default is proportional
		// Decorrelated: [base, 3*previous], previous = base when none.
		{retrypolicy.JitterDecorrelated, 0, 2 * time.Second, 6 * time.Second},
		{retrypolicy.JitterDecorrelated, 40 * time.Second, 2 * time.Second, 120 * time.Second},
		{retrypolicy.JitterDecorrelated, 200 * time.Second, 2 * time.Second, 300 * time.Second},
		{retrypolicy.JitterDecorrelated, time.Second, 2 * time.Second, 6 * time.Second}, // previous below base counts as base
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s", tc.jitter, tc.previous), func(t *testing.T) {
			t.Parallel()
			pj := p
			pj.Jitter = tc.jitter
			in := in
			in.Previous = tc.previous
			low := pj.Delay(in, lowRand)
			high := pj.Delay(in, highRand)
			// Full jitter's lowest pick is 1ns, then floored at min_delay.
			if tc.jitter == retrypolicy.JitterFull {
				require.Equal(t, retrypolicy.DefaultMinDelay, low)
			} else {
				require.Equal(t, tc.low, low)
			}
			require.Equal(t, tc.high, high)

			// A real source stays within the bounds.
			r := rand.New(rand.NewPCG(1, 2))
			for range 1000 {
				d := pj.Delay(in, r)
				require.GreaterOrEqual(t, d, max(tc.low, retrypolicy.DefaultMinDelay))
				require.LessOrEqual(t, d, tc.high)
			}
		})
	}
}

func TestDelayFloorAndRetryAfterCap(t *testing.T) {
	t.Parallel()

	p := retrypolicy.Policy{InitialDelay: 10 * time.Millisecond, MaxDelay: time.Minute, MinDelay: 100 * time.Millisecond, RetryAfterMax: 10 * time.Minute, Jitter: retrypolicy.JitterNone}
	// 10ms floored at 100ms.
	require.Equal(t, 100*time.Millisecond, p.Delay(retrypolicy.DelayParams{Attempt: 1}, nil))
	// Retry-After above max_delay is honoured up to retry_after_max.
	require.Equal(t, 5*time.Minute, p.Delay(retrypolicy.DelayParams{Attempt: 1, RetryAfter: 5 * time.Minute}, nil))
	require.Equal(t, 10*time.Minute, p.Delay(retrypolicy.DelayParams{Attempt: 1, RetryAfter: time.Hour}, nil))
	require.Equal(t, 10*time.Minute, p.Delay(retrypolicy.DelayParams{Attempt: 1, RetryAfter: math.MaxInt64}, nil))
	// A Retry-After below the computed delay changes nothing.
	require.Equal(t, 640*time.Millisecond, p.Delay(retrypolicy.DelayParams{Attempt: 7, RetryAfter: 200 * time.Millisecond}, nil))
	// Attempt < 1 counts as 1; an empty strategy is exponential.
	require.Equal(t, 100*time.Millisecond, p.Delay(retrypolicy.DelayParams{Attempt: -3}, nil))
	require.Equal(t, 2560*time.Millisecond, p.Delay(retrypolicy.DelayParams{Attempt: 9}, nil))
	// The zero policy uses the defaults: 2s base.
	require.Equal(t, 2*time.Second, retrypolicy.Policy{Jitter: retrypolicy.JitterNone}.Delay(retrypolicy.DelayParams{Attempt: 1}, nil))
	// Strategy.Delay with a base <= 0.
	require.Equal(t, time.Duration(0), retrypolicy.StrategyExponential.Delay(0, 3))
	require.Equal(t, time.Duration(0), retrypolicy.StrategyFibonacci.Delay(-time.Second, 3))
}

func FuzzDelay(f *testing.F) {
	f.Add(uint8(0), uint8(0), 1, int64(2*time.Second), int64(300*time.Second), int64(0), int64(0), uint64(1))
	f.Add(uint8(3), uint8(4), 10000, int64(time.Nanosecond), int64(math.MaxInt64), int64(math.MaxInt64), int64(0), uint64(2))
	f.Add(uint8(2), uint8(1), 93, int64(1), int64(2), int64(5), int64(time.Hour), uint64(3))
	f.Add(uint8(1), uint8(3), math.MaxInt, int64(math.MaxInt64), int64(math.MaxInt64), int64(0), int64(-1), uint64(4))
	f.Fuzz(func(t *testing.T, strategyIdx, jitterIdx uint8, attempt int, base, maxDelay, previous, retryAfter int64, seed uint64) {
		if base <= 0 || maxDelay < base {
			return // refused by validation
		}
		minDelay := min(retrypolicy.DefaultMinDelay, time.Duration(maxDelay))
		p := retrypolicy.Policy{
			InitialDelay:  time.Duration(base),
			MaxDelay:      time.Duration(maxDelay),
			MinDelay:      minDelay,
			Jitter:        jitters[int(jitterIdx)%len(jitters)],
			RetryAfterMax: time.Hour,
		}
		s := strategies[int(strategyIdx)%len(strategies)]
		r := rand.New(rand.NewPCG(seed, seed>>1))
		in := retrypolicy.DelayParams{Attempt: attempt, Strategy: s, Previous: time.Duration(previous)}

		d := p.Delay(in, r)
		if d < minDelay || d > time.Duration(maxDelay) {
			t.Fatalf("Delay(%+v) with %+v = %v, outside [%v, %v]", in, p, d, minDelay, time.Duration(maxDelay))
		}

		in.RetryAfter = time.Duration(retryAfter)
		d = p.Delay(in, r)
		upper := max(time.Duration(maxDelay), min(time.Duration(retryAfter), time.Hour))
		if d < minDelay || d > upper {
			t.Fatalf("Delay(%+v) with %+v = %v, outside [%v, %v]", in, p, d, minDelay, upper)
		}
		if ra := min(time.Duration(retryAfter), time.Hour); d < ra {
			t.Fatalf("Delay(%+v) = %v, below the Retry-After %v", in, d, ra)
		}

		// Without jitter the result is exactly min(formula, max), floored.
		if attempt >= 1 && attempt <= 2000 {
			p.Jitter = retrypolicy.JitterNone
			in.RetryAfter = 0
			want := max(capped(s, time.Duration(base), attempt, time.Duration(maxDelay)), minDelay)
			if got := p.Delay(in, nil); got != want {
				t.Fatalf("Delay(%+v) with %+v = %v, want %v", in, p, got, want)
			}
		}
	})
}
