package retrypolicy

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"time"
)

// Strategy is how the wait grows with the attempt number. n is the number of
// the attempt that just failed (1-based), base is the policy's initial_delay
// (docs/architecture.md, "The default decision matrix").
type Strategy string

const (
	// StrategyExponential waits base*2^(n-1): 2s, 4s, 8s, 16s ...
	StrategyExponential Strategy = "exponential"

	// StrategyLinear waits base*n: 2s, 4s, 6s, 8s ...
	StrategyLinear Strategy = "linear"

	// StrategyFibonacci waits base*F(n), F = 1, 1, 2, 3, 5, 8 ...: 2s, 2s,
	// 4s, 6s, 10s ...
	StrategyFibonacci Strategy = "fibonacci"

	// StrategyAggressive waits base*3^(n-1): 2s, 6s, 18s, 54s ... Used for
	// rate limits: back off hard so the quota recovers.
	StrategyAggressive Strategy = "aggressive"
)

var allStrategies = [...]Strategy{StrategyExponential, StrategyLinear, StrategyFibonacci, StrategyAggressive}

// Valid reports whether s is one of the four known strategies.
func (s Strategy) Valid() bool {
	switch s {
	case StrategyExponential, StrategyLinear, StrategyFibonacci, StrategyAggressive:
		return true
	}
	return false
}

// Delay returns the strategy's wait after attempt n (1-based; n < 1 counts as
// 1) with the given base, before jitter and caps. Arithmetic saturates: a
// result too large for a time.Duration is math.MaxInt64 nanoseconds, never a
// wrapped or negative value, so Delay(base, 10000) is safe for every
// strategy. A base <= 0 gives 0. An unknown strategy (including "") behaves
// as exponential.
//
// Worked table, base 2s, before the policy caps at max_delay:
//
//	 n  exponential  linear  fibonacci  aggressive
//	 1       2s        2s        2s          2s
//	 2       4s        4s        2s          6s
//	 3       8s        6s        4s         18s
//	 4      16s        8s        6s         54s
//	 5      32s       10s       10s        162s
//	 6      64s       12s       16s        486s
//	 7     128s       14s       26s       1458s
//	10    1024s       20s      110s      39366s
//	64   saturated   128s   saturated   saturated
func (s Strategy) Delay(base time.Duration, n int) time.Duration {
	if base <= 0 {
		return 0
	}
	n = max(n, 1)
	switch s {
	case StrategyLinear:
		return satMul(base, uint64(n))
	case StrategyFibonacci:
		// F(1) = F(2) = 1. Stop as soon as base*F(i) no longer fits: F grows
		// exponentially, so this runs at most ~92 times whatever n is.
		limit := uint64(math.MaxInt64) / uint64(base)
		var a, b uint64 = 1, 1 // F(i-1), F(i) with i = 2
		for i := 2; i < n; i++ {
			a, b = b, a+b
			if b > limit {
				return math.MaxInt64
			}
		}
		return satMul(base, b)
	case StrategyAggressive:
		d := base
		for i := 1; i < n && d < math.MaxInt64; i++ {
			d = satMul(d, 3)
		}
		return d
	default: // StrategyExponential
		if n-1 >= 63 {
			return math.MaxInt64
		}
		return satMul(base, uint64(1)<<(n-1))
	}
}

// satMul returns d*m, or math.MaxInt64 when the product does not fit. d >= 0.
func satMul(d time.Duration, m uint64) time.Duration {
	hi, lo := bits.Mul64(uint64(d), m)
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(lo)
}

// satAdd returns a+b, or math.MaxInt64 when the sum does not fit. a, b >= 0.
func satAdd(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Jitter is how a computed wait is randomised, so that jobs that failed
// together do not all come back together.
type Jitter string

const (
	// JitterNone keeps the strategy's wait d as is.
	JitterNone Jitter = "none"

	// JitterFull picks uniformly in (0, d].
	JitterFull Jitter = "full"

	// JitterEqual picks uniformly in [d/2, d].
	JitterEqual Jitter = "equal"

	// JitterProportional picks uniformly in [d-20%, d+20%]. The default
	// ("jitter on" in the seed document).
	JitterProportional Jitter = "proportional"

	// JitterDecorrelated ignores the strategy's growth: the wait is
	// min(max_delay, uniform in [base, 3*previous]), previous being the
	// wait before the last attempt (read from the job's history; base when
	// there is none or it is below base). AWS's "decorrelated jitter".
	JitterDecorrelated Jitter = "decorrelated"
)

var allJitters = [...]Jitter{JitterNone, JitterFull, JitterEqual, JitterProportional, JitterDecorrelated}

// Valid reports whether j is one of the five known jitter modes.
func (j Jitter) Valid() bool {
	switch j {
	case JitterNone, JitterFull, JitterEqual, JitterProportional, JitterDecorrelated:
		return true
	}
	return false
}

// Rand is the source of randomness for jitter. *math/rand/v2.Rand satisfies
// it (it is not safe for concurrent use: guard it when sharing). Int64N
// returns a value in [0, n) for n > 0.
type Rand interface {
	Int64N(n int64) int64
}

// globalRand uses math/rand/v2's goroutine-safe top-level source.
type globalRand struct{}

func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// between returns a uniform value in [lo, hi]; lo <= hi, both >= 0.
func between(r Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	span := int64(hi - lo)
	if span == math.MaxInt64 { // span+1 would overflow; drop the top value
		return lo + time.Duration(r.Int64N(span))
	}
	return lo + time.Duration(r.Int64N(span+1))
}

// DelayParams are the inputs of [Policy.Delay].
type DelayParams struct {
	// Attempt is the number of the attempt that just failed, 1-based.
	// Values < 1 count as 1.
	Attempt int

	// Strategy is the class's strategy (see [Policy.Rule]). "" means
	// exponential. Ignored by [JitterDecorrelated].
	Strategy Strategy

	// RetryAfter is the server's (or a marker's) minimum wait; 0 for none.
	// It is capped at the policy's RetryAfterMax and the result is raised to
	// it.
	RetryAfter time.Duration

	// Previous is the wait before the attempt that just failed, for
	// [JitterDecorrelated]; 0 when there was none (the first failure).
	// Values below the base count as the base.
	Previous time.Duration
}

// Delay computes the wait before the next attempt (docs/architecture.md, "The default decision matrix"):
//
//  1. the strategy's wait: Strategy.Delay(InitialDelay, Attempt);
//  2. jitter (Jitter; decorrelated replaces step 1);
//  3. cap at MaxDelay;
//  4. floor at MinDelay;
//  5. raise to min(RetryAfter, RetryAfterMax) if that is larger.
//
// Zero fields of p take the package defaults (DefaultInitialDelay, ...), so
// the result is always in [MinDelay, max(MaxDelay, min(RetryAfter,
// RetryAfterMax))] — never zero, negative or wrapped, even at attempt
// 10,000. rnd may be nil (math/rand/v2's global source). Delay allocates
// nothing.
//
// With jitter the cap comes after the randomisation, so once the strategy's
// wait passes MaxDelay most waits are MaxDelay exactly: with proportional
// jitter from d*0.8 > MaxDelay on, with full jitter with probability
// 1 - MaxDelay/d.
//
// Worked table, base 2s, max 300s, min 100ms, attempts 1..10 (seconds):
//
//	 n  exponential  linear  fibonacci  aggressive  exponential+proportional
//	 1       2          2        2           2         [1.6, 2.4]
//	 2       4          4        2           6         [3.2, 4.8]
//	 3       8          6        4          18         [6.4, 9.6]
//	 4      16          8        6          54        [12.8, 19.2]
//	 5      32         10       10         162        [25.6, 38.4]
//	 6      64         12       16         300        [51.2, 76.8]
//	 7     128         14       26         300       [102.4, 153.6]
//	 8     256         16       42         300       [204.8, 300]
//	 9     300         18       68         300         300
//	10     300         20      110         300         300
//
// Linear reaches 300s at attempt 150, fibonacci at attempt 13.
func (p Policy) Delay(in DelayParams, rnd Rand) time.Duration {
	base := orDefault(p.InitialDelay, DefaultInitialDelay)
	maxDelay := orDefault(p.MaxDelay, DefaultMaxDelay)
	minDelay := orDefault(p.MinDelay, DefaultMinDelay)
	retryAfterMax := orDefault(p.RetryAfterMax, DefaultRetryAfterMax)
	jitter := p.Jitter
	if jitter == "" {
		jitter = DefaultJitter
	}
	if rnd == nil {
		rnd = globalRand{}
	}

	var d time.Duration
	if jitter == JitterDecorrelated {
		prev := max(in.Previous, base)
		d = between(rnd, base, satMul(prev, 3))
	} else {
		d = in.Strategy.Delay(base, in.Attempt)
		switch jitter {
		case JitterFull:
			d = between(rnd, 1, d)
		case JitterEqual:
			d = between(rnd, d-d/2, d)
		case JitterProportional:
			d = between(rnd, d-d/5, satAdd(d, d/5))
		}
	}

	d = min(d, maxDelay)
	d = max(d, minDelay)
	if ra := min(in.RetryAfter, retryAfterMax); ra > d {
		d = ra
	}
	return d
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
