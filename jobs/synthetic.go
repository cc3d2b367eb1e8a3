package jobs

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/tidwall/gjson"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// KindSynthetic is the kind of [SyntheticArgs].
const KindSynthetic = "synthetic"

// Limits of a synthetic job's args.
const (
	// MaxSyntheticSleepMS is the longest sleep_ms accepted: 1 hour, in
	// milliseconds.
	MaxSyntheticSleepMS = 3_600_000
	// MaxSyntheticFailMessageBytes is the longest fail_message accepted, in
	// bytes of the args' JSON string (before \xHH escapes are decoded).
	MaxSyntheticFailMessageBytes = 8192
)

// SyntheticArgs are the args of a synthetic job: a job that does nothing but
// sleep, fail or panic as its args say. Operators use it to rehearse an
// outage, check alerting and the dead-letter queue end to end, or measure
// the queue itself; rebound's benchmarks and failure drills use it.
//
// JSON shape (every field optional; {} is a job that succeeds at once):
//
//	{"sleep_ms": 200,                 // sleep this long first (0 to 3,600,000 ms)
//	 "fail_attempts": 2,              // the first 2 attempts fail (0: none)
//	 "fail_class": "server_error",    // ...with this failure class, or
//	 "fail_status": 503,              // ...as an HTTP failure with this status
//	 "fail_message": "bad\\x00byte",  // ...and this error text
//	 "panic_on_attempt": 3,           // attempt 3 panics (0: never)
//	 "operation_key": "payments-api"} // circuit breaker key (default: "synthetic")
//
// A failing attempt returns an error whose class is fail_class (any of
// retrypolicy.Classes()) or the class of the HTTP status fail_status (the
// retry policy's rule, e.g. 503 server_error, 404 not_found), or unknown when
// neither is given; the retry policy then decides as for any job of the
// kind (a fail_attempts at or above the job's max attempts ends in the
// dead-letter queue). Classes server_error, timeout and network count
// against the breaker of operation_key, so a burst of such jobs opens it.
//
// The sleep ends early when the job's context ends (a worker's graceful
// stop, the job timeout): the attempt then returns the context's error, so
// a stopping worker hands the job back to the queue with its attempt
// unused. The pod's job timeout (the worker's --job-timeout, 1 minute by
// default) bounds the sleep like any kind's: a longer sleep_ms fails the
// attempt as a timeout.
type SyntheticArgs struct {
	// SleepMS is how long each attempt sleeps before it succeeds or fails,
	// in milliseconds: 0 to [MaxSyntheticSleepMS]. Default 0.
	SleepMS int64 `json:"sleep_ms,omitempty" help:"sleep this long first, in milliseconds, 0 to 3600000 (default 0); a stopping worker interrupts it and the job goes back to the queue unused"`
	// FailAttempts is how many attempts fail, counting from the first: 0
	// (default) means none, 2 means attempts 1 and 2 fail and attempt 3
	// succeeds.
	FailAttempts int `json:"fail_attempts,omitempty" help:"the first N attempts fail (default 0: none); N at or above the max attempts ends the job in the dead-letter queue"`
	// FailClass is the failure class of a failing attempt, one of
	// retrypolicy.Classes() (e.g. "server_error"). Give it or FailStatus,
	// not both.
	FailClass string `json:"fail_class,omitempty" help:"the failure class of a failing attempt, e.g. server_error (default unknown)"`
	// FailStatus makes a failing attempt an HTTP failure with this status
	// (100 to 599), classified as http_request's would be.
	FailStatus int `json:"fail_status,omitempty" help:"or: fail as an HTTP answer with this status, 100 to 599, classified as http_request's"`
	// FailMessage is the error text of a failing attempt (and the panic
	// value of a panicking one). \xHH (two hex digits) stands for the byte
	// HH and \\ for a backslash, so the text can hold bytes a job's args
	// cannot (NUL, invalid UTF-8) to rehearse hostile error texts. At most
	// [MaxSyntheticFailMessageBytes] bytes. Default: "synthetic failure on
	// attempt N".
	FailMessage string `json:"fail_message,omitempty" help:"the error text (and panic value); \\xHH is the byte HH and \\\\ a backslash, so it can hold NUL and invalid UTF-8; at most 8192 bytes"`
	// PanicOnAttempt makes that attempt (1 is the first) panic instead of
	// sleeping. 0 (default) means never.
	PanicOnAttempt int `json:"panic_on_attempt,omitempty" help:"this attempt panics (default 0: never)"`
	// ExplicitOperationKey (JSON operation_key) names the circuit breaker
	// the job shares with others. Empty means the kind's name, "synthetic".
	ExplicitOperationKey string `json:"operation_key,omitempty" help:"the circuit breaker this job shares (default synthetic)"`
}

// Kind implements river.JobArgs.
func (SyntheticArgs) Kind() string { return KindSynthetic }

// InsertOpts gives synthetic jobs the default of 5 attempts, like
// http_request (River's own default is 25). An insert's own MaxAttempts
// wins.
func (SyntheticArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: retrypolicy.DefaultMaxAttempts}
}

// OperationKey implements [OperationKeyer]: operation_key, or "" (the
// kind's name applies).
func (a SyntheticArgs) OperationKey() string { return a.ExplicitOperationKey }

// Validate reports the first problem with the args, naming the field, as an
// error wrapping [ErrInvalidArgs]; nil when they are usable.
func (a SyntheticArgs) Validate() error {
	switch {
	case a.SleepMS < 0 || a.SleepMS > MaxSyntheticSleepMS:
		return fmt.Errorf("%w: sleep_ms must be between 0 and %d (1 hour), got %d", ErrInvalidArgs, MaxSyntheticSleepMS, a.SleepMS)
	case a.FailAttempts < 0 || a.FailAttempts > retrypolicy.MaxMaxAttempts:
		return fmt.Errorf("%w: fail_attempts must be between 0 and %d, got %d", ErrInvalidArgs, retrypolicy.MaxMaxAttempts, a.FailAttempts)
	case a.PanicOnAttempt < 0 || a.PanicOnAttempt > retrypolicy.MaxMaxAttempts:
		return fmt.Errorf("%w: panic_on_attempt must be between 0 (never) and %d, got %d", ErrInvalidArgs, retrypolicy.MaxMaxAttempts, a.PanicOnAttempt)
	case a.FailClass != "" && a.FailStatus != 0:
		return fmt.Errorf("%w: give fail_class or fail_status, not both", ErrInvalidArgs)
	case a.FailClass != "" && !retrypolicy.Class(a.FailClass).Valid():
		return fmt.Errorf("%w: fail_class %q is not a failure class (known: %s)", ErrInvalidArgs, a.FailClass, classNames())
	case a.FailStatus != 0 && (a.FailStatus < 100 || a.FailStatus > 599):
		return fmt.Errorf("%w: fail_status must be an HTTP status from 100 to 599, got %d", ErrInvalidArgs, a.FailStatus)
	case len(a.FailMessage) > MaxSyntheticFailMessageBytes:
		return fmt.Errorf("%w: fail_message must be at most %d bytes, got %d", ErrInvalidArgs, MaxSyntheticFailMessageBytes, len(a.FailMessage))
	}
	if _, err := DecodeByteEscapes(a.FailMessage); err != nil {
		return fmt.Errorf("%w: fail_message: %v", ErrInvalidArgs, err)
	}
	if a.ExplicitOperationKey != "" {
		if n := utf8.RuneCountInString(a.ExplicitOperationKey); n > MaxOperationKeyLength {
			return fmt.Errorf("%w: operation_key must be at most %d characters (got %d)", ErrInvalidArgs, MaxOperationKeyLength, n)
		}
		if err := breaker.ValidateKey(a.ExplicitOperationKey); err != nil {
			return fmt.Errorf("%w: operation_key: %v", ErrInvalidArgs, err)
		}
	}
	return nil
}

func classNames() string {
	var names []string
	for _, c := range retrypolicy.Classes() {
		names = append(names, string(c))
	}
	return strings.Join(names, ", ")
}

// DecodeByteEscapes returns s with each \xHH (two hex digits, either case)
// replaced by the byte HH and each \\ by one backslash; any other backslash
// is an error naming its offset. The result may hold any bytes, NUL and
// invalid UTF-8 included.
func DecodeByteEscapes(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		switch {
		case i+1 < len(s) && s[i+1] == '\\':
			b.WriteByte('\\')
			i++
		case i+3 < len(s) && s[i+1] == 'x':
			v, err := strconv.ParseUint(s[i+2:i+4], 16, 8)
			if err != nil {
				return "", fmt.Errorf(`\x at byte %d needs two hex digits, got %q`, i, s[i+2:i+4])
			}
			b.WriteByte(byte(v))
			i += 3
		default:
			return "", fmt.Errorf(`a backslash at byte %d must start \xHH or \\`, i)
		}
	}
	return b.String(), nil
}

// SyntheticKind is the registry entry of synthetic.
func SyntheticKind() Kind {
	return Kind{
		Name: KindSynthetic,
		Args: ArgsOf(SyntheticArgs{}),
		Parse: func(raw []byte) (river.JobArgs, error) {
			var a SyntheticArgs
			if err := decodeStrict(raw, &a); err != nil {
				return nil, err
			}
			if err := a.Validate(); err != nil {
				return nil, err
			}
			return a, nil
		},
		// One field looked up, not the whole args decoded.
		OperationKey: func(raw []byte) string {
			if v := gjson.GetBytes(raw, "operation_key"); v.Type == gjson.String {
				return v.Str
			}
			return ""
		},
		AddWorker: func(workers *river.Workers, _ WorkerDeps) error {
			return river.AddWorkerSafely(workers, &SyntheticWorker{})
		},
	}
}

// SyntheticError is the error of a failing synthetic attempt. The retry
// policy classifies it by behaviour: FailureClass (fail_class) or
// StatusCode (fail_status).
type SyntheticError struct {
	// Class is fail_class, "" when not given.
	Class string
	// Status is fail_status, 0 when not given.
	Status int
	// Message is the error text (fail_message with its escapes decoded).
	Message string
}

func (e *SyntheticError) Error() string { return e.Message }

// FailureClass is fail_class ("" decides nothing).
func (e *SyntheticError) FailureClass() string { return e.Class }

// StatusCode is fail_status (0 decides nothing).
func (e *SyntheticError) StatusCode() int { return e.Status }

// SyntheticWorker works synthetic jobs.
type SyntheticWorker struct {
	river.WorkerDefaults[SyntheticArgs]
}

// Work panics on panic_on_attempt, otherwise sleeps sleep_ms (returning
// the context's error if it ends first), then fails while the attempt is
// within fail_attempts, else succeeds. Args that do not validate (a job
// inserted past enqueue's checks) end the job at once as bad_request.
func (w *SyntheticWorker) Work(ctx context.Context, job *river.Job[SyntheticArgs]) error {
	a := job.Args
	if err := a.Validate(); err != nil {
		return errInvalidArgs(err)
	}
	msg, _ := DecodeByteEscapes(a.FailMessage)
	if a.PanicOnAttempt == job.Attempt {
		if msg == "" {
			msg = "synthetic panic on attempt " + strconv.Itoa(job.Attempt)
		}
		panic(msg)
	}
	if a.SleepMS > 0 {
		t := time.NewTimer(time.Duration(a.SleepMS) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("synthetic sleep of %d ms interrupted: %w", a.SleepMS, ctx.Err())
		case <-t.C:
		}
	}
	if job.Attempt > a.FailAttempts {
		return nil
	}
	if msg == "" {
		msg = "synthetic failure on attempt " + strconv.Itoa(job.Attempt)
	}
	return &SyntheticError{Class: a.FailClass, Status: a.FailStatus, Message: msg}
}
