package retrypolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/storable"
)

// DefaultMaxPendingRetries is the default cap on hand-overs held in memory
// between the recorder and [ClientRetryPolicy.NextRetry].
const DefaultMaxPendingRetries = 10_000

// RecorderOpts are optional settings of an [AttemptRecorder]; nil means all
// defaults.
type RecorderOpts struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Rand is the jitter source; it must be safe for concurrent use (jobs
	// run in parallel). Default math/rand/v2's global source.
	Rand Rand

	// Logger receives warnings (a history that could not be written or
	// read, a hand-over evicted). Default slog.Default().
	Logger *slog.Logger

	// MaxPendingRetries caps the hand-overs held for NextRetry (see
	// [ClientRetryPolicy]). Default 10,000.
	MaxPendingRetries int

	// OnAttempt, when set, is called with every history entry the recorder
	// appends for a failed attempt (not for an operator's client.JobCancel,
	// which is recorded but is no failure) (after the decision: Strategy and
	// DelayMS say what follows, Final that nothing does), from the job's
	// goroutine. It feeds metrics; it must be fast and must not panic.
	OnAttempt func(job *rivertype.JobRow, a Attempt)
}

// AttemptRecorder is the worker middleware that records every failed attempt
// in the job's history and decides what happens next (docs/architecture.md,
// "The flow of one job", step 4). Install it in river.Config.Middleware
// after the breaker gate and install its ClientRetryPolicy as
// river.Config.RetryPolicy:
//
//	rec := retrypolicy.NewAttemptRecorder(policies, nil)
//	cfg := &river.Config{
//		Middleware:  []rivertype.Middleware{breakerGate, rec},
//		RetryPolicy: rec.ClientRetryPolicy(),
//	}
//
// Per attempt, with the policy of the job's kind:
//
//   - Start: if the job has lost attempts (see [LostAttempts]) reaching the
//     rescue limit, the worker is not run: the lost attempts and this one
//     are recorded as class lost and river.JobCancel is returned, so a
//     poison pill cannot take down pod after pod.
//   - Success: nothing is written unless the job called [RecordResult] (or
//     lost attempts need back-filling).
//   - river.JobSnooze: passed through; no attempt is used, nothing recorded.
//   - Shutdown (the job's context was cancelled by the client stopping and
//     the error satisfies errors.Is(err, context.Canceled) or carries the
//     context's cause, as net/http's errors do): the error is
//     returned untouched, nothing recorded; River returns the job with its
//     attempt unused. A context that ran out of time (River's job timeout)
//     is not a shutdown: the attempt failed with class timeout.
//   - Any other error: classified ([Diagnose]); an entry is appended to the
//     history; then a class the policy does not retry (or a [Permanent]
//     marker, or the policy's max attempts reached before the job's) returns
//     river.JobCancel(err): the job ends now; on the job's last attempt the
//     error is returned and River discards the job; otherwise the delay the
//     class's strategy gives is handed to [ClientRetryPolicy.NextRetry].
//     An error that is already a river.JobCancel, or a cancellation by an
//     operator (client.JobCancel), is recorded as final and returned as is.
//   - Panic: recovered, recorded as class panic with its stack
//     (runtime/debug.Stack), and re-panicked with storable.Panic(value) —
//     the same value, or a *storable.PanicValue holding it when its text is
//     not storable (see below) — so River keeps its stack trace and
//     ErrorHandler.HandlePanic runs; unless the policy does not retry panics
//     (or its max attempts are reached first), in which case
//     river.JobCancel is returned instead of re-panicking. A panic in the
//     returned error's own Error, Unwrap, StatusCode or RetryAfter method
//     is a panic of the attempt too: the recorder reads them once, under
//     the same recover, and hands River the text it read.
//
// # Storable texts
//
// River stores an attempt's error text (err.Error(), or fmt's %v of a panic
// value) in river_job.errors, a jsonb column, without sanitising it: a NUL
// there fails the completer's whole batch and no job of the pod completes
// again. So whatever the recorder returns or re-panics is storable, for
// every job kind and on every path (retry, last attempt, cancel, the
// rescue limit, panic, shutdown): an error whose message holds a NUL or
// invalid UTF-8, or exceeds [MaxErrorBytes] (4 KiB), is returned wrapped in
// a *storable.SanitizedError (storable.Error), whose message has each such
// byte replaced by U+FFFD and is cut to 4 KiB. The wrapper is transparent:
// River still sees its JobCancel, Go callers and the circuit breaker's
// classifier see the original through errors.Is / errors.As /
// errors.AsType, and the class is decided from the original before
// wrapping. A snooze is returned as it is (River stores no text for it).
// History entries hold the same sanitised text; [RecordResult] refuses a
// result PostgreSQL cannot store.
//
// The history is written with river.RecordOutput at the end of the attempt
// (see [Output] for the schema); a failure to write it is logged, never
// returned. The zero value is not usable; use [NewAttemptRecorder].
type AttemptRecorder struct {
	river.MiddlewareDefaults

	policies *Policies
	now      func() time.Time
	rand     Rand
	logger   *slog.Logger
	retry    *ClientRetryPolicy
	onEntry  func(job *rivertype.JobRow, a Attempt)
}

var _ rivertype.WorkerMiddleware = (*AttemptRecorder)(nil)

// NewAttemptRecorder returns a recorder using policies (nil: the package
// defaults for every kind) and its ClientRetryPolicy.
func NewAttemptRecorder(policies *Policies, opts *RecorderOpts) *AttemptRecorder {
	if opts == nil {
		opts = &RecorderOpts{}
	}
	r := &AttemptRecorder{
		policies: policies,
		now:      opts.Now,
		rand:     opts.Rand,
		logger:   opts.Logger,
		onEntry:  opts.OnAttempt,
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.rand == nil {
		r.rand = globalRand{}
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	maxPending := opts.MaxPendingRetries
	if maxPending <= 0 {
		maxPending = DefaultMaxPendingRetries
	}
	r.retry = &ClientRetryPolicy{
		policies:   policies,
		now:        r.now,
		rand:       r.rand,
		logger:     r.logger,
		maxPending: maxPending,
		pending:    make(map[pendingKey]pendingRetry),
	}
	return r
}

// ClientRetryPolicy returns the river.ClientRetryPolicy that receives this
// recorder's hand-overs. Install it as river.Config.RetryPolicy.
func (r *AttemptRecorder) ClientRetryPolicy() *ClientRetryPolicy { return r.retry }

// attemptCtx is the job's context plus the attempt's recorded result. It is
// its own context value, so installing it costs one allocation.
type attemptCtx struct {
	context.Context

	mu        sync.Mutex
	result    json.RawMessage
	hasResult bool
}

type attemptCtxKey struct{}

func (c *attemptCtx) Value(key any) any {
	if key == (attemptCtxKey{}) {
		return c
	}
	return c.Context.Value(key)
}

func (c *attemptCtx) takeResult() (json.RawMessage, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.result, c.hasResult
}

// RecordResult sets the "result" of the job's metadata.output to v's JSON.
// Call it from a job's Work (or anything it calls with its context); each
// call replaces the previous value; the recorder writes it at the end of the
// attempt, whether the attempt succeeds or fails, next to the history.
//
// Errors: v does not marshal to JSON; its JSON exceeds MaxResultBytes
// (16 MiB); its JSON holds a string PostgreSQL's jsonb cannot store (a NUL,
// invalid UTF-8 in a json.RawMessage, an unpaired surrogate escape): the
// error wraps a *storable.JSONError naming it, e.g. "retrypolicy:
// RecordResult: result.note: contains a NUL character (\u0000), which
// PostgreSQL cannot store", and nothing is recorded; ctx does not come from
// a job run under the [AttemptRecorder].
func RecordResult(ctx context.Context, v any) error {
	a, ok := ctx.Value(attemptCtxKey{}).(*attemptCtx)
	if !ok {
		return errors.New("retrypolicy: RecordResult must be called from a job run under the AttemptRecorder middleware")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("retrypolicy: RecordResult: %w", err)
	}
	if len(b) > MaxResultBytes {
		return fmt.Errorf("retrypolicy: RecordResult: result is %d bytes (max %d)", len(b), MaxResultBytes)
	}
	if err := storable.CheckJSON(b, "result"); err != nil {
		return fmt.Errorf("retrypolicy: RecordResult: %w", err)
	}
	a.mu.Lock()
	a.result, a.hasResult = b, true
	a.mu.Unlock()
	return nil
}

// AttemptObserver receives the history entries appended for one attempt;
// see [WithAttemptObserver].
type AttemptObserver interface {
	// ObserveAttempt is called with each entry, after the decision
	// (Strategy, DelayMS and Final say what follows), on the job's
	// goroutine. It must be fast and must not panic.
	ObserveAttempt(a Attempt)
}

type observerKey struct{}

// WithAttemptObserver returns a context, derived from a job's work context
// by a worker middleware installed outside the [AttemptRecorder] (and the
// circuit breaker gate), under which the recorder and [CancelWithClass]
// hand obs the history entry they append for this attempt: a failure with
// its class, an operator's cancel (class cancelled), the rescue limit
// (class lost), a job parked too long (class breaker_open) or with an
// invalid operation key (CancelWithClass's class). Entries back-filled for
// earlier lost attempts are not this attempt's and are not handed over. A successful attempt, a snooze or a shutdown
// appends nothing. Tracing uses it to put the class on the attempt's span.
//
// Without it the recorder looks the observer up once per failed attempt
// (a context.Value walk, no allocation) and nothing else is done.
func WithAttemptObserver(ctx context.Context, obs AttemptObserver) context.Context {
	return context.WithValue(ctx, observerKey{}, obs)
}

// observe hands the attempt's entry to the context's AttemptObserver, if
// any.
func observe(ctx context.Context, entry *Attempt) {
	if obs, ok := ctx.Value(observerKey{}).(AttemptObserver); ok {
		obs.ObserveAttempt(*entry)
	}
}

// attemptRun is the state of one attempt while the recorder handles it.
type attemptRun struct {
	job    *rivertype.JobRow
	policy Policy
	out    Output
	parsed bool
	lost   []Attempt // back-fill for lost attempts found at the start
}

// history parses the job's history once.
func (r *AttemptRecorder) history(run *attemptRun) {
	if run.parsed {
		return
	}
	run.parsed = true
	out, err := ParseOutput(run.job.Metadata)
	if err != nil {
		r.logger.Warn("retrypolicy: unreadable job history; starting a new one",
			slog.Int64("job_id", run.job.ID), slog.String("kind", run.job.Kind), slog.String("error", err.Error()))
	}
	run.out = out
}

// Work implements rivertype.WorkerMiddleware; see [AttemptRecorder].
func (r *AttemptRecorder) Work(ctx context.Context, job *rivertype.JobRow, doInner func(ctx context.Context) error) error {
	if err := r.work(ctx, job, doInner); err != nil {
		return storableResult(err)
	}
	return nil
}

// storableResult is err as River can store it. Never inlined into Work
// (see start).
//
//go:noinline
func storableResult(err error) error {
	if _, ok := errors.AsType[*rivertype.JobSnoozeError](err); ok {
		return err // River stores no text for a snooze
	}
	return storable.Error(err)
}

// work runs one attempt; Work makes what it returns storable.
func (r *AttemptRecorder) work(ctx context.Context, job *rivertype.JobRow, doInner func(ctx context.Context) error) (retErr error) {
	run := attemptRun{job: job}
	if err := r.start(ctx, &run); err != nil {
		return err
	}
	actx := &attemptCtx{Context: ctx}
	finished := false
	defer func() {
		if finished {
			return
		}
		v := recover()
		if v == nil { // runtime.Goexit (e.g. t.FailNow): nothing to record
			return
		}
		if err := r.recordPanic(ctx, actx, &run, v, debug.Stack()); err != nil {
			retErr = err
			return
		}
		panic(storable.Panic(v))
	}()
	err := doInner(actx)
	var read *readErr
	if err != nil {
		// The job's error is read here, under the recover above: a panic in
		// its Error, Unwrap, StatusCode or RetryAfter method is a panic of
		// the attempt, recorded with class panic.
		read = readError(err)
	}
	finished = true
	return r.finish(ctx, actx, &run, read)
}

// start prepares run before the attempt; an error ends the attempt
// without running it. start and finish are apart from work, and never
// inlined there, so that their locals do not enlarge the stack frame every
// job's goroutine pays for (a deeper frame made each job's goroutine grow,
// that is copy, its stack).
//
//go:noinline
func (r *AttemptRecorder) start(ctx context.Context, run *attemptRun) error {
	job := run.job
	run.policy = r.policies.Lookup(job.Kind)
	// River consumed (or never asked for) the previous attempt's hand-over
	// before this attempt could start.
	if job.Attempt > 1 {
		r.retry.forget(job.ID, job.Attempt-1)
	}
	if len(job.Errors) > 0 {
		return r.checkRescueLimit(ctx, run)
	}
	return nil
}

// finish records what the attempt's err means and returns what River
// gets; see start.
//
//go:noinline
func (r *AttemptRecorder) finish(ctx context.Context, actx *attemptCtx, run *attemptRun, read *readErr) error {
	job := run.job
	if read == nil {
		if _, ok := actx.takeResult(); ok || len(run.lost) > 0 {
			r.write(ctx, actx, run)
		}
		return nil
	}
	err := read.result()
	if _, ok := errors.AsType[*rivertype.JobSnoozeError](err); ok {
		if _, ok := actx.takeResult(); ok || len(run.lost) > 0 {
			r.write(ctx, actx, run)
		}
		return err
	}
	remoteCancel := ctx.Err() != nil && errors.Is(context.Cause(ctx), rivertype.ErrJobCancelledRemotely)
	if errors.Is(ctx.Err(), context.Canceled) && !remoteCancel && (errors.Is(err, context.Canceled) || errors.Is(err, context.Cause(ctx))) {
		// Client shutdown: River's interrupt path returns the job with its
		// attempt unused. River accepts context.Canceled or its own stop
		// cause (what net/http returns for a request whose context was
		// cancelled with a cause), so both count here. A context that ran
		// out of time (River's job timeout) is not a shutdown: that attempt
		// failed with class timeout and is recorded like any other.
		if _, ok := actx.takeResult(); ok || len(run.lost) > 0 {
			r.write(ctx, actx, run)
		}
		return err
	}

	diag := read.diag
	_, alreadyCancelled := errors.AsType[*rivertype.JobCancelError](err)
	if remoteCancel {
		diag.Class = ClassCancelled // River replaces err with ErrJobCancelledRemotely
	}
	entry, decision := r.decide(run, diag, read.msg)
	ret := err
	switch {
	case alreadyCancelled || remoteCancel:
		entry.Final, entry.DelayMS = true, 0
	case decision == decideCancel:
		ret = river.JobCancel(err)
	case decision == decideRetry:
		r.retry.put(job.ID, job.Attempt, entry.At.Add(time.Duration(entry.DelayMS)*time.Millisecond), entry.At)
	}
	run.out.appendSorted(entry)
	r.write(ctx, actx, run)
	observe(ctx, &entry)
	if !remoteCancel {
		r.report(job, entry) // an operator's cancel is not a failure
	}
	return ret
}

// readError reads err's text (made storable by [storable.Text]) and its
// diagnosis once. The recorder calls it where a panic counts as a panic of
// the attempt. Kept out of work's frame, as start and finish are.
//
//go:noinline
func readError(err error) *readErr {
	raw := err.Error()
	r := &readErr{err: err, msg: storable.Text(raw, storable.MaxErrorBytes)}
	r.changed = r.msg != raw
	r.w.walk(err)
	r.diag = Diagnose(r)
	return r
}

// readErr is an error whose text and diagnosis were read once; see
// readError. [Diagnose] and [Classify] stop at it instead of calling the
// job's methods again.
type readErr struct {
	err     error
	msg     string
	changed bool // msg is not err's own text
	w       walker
	diag    Diagnosis
}

func (e *readErr) Error() string { return e.msg }
func (e *readErr) Unwrap() error { return e.err }

// result is what the recorder returns for the attempt: the job's own error
// when its text is storable as it is, else e (which wraps it), so River
// stores the text read here and errors.Is, errors.As and River's JobCancel
// and JobSnooze detection still see the job's error.
func (e *readErr) result() error {
	if !e.changed {
		return e.err
	}
	return e
}

// report hands an appended entry to OnAttempt.
func (r *AttemptRecorder) report(job *rivertype.JobRow, entry Attempt) {
	if r.onEntry != nil {
		r.onEntry(job, entry)
	}
}

type decision uint8

const (
	decideRetry   decision = iota // hand the delay to NextRetry
	decideDiscard                 // job's last attempt: River discards
	decideCancel                  // return river.JobCancel
)

// decide builds the history entry of a failed attempt and what follows it.
// It parses the history (needed to carry it forward anyway).
func (r *AttemptRecorder) decide(run *attemptRun, diag Diagnosis, msg string) (Attempt, decision) {
	r.history(run)
	run.out.appendSorted(run.lost...)
	run.lost = nil

	rule := run.policy.Rule(diag.Class)
	retry := rule.Retry
	switch diag.Override {
	case OverridePermanent:
		retry = false
	case OverrideRetry:
		retry = true
	}
	entry := Attempt{
		Attempt:      run.job.Attempt,
		At:           r.now().UTC(),
		Class:        diag.Class,
		RetryAfterMS: diag.RetryAfter.Milliseconds(),
		Error:        storable.Text(msg, MaxErrorBytes),
	}
	if !retry {
		entry.Final = true
		return entry, decideCancel
	}
	entry.Strategy = rule.Strategy
	switch {
	case run.job.Attempt >= run.job.MaxAttempts:
		entry.Final = true
		return entry, decideDiscard
	case run.job.Attempt >= run.policy.MaxAttempts:
		entry.Final = true
		return entry, decideCancel
	}
	delay := run.policy.Delay(DelayParams{
		Attempt:    run.job.Attempt,
		Strategy:   rule.Strategy,
		RetryAfter: diag.RetryAfter,
		Previous:   run.out.previousDelay(),
	}, r.rand)
	entry.DelayMS = delay.Milliseconds()
	return entry, decideRetry
}

// recordPanic records a recovered panic. It returns a river.JobCancel error
// when the job must end now (the caller returns it instead of re-panicking),
// nil when the caller must re-panic.
func (r *AttemptRecorder) recordPanic(ctx context.Context, actx *attemptCtx, run *attemptRun, v any, stack []byte) error {
	msg := fmt.Sprint(v)
	entry, decision := r.decide(run, Diagnosis{Class: ClassPanic}, msg)
	entry.Stack = storable.Text(string(stack), MaxStackBytes)
	if decision == decideRetry {
		r.retry.put(run.job.ID, run.job.Attempt, entry.At.Add(time.Duration(entry.DelayMS)*time.Millisecond), entry.At)
	}
	run.out.appendSorted(entry)
	r.write(ctx, actx, run)
	observe(ctx, &entry)
	r.report(run.job, entry)
	if decision == decideCancel {
		return river.JobCancel(&panicError{value: v, msg: msg})
	}
	return nil
}

// panicError is what a job that panicked is cancelled with when its policy
// does not retry panics.
type panicError struct {
	value any
	msg   string
}

func (e *panicError) Error() string { return "panic: " + e.msg }

// checkRescueLimit cancels the job without running it when its lost attempts
// reach the policy's rescue limit; otherwise it remembers the lost attempts
// to back-fill.
func (r *AttemptRecorder) checkRescueLimit(ctx context.Context, run *attemptRun) error {
	r.history(run)
	lost := LostAttempts(run.job, run.out)
	if len(lost) == 0 {
		return nil
	}
	rule := run.policy.Rule(ClassLost)
	run.lost = lostEntries(run.job, run.out, rule)
	limit := run.policy.RescueLimit
	if !rule.Retry {
		limit = 1
	}
	if len(lost) < limit {
		return nil
	}
	cause := fmt.Errorf("retrypolicy: rescue limit reached: %d lost attempts %v (rescue_limit %d); the worker was not run", len(lost), lost, limit)
	run.out.appendSorted(run.lost...)
	run.lost = nil
	final := Attempt{
		Attempt: run.job.Attempt,
		At:      r.now().UTC(),
		Class:   ClassLost,
		Error:   storable.Text(cause.Error(), MaxErrorBytes),
		Final:   true,
	}
	run.out.appendSorted(final)
	r.write(ctx, nil, run)
	observe(ctx, &final)
	r.report(run.job, final)
	return river.JobCancel(cause)
}

// write stores the history (and the attempt's result, if any) in
// metadata.output via river.RecordOutput.
func (r *AttemptRecorder) write(ctx context.Context, actx *attemptCtx, run *attemptRun) {
	r.history(run)
	run.out.appendSorted(run.lost...)
	run.lost = nil
	if actx != nil {
		if result, ok := actx.takeResult(); ok {
			run.out.Result = result
		}
	}
	if err := writeOutput(ctx, run.out); err != nil {
		r.logger.Warn("retrypolicy: could not record job history",
			slog.Int64("job_id", run.job.ID), slog.String("kind", run.job.Kind), slog.String("error", err.Error()))
	}
}

func writeOutput(ctx context.Context, out Output) error {
	if out.Attempts == nil {
		out.Attempts = []Attempt{}
	}
	return river.RecordOutput(ctx, out)
}

// CancelWithClass ends the job now with a terminal class, for middleware that
// runs outside the attempt recorder — the circuit breaker gate, when a job
// has been parked behind an open breaker longer than max_park: it appends a
// final entry {attempt, at, class, error: cause's message, retry_after_ms} to
// the job's history in metadata.output and returns river.JobCancel(cause),
// which the caller returns from its Work. The worker is not run and the job
// lands in the dead-letter queue with that class.
//
// ctx must be the job's work context (the one River passed to the
// middleware). An invalid class is recorded as unknown; a nil cause becomes an
// error naming the class. If the history cannot be written the returned
// error still cancels the job, and its message says why. The returned error
// is storable as the recorder's are (storable.Error; see [AttemptRecorder]).
func CancelWithClass(ctx context.Context, job *rivertype.JobRow, class Class, cause error) error {
	if !class.Valid() {
		class = ClassUnknown
	}
	if cause == nil {
		cause = fmt.Errorf("retrypolicy: job ended with class %s", class)
	}
	entry := Attempt{
		Attempt:      job.Attempt,
		At:           time.Now().UTC(),
		Class:        class,
		RetryAfterMS: Diagnose(cause).RetryAfter.Milliseconds(),
		Error:        storable.Text(cause.Error(), MaxErrorBytes),
		Final:        true,
	}
	observe(ctx, &entry)
	out, err := ParseOutput(job.Metadata)
	if err == nil {
		out.appendSorted(entry)
		err = writeOutput(ctx, out)
	}
	if err != nil {
		return storable.Error(river.JobCancel(errors.Join(cause, fmt.Errorf("retrypolicy: recording history: %w", err))))
	}
	return storable.Error(river.JobCancel(cause))
}
