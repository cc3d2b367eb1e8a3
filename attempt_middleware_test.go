package rebound_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
)

// outcomeArgs is a job that ends its attempt as Do says; its operation key
// is "outcome:" + Do, so each outcome has a breaker of its own.
type outcomeArgs struct {
	Do string `json:"do"`
}

func (outcomeArgs) Kind() string { return "test_outcome" }

func (a outcomeArgs) OperationKey() string { return "outcome:" + a.Do }

type outcomeWorker struct {
	river.WorkerDefaults[outcomeArgs]
}

func (outcomeWorker) Work(_ context.Context, job *river.Job[outcomeArgs]) error {
	switch job.Args.Do {
	case "fail":
		return errors.New("upstream refused")
	case "panic":
		panic("worker panicked")
	case "snooze":
		return river.JobSnooze(time.Hour)
	case "cancel":
		return river.JobCancel(errors.New("no point retrying"))
	}
	return nil
}

// TestAttemptOutcomesCountedOnce works one job to each end an attempt can
// have (success, an error on the last attempt, a panic on the last
// attempt, the job's own snooze, a cancel, and parked by an open circuit
// breaker without running) through a pod, whose metrics, job counts,
// breaker gate and attempt recorder run as one middleware layer, and checks
// that each counter counted each attempt exactly once, as the separate
// middlewares did.
func TestAttemptOutcomesCountedOnce(t *testing.T) {
	t.Parallel()
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &outcomeWorker{})
		c.Monitoring.FlushInterval = 100 * time.Millisecond
		c.Monitoring.AlertsDisabled = true
	})
	ctx := context.Background()
	_, err := b.pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: "outcome:parked", For: time.Hour, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.pod.Breaker().State("outcome:parked") == breaker.StateOpen }, 10*time.Second, 20*time.Millisecond)

	one := &river.InsertOpts{MaxAttempts: 1}
	var params []river.InsertManyParams
	for _, do := range []string{"ok", "fail", "panic", "snooze", "cancel", "parked"} {
		params = append(params, river.InsertManyParams{Args: outcomeArgs{Do: do}, InsertOpts: one})
	}
	_, err = b.pod.InsertMany(ctx, params)
	require.NoError(t, err)

	// ok completes; fail, panic and cancel end in the dead-letter queue;
	// snooze and parked wait an hour.
	waitFor(t, 30*time.Second, "every job to finish or wait", func() bool {
		return b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'test_outcome' AND (finalized_at IS NOT NULL OR state = 'scheduled')") == 6 &&
			b.count(t, "SELECT count(*) FROM job_dead_letter_queue") == 3
	})
	want := map[string]float64{"completed": 1, "discarded": 1, "panicked": 1, "snoozed": 2, "cancelled": 1, "errored": 0}
	for outcome, n := range want {
		v, _ := b.metric(t, "rebound_job_attempts_total", labels("kind", "test_outcome", "queue", "default", "outcome", outcome))
		require.Equal(t, n, v, "rebound_job_attempts_total outcome %s", outcome)
	}
	type counts struct{ attempts, completed, deadLettered, shortCircuited int64 }
	var got counts
	waitFor(t, 10*time.Second, "the job counts flushed", func() bool {
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(attempts), 0), coalesce(sum(completed), 0),
			coalesce(sum(dead_lettered), 0), coalesce(sum(short_circuited), 0) FROM job_retry_metrics WHERE kind = 'test_outcome'`).
			Scan(&got.attempts, &got.completed, &got.deadLettered, &got.shortCircuited))
		return got.shortCircuited == 1 && got.attempts == 4
	})
	time.Sleep(300 * time.Millisecond) // three more flushes: nothing else arrives
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT coalesce(sum(attempts), 0), coalesce(sum(completed), 0),
		coalesce(sum(dead_lettered), 0), coalesce(sum(short_circuited), 0) FROM job_retry_metrics WHERE kind = 'test_outcome'`).
		Scan(&got.attempts, &got.completed, &got.deadLettered, &got.shortCircuited))
	// attempts: ok, fail, panic, cancel (a snooze is no attempt);
	// dead-lettered: fail, panic and cancel; short-circuited: parked.
	require.Equal(t, counts{attempts: 4, completed: 1, deadLettered: 3, shortCircuited: 1}, got)
}

// TestPanickingProbeFreesItsSlot: a half-open breaker's only probe slot is
// taken by a job that panics; the pod's attempt middleware frees the slot
// at once (not after the hour-long probe timeout), so the next job probes,
// completes and closes the breaker.
func TestPanickingProbeFreesItsSlot(t *testing.T) {
	t.Parallel()
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &outcomeWorker{})
		c.Monitoring.AlertsDisabled = true
		c.Breaker.Settings.HalfOpenMaxProbes = 1
		c.Breaker.Settings.SuccessThreshold = 1
		c.Breaker.Settings.ProbeTimeout = time.Hour
	})
	ctx := context.Background()
	const key = "outcome:probe"
	_, err := b.pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: key, For: 300 * time.Millisecond, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.pod.Breaker().State(key) == breaker.StateOpen }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(time.Second) // past the open period: the next job is the probe

	// Both jobs carry the key; the first panics while holding the slot.
	panicked, err := b.pod.Insert(ctx, probeArgs{Do: "panic"}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)
	b.waitForState(t, panicked.Job.ID, "discarded")
	ok, err := b.pod.Insert(ctx, probeArgs{Do: "ok"}, nil)
	require.NoError(t, err)
	b.waitForState(t, ok.Job.ID, "completed")
	require.Equal(t, breaker.StateClosed, b.pod.Breaker().State(key))
}

// probeArgs is outcomeArgs with one operation key for every Do.
type probeArgs struct {
	Do string `json:"do"`
}

func (probeArgs) Kind() string { return "test_outcome" }

func (probeArgs) OperationKey() string { return "outcome:probe" }
