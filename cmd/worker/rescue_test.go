package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// River's fixed intervals (v0.51.2, internal/maintenance): the leader's
// rescuer runs every 30 s, its scheduler (retryable -> available) every 5 s.
const (
	rescuerInterval   = 30 * time.Second
	schedulerInterval = 5 * time.Second
)

// fastRescue shortens what the rescue rule waits for, so a test need not
// wait the defaults' 75 s: a job is taken back once
// max(--rescue-stuck-jobs-after, its kind's timeout) has passed since its
// attempt started; http_request's timeout is timeout_seconds + --rescue-grace.
var fastRescue = []string{"--job-timeout", "1s", "--rescue-grace", "1s", "--rescue-stuck-jobs-after", "2s"}

// waitLeader waits until the pod named id leads (it runs River's rescuer).
func waitLeader(t *testing.T, db *dbtest.Database, id string) {
	t.Helper()
	waitFor(t, 30*time.Second, func() bool {
		var n int
		_ = db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_leader WHERE leader_id = $1", id).Scan(&n)
		return n == 1
	})
}

// A pod SIGKILLed in the middle of a job: the leader's rescuer takes the
// job back once the rule allows (here its kind's timeout, 3 s + 1 s grace,
// which is longer than --rescue-stuck-jobs-after), River makes it
// available after the delay of class lost, and another pod completes it —
// within rule + one rescuer interval + the retry delay + one scheduler
// interval of the first attempt's start, the bound the defaults turn into
// "under 2 minutes".
func TestLostJobComesBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	var (
		mu    sync.Mutex
		calls = map[string]int{} // path -> calls
	)
	started := make(chan struct{}, 2)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		n := calls[r.URL.Path]
		mu.Unlock()
		if n == 1 {
			started <- struct{}{}
			<-r.Context().Done() // held until its pod dies
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()

	// The leader works another queue, so the job goes to pod-a; it stays
	// up, as a cluster's leader would.
	leader := proctest.StartWorker(t, db.URL, append([]string{"--id", "leader", "--queues", "other=1"}, fastRescue...)...)
	waitLeader(t, db, "leader")
	podA := proctest.StartWorker(t, db.URL, append([]string{"--id", "pod-a"}, fastRescue...)...)

	// Two jobs: one that comes back, and one lost on its last attempt,
	// which the rescuer discards to the dead-letter queue.
	const timeoutSeconds = 3
	env := []string{"DATABASE_URL=" + db.URL}
	res := proctest.Run(t, env, "enqueue", "http_request", "--json",
		"--args", fmt.Sprintf(`{"url": %q, "timeout_seconds": %d}`, upstream.URL+"/back", timeoutSeconds))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = proctest.Run(t, env, "enqueue", "http_request", "--max-attempts", "1",
		"--args", fmt.Sprintf(`{"url": %q, "timeout_seconds": %d}`, upstream.URL+"/last", timeoutSeconds))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	for range 2 {
		select {
		case <-started:
		case <-time.After(30 * time.Second):
			t.Fatalf("the jobs never reached the upstream; pod-a's output:\n%s", podA.Logs())
		}
	}
	var firstAttempt time.Time
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT attempted_at FROM river_job WHERE state = 'running' AND attempt = 1 AND max_attempts > 1").Scan(&firstAttempt))
	podA.Kill()

	// No pod works the queue now: the job waits as available once River
	// has made it so. Watch for that (database clock), then start pod-b.
	// River's scheduler marks a job available up to 5 s before its
	// scheduled_at, and fetches wait for scheduled_at: the job can be
	// worked from the later of the two.
	var availableAt, scheduledAt time.Time
	waitFor(t, 90*time.Second, func() bool {
		err := db.Pool.QueryRow(ctx, "SELECT now(), scheduled_at FROM river_job WHERE max_attempts > 1 AND state = 'available'").Scan(&availableAt, &scheduledAt)
		return err == nil
	})
	workableAt := availableAt
	if scheduledAt.After(workableAt) {
		workableAt = scheduledAt
	}
	proctest.StartWorker(t, db.URL, append([]string{"--id", "pod-b"}, fastRescue...)...)
	waitFor(t, 60*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state IN ('completed', 'discarded')") == 2
	})
	var (
		rescuedAt, completedAt time.Time
		rescueError            string
		attemptedBy            []string
		attempt                int
	)
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT (errors[1]->>'at')::timestamptz, errors[1]->>'error',
			finalized_at, attempted_by, attempt FROM river_job WHERE max_attempts > 1`).
		Scan(&rescuedAt, &rescueError, &completedAt, &attemptedBy, &attempt))
	require.Equal(t, "Stuck job rescued by JobRescuer", rescueError)
	require.Equal(t, []string{"pod-a", "pod-b"}, attemptedBy)
	require.Equal(t, 2, attempt)
	mu.Lock()
	require.Equal(t, map[string]int{"/back": 2, "/last": 1}, calls)
	mu.Unlock()

	rule := max(2*time.Second, timeoutSeconds*time.Second+time.Second)
	lostDelayMax := 2400 * time.Millisecond                                                   // class lost, first loss: 2 s +-20%
	bound := rule + rescuerInterval + lostDelayMax + schedulerInterval + 100*time.Millisecond /* this test's poll */
	rescued, available, workable, completed := rescuedAt.Sub(firstAttempt), availableAt.Sub(firstAttempt), workableAt.Sub(firstAttempt), completedAt.Sub(firstAttempt)
	t.Logf("after the first attempt's start: rescued %s, marked available %s, workable (retry time reached) %s, completed by pod-b %s (started once available); rule %s, bound %s",
		rescued.Round(time.Millisecond), available.Round(time.Millisecond), workable.Round(time.Millisecond), completed.Round(time.Millisecond), rule, bound)
	require.GreaterOrEqual(t, rescued, rule, "never before the rule allows")
	require.GreaterOrEqual(t, scheduledAt.Sub(rescuedAt), 1600*time.Millisecond, "the retry waits the delay of class lost")
	require.Less(t, workable, bound)
	var history string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT metadata->'output'->'attempts'->0->>'class' FROM river_job WHERE max_attempts > 1").Scan(&history))
	require.Equal(t, "lost", history)

	// The job lost on its last attempt: discarded by the leader's rescuer,
	// dead-lettered as lost, and logged once, by the leader.
	var lastID int64
	var class string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT river_job_id, failure_class FROM job_dead_letter_queue").Scan(&lastID, &class))
	require.Equal(t, "lost", class)
	lines := logLines(t, leader.Logs(), "job dead-lettered")
	require.Len(t, lines, 1, leader.Logs())
	require.Equal(t, float64(lastID), lines[0]["job_id"])
	require.Equal(t, "lost", lines[0]["class"])
	require.Equal(t, strings.TrimPrefix(upstream.URL, "http://"), lines[0]["operation_key"])
	require.Equal(t, "lost on its last attempt: its pod died or hung, and River's rescuer took it back", lines[0]["reason"])
}

// A job still within its deadline is never rescued, even with
// --rescue-stuck-jobs-after far below its run time: its kind's timeout
// (timeout_seconds + --rescue-grace) keeps the rescuer off. The job runs
// longer than one rescuer interval past the 2 s threshold, so the leader's
// rescuer sees it running at least once.
func TestRunningJobIsNotRescued(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	const answerAfter = 33 * time.Second // > 2 s threshold + one 30 s rescuer interval
	var calls atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-time.After(answerAfter):
			w.WriteHeader(http.StatusOK)
		case <-r.Context().Done():
		}
	}))
	defer upstream.Close()
	proctest.StartWorker(t, db.URL, append([]string{"--id", "pod"}, fastRescue...)...)
	waitLeader(t, db, "pod")
	res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "http_request",
		"--args", fmt.Sprintf(`{"url": %q, "timeout_seconds": 40}`, upstream.URL))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	waitFor(t, 90*time.Second, func() bool {
		// Done, or taken back (the rescuer writes an error).
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed' OR coalesce(array_length(errors, 1), 0) > 0") == 1
	})
	var (
		state, errs string
		attempt     int
		took        time.Duration
	)
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT state::text, attempt, coalesce(errors::text, ''),
			coalesce(finalized_at - attempted_at, interval '0') FROM river_job`).Scan(&state, &attempt, &errs, &took))
	require.Equal(t, "completed", state, errs)
	require.Empty(t, errs)
	require.Equal(t, 1, attempt)
	require.Equal(t, int64(1), calls.Load())
	require.Greater(t, took, answerAfter)
	t.Logf("the job ran %s with --rescue-stuck-jobs-after 2s and was not rescued", took.Round(time.Millisecond))
}
