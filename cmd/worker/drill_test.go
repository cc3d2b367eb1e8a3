package main

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// Failure drills: real worker and enqueue binaries, real PostgreSQL,
// synthetic jobs.

// enqueueLines inserts the NDJSON args lines as synthetic jobs.
func enqueueLines(t *testing.T, db *dbtest.Database, lines []string) {
	t.Helper()
	res := proctest.RunStdin(t, []string{"DATABASE_URL=" + db.URL}, strings.Join(lines, "\n")+"\n", "enqueue", "synthetic", "--file", "-")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
}

func repeat(n int, line string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = line
	}
	return out
}

// waitSettled waits until no job is waiting, scheduled, retryable or
// running, failing with the counts by state.
func waitSettled(t *testing.T, pool *pgxpool.Pool, timeout time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := count(t, pool, "SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')")
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			var states []string
			rows, err := pool.Query(context.Background(), "SELECT state::text || '=' || count(*) FROM river_job GROUP BY state ORDER BY 1")
			require.NoError(t, err)
			for rows.Next() {
				var s string
				require.NoError(t, rows.Scan(&s))
				states = append(states, s)
			}
			t.Fatalf("%d jobs not settled after %s (%s); worker output:\n%s", n, timeout, strings.Join(states, ", "), logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Two workers share 2,000 synthetic jobs; the leader is SIGKILLed mid-run.
// Every job ends completed or dead-lettered exactly once: the jobs the dead
// pod held come back through the surviving pod's rescuer (shortened
// through flags) and complete; the dead letters are exactly the jobs meant
// to fail, one row each; nothing stays running.
func TestDrillLeaderKilledMidRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	const healthy, doomed = 1900, 100
	lines := append(repeat(healthy, `{"sleep_ms": 40}`),
		repeat(doomed, `{"fail_attempts": 99, "fail_class": "bad_request", "fail_message": "drill: refused"}`)...)
	enqueueLines(t, db, lines)

	flags := append([]string{"--queues", "default=20"}, fastRescue...)
	leader := proctest.StartWorker(t, db.URL, append([]string{"--id", "drill-a"}, flags...)...)
	waitLeader(t, db, "drill-a")
	other := proctest.StartWorker(t, db.URL, append([]string{"--id", "drill-b"}, flags...)...)

	waitFor(t, time.Minute, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed'") >= 300
	})
	leader.Kill()
	// A completion batch the leader sent just before dying may still commit
	// on the server: count what it left running once that has settled.
	time.Sleep(time.Second)
	held := count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = 'drill-a'")
	t.Logf("the leader died holding %d running jobs", held)

	waitSettled(t, db.Pool, 3*time.Minute, other.Logs)
	require.Equal(t, healthy, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed'"))
	require.Equal(t, doomed, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'cancelled'"))
	require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'discarded'"))
	// Dead letters: exactly the doomed jobs, one row each, none for a
	// completed job.
	require.Equal(t, doomed, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, doomed, count(t, db.Pool, "SELECT count(DISTINCT river_job_id) FROM job_dead_letter_queue"))
	require.Equal(t, doomed, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_class = 'bad_request'"))
	require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue d JOIN river_job j ON j.id = d.river_job_id WHERE j.state = 'completed'"))
	if held > 0 {
		// The jobs the dead pod held came back as lost and completed on a
		// later attempt.
		require.Equal(t, held, count(t, db.Pool,
			"SELECT count(*) FROM river_job WHERE state = 'completed' AND metadata->'output'->'attempts' @> '[{\"class\": \"lost\"}]'"))
	}
	_ = ctx
}

// SIGTERM with jobs that outlive the shutdown timeout: each goes back to
// the queue once, with no attempt used, no error, no history entry, no
// breaker failure and no dead letter; a new worker then completes each at
// its first attempt.
func TestDrillSIGTERMPastShutdownTimeout(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	const n = 6
	enqueueLines(t, db, repeat(n, `{"sleep_ms": 15000, "operation_key": "drill-slow"}`))
	// 6 s: 4.8 s for the jobs to finish, then 1.2 s for the cancelled ones
	// to be handed back (the hard-stop margin, a fifth).
	worker := proctest.StartWorker(t, db.URL, "--shutdown-timeout", "6s")
	waitFor(t, 30*time.Second, func() bool {
		return count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'running'") == n
	})
	stopAt := time.Now()
	worker.Signal(syscall.SIGTERM)
	require.Equal(t, 0, worker.Wait(30*time.Second), worker.Logs())
	require.Less(t, time.Since(stopAt), 9*time.Second, "the shutdown timeout bounds the stop")

	require.Equal(t, n, count(t, db.Pool, `SELECT count(*) FROM river_job WHERE state = 'available' AND attempt = 0
		AND coalesce(array_length(errors, 1), 0) = 0 AND metadata->'output'->'attempts' IS NULL`))
	require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, 0, count(t, db.Pool, "SELECT count(*) FROM circuit_breaker_state WHERE failure_count > 0 OR window_failures > 0 OR last_failure_at IS NOT NULL OR state <> 'closed'"))

	again := proctest.StartWorker(t, db.URL)
	waitSettled(t, db.Pool, time.Minute, again.Logs)
	require.Equal(t, n, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'completed' AND attempt = 1 AND coalesce(array_length(errors, 1), 0) = 0"))
}

// The NUL-byte case as a drill: jobs whose error, cancel and panic texts
// hold NUL and invalid UTF-8 run next to healthy jobs on one pod. Every
// healthy job completes at its first attempt, the hostile ones follow the
// decision matrix (retried then completed, or dead-lettered with the text
// made storable), nothing stays running, and PostgreSQL never refuses a
// write.
func TestDrillHostileErrorTexts(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	const hostile = `bad\x00byte \xff\xfe here`
	lines := repeat(300, `{"sleep_ms": 5}`)
	lines = append(lines, repeat(10, fmt.Sprintf(`{"fail_attempts": 1, "fail_class": "unknown", "fail_message": %q}`, hostile))...)
	lines = append(lines, repeat(10, fmt.Sprintf(`{"fail_attempts": 9, "fail_class": "bad_request", "fail_message": %q}`, hostile))...)
	lines = append(lines, repeat(10, fmt.Sprintf(`{"panic_on_attempt": 1, "fail_message": %q}`, hostile))...)
	// The args hold the escapes as text; only the worker's error has the bytes.
	require.Contains(t, lines[len(lines)-1], `bad\\x00byte`)
	enqueueLines(t, db, lines)

	worker := proctest.StartWorker(t, db.URL, "--queues", "default=20")
	waitSettled(t, db.Pool, 90*time.Second, worker.Logs)

	require.Equal(t, 300, count(t, db.Pool, `SELECT count(*) FROM river_job WHERE state = 'completed' AND attempt = 1 AND args = '{"sleep_ms": 5}'`))
	require.Equal(t, 20, count(t, db.Pool, `SELECT count(*) FROM river_job WHERE state = 'completed' AND attempt = 2 AND args <> '{"sleep_ms": 5}'`),
		"failed once (error or panic), then completed")
	require.Equal(t, 10, count(t, db.Pool, "SELECT count(*) FROM river_job WHERE state = 'cancelled' AND attempt = 1"))
	require.Equal(t, 10, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_class = 'bad_request'"))
	require.Equal(t, 10, count(t, db.Pool, "SELECT count(*) FROM job_dead_letter_queue WHERE failure_reason LIKE '%bad\uFFFDbyte \uFFFD\uFFFD here%'"),
		"NUL and invalid UTF-8 replaced by U+FFFD, the rest kept")
	// The first stored error of each of the 30 hostile jobs (retried,
	// panicked, cancelled) has the text made storable the same way.
	require.Equal(t, 30, count(t, db.Pool, `SELECT count(*) FROM river_job WHERE errors[1]->>'error' LIKE '%bad`+"\uFFFD"+`byte%'`))
	require.NotContains(t, worker.Logs(), "22P05")
	require.NotContains(t, worker.Logs(), "unsupported Unicode escape sequence")
}
