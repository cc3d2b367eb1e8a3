package retrypolicy_test

// End to end: the attempt recorder and its ClientRetryPolicy in a real River
// client, against real PostgreSQL (internal/dbtest) and real HTTP servers.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// httpCallArgs is a small test job kind that does what the http_request job
// does: call a URL, report a non-2xx response by behaviour (StatusCode,
// RetryAfter), record the status as its result.
type httpCallArgs struct {
	URL string `json:"url"`
}

func (httpCallArgs) Kind() string { return "rp_http_call" }

type httpCallWorker struct {
	river.WorkerDefaults[httpCallArgs]
}

func (w *httpCallWorker) Work(ctx context.Context, job *river.Job[httpCallArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.URL, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if err := retrypolicy.RecordResult(ctx, map[string]int{"status": resp.StatusCode}); err != nil {
		return err
	}
	return responseError(resp, time.Now())
}

// panicArgs panics on the attempts listed, succeeds otherwise.
type panicArgs struct {
	PanicOn []int `json:"panic_on"`
}

func (panicArgs) Kind() string { return "rp_panic" }

type panicWorker struct {
	river.WorkerDefaults[panicArgs]
}

func (w *panicWorker) Work(ctx context.Context, job *river.Job[panicArgs]) error {
	for _, n := range job.Args.PanicOn {
		if n == job.Attempt {
			panic(fmt.Sprintf("boom on attempt %d", n))
		}
	}
	return nil
}

// countingArgs counts its runs; blocks until its context ends when Block.
type countingArgs struct {
	Block bool `json:"block"`
}

func (countingArgs) Kind() string { return "rp_counting" }

type countingWorker struct {
	river.WorkerDefaults[countingArgs]
	runs    atomic.Int64
	started chan struct{}
}

func (w *countingWorker) Work(ctx context.Context, job *river.Job[countingArgs]) error {
	w.runs.Add(1)
	if job.Args.Block {
		w.started <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

type recorderBundle struct {
	*riverBundle
	rec      *retrypolicy.AttemptRecorder
	counting *countingWorker
	panics   *panicRecorder
}

type panicRecorder struct {
	mu     sync.Mutex
	values []any
}

func (h *panicRecorder) HandleError(context.Context, *rivertype.JobRow, error) *river.ErrorHandlerResult {
	return nil
}

func (h *panicRecorder) HandlePanic(_ context.Context, _ *rivertype.JobRow, v any, _ string) *river.ErrorHandlerResult {
	h.mu.Lock()
	h.values = append(h.values, v)
	h.mu.Unlock()
	return nil
}

// newRecorderClient builds a client with the recorder installed the way
// cmd/worker does: Middleware and RetryPolicy. Every kind gets p.
func newRecorderClient(t *testing.T, p retrypolicy.Policy, opts *retrypolicy.RecorderOpts, wrap func(river.ClientRetryPolicy) river.ClientRetryPolicy) *recorderBundle {
	t.Helper()
	set, err := retrypolicy.NewPolicies(p, nil)
	require.NoError(t, err)
	rec := retrypolicy.NewAttemptRecorder(set, opts)
	var retry river.ClientRetryPolicy = rec.ClientRetryPolicy()
	if wrap != nil {
		retry = wrap(retry)
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &httpCallWorker{})
	river.AddWorker(workers, &panicWorker{})
	counting := &countingWorker{started: make(chan struct{}, 1)}
	river.AddWorker(workers, counting)
	panics := &panicRecorder{}
	b := newRiverClient(t, &river.Config{
		Workers:      workers,
		Middleware:   []rivertype.Middleware{rec},
		RetryPolicy:  retry,
		ErrorHandler: panics,
	})
	return &recorderBundle{riverBundle: b, rec: rec, counting: counting, panics: panics}
}

// timedServer answers with a script of replies and records when each call
// arrived.
type timedServer struct {
	*scriptedServer
	mu    sync.Mutex
	times []time.Time
}

func newTimedServer(t *testing.T, script ...reply) *timedServer {
	t.Helper()
	s := &timedServer{scriptedServer: &scriptedServer{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.times = append(s.times, time.Now())
		s.mu.Unlock()
		n := int(s.calls.Add(1))
		rep := script[min(n, len(script))-1]
		if rep.retryAfter != "" {
			w.Header().Set("Retry-After", rep.retryAfter)
		}
		w.WriteHeader(rep.status)
	}))
	t.Cleanup(s.Close)
	return s
}

func TestRiverRateLimitedWithRetryAfterThenOK(t *testing.T) {
	t.Parallel()

	srv := newTimedServer(t, reply{429, "3"}, reply{429, "3"}, reply{200, ""})
	b := newRecorderClient(t, retrypolicy.Policy{InitialDelay: 100 * time.Millisecond, Jitter: retrypolicy.JitterNone}, nil, nil)
	b.start(t)

	res, err := b.client.Insert(t.Context(), httpCallArgs{URL: srv.URL}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 30*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateCompleted, row.State)
	require.Equal(t, 3, row.Attempt)
	require.Equal(t, int64(3), srv.calls.Load())
	srv.mu.Lock()
	times := append([]time.Time(nil), srv.times...)
	srv.mu.Unlock()
	require.GreaterOrEqual(t, times[1].Sub(times[0]), 3*time.Second)
	require.GreaterOrEqual(t, times[2].Sub(times[1]), 3*time.Second)

	out := history(t, row)
	require.JSONEq(t, `{"status": 200}`, string(out.Result))
	require.Len(t, out.Attempts, 2)
	for i, a := range out.Attempts {
		// aggressive from 100ms (100ms, 300ms), raised to the server's 3s.
		require.Equal(t, retrypolicy.Attempt{
			Attempt: i + 1, At: a.At, Class: retrypolicy.ClassRateLimited, Strategy: retrypolicy.StrategyAggressive,
			DelayMS: 3000, RetryAfterMS: 3000, Error: "upstream answered 429 Too Many Requests",
		}, a)
		require.Equal(t, row.Errors[i].Attempt, a.Attempt)
	}
	require.Zero(t, b.rec.ClientRetryPolicy().Pending())
}

func TestRiverNotFoundEndsTheJobAtOnce(t *testing.T) {
	t.Parallel()

	srv := newTimedServer(t, reply{404, ""})
	b := newRecorderClient(t, retrypolicy.Policy{InitialDelay: 100 * time.Millisecond}, nil, nil)
	b.start(t)

	res, err := b.client.Insert(t.Context(), httpCallArgs{URL: srv.URL}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateCancelled, row.State)
	require.Equal(t, 1, row.Attempt)
	require.Equal(t, int64(1), srv.calls.Load())
	require.Len(t, row.Errors, 1)
	require.Equal(t, "JobCancelError: upstream answered 404 Not Found", row.Errors[0].Error)

	out := history(t, row)
	require.JSONEq(t, `{"status": 404}`, string(out.Result))
	require.Equal(t, []retrypolicy.Attempt{{
		Attempt: 1, At: out.Attempts[0].At, Class: retrypolicy.ClassNotFound, Error: "upstream answered 404 Not Found", Final: true,
	}}, out.Attempts)
	require.Zero(t, b.rec.ClientRetryPolicy().Pending())

	// The raw JSON a PL/pgSQL trigger reads.
	var attempts []map[string]any
	require.NoError(t, b.db.Pool.QueryRow(t.Context(),
		`SELECT metadata->'output'->'attempts' FROM river_job WHERE id = $1`, res.Job.ID).Scan(&attempts))
	require.Len(t, attempts, 1)
	require.Equal(t, "not_found", attempts[0]["class"])
	require.Equal(t, float64(1), attempts[0]["attempt"])
	require.Equal(t, float64(0), attempts[0]["delay_ms"])
	require.Equal(t, true, attempts[0]["final"])
}

func TestRiverPanicIsRetriedWithItsStack(t *testing.T) {
	t.Parallel()

	b := newRecorderClient(t, retrypolicy.Policy{InitialDelay: 100 * time.Millisecond, Jitter: retrypolicy.JitterNone}, nil, nil)
	b.start(t)

	res, err := b.client.Insert(t.Context(), panicArgs{PanicOn: []int{1}}, &river.InsertOpts{MaxAttempts: 3})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateCompleted, row.State)
	require.Equal(t, 2, row.Attempt)
	out := history(t, row)
	require.Len(t, out.Attempts, 1)
	a := out.Attempts[0]
	require.Equal(t, retrypolicy.ClassPanic, a.Class)
	require.Equal(t, retrypolicy.StrategyExponential, a.Strategy)
	require.Equal(t, int64(100), a.DelayMS)
	require.Equal(t, "boom on attempt 1", a.Error)
	require.Contains(t, a.Stack, "panicWorker).Work")
	require.Contains(t, a.Stack, "runtime/debug.Stack")
	require.False(t, a.Final)

	// River kept its own trace of the re-panicked value and called
	// HandlePanic with it.
	require.Len(t, row.Errors, 1)
	require.Equal(t, "boom on attempt 1", row.Errors[0].Error)
	require.Contains(t, row.Errors[0].Trace, "panicWorker).Work")
	b.panics.mu.Lock()
	require.Equal(t, []any{"boom on attempt 1"}, b.panics.values)
	b.panics.mu.Unlock()
}

func TestRiverPolicyMaxAttemptsCancels(t *testing.T) {
	t.Parallel()

	srv := newTimedServer(t, reply{500, ""})
	b := newRecorderClient(t, retrypolicy.Policy{MaxAttempts: 2, InitialDelay: 100 * time.Millisecond, Jitter: retrypolicy.JitterNone}, nil, nil)
	b.start(t)

	res, err := b.client.Insert(t.Context(), httpCallArgs{URL: srv.URL}, &river.InsertOpts{MaxAttempts: 25})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateCancelled, row.State)
	require.Equal(t, 2, row.Attempt)
	require.Equal(t, int64(2), srv.calls.Load())
	out := history(t, row)
	require.Len(t, out.Attempts, 2)
	require.Equal(t, []int64{100, 0}, []int64{out.Attempts[0].DelayMS, out.Attempts[1].DelayMS})
	require.Equal(t, []bool{false, true}, []bool{out.Attempts[0].Final, out.Attempts[1].Final})
	require.Equal(t, retrypolicy.ClassServerError, out.Attempts[1].Class)
	require.Equal(t, retrypolicy.StrategyExponential, out.Attempts[1].Strategy)
}

func TestRiverLastAttemptIsDiscardedByRiver(t *testing.T) {
	t.Parallel()

	srv := newTimedServer(t, reply{503, ""})
	b := newRecorderClient(t, retrypolicy.Policy{InitialDelay: 100 * time.Millisecond, Jitter: retrypolicy.JitterNone}, nil, nil)
	b.start(t)

	res, err := b.client.Insert(t.Context(), httpCallArgs{URL: srv.URL}, &river.InsertOpts{MaxAttempts: 2})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateDiscarded, row.State)
	out := history(t, row)
	require.Len(t, out.Attempts, 2)
	require.Equal(t, []int64{100, 0}, []int64{out.Attempts[0].DelayMS, out.Attempts[1].DelayMS})
	require.True(t, out.Attempts[1].Final)
	require.Equal(t, "upstream answered 503 Service Unavailable", row.Errors[1].Error) // not wrapped in JobCancel
	require.Zero(t, b.rec.ClientRetryPolicy().Pending())
}

// failedAttempt is an AttemptError as River stores it.
func failedAttempt(t *testing.T, attempt int, at time.Time, msg string) string {
	t.Helper()
	b, err := json.Marshal(rivertype.AttemptError{Attempt: attempt, At: at, Error: msg})
	require.NoError(t, err)
	return string(b)
}

func TestRiverRescueLimitCancelsWithoutRunning(t *testing.T) {
	t.Parallel()

	b := newRecorderClient(t, retrypolicy.Policy{}, nil, nil)
	res, err := b.client.Insert(t.Context(), countingArgs{}, &river.InsertOpts{MaxAttempts: 10})
	require.NoError(t, err)

	// Two attempts the workers never finished: River's rescuer wrote their
	// errors, no history entry exists. The last was rescued at t0 and given a
	// 5s wait.
	t0 := time.Now().Add(-10 * time.Second).UTC().Truncate(time.Millisecond)
	_, err = b.db.Pool.Exec(t.Context(),
		`UPDATE river_job SET attempt = 2, errors = $2::jsonb[], scheduled_at = $3 WHERE id = $1`,
		res.Job.ID,
		[]string{failedAttempt(t, 1, t0.Add(-time.Minute), "Stuck job rescued by JobRescuer"), failedAttempt(t, 2, t0, "Stuck job rescued by JobRescuer")},
		t0.Add(5*time.Second))
	require.NoError(t, err)

	b.start(t)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateCancelled, row.State)
	require.Equal(t, 3, row.Attempt)
	require.Zero(t, b.counting.runs.Load(), "the worker must not run")
	const reason = "retrypolicy: rescue limit reached: 2 lost attempts [1 2] (rescue_limit 2); the worker was not run"
	require.Equal(t, "JobCancelError: "+reason, row.Errors[2].Error)

	out := history(t, row)
	require.Equal(t, []retrypolicy.Attempt{
		{Attempt: 1, At: t0.Add(-time.Minute), Class: retrypolicy.ClassLost, Strategy: retrypolicy.StrategyExponential, Error: "Stuck job rescued by JobRescuer"},
		{Attempt: 2, At: t0, Class: retrypolicy.ClassLost, Strategy: retrypolicy.StrategyExponential, DelayMS: 5000, Error: "Stuck job rescued by JobRescuer"},
		{Attempt: 3, At: out.Attempts[2].At, Class: retrypolicy.ClassLost, Error: reason, Final: true},
	}, out.Attempts)
}

// recordingRetryPolicy wraps the recorder's ClientRetryPolicy to see River's
// calls.
type recordingRetryPolicy struct {
	inner *retrypolicy.ClientRetryPolicy
	mu    sync.Mutex
	calls []nextRetryCall
}

type nextRetryCall struct {
	jobID, pendingBefore int64
	attempt              int
	returned             time.Time
}

func (p *recordingRetryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	pending := p.inner.Pending()
	at := p.inner.NextRetry(job)
	p.mu.Lock()
	p.calls = append(p.calls, nextRetryCall{jobID: job.ID, attempt: job.Attempt, pendingBefore: int64(pending), returned: at})
	p.mu.Unlock()
	return at
}

func TestRiverRescuedJobFallsBackToClassLost(t *testing.T) {
	t.Parallel()

	var (
		clockMu   sync.Mutex
		lastClock time.Time
	)
	clock := func() time.Time {
		now := time.Now()
		clockMu.Lock()
		lastClock = now
		clockMu.Unlock()
		return now
	}
	var recording *recordingRetryPolicy
	b := newRecorderClient(t, retrypolicy.Policy{InitialDelay: 200 * time.Millisecond, Jitter: retrypolicy.JitterNone},
		&retrypolicy.RecorderOpts{Now: clock},
		func(inner river.ClientRetryPolicy) river.ClientRetryPolicy {
			recording = &recordingRetryPolicy{inner: inner.(*retrypolicy.ClientRetryPolicy)}
			return recording
		})
	res, err := b.client.Insert(t.Context(), countingArgs{}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)
	// A worker took attempt 1 two hours ago and died.
	_, err = b.db.Pool.Exec(t.Context(),
		`UPDATE river_job SET state = 'running', attempt = 1, attempted_at = now() - interval '2 hours', attempted_by = ARRAY['dead-pod'] WHERE id = $1`,
		res.Job.ID)
	require.NoError(t, err)

	b.start(t) // the leader's rescuer runs at start
	row := b.waitForState(t, res.Job.ID, 30*time.Second, finalStates...)

	require.Equal(t, rivertype.JobStateCompleted, row.State)
	require.Equal(t, 2, row.Attempt)
	require.Equal(t, int64(1), b.counting.runs.Load())

	// River's rescuer called NextRetry with no hand-over; the fallback is
	// class lost's strategy (exponential, attempt 1: 200ms).
	recording.mu.Lock()
	calls := append([]nextRetryCall(nil), recording.calls...)
	recording.mu.Unlock()
	require.Len(t, calls, 1)
	require.Equal(t, res.Job.ID, calls[0].jobID)
	require.Equal(t, 1, calls[0].attempt)
	require.Zero(t, calls[0].pendingBefore)
	clockMu.Lock()
	require.Equal(t, calls[0].returned, lastClock.Add(200*time.Millisecond)) // no clock read since: the job then succeeded
	clockMu.Unlock()
	require.WithinDuration(t, calls[0].returned, row.ScheduledAt, time.Microsecond)

	// The next attempt back-filled the lost one; it ran (1 < rescue limit 2).
	require.Len(t, row.Errors, 1)
	require.Equal(t, 1, row.Errors[0].Attempt)
	out := history(t, row)
	require.Equal(t, []retrypolicy.Attempt{{
		Attempt: 1, At: row.Errors[0].At.UTC(), Class: retrypolicy.ClassLost, Strategy: retrypolicy.StrategyExponential,
		DelayMS: row.ScheduledAt.Sub(row.Errors[0].At).Milliseconds(), Error: row.Errors[0].Error,
	}}, out.Attempts)
}

func TestRiverShutdownReturnsTheAttempt(t *testing.T) {
	t.Parallel()

	b := newRecorderClient(t, retrypolicy.Policy{}, nil, nil)
	b.start(t)
	res, err := b.client.Insert(t.Context(), countingArgs{Block: true}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)
	select {
	case <-b.counting.started:
	case <-time.After(10 * time.Second):
		t.Fatal("job did not start")
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.client.StopAndCancel(ctx))

	row, err := b.client.JobGet(t.Context(), res.Job.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateAvailable, row.State)
	require.Equal(t, 0, row.Attempt) // the attempt was given back
	require.Empty(t, row.Errors)
	out := history(t, row)
	require.Empty(t, out.Attempts)
	require.Zero(t, b.rec.ClientRetryPolicy().Pending())
}

func TestRiverCancelWithClass(t *testing.T) {
	t.Parallel()

	// A breaker gate outside the recorder ends a job parked too long.
	gate := river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		if job.Kind == "rp_counting" {
			return retrypolicy.CancelWithClass(ctx, job, retrypolicy.ClassBreakerOpen,
				errors.New("parked behind the open breaker of api.example.com for 24h0m0s"))
		}
		return doInner(ctx)
	})
	set, err := retrypolicy.NewPolicies(retrypolicy.Policy{}, nil)
	require.NoError(t, err)
	rec := retrypolicy.NewAttemptRecorder(set, nil)
	workers := river.NewWorkers()
	counting := &countingWorker{started: make(chan struct{}, 1)}
	river.AddWorker(workers, counting)
	b := newRiverClient(t, &river.Config{Workers: workers, Middleware: []rivertype.Middleware{gate, rec}, RetryPolicy: rec.ClientRetryPolicy()})

	res, err := b.client.Insert(t.Context(), countingArgs{}, &river.InsertOpts{MaxAttempts: 5})
	require.NoError(t, err)
	// It failed once before, recorded.
	prior := retrypolicy.Output{Attempts: []retrypolicy.Attempt{{Attempt: 1, At: testNow, Class: retrypolicy.ClassServerError, Strategy: retrypolicy.StrategyExponential, DelayMS: 2000, Error: "503"}}}
	meta, err := json.Marshal(map[string]any{"output": prior})
	require.NoError(t, err)
	_, err = b.db.Pool.Exec(t.Context(), `UPDATE river_job SET attempt = 1, metadata = $2, errors = ARRAY[$3::jsonb] WHERE id = $1`,
		res.Job.ID, meta, failedAttempt(t, 1, testNow, "503"))
	require.NoError(t, err)

	b.start(t)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)
	require.Equal(t, rivertype.JobStateCancelled, row.State)
	require.Zero(t, counting.runs.Load())
	require.Equal(t, "JobCancelError: parked behind the open breaker of api.example.com for 24h0m0s", row.Errors[1].Error)
	out := history(t, row)
	require.Len(t, out.Attempts, 2)
	require.Equal(t, prior.Attempts[0], out.Attempts[0])
	require.Equal(t, retrypolicy.Attempt{Attempt: 2, At: out.Attempts[1].At, Class: retrypolicy.ClassBreakerOpen,
		Error: "parked behind the open breaker of api.example.com for 24h0m0s", Final: true}, out.Attempts[1])
}

func TestRiverSuccessWritesNothing(t *testing.T) {
	t.Parallel()

	b := newRecorderClient(t, retrypolicy.Policy{}, nil, nil)
	b.start(t)
	res, err := b.client.Insert(t.Context(), countingArgs{}, nil)
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, finalStates...)
	require.Equal(t, rivertype.JobStateCompleted, row.State)
	require.False(t, strings.Contains(string(row.Metadata), `"output"`), "metadata: %s", row.Metadata)
}
