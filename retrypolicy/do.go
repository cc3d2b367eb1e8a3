package retrypolicy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rebound-queue/rebound/storable"
)

// Gate guards calls to a downstream identified by an operation key; the
// circuit breaker implements it. Execute runs fn (passing ctx through) when
// the gate admits the call, records fn's outcome, and returns fn's error;
// when it refuses the call it does not run fn and returns an error that has
// both of these methods:
//
//	FailureClass() string       // "breaker_open"
//	RetryAfter() time.Duration  // time until the breaker may probe again; <= 0 if unknown
//
// [Diagnose] classifies such an error as [ClassBreakerOpen] and reads its
// RetryAfter, so the gate's package need not import this one. Gate is
// defined here, at its consumer, so a breaker type satisfies it structurally.
type Gate interface {
	Execute(ctx context.Context, key string, fn func(context.Context) error) error
}

// DoOpts are optional settings of [Do]; nil means no gate and defaults.
type DoOpts struct {
	// Gate, when set, runs every attempt through Gate.Execute with
	// OperationKey. A refusal (class breaker_open) ends Do at once unless the
	// policy's rule for breaker_open retries; then the wait is raised to the
	// gate's RetryAfter, capped by retry_after_max.
	Gate Gate

	// OperationKey names the downstream for the gate, e.g. "api.example.com".
	OperationKey string

	// Now is the clock used for history timestamps. Default time.Now.
	Now func() time.Time

	// Rand is the jitter source. Default math/rand/v2's global source.
	Rand Rand

	// Sleep waits d or until ctx is done, returning ctx.Err() then. Tests
	// inject one that records d and returns at once. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error

	// OnAttempt, when set, is called after each failed attempt with its
	// history entry (delay_ms is the wait before the next attempt; Final is
	// set on the last).
	OnAttempt func(Attempt)
}

// Do runs fn in the caller's process until it succeeds, with the same
// classification ([Diagnose]) and backoff ([Policy.Delay]) as jobs — the
// seed's RetryManager.execute_with_retry. policy's zero fields take the
// defaults; an invalid policy returns a *ConfigError before fn runs.
//
// After each failure: a class the policy does not retry, a [Permanent]
// marker, or policy.MaxAttempts attempts made return fn's last error as is
// (errors.Is/As work on it). Otherwise Do sleeps the computed delay and tries
// again. ctx is honoured throughout: it is passed to fn, the sleep is
// interrupted when ctx is done, and then Do returns an error satisfying
// errors.Is(err, ctx.Err()) that also wraps fn's last error. Do does not
// recover panics.
func Do(ctx context.Context, policy Policy, fn func(ctx context.Context) error, opts *DoOpts) error {
	if opts == nil {
		opts = &DoOpts{}
	}
	p := policy.WithDefaults()
	if err := p.validate(""); err != nil {
		return err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	sleep := opts.Sleep
	if sleep == nil {
		sleep = sleepContext
	}

	var previous time.Duration
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		var err error
		if opts.Gate != nil {
			err = opts.Gate.Execute(ctx, opts.OperationKey, fn)
		} else {
			err = fn(ctx)
		}
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return joinCtxErr(ctxErr, err)
		}

		diag := Diagnose(err)
		rule := p.Rule(diag.Class)
		retry := rule.Retry
		switch diag.Override {
		case OverridePermanent:
			retry = false
		case OverrideRetry:
			retry = true
		}
		entry := Attempt{
			Attempt:      attempt,
			At:           now().UTC(),
			Class:        diag.Class,
			RetryAfterMS: diag.RetryAfter.Milliseconds(),
			Error:        storable.Text(err.Error(), MaxErrorBytes),
		}
		if !retry || attempt >= p.MaxAttempts {
			if retry {
				entry.Strategy = rule.Strategy
			}
			entry.Final = true
			if opts.OnAttempt != nil {
				opts.OnAttempt(entry)
			}
			return err
		}
		delay := p.Delay(DelayParams{Attempt: attempt, Strategy: rule.Strategy, RetryAfter: diag.RetryAfter, Previous: previous}, opts.Rand)
		entry.Strategy, entry.DelayMS = rule.Strategy, delay.Milliseconds()
		if opts.OnAttempt != nil {
			opts.OnAttempt(entry)
		}
		previous = delay
		if sleepErr := sleep(ctx, delay); sleepErr != nil {
			return joinCtxErr(sleepErr, err)
		}
	}
}

// joinCtxErr returns an error that is ctxErr for errors.Is and still wraps
// fn's last error.
func joinCtxErr(ctxErr, last error) error {
	if errors.Is(last, ctxErr) {
		return last
	}
	return fmt.Errorf("retrypolicy: %w (last attempt: %w)", ctxErr, last)
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
