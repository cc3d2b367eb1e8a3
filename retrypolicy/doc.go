// Package retrypolicy decides what happens after a job's attempt fails: it
// classifies the failure, picks the backoff the class calls for, records the
// attempt in the job's history, and tells River when to retry — or to stop.
// It is the heart of rebound (see docs/architecture.md). It imports no other
// package of the module but the leaf package storable, which makes every text
// it hands to River or writes storable by PostgreSQL.
//
// # Classification
//
// [Classify] and [Diagnose] turn an error into a [Class] (rate_limited,
// server_error, timeout, network, decode, panic, lost, unknown, bad_request,
// unauthorized, not_found, misconfigured, out_of_memory, breaker_open,
// cancelled) by what the error can do, through every layer of wrapping: an
// error with StatusCode() int is an HTTP failure, RetryAfter() time.Duration
// carries a server's Retry-After, FailureClass() string names a class,
// net.Error, syscall.Errno, *net.DNSError, the json errors, the x509 and tls
// certificate-verification errors and the context errors mean what their
// documentation says. Error messages are never matched. [StatusClass] maps an
// HTTP status alone. [Class.DownstreamUnhealthy] tells the circuit breaker
// which classes to count.
//
// # Markers
//
// A job author forces a decision with [Permanent], [Retryable] (retry with a
// given class), [OutOfMemory] and [WithRetryAfter]. They are recognised
// through any wrapping, keep errors.Is / errors.As working on the wrapped
// error, and the outermost marker wins.
//
// # Retry-After
//
// [ParseRetryAfter] reads a Retry-After header value (RFC 9110 §10.2.3):
// delta-seconds or any HTTP-date form.
//
// # Backoff
//
// A [Strategy] (exponential, linear, fibonacci, aggressive) grows the wait
// with the attempt number; a [Jitter] mode randomises it; [Policy.Delay]
// applies strategy, jitter, the max_delay cap, the min_delay floor and the
// server's Retry-After, in that order, with saturating arithmetic. The
// random source and the clock are injectable.
//
// # Policies
//
// A [Policy] holds the settings of one job kind (max attempts, delays,
// jitter, rescue limit, per-class [Rule] overrides of the decision matrix,
// see [DefaultRule]). [Policies] is the set used by a worker: a default plus
// overrides by kind, built with [NewPolicies] or from the worker's YAML
// [Config] (durations as strings, errors naming the offending key).
//
// # River
//
// The [AttemptRecorder] is a River worker middleware; its
// [ClientRetryPolicy] is River's retry policy. River's NextRetry cannot see
// the error that just happened, so the recorder classifies and computes the
// delay in the middleware and hands the retry time over in memory. The
// history lives in the job's metadata.output ([Output], [Attempt]; read it
// with [ParseOutput]); job code stores its result next to it with
// [RecordResult]. Attempts lost to a crashed or hung worker are counted
// ([LostAttempts]) and a job that keeps getting lost is cancelled into the
// dead-letter queue without running it again. The breaker gate ends a job
// with [CancelWithClass].
//
// # In-process retries
//
// [Do] runs a function with the same classification and backoff inside the
// caller's process, optionally through a [Gate] (the circuit breaker of an
// operation key), honouring context cancellation.
package retrypolicy
