package retrypolicy

import (
	"time"
)

// Override is what an explicit marker says about retrying, whatever the
// policy's rule for the class is.
type Override uint8

const (
	// OverrideNone: no marker decided; the kind's policy decides from the
	// class (see [Policy.Rule]).
	OverrideNone Override = iota

	// OverridePermanent: the error was marked with [Permanent]; never retried.
	OverridePermanent

	// OverrideRetry: the error was marked with [Retryable]; retried with the
	// marker's class's strategy even if the policy does not retry that class.
	OverrideRetry
)

// String returns "none", "permanent" or "retry".
func (o Override) String() string {
	switch o {
	case OverridePermanent:
		return "permanent"
	case OverrideRetry:
		return "retry"
	}
	return "none"
}

// markedError is the error returned by Permanent, Retryable and OutOfMemory.
// It is transparent: Error() is the wrapped error's message and Unwrap returns
// it, so errors.Is and errors.As see through it.
type markedError struct {
	err      error
	override Override // OverrideNone for OutOfMemory
	class    Class    // "" for Permanent
}

func (e *markedError) Error() string { return e.err.Error() }
func (e *markedError) Unwrap() error { return e.err }

// retryAfterError is the error returned by WithRetryAfter.
type retryAfterError struct {
	err   error
	delay time.Duration
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// Permanent marks err as not worth retrying: the attempt recorder cancels the
// job now (river.JobCancel) and [Do] returns at once. The class is still
// learnt from err (Permanent(context.DeadlineExceeded) is class timeout, not
// retried). The returned error has err's message, and errors.Is / errors.As
// see through it. Permanent(nil) returns nil.
//
// Markers are recognised through any wrapping (fmt.Errorf("%w"),
// errors.Join, river.JobCancel). Each aspect — the class, whether to retry,
// the Retry-After — is decided by the outermost marker that sets it; see
// [Diagnose].
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, override: OverridePermanent}
}

// Retryable marks err as worth retrying with the given class: the class is
// recorded in the history and its strategy (from the kind's policy, else
// [DefaultRule], else exponential) computes the delay, even when the policy
// does not retry that class. The job's max attempts still apply. An invalid
// class is recorded as [ClassUnknown]. The returned error has err's message,
// and errors.Is / errors.As see through it. Retryable(nil, c) returns nil.
func Retryable(err error, class Class) error {
	if err == nil {
		return nil
	}
	if !class.Valid() {
		class = ClassUnknown
	}
	return &markedError{err: err, override: OverrideRetry, class: class}
}

// OutOfMemory marks err as class out_of_memory (not retried by default: the
// same input would exhaust memory again). Use it when a job detects it cannot
// fit its input into memory. The returned error has err's message, and
// errors.Is / errors.As see through it. OutOfMemory(nil) returns nil.
func OutOfMemory(err error) error {
	if err == nil {
		return nil
	}
	return &markedError{err: err, class: ClassOutOfMemory}
}

// WithRetryAfter attaches a minimum wait to err: the next attempt starts no
// sooner than d from now (still capped by the policy's retry_after_max, like
// a server's Retry-After). It replaces any RetryAfter() carried by err itself;
// a d <= 0 means "no minimum wait" and so hides the server's Retry-After. It
// does not decide the class or whether to retry. The returned error has err's
// message, and errors.Is / errors.As see through it. WithRetryAfter(nil, d)
// returns nil.
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, delay: max(d, 0)}
}
