package metricstore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/metricstore"
)

type mixArgs struct {
	Do string `json:"do"` // "ok", "cancel", "fail", "snooze"
}

func (mixArgs) Kind() string { return "mix" }

var snoozed sync.Map // job IDs that have snoozed once

type mixWorker struct {
	river.WorkerDefaults[mixArgs]
}

func (mixWorker) Work(ctx context.Context, job *river.Job[mixArgs]) error {
	switch job.Args.Do {
	case "cancel":
		return river.JobCancel(errors.New("refused"))
	case "fail":
		return errors.New("boom")
	case "snooze":
		// River gives a snooze's attempt back, so remember the first run.
		if _, seen := snoozed.LoadOrStore(job.ID, true); !seen {
			return river.JobSnooze(time.Millisecond)
		}
	}
	return nil
}

func waitFinished(t *testing.T, pool *pgxpool.Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var done int
		require.NoError(t, pool.QueryRow(context.Background(),
			"SELECT count(*) FROM river_job WHERE state IN ('completed', 'discarded', 'cancelled')").Scan(&done))
		if done >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d jobs finished after 60 s", done, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRecorderCountsExactMix(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	store := metricstore.New(pool)
	rec, err := metricstore.NewRecorder(store, &metricstore.RecorderConfig{FlushInterval: time.Hour})
	require.NoError(t, err)

	w := river.NewWorkers()
	river.AddWorker(w, &mixWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:     map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers:    w,
		Middleware: []rivertype.Middleware{rec.Middleware(), rec.GateMarker()},
	})
	require.NoError(t, err)

	var params []river.InsertManyParams
	add := func(n int, do string, maxAttempts int) {
		for range n {
			params = append(params, river.InsertManyParams{Args: mixArgs{Do: do}, InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts}})
		}
	}
	add(7, "ok", 1)
	add(2, "cancel", 3)
	add(1, "fail", 1)
	add(3, "snooze", 2)
	_, err = client.InsertMany(ctx, params)
	require.NoError(t, err)

	rec.Start(ctx)
	require.NoError(t, client.Start(ctx))
	waitFinished(t, pool, 13)
	require.NoError(t, client.Stop(ctx))
	require.NoError(t, rec.Stop(ctx))

	stats, err := store.Window(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	got := stats["mix"]
	require.NotNil(t, got)
	// 7 ok + 3 snoozed-then-ok completed; 2 cancelled + 1 failed on its only attempt dead-lettered.
	require.Equal(t, int64(10), got.Completed)
	require.Equal(t, int64(3), got.DeadLettered)
	// Every run counts as an attempt except the three snoozes (River gives the attempt back).
	require.Equal(t, int64(13), got.Attempts)
	require.Equal(t, int64(0), got.ShortCircuited)
	rate, ok := got.SuccessRate()
	require.True(t, ok)
	require.InDelta(t, 100*10.0/13.0, rate, 1e-9)
	require.WithinDuration(t, time.Now(), got.LastAttemptAt, time.Minute)
}

// TestWritesPer10000Jobs counts the tuples written to job_retry_metrics
// (pg_stat_user_tables: n_tup_ins + n_tup_upd) while a pod works 10,000
// jobs: one row per flush and kind, never one per job.
func TestWritesPer10000Jobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	pool := db.Pool
	// The recorder writes through a pool of its own, closed at the end so
	// its backends report their statistics.
	recPool, err := pgxpool.New(ctx, db.URL)
	require.NoError(t, err)
	store := metricstore.New(recPool)
	rec, err := metricstore.NewRecorder(store, &metricstore.RecorderConfig{FlushInterval: time.Second})
	require.NoError(t, err)

	w := river.NewWorkers()
	river.AddWorker(w, &mixWorker{})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 100}},
		Workers:       w,
		FetchCooldown: 5 * time.Millisecond,
		Middleware:    []rivertype.Middleware{rec.Middleware(), rec.GateMarker()},
	})
	require.NoError(t, err)
	const jobs = 10_000
	params := make([]river.InsertManyParams, jobs)
	for i := range params {
		params[i] = river.InsertManyParams{Args: mixArgs{Do: "ok"}}
	}
	_, err = client.InsertManyFast(ctx, params)
	require.NoError(t, err)

	started := time.Now()
	rec.Start(ctx)
	require.NoError(t, client.Start(ctx))
	waitFinished(t, pool, jobs)
	require.NoError(t, client.Stop(ctx))
	require.NoError(t, rec.Stop(ctx))
	elapsed := time.Since(started)
	recPool.Close()

	stats, err := metricstore.New(pool).Window(ctx, started.Add(-time.Minute))
	require.NoError(t, err)
	require.Equal(t, int64(jobs), stats["mix"].Completed)
	require.Equal(t, int64(jobs), stats["mix"].Attempts)

	var writes int64
	deadline := time.Now().Add(15 * time.Second)
	for {
		require.NoError(t, pool.QueryRow(ctx,
			"SELECT n_tup_ins + n_tup_upd FROM pg_stat_user_tables WHERE relname = 'job_retry_metrics'").Scan(&writes))
		if writes > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// One tuple per flush at most (one kind), flushes once a second plus the
	// final one: at most the run's whole seconds + 2, and never near one per job.
	maxWrites := int64(elapsed/time.Second) + 2
	t.Logf("job_retry_metrics tuple writes for %d jobs in %s: %d (flush interval 1s)", jobs, elapsed.Round(time.Millisecond), writes)
	require.Positive(t, writes)
	require.LessOrEqual(t, writes, maxWrites)
}

// TestFailedFlushIsKeptAndRetried makes a flush fail (the table renamed
// away) and checks the next one writes every count exactly once.
func TestFailedFlushIsKeptAndRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	store := metricstore.New(pool)
	rec, err := metricstore.NewRecorder(store, &metricstore.RecorderConfig{FlushInterval: time.Hour})
	require.NoError(t, err)
	for range 4 {
		rec.ObserveFailedAttempt("mail", "server_error", true)
	}
	rec.ObserveFailedAttempt("mail", "timeout", false)

	_, err = pool.Exec(ctx, "ALTER TABLE job_retry_metrics RENAME TO job_retry_metrics_away")
	require.NoError(t, err)
	require.Error(t, rec.Flush(ctx))
	rec.ObserveFailedAttempt("mail", "server_error", false)
	_, err = pool.Exec(ctx, "ALTER TABLE job_retry_metrics_away RENAME TO job_retry_metrics")
	require.NoError(t, err)
	require.NoError(t, rec.Flush(ctx))
	require.NoError(t, rec.Flush(ctx)) // nothing left: adds nothing

	stats, err := store.Window(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"server_error": 5, "timeout": 1}, stats["mail"].Failures)
	require.Equal(t, int64(4), stats["mail"].RetriesScheduled)
}

func TestRollupFoldsMinutesAndAppliesRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	store := metricstore.New(pool)
	now := time.Date(2026, 3, 10, 12, 30, 0, 0, time.UTC)
	hourAgo2d := now.Add(-48 * time.Hour).Truncate(time.Hour)
	require.NoError(t, store.Add(ctx, []metricstore.Row{
		{Kind: "mail", PeriodStart: hourAgo2d.Add(1 * time.Minute), Completed: 3, Attempts: 4, Failures: map[string]int64{"timeout": 1}, RunTimeMS: 10},
		{Kind: "mail", PeriodStart: hourAgo2d.Add(59 * time.Minute), Completed: 2, DeadLettered: 1, Attempts: 3, Failures: map[string]int64{"timeout": 2, "network": 1}, RunTimeMS: 5},
		{Kind: "mail", PeriodStart: now.Add(-time.Hour), Completed: 9, Attempts: 9},          // younger than a day: stays a minute row
		{Kind: "sms", PeriodStart: now.Add(-31 * 24 * time.Hour), Completed: 1, Attempts: 1}, // past retention
	}))
	res, err := store.Rollup(ctx, now, metricstore.DefaultRollupAfter, metricstore.DefaultRetention)
	require.NoError(t, err)
	require.Equal(t, metricstore.RollupResult{MinuteRows: 3, Deleted: 1}, res)

	type row struct {
		Kind      string
		Start     time.Time
		Seconds   int
		Completed int64
		Dead      int64
		Attempts  int64
		Failures  string
		RunMS     int64
	}
	rows, err := pool.Query(ctx, "SELECT kind, period_start, period_seconds, completed, dead_lettered, attempts, failures::text, run_time_ms FROM job_retry_metrics ORDER BY period_start")
	require.NoError(t, err)
	var got []row
	for rows.Next() {
		var r row
		require.NoError(t, rows.Scan(&r.Kind, &r.Start, &r.Seconds, &r.Completed, &r.Dead, &r.Attempts, &r.Failures, &r.RunMS))
		r.Start = r.Start.UTC()
		got = append(got, r)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []row{
		{"mail", hourAgo2d, 3600, 5, 1, 7, `{"network": 1, "timeout": 3}`, 15},
		{"mail", now.Add(-time.Hour), 60, 9, 0, 9, `{}`, 0},
	}, got)

	// A second run finds nothing to do.
	res, err = store.Rollup(ctx, now, metricstore.DefaultRollupAfter, metricstore.DefaultRetention)
	require.NoError(t, err)
	require.Equal(t, metricstore.RollupResult{}, res)
}

func TestNewRecorderRefusesShortInterval(t *testing.T) {
	t.Parallel()
	_, err := metricstore.NewRecorder(nil, &metricstore.RecorderConfig{FlushInterval: time.Millisecond})
	require.EqualError(t, err, "metricstore: FlushInterval 1ms is under 100ms")
}

// A flush whose COMMIT failed may or may not be in: AddOnce is given it as
// prev and adds its rows only when its token is not in
// rebound_metric_flush, so counts are added exactly once either way.
func TestAddOnceAddsAFlushOfUnknownOutcomeExactlyOnce(t *testing.T) {
	t.Parallel()
	minute := time.Now().UTC().Truncate(time.Minute)
	row := func(completed int64) []metricstore.Row {
		return []metricstore.Row{{Kind: "mail", PeriodStart: minute, Attempts: completed, Completed: completed, Failures: map[string]int64{"timeout": completed}}}
	}
	cases := []struct {
		name        string
		prevApplied bool // prev's transaction committed after all
		wantSent    int64
		wantTotal   int64
	}{
		{"previous flush was applied: only the new rows are added", true, 2, 7},
		{"previous flush was not applied: both are added", false, 7, 7},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			store := metricstore.New(dbtest.Pool(t))
			prev := metricstore.Flush{Token: "prev-" + tc.name[:8], Rows: row(5)}
			if tc.prevApplied {
				_, err := store.AddOnce(ctx, nil, prev)
				require.NoError(t, err)
			}
			sent, err := store.AddOnce(ctx, &prev, metricstore.Flush{Token: "next", Rows: row(2)})
			require.NoError(t, err)
			require.Equal(t, "next", sent.Token)
			require.Len(t, sent.Rows, 1)
			require.Equal(t, tc.wantSent, sent.Rows[0].Completed)
			stats, err := store.Window(ctx, minute.Add(-time.Minute))
			require.NoError(t, err)
			require.Equal(t, tc.wantTotal, stats["mail"].Completed)
			require.Equal(t, tc.wantTotal, stats["mail"].Attempts)
			require.Equal(t, map[string]int64{"timeout": tc.wantTotal}, stats["mail"].Failures)
		})
	}
}

// A COMMIT that fails (here a deferred constraint trigger refusing the
// transaction) leaves the flush's outcome unknown to the recorder: it keeps
// the rows with their token, and the next flush, finding no token, adds
// them once.
func TestFlushFailingAtCommitIsAddedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	_, err := pool.Exec(ctx, `
CREATE TABLE refuse_commit (on_ boolean NOT NULL);
INSERT INTO refuse_commit VALUES (true);
CREATE FUNCTION refuse_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT on_ FROM refuse_commit) THEN RAISE EXCEPTION 'refused at commit'; END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER refuse_commit AFTER INSERT ON rebound_metric_flush
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_commit();`)
	require.NoError(t, err)
	store := metricstore.New(pool)
	rec, err := metricstore.NewRecorder(store, &metricstore.RecorderConfig{FlushInterval: time.Hour})
	require.NoError(t, err)
	for range 3 {
		rec.ObserveFailedAttempt("mail", "server_error", true)
	}
	err = rec.Flush(ctx)
	require.ErrorIs(t, err, metricstore.ErrOutcomeUnknown)
	rec.ObserveFailedAttempt("mail", "timeout", false)
	_, err = pool.Exec(ctx, "UPDATE refuse_commit SET on_ = false")
	require.NoError(t, err)
	require.NoError(t, rec.Flush(ctx))
	require.NoError(t, rec.Flush(ctx)) // nothing left: adds nothing

	stats, err := store.Window(ctx, time.Now().Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"server_error": 3, "timeout": 1}, stats["mail"].Failures)
	require.Equal(t, int64(3), stats["mail"].RetriesScheduled)
	var tokens int
	require.NoError(t, pool.QueryRow(ctx, "SELECT count(*) FROM rebound_metric_flush").Scan(&tokens))
	require.Equal(t, 1, tokens, "one token per committed flush that carried rows")
}
