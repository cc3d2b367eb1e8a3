package monitor_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type otherArgs struct{}

func (otherArgs) Kind() string { return "other" }

func TestQueueCollectorReportsOpenStates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)

	for range 3 {
		_, err := client.Insert(ctx, noopArgs{}, nil)
		require.NoError(t, err)
	}
	_, err = client.Insert(ctx, noopArgs{}, &river.InsertOpts{ScheduledAt: time.Now().Add(time.Hour)})
	require.NoError(t, err)
	_, err = client.Insert(ctx, otherArgs{}, &river.InsertOpts{Queue: "mail"})
	require.NoError(t, err)
	// A completed job is not counted.
	res, err := client.Insert(ctx, otherArgs{}, &river.InsertOpts{Queue: "mail"})
	require.NoError(t, err)
	_, err = pool.Exec(ctx, "UPDATE river_job SET state = 'completed', finalized_at = now() WHERE id = $1", res.Job.ID)
	require.NoError(t, err)
	// The oldest available job of "mail" has been due for 90 s.
	_, err = pool.Exec(ctx, "UPDATE river_job SET scheduled_at = now() - interval '90 seconds' WHERE queue = 'mail' AND state = 'available'")
	require.NoError(t, err)

	c := monitor.NewQueueCollector(monitor.NewSnapshots(pool), &monitor.QueueCollectorOpts{
		MaxAge: time.Minute, Queues: []string{"default", "idle"}, Kinds: []string{"noop"},
	})
	expected := `
# HELP rebound_queue_jobs Jobs not yet finished, by queue, job kind and River state (available, pending, retryable, running, scheduled); shared snapshot, refreshed at most every 10 s.
# TYPE rebound_queue_jobs gauge
rebound_queue_jobs{kind="noop",queue="default",state="available"} 3
rebound_queue_jobs{kind="noop",queue="default",state="pending"} 0
rebound_queue_jobs{kind="noop",queue="default",state="retryable"} 0
rebound_queue_jobs{kind="noop",queue="default",state="running"} 0
rebound_queue_jobs{kind="noop",queue="default",state="scheduled"} 1
rebound_queue_jobs{kind="noop",queue="idle",state="available"} 0
rebound_queue_jobs{kind="noop",queue="idle",state="pending"} 0
rebound_queue_jobs{kind="noop",queue="idle",state="retryable"} 0
rebound_queue_jobs{kind="noop",queue="idle",state="running"} 0
rebound_queue_jobs{kind="noop",queue="idle",state="scheduled"} 0
rebound_queue_jobs{kind="other",queue="mail",state="available"} 1
rebound_queue_jobs{kind="other",queue="mail",state="pending"} 0
rebound_queue_jobs{kind="other",queue="mail",state="retryable"} 0
rebound_queue_jobs{kind="other",queue="mail",state="running"} 0
rebound_queue_jobs{kind="other",queue="mail",state="scheduled"} 0
`
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(expected), "rebound_queue_jobs"))

	// The oldest-available age is measured by the database's clock.
	var seconds float64
	for _, m := range collect(t, c) {
		if m.name == "rebound_queue_oldest_available_seconds" && m.labels["queue"] == "mail" {
			seconds = m.value
		}
	}
	require.GreaterOrEqual(t, seconds, 90.0)
	require.Less(t, seconds, 120.0)

	problems, err := testutil.CollectAndLint(c)
	require.NoError(t, err)
	require.Empty(t, problems)
}

// Several pods asking for the same snapshot at once compute it once; within
// the maximum age nobody computes it again.
func TestSnapshotsComputeOncePerPeriodAcrossPods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)

	var computed atomic.Int32
	compute := func(ctx context.Context, tx pgx.Tx) (any, error) {
		computed.Add(1)
		time.Sleep(50 * time.Millisecond)
		return map[string]int{"n": 7}, nil
	}
	var wg sync.WaitGroup
	for range 6 {
		pod := monitor.NewSnapshots(pool)
		wg.Go(func() {
			var out map[string]int
			require.NoError(t, pod.Get(ctx, "test", time.Minute, compute, &out))
			require.Equal(t, 7, out["n"])
		})
	}
	wg.Wait()
	// The very first read may be computed by more than one pod (nothing is
	// stored yet), but only one stores it; after that nobody recomputes.
	first := computed.Load()
	require.GreaterOrEqual(t, first, int32(1))
	var stored int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM rebound_metric_snapshot WHERE name = 'test'").Scan(&stored))
	require.Equal(t, 1, stored, "one pod stored it")
	for range 5 {
		var out map[string]int
		require.NoError(t, monitor.NewSnapshots(pool).Get(ctx, "test", time.Minute, compute, &out))
		require.Equal(t, 7, out["n"])
	}
	require.Equal(t, first, computed.Load())

	// Once stale, the next reader recomputes.
	_, err := pool.Exec(ctx, "UPDATE rebound_metric_snapshot SET taken_at = now() - interval '2 minutes'")
	require.NoError(t, err)
	var out map[string]int
	require.NoError(t, monitor.NewSnapshots(pool).Get(ctx, "test", time.Minute, compute, &out))
	require.Equal(t, first+1, computed.Load())
}

func TestAttemptOutcome(t *testing.T) {
	t.Parallel()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	stop := errString("stop initiated")
	remote, cancelRemote := context.WithCancelCause(context.Background())
	cancelRemote(rivertype.ErrJobCancelledRemotely)
	stopped, cancelStop := context.WithCancelCause(context.Background())
	cancelStop(stop)
	tests := []struct {
		name    string
		ctx     context.Context
		attempt int
		err     error
		want    string
	}{
		{"success", context.Background(), 1, nil, monitor.OutcomeCompleted},
		{"error with attempts left", context.Background(), 1, errTest, monitor.OutcomeErrored},
		{"error on last attempt", context.Background(), 3, errTest, monitor.OutcomeDiscarded},
		{"snooze", context.Background(), 3, river.JobSnooze(time.Second), monitor.OutcomeSnoozed},
		{"cancel", context.Background(), 1, river.JobCancel(errTest), monitor.OutcomeCancelled},
		{"shutdown", cancelled, 3, context.Canceled, monitor.OutcomeInterrupted},
		{"shutdown seen through net/http", stopped, 3, fmt.Errorf("POST x: %w", stop), monitor.OutcomeInterrupted},
		{"cancelled by an operator", remote, 1, context.Canceled, monitor.OutcomeCancelled},
		{"canceled error, live context", context.Background(), 1, context.Canceled, monitor.OutcomeErrored},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job := &rivertype.JobRow{Attempt: tt.attempt, MaxAttempts: 3}
			require.Equal(t, tt.want, monitor.AttemptOutcome(tt.ctx, job, tt.err))
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

const errTest = errString("boom")

type metric struct {
	name   string
	labels map[string]string
	value  float64
}

func collect(t *testing.T, c prometheus.Collector) []metric {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	families, err := reg.Gather()
	require.NoError(t, err)
	var out []metric
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, metric{name: f.GetName(), labels: labels, value: v})
		}
	}
	return out
}
