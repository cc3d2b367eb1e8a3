package deadletter_test

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

type blockArgs struct{}

func (blockArgs) Kind() string { return "dlq_block" }

type blockWorker struct {
	river.WorkerDefaults[blockArgs]
}

func (w *blockWorker) Work(ctx context.Context, _ *river.Job[blockArgs]) error {
	<-ctx.Done()
	return ctx.Err()
}

// A worker process SIGKILLed mid-job (max attempts 1): once River's rescuer
// has run, the job is in the DLQ exactly once with class lost and nothing is
// left running. The rescuer runs on the leader every 30 s (first pass at
// start); budget about a minute.
func TestCrashedWorkerJobIsDeadLetteredOnceAsLost(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	bin := filepath.Join(t.TempDir(), "crashworker")
	build := exec.Command("go", "build", "-o", bin, "./testdata/crashworker")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build crashworker: %s", out)

	insertOnly, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{})
	require.NoError(t, err)
	res, err := insertOnly.Insert(ctx, blockArgs{}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)

	proc := exec.Command(bin)
	proc.Env = append(proc.Environ(), "DATABASE_URL="+b.db.URL)
	var stderr strings.Builder
	proc.Stderr = &stderr
	require.NoError(t, proc.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = proc.Process.Kill()
			_ = proc.Wait()
		}
	})
	require.Eventually(t, func() bool {
		return count(t, b.pool, "SELECT count(*) FROM river_job WHERE id = $1 AND state = 'running'", res.Job.ID) == 1
	}, 20*time.Second, 20*time.Millisecond, "crashworker never ran the job; its stderr: %s", &stderr)
	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	_ = proc.Wait()
	killed = true
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))

	// A River client that becomes leader and rescues jobs running for more
	// than 2 s (its JobTimeout of 1 s is below that, as River requires).
	time.Sleep(2 * time.Second)
	workers := river.NewWorkers()
	river.AddWorker(workers, &blockWorker{})
	rescuer, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues:               map[string]river.QueueConfig{"unused_queue": {MaxWorkers: 1}},
		Workers:              workers,
		JobTimeout:           time.Second,
		RescueStuckJobsAfter: 2 * time.Second,
		Logger:               slog.New(slog.DiscardHandler),
		TestOnly:             true,
	})
	require.NoError(t, err)
	require.NoError(t, rescuer.Start(ctx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rescuer.Stop(stopCtx)
	})

	var state string
	require.Eventually(t, func() bool {
		return b.pool.QueryRow(ctx, "SELECT state::text FROM river_job WHERE id = $1", res.Job.ID).Scan(&state) == nil && state == "discarded"
	}, 75*time.Second, 100*time.Millisecond, "rescuer never discarded the job (state %s)", state)

	entries := entriesOf(t, b.pool, res.Job.ID)
	require.Len(t, entries, 1)
	e := entries[0]
	require.Equal(t, "lost", e.FailureClass)
	require.Equal(t, "Stuck job rescued by JobRescuer", e.FailureReason)
	require.Equal(t, "discarded", e.FinalState)
	require.Equal(t, 1, e.Attempt)
	require.Len(t, e.History, 1)
	require.Equal(t, "lost", e.History[0].Class)
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job WHERE state = 'running'"))

	r, err := deadletter.NewReconciler(b.pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, r.Added)
	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))
}
