package retrypolicy_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/retrypolicy"
)

var (
	benchHTTPErr = fmt.Errorf("deliver: %w", fmt.Errorf("post https://api.example.com/hook: %w", &statusError{code: 503, retryAfter: 2 * time.Second}))
	benchNetErr  = fmt.Errorf("deliver: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)})
	sinkClass    retrypolicy.Class
	sinkDelay    time.Duration
	sinkErr      error
)

func benchPolicy(b *testing.B) retrypolicy.Policy {
	b.Helper()
	set, err := retrypolicy.NewPolicies(retrypolicy.Policy{}, map[string]retrypolicy.Policy{"http_request": {MaxAttempts: 10}})
	if err != nil {
		b.Fatal(err)
	}
	return set.Lookup("http_request")
}

// BenchmarkClassifyAndDelay is what a failed attempt costs before any JSON:
// classify the error, look up the class's rule, compute the delay.
func BenchmarkClassifyAndDelay(b *testing.B) {
	p := benchPolicy(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		d := retrypolicy.Diagnose(benchHTTPErr)
		rule := p.Rule(d.Class)
		sinkDelay = p.Delay(retrypolicy.DelayParams{Attempt: i%10 + 1, Strategy: rule.Strategy, RetryAfter: d.RetryAfter}, nil)
	}
}

func BenchmarkClassify(b *testing.B) {
	for name, err := range map[string]error{"wrapped_http_error": benchHTTPErr, "net_error": benchNetErr, "unknown": errors.New("x")} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkClass = retrypolicy.Classify(err)
			}
		})
	}
}

// BenchmarkErrorsAs compares how the standard library finds the same HTTP
// error (errors.As allocates, errors.AsType does not).
func BenchmarkErrorsAs(b *testing.B) {
	type statusCoder interface {
		error
		StatusCode() int
	}
	b.Run("errors.As", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var sc statusCoder
			if errors.As(benchHTTPErr, &sc) {
				sinkClass = retrypolicy.StatusClass(sc.StatusCode())
			}
		}
	})
	b.Run("errors.AsType", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if sc, ok := errors.AsType[statusCoder](benchHTTPErr); ok {
				sinkClass = retrypolicy.StatusClass(sc.StatusCode())
			}
		}
	})
}

func BenchmarkDelay(b *testing.B) {
	p := benchPolicy(b)
	for _, s := range []retrypolicy.Strategy{retrypolicy.StrategyExponential, retrypolicy.StrategyLinear, retrypolicy.StrategyFibonacci, retrypolicy.StrategyAggressive} {
		for _, n := range []int{3, 10000} {
			b.Run(fmt.Sprintf("%s/attempt_%d", s, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					sinkDelay = p.Delay(retrypolicy.DelayParams{Attempt: n, Strategy: s}, nil)
				}
			})
		}
	}
}

func BenchmarkParseRetryAfter(b *testing.B) {
	for name, v := range map[string]string{"seconds": "120", "http_date": "Mon, 30 Nov 2026 08:01:00 GMT"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sinkDelay, _ = retrypolicy.ParseRetryAfter(v, testNow)
			}
		})
	}
}

// BenchmarkRecorderSuccess is the recorder's overhead on a successful first
// attempt: nothing is parsed or written.
func BenchmarkRecorderSuccess(b *testing.B) {
	rec := retrypolicy.NewAttemptRecorder(nil, &retrypolicy.RecorderOpts{Logger: discardLogger()})
	job := &rivertype.JobRow{ID: 1, Kind: "http_request", Attempt: 1, MaxAttempts: 5, Metadata: []byte(`{}`)}
	ctx := context.Background()
	work := func(context.Context) error { return nil }
	b.Run("without_recorder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkErr = work(ctx)
		}
	})
	b.Run("with_recorder", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkErr = rec.Work(ctx, job, work)
		}
	})
	retried := &rivertype.JobRow{ID: 2, Kind: "http_request", Attempt: 3, MaxAttempts: 5, Metadata: []byte(`{}`)}
	b.Run("with_recorder_later_attempt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkErr = rec.Work(ctx, retried, work)
		}
	})
}
