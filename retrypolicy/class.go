package retrypolicy

// Class names why an attempt failed. Its value is a stable lower-case string:
// it is stored in a job's history (metadata.output.attempts[].class), in the
// dead-letter queue's failure_class column and in metric labels, so values are
// never renamed.
//
// The classes and what each means by default come from the seed document's
// decision matrix (docs/architecture.md, "The default decision matrix"); see
// [DefaultRule] for the retry decision and strategy of each.
type Class string

const (
	// ClassRateLimited: the downstream asked us to slow down (HTTP 429).
	// Retried with the aggressive strategy (3^(n-1)), raised to the server's
	// Retry-After.
	ClassRateLimited Class = "rate_limited"

	// ClassServerError: the downstream failed (HTTP 500-599 except 511).
	// Retried with the exponential strategy; counts against the circuit
	// breaker.
	ClassServerError Class = "server_error"

	// ClassTimeout: a deadline passed (context.DeadlineExceeded, a net.Error
	// whose Timeout() is true, ETIMEDOUT, a DNS timeout, HTTP 408). Retried
	// with the linear strategy; counts against the circuit breaker.
	ClassTimeout Class = "timeout"

	// ClassNetwork: the connection failed (refused, reset, broken pipe,
	// unreachable, temporary DNS failure, unexpected EOF, any other net.Error).
	// Retried with the exponential strategy; counts against the circuit
	// breaker.
	ClassNetwork Class = "network"

	// ClassDecode: a response could not be decoded (*json.SyntaxError,
	// *json.UnmarshalTypeError). Retried with the exponential strategy.
	ClassDecode Class = "decode"

	// ClassPanic: the worker panicked; the stack is kept in the history.
	// Retried with the exponential strategy.
	ClassPanic Class = "panic"

	// ClassLost: River's rescuer returned the job because its worker died or
	// hung (crash, OOM kill). Retried with the exponential strategy until the
	// policy's rescue limit, then the job is cancelled into the dead-letter
	// queue.
	ClassLost Class = "lost"

	// ClassUnknownKind: the client that fetched the job has no worker for
	// its kind (River's *rivertype.UnknownJobKindError: a kind registered
	// only by another service, or only by the new build during a rolling
	// deploy). Nothing died and the worker never ran. Retried on its own
	// long, capped schedule without using up the job's attempts, and
	// dead-lettered when no pod has run it for a day; see
	// [UnknownKindFor] and [AttemptRecorder.UnknownKind]. Only River's
	// error gets that schedule: a worker's error that names this class
	// (FailureClass) is an ordinary failure, retried by the rule's strategy.
	ClassUnknownKind Class = "unknown_kind"

	// ClassUnknown: nothing recognised. Retried with the exponential strategy.
	ClassUnknown Class = "unknown"

	// ClassBadRequest: the request itself is wrong (HTTP 400, 422 and the other
	// 4xx statuses listed at [Classify]). Not retried.
	ClassBadRequest Class = "bad_request"

	// ClassUnauthorized: credentials are missing or refused (HTTP 401, 403,
	// 407, 511). Not retried.
	ClassUnauthorized Class = "unauthorized"

	// ClassNotFound: the target does not exist (HTTP 404, 410, a DNS name
	// that does not exist). Not retried.
	ClassNotFound Class = "not_found"

	// ClassMisconfigured: the request cannot succeed as it is set up,
	// however healthy the downstream is, until someone changes the job's
	// URL, the client's trust store or the server's setup: a server
	// certificate that does not verify (self-signed, expired, unknown
	// authority, issued for another host name), a peer that does not speak
	// TLS where TLS was asked for, a redirect loop. Not retried, and never
	// counted by the circuit breaker: one misaddressed job must not park the
	// healthy jobs of its host. A TLS handshake that times out or is reset
	// stays [ClassTimeout] / [ClassNetwork]. The name says what the operator
	// must fix (a configuration), not the layer that failed, because
	// redirect loops and protocol mismatches belong here as much as
	// certificates do. See [Diagnose] for the errors recognised.
	ClassMisconfigured Class = "misconfigured"

	// ClassOutOfMemory: an explicit [OutOfMemory] marker or ENOMEM. Not
	// retried. (A real Go out-of-memory kills the process: it comes back as
	// [ClassLost].)
	ClassOutOfMemory Class = "out_of_memory"

	// ClassBreakerOpen: the circuit breaker of the job's operation key refused
	// the call (an error whose FailureClass() is "breaker_open", see [Gate]),
	// or the job was parked behind an open breaker too long (see
	// [CancelWithClass]). Not retried by default.
	ClassBreakerOpen Class = "breaker_open"

	// ClassCancelled: a context was cancelled (context.Canceled). During a
	// client shutdown this is never a failure: the attempt recorder passes the
	// error through untouched and River returns the job with its attempt
	// unused. Any other context.Canceled is retried with the exponential
	// strategy.
	ClassCancelled Class = "cancelled"
)

// allClasses lists every class in the order of the decision matrix (README,
// "What happens when a job fails").
var allClasses = [...]Class{
	ClassRateLimited, ClassServerError, ClassTimeout, ClassNetwork, ClassDecode,
	ClassPanic, ClassLost, ClassUnknownKind, ClassUnknown, ClassBadRequest, ClassUnauthorized,
	ClassNotFound, ClassMisconfigured, ClassOutOfMemory, ClassBreakerOpen, ClassCancelled,
}

// Classes returns every known class, in the order of the decision matrix
// (README, "What happens when a job fails"). The slice is a fresh copy.
func Classes() []Class {
	out := make([]Class, len(allClasses))
	copy(out, allClasses[:])
	return out
}

// Valid reports whether c is one of the known classes.
func (c Class) Valid() bool {
	switch c {
	case ClassRateLimited, ClassServerError, ClassTimeout, ClassNetwork, ClassDecode,
		ClassPanic, ClassLost, ClassUnknownKind, ClassUnknown, ClassBadRequest, ClassUnauthorized,
		ClassNotFound, ClassMisconfigured, ClassOutOfMemory, ClassBreakerOpen, ClassCancelled:
		return true
	}
	return false
}

// String returns the class's stable name, e.g. "rate_limited".
func (c Class) String() string { return string(c) }

// DownstreamUnhealthy reports whether a failure of this class means the
// downstream (the operation key) is unhealthy: true for server_error, timeout
// and network, false for every other class. The circuit breaker counts only
// these failures (docs/circuit-breakers.md): a 404, a rate limit, a
// certificate issued for another host (misconfigured) or a bug in our own
// worker says nothing about the downstream's health.
func (c Class) DownstreamUnhealthy() bool {
	switch c {
	case ClassServerError, ClassTimeout, ClassNetwork:
		return true
	}
	return false
}
