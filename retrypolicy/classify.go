package retrypolicy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// The behaviours Classify looks for. They are interfaces, not types, so any
// package (the http_request job, the circuit breaker) can produce an error
// this package understands without importing it.
type (
	// statusCoder is an HTTP failure: StatusCode returns the response's
	// status, e.g. 503.
	statusCoder interface{ StatusCode() int }

	// retryAfterer carries a server's Retry-After, already converted to a
	// wait (see ParseRetryAfter). A value <= 0 means "none".
	retryAfterer interface{ RetryAfter() time.Duration }

	// failureClasser names its class directly, e.g. "breaker_open". Names
	// that are not a known Class are ignored.
	failureClasser interface{ FailureClass() string }

	// timeouter is what net.Error, syscall.Errno, os.ErrDeadlineExceeded and
	// context.DeadlineExceeded have in common.
	timeouter interface{ Timeout() bool }
)

// Diagnosis is everything Classify learns from one error.
type Diagnosis struct {
	// Class is the failure's class; never empty for a non-nil error
	// ([ClassUnknown] when nothing is recognised). Empty for a nil error.
	Class Class

	// Override is what an explicit marker ([Permanent], [Retryable]) says
	// about retrying; [OverrideNone] when no marker decided.
	Override Override

	// RetryAfter is the minimum wait asked for: from the outermost
	// [WithRetryAfter] marker if any, else from the outermost error with a
	// RetryAfter() time.Duration method returning > 0 (a server's
	// Retry-After, or a circuit breaker's time until its next probe). Zero
	// when none. Not yet capped by the policy's retry_after_max.
	RetryAfter time.Duration
}

// Classify returns the class of err: Diagnose(err).Class. It returns "" for a
// nil error and [ClassUnknown] for an error it does not recognise.
func Classify(err error) Class { return Diagnose(err).Class }

// Diagnose classifies err by what it can do, never by its message. It walks
// every layer of wrapping — Unwrap() error, Unwrap() []error (errors.Join,
// fmt.Errorf with several %w), river.JobCancel — depth first, outermost first,
// and allocates nothing.
//
// # Explicit markers
//
// [Permanent], [Retryable], [OutOfMemory] and [WithRetryAfter] beat
// everything learnt from behaviour, at any depth. Each aspect is decided by
// the outermost marker that sets it: the class by the outermost Retryable or
// OutOfMemory, the override by the outermost Permanent or Retryable, the wait
// by the outermost WithRetryAfter.
//
// # Behaviour
//
// Without a marker class, the class comes from the outermost layer that
// decides one, in this order of questions per layer:
//
//   - err == context.Canceled: cancelled. err == context.DeadlineExceeded:
//     timeout.
//   - FailureClass() string naming a known class: that class (this is how a
//     circuit breaker's refusal becomes breaker_open, see [Gate]).
//   - StatusCode() int, an HTTP failure: 429 rate_limited; 408 timeout;
//     400, 422 bad_request; 401, 403, 407 unauthorized; 404, 410 not_found;
//     409, 423, 425 unknown (a conflict, lock or "too early" may clear up:
//     retried, exponential, not counted against the breaker); every other
//     4xx bad_request (sending the same request again cannot fix it);
//     500-504 server_error; 505-599 server_error too (the server failed;
//     nonstandard 5xx such as Cloudflare's 520-526 mean an unhealthy
//     origin) except 511 unauthorized (network authentication required,
//     RFC 6585). 1xx-3xx and statuses outside 100-599 decide nothing at
//     this layer.
//   - syscall.Errno: ENOMEM out_of_memory; ETIMEDOUT timeout; ECONNREFUSED,
//     ECONNRESET, ECONNABORTED, EPIPE, ENETUNREACH, EHOSTUNREACH, ENETDOWN,
//     ENETRESET, EHOSTDOWN, ENOTCONN, EADDRNOTAVAIL network.
//   - *net.DNSError: IsTimeout timeout; IsNotFound not_found (the name does
//     not exist: an authoritative answer that retrying minutes later will
//     not change — override the not_found rule in the policy to retry it);
//     anything else, including IsTemporary, network.
//   - *json.SyntaxError, *json.UnmarshalTypeError: decode.
//   - A server certificate that does not verify — *tls.CertificateVerificationError,
//     x509.CertificateInvalidError (expired, not yet valid, not allowed to
//     sign, ...), x509.HostnameError (issued for another name),
//     x509.UnknownAuthorityError (self-signed, private CA),
//     x509.SystemRootsError, x509.ConstraintViolationError,
//     x509.UnhandledCriticalExtension, x509.InsecureAlgorithmError — or
//     tls.RecordHeaderError or http.ErrSchemeMismatch (the peer does not
//     speak TLS: an https URL pointing at a plain HTTP port):
//     misconfigured. Waiting does not fix any of them, and the downstream
//     may be healthy.
//   - err == io.ErrUnexpectedEOF: network (a peer closed mid-message).
//   - Timeout() bool returning true (net.Error, os.ErrDeadlineExceeded,
//     *url.Error of an http.Client timeout): timeout.
//
// A net.Error that decides nothing (Timeout() false) means network, unless a
// deeper layer decides (a *url.Error wrapping context.Canceled is cancelled,
// a *net.OpError wrapping ENOMEM is out_of_memory). Nothing recognised:
// unknown.
//
// RetryAfter() time.Duration is read independently of the class: the
// outermost value > 0 wins (see [Diagnosis.RetryAfter]).
func Diagnose(err error) Diagnosis {
	if err == nil {
		return Diagnosis{}
	}
	var w walker
	w.walk(err)

	d := Diagnosis{Override: w.override, RetryAfter: w.retryAfter}
	switch {
	case w.markerClass != "":
		d.Class = w.markerClass
	case w.class != "":
		d.Class = w.class
	case w.weakClass != "":
		d.Class = w.weakClass
	default:
		d.Class = ClassUnknown
	}
	if w.haveMarkerRetryAfter {
		d.RetryAfter = w.markerRetryAfter
	}
	return d
}

// walker collects, in one depth-first pass, the outermost answer to each
// question Diagnose asks.
type walker struct {
	markerClass          Class
	override             Override
	markerRetryAfter     time.Duration
	haveMarkerRetryAfter bool
	class                Class // first class decided by behaviour
	weakClass            Class // a net.Error that decided nothing
	retryAfter           time.Duration
}

func (w *walker) walk(err error) {
	for err != nil {
		if r, ok := err.(*readErr); ok {
			w.merge(&r.w) // read once already: the job's methods are not called again
			return
		}
		w.visit(err)
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				w.walk(e)
			}
			return
		default:
			return
		}
	}
}

// merge adds what o (the walk of an error deeper in the chain) found to
// what w found so far: as in a walk, the outermost answer to each question
// wins.
func (w *walker) merge(o *walker) {
	if w.markerClass == "" {
		w.markerClass = o.markerClass
	}
	if w.override == OverrideNone {
		w.override = o.override
	}
	if !w.haveMarkerRetryAfter && o.haveMarkerRetryAfter {
		w.haveMarkerRetryAfter, w.markerRetryAfter = true, o.markerRetryAfter
	}
	if w.retryAfter == 0 {
		w.retryAfter = o.retryAfter
	}
	if w.class == "" {
		w.class = o.class
	}
	if w.weakClass == "" {
		w.weakClass = o.weakClass
	}
}

func (w *walker) visit(err error) {
	switch e := err.(type) {
	case *markedError:
		if w.markerClass == "" && e.class != "" {
			w.markerClass = e.class
		}
		if w.override == OverrideNone && e.override != OverrideNone {
			w.override = e.override
		}
		return
	case *retryAfterError:
		if !w.haveMarkerRetryAfter {
			w.haveMarkerRetryAfter = true
			w.markerRetryAfter = e.delay
		}
		return
	}

	if w.retryAfter == 0 {
		if r, ok := err.(retryAfterer); ok {
			if d := r.RetryAfter(); d > 0 {
				w.retryAfter = d
			}
		}
	}

	if w.class != "" {
		return
	}
	if c := behaviourClass(err); c != "" {
		w.class = c
		return
	}
	if w.weakClass == "" {
		// syscall.Errno has Timeout and Temporary too, so it is a net.Error
		// by shape; an errno not mapped above (EINVAL, ENOENT ...) is no
		// network failure.
		if _, ok := err.(net.Error); ok {
			if _, errno := err.(syscall.Errno); !errno {
				w.weakClass = ClassNetwork
			}
		}
	}
}

// behaviourClass answers the per-layer questions documented at Diagnose; ""
// when this layer decides nothing.
func behaviourClass(err error) Class {
	switch err {
	case context.Canceled:
		return ClassCancelled
	case context.DeadlineExceeded:
		return ClassTimeout
	case io.ErrUnexpectedEOF:
		return ClassNetwork
	case http.ErrSchemeMismatch:
		return ClassMisconfigured
	}
	if f, ok := err.(failureClasser); ok {
		if c := Class(f.FailureClass()); c.Valid() {
			return c
		}
	}
	if s, ok := err.(statusCoder); ok {
		if c := StatusClass(s.StatusCode()); c != "" {
			return c
		}
	}
	switch e := err.(type) {
	case syscall.Errno:
		if c := errnoClass(e); c != "" {
			return c
		}
	case *net.DNSError:
		switch {
		case e.IsTimeout:
			return ClassTimeout
		case e.IsNotFound:
			return ClassNotFound
		}
		return ClassNetwork
	case *json.SyntaxError, *json.UnmarshalTypeError:
		return ClassDecode
	case *tls.CertificateVerificationError,
		x509.CertificateInvalidError, *x509.CertificateInvalidError,
		x509.HostnameError, *x509.HostnameError,
		x509.UnknownAuthorityError, *x509.UnknownAuthorityError,
		x509.SystemRootsError, *x509.SystemRootsError,
		x509.ConstraintViolationError, x509.UnhandledCriticalExtension, x509.InsecureAlgorithmError,
		tls.RecordHeaderError, *tls.RecordHeaderError:
		return ClassMisconfigured
	}
	if t, ok := err.(timeouter); ok && t.Timeout() {
		return ClassTimeout
	}
	return ""
}

// StatusClass maps an HTTP status code to its class as documented at
// [Diagnose]: 429 rate_limited, 408 timeout, 400/422 bad_request,
// 401/403/407/511 unauthorized, 404/410 not_found, 409/423/425 unknown, other
// 4xx bad_request, 500-599 server_error. It returns "" for 1xx-3xx and for
// codes outside 100-599 (no failure to classify).
func StatusClass(code int) Class {
	switch code {
	case 429:
		return ClassRateLimited
	case 408:
		return ClassTimeout
	case 400, 422:
		return ClassBadRequest
	case 401, 403, 407, 511:
		return ClassUnauthorized
	case 404, 410:
		return ClassNotFound
	case 409, 423, 425:
		return ClassUnknown
	}
	switch {
	case code >= 400 && code <= 499:
		return ClassBadRequest
	case code >= 500 && code <= 599:
		return ClassServerError
	}
	return ""
}

func errnoClass(e syscall.Errno) Class {
	switch e {
	case syscall.ENOMEM:
		return ClassOutOfMemory
	case syscall.ETIMEDOUT:
		return ClassTimeout
	case syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED, syscall.EPIPE,
		syscall.ENETUNREACH, syscall.EHOSTUNREACH, syscall.ENETDOWN, syscall.ENETRESET,
		syscall.EHOSTDOWN, syscall.ENOTCONN, syscall.EADDRNOTAVAIL:
		return ClassNetwork
	}
	return ""
}
