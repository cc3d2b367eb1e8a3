package retrypolicy_test

// Pins of the River v0.51.2 behaviour this package's design relies on
// (docs/architecture.md, "Facts about River v0.51.2 the design rests on").
// None of it is a documented contract: if a River upgrade changes it, these
// tests fail and the recorder must be revisited.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

type probeArgs struct {
	Mode string `json:"mode"`
}

func (probeArgs) Kind() string { return "rp_probe" }

type probeEvent struct {
	name string
	job  *rivertype.JobRow
	err  error
	val  any
}

// probeLog records what River called, per job ID, in order.
type probeLog struct {
	mu     sync.Mutex
	events map[int64][]probeEvent
}

func (l *probeLog) add(jobID int64, e probeEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.events == nil {
		l.events = map[int64][]probeEvent{}
	}
	l.events[jobID] = append(l.events[jobID], e)
}

func (l *probeLog) of(jobID int64) []probeEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]probeEvent(nil), l.events[jobID]...)
}

func (l *probeLog) names(jobID int64) []string {
	var names []string
	for _, e := range l.of(jobID) {
		names = append(names, e.name)
	}
	return names
}

var errProbe = errors.New("probe failed")

type probePanicValue struct{ msg string }

var probePanic = &probePanicValue{msg: "probe panic"}

type probeWorker struct {
	river.WorkerDefaults[probeArgs]
	log *probeLog
}

func (w *probeWorker) Work(ctx context.Context, job *river.Job[probeArgs]) error {
	w.log.add(job.ID, probeEvent{name: "work", job: job.JobRow})
	switch job.Args.Mode {
	case "fail":
		return errProbe
	case "cancel":
		return river.JobCancel(errors.New("probe cancelled"))
	case "snooze":
		return river.JobSnooze(time.Hour)
	case "output_then_fail":
		if err := river.RecordOutput(ctx, map[string]string{"kept": "yes"}); err != nil {
			return err
		}
		return errProbe
	case "panic":
		panic(probePanic)
	}
	return nil
}

// probeMiddleware logs after doInner, recovers-records-re-panics, and for
// the mw_* modes returns JobCancel / JobSnooze without calling doInner.
func probeMiddleware(log *probeLog) rivertype.Middleware {
	return river.WorkerMiddlewareFunc(func(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
		var args probeArgs
		if err := json.Unmarshal(job.EncodedArgs, &args); err != nil {
			return err
		}
		switch args.Mode {
		case "mw_cancel":
			return river.JobCancel(errors.New("probe cancelled"))
		case "mw_snooze":
			return river.JobSnooze(time.Hour)
		}
		defer func() {
			if v := recover(); v != nil {
				log.add(job.ID, probeEvent{name: "middleware_recovered", job: job, val: v})
				panic(v)
			}
		}()
		err := doInner(ctx)
		log.add(job.ID, probeEvent{name: "middleware", job: job, err: err})
		return err
	})
}

type probeErrorHandler struct{ log *probeLog }

func (h *probeErrorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.log.add(job.ID, probeEvent{name: "handle_error", job: job, err: err})
	return nil
}

func (h *probeErrorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, panicVal any, trace string) *river.ErrorHandlerResult {
	h.log.add(job.ID, probeEvent{name: "handle_panic", job: job, val: panicVal, err: river.RecordOutput(ctx, "from HandlePanic")})
	h.log.add(job.ID, probeEvent{name: "trace:" + trace, job: job})
	return nil
}

type probeRetryPolicy struct{ log *probeLog }

func (p *probeRetryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	p.log.add(job.ID, probeEvent{name: "next_retry", job: job})
	return time.Now().Add(time.Hour)
}

func newProbeClient(t *testing.T) (*riverBundle, *probeLog) {
	t.Helper()
	log := &probeLog{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &probeWorker{log: log})
	b := newRiverClient(t, &river.Config{
		Workers:      workers,
		Middleware:   []rivertype.Middleware{probeMiddleware(log)},
		ErrorHandler: &probeErrorHandler{log: log},
		RetryPolicy:  &probeRetryPolicy{log: log},
	})
	b.start(t)
	return b, log
}

func TestRiverFactCallOrder(t *testing.T) {
	t.Parallel()
	b, log := newProbeClient(t)

	retried, err := b.client.Insert(t.Context(), probeArgs{Mode: "fail"}, &river.InsertOpts{MaxAttempts: 3})
	require.NoError(t, err)
	last, err := b.client.Insert(t.Context(), probeArgs{Mode: "fail"}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)

	b.waitForState(t, retried.Job.ID, 10*time.Second, rivertype.JobStateRetryable)
	b.waitForState(t, last.Job.ID, 10*time.Second, rivertype.JobStateDiscarded)

	// Work -> middleware (after doInner) -> ErrorHandler.HandleError ->
	// ClientRetryPolicy.NextRetry, all on the same *JobRow, whose Errors
	// do not hold the attempt that just failed yet.
	require.Equal(t, []string{"work", "middleware", "handle_error", "next_retry"}, log.names(retried.Job.ID))
	events := log.of(retried.Job.ID)
	for _, e := range events[1:] {
		require.Same(t, events[0].job, e.job, e.name)
	}
	require.Empty(t, events[3].job.Errors)
	require.Same(t, errProbe, events[1].err)

	// No NextRetry on the last attempt.
	require.Equal(t, []string{"work", "middleware", "handle_error"}, log.names(last.Job.ID))
}

func TestRiverFactMiddlewareCancelAndSnoozeWithoutDoInner(t *testing.T) {
	t.Parallel()
	b, log := newProbeClient(t)

	insert := func(mode string) int64 {
		res, err := b.client.Insert(t.Context(), probeArgs{Mode: mode}, &river.InsertOpts{MaxAttempts: 5})
		require.NoError(t, err)
		return res.Job.ID
	}
	workCancel, mwCancel := insert("cancel"), insert("mw_cancel")
	workSnooze, mwSnooze := insert("snooze"), insert("mw_snooze")

	cancelled := map[string]*rivertype.JobRow{
		"work":       b.waitForState(t, workCancel, 10*time.Second, rivertype.JobStateCancelled),
		"middleware": b.waitForState(t, mwCancel, 10*time.Second, rivertype.JobStateCancelled),
	}
	for who, row := range cancelled {
		require.Equal(t, 1, row.Attempt, who)
		require.Len(t, row.Errors, 1, who)
		require.Equal(t, 1, row.Errors[0].Attempt, who)
		require.Equal(t, "JobCancelError: probe cancelled", row.Errors[0].Error, who)
		require.NotNil(t, row.FinalizedAt, who)
	}
	require.Equal(t, []string{"work", "middleware"}, log.names(workCancel)) // no HandleError, no NextRetry
	require.Empty(t, log.names(mwCancel))                                   // Work never ran

	snoozed := map[string]*rivertype.JobRow{
		"work":       b.waitForState(t, workSnooze, 10*time.Second, rivertype.JobStateScheduled),
		"middleware": b.waitForState(t, mwSnooze, 10*time.Second, rivertype.JobStateScheduled),
	}
	for who, row := range snoozed {
		require.Equal(t, 0, row.Attempt, who) // no attempt used
		require.Empty(t, row.Errors, who)
		var meta struct {
			Snoozes int `json:"snoozes"`
		}
		require.NoError(t, json.Unmarshal(row.Metadata, &meta))
		require.Equal(t, 1, meta.Snoozes, who)
		require.WithinDuration(t, time.Now().Add(time.Hour), row.ScheduledAt, time.Minute, who)
	}
	require.Equal(t, []string{"work", "middleware"}, log.names(workSnooze))
	require.Empty(t, log.names(mwSnooze))
}

func TestRiverFactRecordOutputSurvivesAFailedAttempt(t *testing.T) {
	t.Parallel()
	b, _ := newProbeClient(t)

	res, err := b.client.Insert(t.Context(), probeArgs{Mode: "output_then_fail"}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, rivertype.JobStateDiscarded)
	var meta struct {
		Output map[string]string `json:"output"`
	}
	require.NoError(t, json.Unmarshal(row.Metadata, &meta))
	require.Equal(t, map[string]string{"kept": "yes"}, meta.Output)
	require.Equal(t, "probe failed", row.Errors[0].Error)
}

func TestRiverFactPanicsUnwindThroughMiddleware(t *testing.T) {
	t.Parallel()
	b, log := newProbeClient(t)

	res, err := b.client.Insert(t.Context(), probeArgs{Mode: "panic"}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)
	row := b.waitForState(t, res.Job.ID, 10*time.Second, rivertype.JobStateDiscarded)

	events := log.of(res.Job.ID)
	require.Len(t, events, 4)
	require.Equal(t, "work", events[0].name)
	require.Equal(t, "middleware_recovered", events[1].name)
	require.Same(t, probePanic, events[1].val)
	require.Equal(t, "handle_panic", events[2].name)
	require.Same(t, probePanic, events[2].val) // the re-panicked value reaches HandlePanic
	require.Error(t, events[2].err)            // RecordOutput cannot be used from HandlePanic

	// River's trace, taken after the middleware re-panicked, still shows
	// where the worker panicked.
	trace := strings.TrimPrefix(events[3].name, "trace:")
	require.Contains(t, trace, "probeWorker).Work")
	require.Len(t, row.Errors, 1)
	require.Equal(t, "&{probe panic}", row.Errors[0].Error)
	require.Contains(t, row.Errors[0].Trace, "probeWorker).Work")
}
