package rebound_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// badText holds the two kinds of bytes PostgreSQL refuses: a NUL (jsonb
// cannot hold \u0000) and bytes that are not UTF-8.
const badText = "\x00 and \xff\xfe"

// storedBadText is badText as rebound stores it: each refused byte becomes
// U+FFFD.
const storedBadText = "\uFFFD and \uFFFD\uFFFD"

// textProbeArgs is a job whose error, cancel reason or panic value holds
// badText, depending on Mode.
type textProbeArgs struct {
	Mode string `json:"mode"`
}

func (textProbeArgs) Kind() string { return "text_probe" }

// strictProbeArgs panics with badText under a policy that does not retry
// panics (the recorder cancels the job instead of re-panicking).
type strictProbeArgs struct{}

func (strictProbeArgs) Kind() string { return "text_probe_strict" }

// healthyArgs is a job that succeeds.
type healthyArgs struct {
	N int `json:"n"`
}

func (healthyArgs) Kind() string { return "healthy_probe" }

// runLog counts the runs of each job and keeps what RecordResult answered.
type runLog struct {
	mu           sync.Mutex
	runs         map[int64]int
	recordErrors []string
}

func (l *runLog) add(id int64) {
	l.mu.Lock()
	l.runs[id]++
	l.mu.Unlock()
}

// unprocessableError is an HTTP-like failure (422: bad_request, not
// retried) whose message holds badText.
type unprocessableError struct{ msg string }

func (e *unprocessableError) Error() string   { return e.msg }
func (e *unprocessableError) StatusCode() int { return http.StatusUnprocessableEntity }

// methodPanicError is an error whose Error method panics with badText.
type methodPanicError struct{}

func (methodPanicError) Error() string { panic("Error() panicked: " + badText) }

// statusPanicError is an error whose StatusCode method panics (its text is
// clean).
type statusPanicError struct{}

func (statusPanicError) Error() string   { return "status unknown" }
func (statusPanicError) StatusCode() int { panic("StatusCode() panicked") }

type textProbeWorker struct {
	river.WorkerDefaults[textProbeArgs]
	log *runLog
}

func (w *textProbeWorker) Work(ctx context.Context, job *river.Job[textProbeArgs]) error {
	w.log.add(job.ID)
	switch job.Args.Mode {
	case "retry":
		return fmt.Errorf("retry: %s", badText)
	case "permanent":
		return &unprocessableError{msg: "permanent: " + badText}
	case "cancel":
		return river.JobCancel(errors.New("cancel: " + badText))
	case "panic":
		panic("panic: " + badText)
	case "error method panics":
		return methodPanicError{}
	case "status method panics":
		return fmt.Errorf("call: %w", statusPanicError{})
	case "long":
		return errors.New(strings.Repeat("x", 10_000) + badText)
	case "snooze":
		if !strings.Contains(string(job.Metadata), `"snoozes"`) {
			err := retrypolicy.RecordResult(ctx, map[string]string{"note": "res\x00ult"})
			w.log.mu.Lock()
			w.log.recordErrors = append(w.log.recordErrors, fmt.Sprint(err))
			w.log.mu.Unlock()
			return river.JobSnooze(time.Millisecond)
		}
		return nil
	}
	return fmt.Errorf("unexpected mode %q", job.Args.Mode)
}

type strictProbeWorker struct {
	river.WorkerDefaults[strictProbeArgs]
	log *runLog
}

func (w *strictProbeWorker) Work(_ context.Context, job *river.Job[strictProbeArgs]) error {
	w.log.add(job.ID)
	panic("strict: " + badText)
}

type healthyWorker struct {
	river.WorkerDefaults[healthyArgs]
	log *runLog
}

func (w *healthyWorker) Work(_ context.Context, job *river.Job[healthyArgs]) error {
	w.log.add(job.ID)
	return nil
}

func probeKind[T river.JobArgs](name string, w river.Worker[T]) jobs.Kind {
	return jobs.Kind{
		Name: name,
		Parse: func(raw []byte) (river.JobArgs, error) {
			var a T
			return a, json.Unmarshal(raw, &a)
		},
		AddWorker: func(workers *river.Workers, _ jobs.WorkerDeps) error {
			return river.AddWorkerSafely(workers, w)
		},
	}
}

// jobOutcome is what a finished job left in river_job and in the
// dead-letter queue.
type jobOutcome struct {
	State        string
	Attempt      int
	Errors       []string // river_job.errors[*].error, oldest first
	DLQClass     string   // "" when no dead-letter row
	DLQReason    string
	HistoryError []string // metadata.output.attempts[*].error
}

// Errors, cancel reasons and panic values holding NUL and invalid UTF-8, of
// every job kind and on every path (retry, last attempt, cancel, the job's
// own JobCancel, panic retried, panic cancelled, snooze, a job lost until
// its rescue limit, an http_request whose upstream answers 500 with such a
// body), worked by one pod next to healthy jobs: every healthy job
// completes exactly once, every bad one ends as the decision matrix says,
// with its texts stored as U+FFFD and bounded, and nothing stays running.
// Before texts were made storable, River's completer failed on the first
// such error (SQLSTATE 22P05) and every job of the pod stayed running.
func TestUnstorableTextsDoNotWedgeThePod(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := t.Context()
	runCtx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("bad\x00byte \xff\xfe here"))
	}))
	t.Cleanup(upstream.Close)

	log := &runLog{runs: map[int64]int{}}
	reg := &jobs.Registry{}
	reg.Register(jobs.HTTPRequestKind())
	reg.Register(probeKind[textProbeArgs]("text_probe", &textProbeWorker{log: log}))
	reg.Register(probeKind[strictProbeArgs]("text_probe_strict", &strictProbeWorker{log: log}))
	reg.Register(probeKind[healthyArgs]("healthy_probe", &healthyWorker{log: log}))
	fast := retrypolicy.Policy{InitialDelay: 20 * time.Millisecond, MinDelay: 10 * time.Millisecond, Jitter: retrypolicy.JitterNone}
	strict := fast
	strict.Rules = map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassPanic: {Retry: false}}

	// The jobs, bad ones spread among the healthy ones so they share the
	// completer's batches.
	inserter, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
		Middleware: []rivertype.Middleware{reg.InsertMiddleware()},
	})
	require.NoError(t, err)
	bad := []struct {
		name        string
		args        river.JobArgs
		maxAttempts int
	}{
		{"retry", textProbeArgs{Mode: "retry"}, 3},
		{"permanent", textProbeArgs{Mode: "permanent"}, 5},
		{"cancel", textProbeArgs{Mode: "cancel"}, 5},
		{"panic", textProbeArgs{Mode: "panic"}, 2},
		{"strict panic", strictProbeArgs{}, 5},
		{"long", textProbeArgs{Mode: "long"}, 1},
		{"error method panics", textProbeArgs{Mode: "error method panics"}, 2},
		{"status method panics", textProbeArgs{Mode: "status method panics"}, 1},
		{"snooze", textProbeArgs{Mode: "snooze"}, 5},
		{"http", jobs.HTTPRequestArgs{URL: upstream.URL + "/hook"}, 2},
	}
	const healthy = 200
	var params []river.InsertManyParams
	badAt := map[string]int{} // name -> index in params
	for i := range healthy {
		params = append(params, river.InsertManyParams{Args: healthyArgs{N: i}})
		if k := i / 20; i%20 == 10 && k < len(bad) {
			badAt[bad[k].name] = len(params)
			params = append(params, river.InsertManyParams{Args: bad[k].args, InsertOpts: &river.InsertOpts{MaxAttempts: bad[k].maxAttempts}})
		}
	}
	require.Len(t, badAt, len(bad))
	inserted, err := inserter.InsertMany(ctx, params)
	require.NoError(t, err)
	ids := map[string]int64{}
	for name, i := range badAt {
		ids[name] = inserted[i].Job.ID
	}
	var healthyIDs []int64
	for _, r := range inserted {
		if r.Job.Kind == "healthy_probe" {
			healthyIDs = append(healthyIDs, r.Job.ID)
		}
	}
	require.Len(t, healthyIDs, healthy)

	// A job River's rescuer took back twice (its worker died): the third
	// attempt reaches the rescue limit and is cancelled without running.
	// The second lost attempt's error is longer than any error rebound
	// keeps.
	longLost := strings.Repeat("y", 10_000)
	var lostID int64
	require.NoError(t, db.Pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, state, attempt, max_attempts, queue, priority, errors, metadata)
		VALUES ('text_probe', '{"mode": "lost"}', 'available', 2, 5, 'default', 1,
		        ARRAY[jsonb_build_object('at', now() - interval '2 minutes', 'attempt', 1, 'error', 'Stuck job rescued by JobRescuer', 'trace', ''),
		              jsonb_build_object('at', now() - interval '1 minute', 'attempt', 2, 'error', $1::text, 'trace', '')],
		        '{"operation_key": "text_probe"}')
		RETURNING id`, longLost).Scan(&lostID))

	workers := river.NewWorkers()
	require.NoError(t, reg.AddWorkers(workers, jobs.WorkerDeps{}))
	w, err := rebound.New(rebound.Config{
		Pool:            db.Pool,
		Workers:         workers,
		Queues:          map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 20}},
		RetryPolicy:     fast,
		Kinds:           map[string]rebound.KindConfig{"text_probe_strict": {RetryPolicy: strict}},
		ShutdownTimeout: 3 * time.Second,
		Logger:          slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(runCtx) }()
	stop := sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-stopped:
			return err
		case <-time.After(20 * time.Second):
			return errors.New("worker did not stop within 20 s")
		}
	})
	t.Cleanup(func() { _ = stop() })

	// Wait until every job is finished.
	deadline := time.Now().Add(60 * time.Second)
	for {
		var unfinished int
		var states string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT coalesce(sum(n) FILTER (WHERE state NOT IN ('completed', 'discarded', 'cancelled')), 0),
				coalesce(string_agg(state || '=' || n, ', ' ORDER BY state), '')
			FROM (SELECT state::text, count(*) AS n FROM river_job GROUP BY state) s`).Scan(&unfinished, &states))
		if unfinished == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs not finished after 60 s: %s", states)
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.NoError(t, stop())

	// Every healthy job completed, exactly once.
	var completed int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'healthy_probe' AND state = 'completed' AND attempt = 1`).Scan(&completed))
	require.Equal(t, healthy, completed)
	log.mu.Lock()
	for _, id := range healthyIDs {
		require.Equal(t, 1, log.runs[id], "healthy job %d", id)
	}
	log.mu.Unlock()

	outcome := func(id int64) jobOutcome {
		t.Helper()
		var o jobOutcome
		var errs, history []byte
		var class, reason *string
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT j.state::text, j.attempt,
				coalesce((SELECT jsonb_agg(e->'error') FROM unnest(j.errors) e), '[]'),
				coalesce(jsonb_path_query_array(j.metadata, '$.output.attempts[*].error'), '[]'),
				d.failure_class, d.failure_reason
			FROM river_job j LEFT JOIN job_dead_letter_queue d ON d.river_job_id = j.id
			WHERE j.id = $1`, id).Scan(&o.State, &o.Attempt, &errs, &history, &class, &reason))
		require.NoError(t, json.Unmarshal(errs, &o.Errors))
		require.NoError(t, json.Unmarshal(history, &o.HistoryError))
		if class != nil {
			o.DLQClass, o.DLQReason = *class, *reason
		}
		return o
	}
	hookURL := upstream.URL + "/hook"
	httpErr := "POST " + hookURL + ": HTTP 500 Internal Server Error: bad\uFFFDbyte \uFFFD\uFFFD here"
	longErr := strings.Repeat("x", 4096-len("…")) + "…"
	tests := []struct {
		name string
		id   int64
		want jobOutcome
		runs int
	}{
		{"retry", ids["retry"], jobOutcome{
			State: "discarded", Attempt: 3,
			Errors:       []string{"retry: " + storedBadText, "retry: " + storedBadText, "retry: " + storedBadText},
			HistoryError: []string{"retry: " + storedBadText, "retry: " + storedBadText, "retry: " + storedBadText},
			DLQClass:     "unknown", DLQReason: "retry: " + storedBadText,
		}, 3},
		{"permanent", ids["permanent"], jobOutcome{
			State: "cancelled", Attempt: 1,
			Errors:       []string{"JobCancelError: permanent: " + storedBadText},
			HistoryError: []string{"permanent: " + storedBadText},
			DLQClass:     "bad_request", DLQReason: "permanent: " + storedBadText,
		}, 1},
		{"cancel", ids["cancel"], jobOutcome{
			State: "cancelled", Attempt: 1,
			Errors:       []string{"JobCancelError: cancel: " + storedBadText},
			HistoryError: []string{"JobCancelError: cancel: " + storedBadText},
			DLQClass:     "unknown", DLQReason: "cancel: " + storedBadText,
		}, 1},
		{"panic", ids["panic"], jobOutcome{
			State: "discarded", Attempt: 2,
			Errors:       []string{"panic: " + storedBadText, "panic: " + storedBadText},
			HistoryError: []string{"panic: " + storedBadText, "panic: " + storedBadText},
			DLQClass:     "panic", DLQReason: "panic: " + storedBadText,
		}, 2},
		{"strict panic", ids["strict panic"], jobOutcome{
			State: "cancelled", Attempt: 1,
			Errors:       []string{"JobCancelError: panic: strict: " + storedBadText},
			HistoryError: []string{"strict: " + storedBadText},
			DLQClass:     "panic", DLQReason: "panic: strict: " + storedBadText,
		}, 1},
		{"long", ids["long"], jobOutcome{
			State: "discarded", Attempt: 1,
			Errors:       []string{longErr},
			HistoryError: []string{longErr},
			DLQClass:     "unknown", DLQReason: longErr,
		}, 1},
		// A panic in the job's error's own methods is a panic of the
		// attempt: recorded with class panic, its text storable. Before,
		// River stored the NUL (and wedged the pod) or discarded the job
		// with no history entry.
		{"error method panics", ids["error method panics"], jobOutcome{
			State: "discarded", Attempt: 2,
			Errors:       []string{"Error() panicked: " + storedBadText, "Error() panicked: " + storedBadText},
			HistoryError: []string{"Error() panicked: " + storedBadText, "Error() panicked: " + storedBadText},
			DLQClass:     "panic", DLQReason: "Error() panicked: " + storedBadText,
		}, 2},
		{"status method panics", ids["status method panics"], jobOutcome{
			State: "discarded", Attempt: 1,
			Errors:       []string{"StatusCode() panicked"},
			HistoryError: []string{"StatusCode() panicked"},
			DLQClass:     "panic", DLQReason: "StatusCode() panicked",
		}, 1},
		{"snooze", ids["snooze"], jobOutcome{State: "completed", Attempt: 1, Errors: []string{}, HistoryError: []string{}}, 2},
		{"http", ids["http"], jobOutcome{
			State: "discarded", Attempt: 2,
			Errors:       []string{httpErr, httpErr},
			HistoryError: []string{httpErr, httpErr},
			DLQClass:     "server_error", DLQReason: httpErr,
		}, 0},
		{"lost", lostID, jobOutcome{
			State: "cancelled", Attempt: 3,
			Errors: []string{"Stuck job rescued by JobRescuer", longLost,
				"JobCancelError: retrypolicy: rescue limit reached: 2 lost attempts [1 2] (rescue_limit 2); the worker was not run"},
			HistoryError: []string{"Stuck job rescued by JobRescuer", strings.Repeat("y", 4096-len("…")) + "…",
				"retrypolicy: rescue limit reached: 2 lost attempts [1 2] (rescue_limit 2); the worker was not run"},
			DLQClass:  "lost",
			DLQReason: "retrypolicy: rescue limit reached: 2 lost attempts [1 2] (rescue_limit 2); the worker was not run",
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, outcome(tt.id))
			log.mu.Lock()
			defer log.mu.Unlock()
			require.Equal(t, tt.runs, log.runs[tt.id])
		})
	}

	// The job's RecordResult was refused with a message naming the field;
	// the snooze went through.
	require.Equal(t, []string{`retrypolicy: RecordResult: result.note: contains a NUL character (\u0000), which PostgreSQL cannot store`}, log.recordErrors)

	// The upstream's circuit breaker recorded the same text.
	var lastError string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT last_error FROM circuit_breaker_state WHERE breaker_key = $1`,
		strings.TrimPrefix(upstream.URL, "http://")).Scan(&lastError))
	require.Equal(t, httpErr, lastError)
}
