package deadletter_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/dbtest"
)

// testBundle is one test's database and store.
type testBundle struct {
	db    *dbtest.Database
	pool  *pgxpool.Pool
	store *deadletter.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	db := dbtest.New(t)
	store, err := deadletter.New(db.Pool, nil)
	require.NoError(t, err)
	return &testBundle{db: db, pool: db.Pool, store: store}
}

// failArgs drive failWorker: Mode "cancel" returns river.JobCancel, "error"
// a plain error, "ok" succeeds, "block" waits for its context.
type failArgs struct {
	Mode    string            `json:"mode"`
	Message string            `json:"message"`
	Headers map[string]string `json:"headers,omitempty"`
	N       int               `json:"n,omitempty"`
}

func (failArgs) Kind() string { return "dlq_test" }

type failWorker struct {
	river.WorkerDefaults[failArgs]
}

func (w *failWorker) Work(ctx context.Context, job *river.Job[failArgs]) error {
	switch job.Args.Mode {
	case "cancel":
		return river.JobCancel(errors.New(job.Args.Message))
	case "error":
		return errors.New(job.Args.Message)
	case "block":
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// fastRetry retries 10 ms later.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(10 * time.Millisecond) }

// historyRecorder stands in for retrypolicy's attempt recorder: on an error
// it appends {attempt, at, class, strategy, delay_ms, error} to
// metadata.output.attempts, carrying earlier entries forward, the way
// retrypolicy's recorder does (docs/architecture.md, "The flow of one job").
type historyRecorder struct {
	river.MiddlewareDefaults
	class string
}

type recordedOutput struct {
	Result   any              `json:"result"`
	Attempts []map[string]any `json:"attempts"`
}

func (m *historyRecorder) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	err := doInner(ctx)
	if err == nil {
		return nil
	}
	var meta struct {
		Output recordedOutput `json:"output"`
	}
	_ = json.Unmarshal(job.Metadata, &meta)
	meta.Output.Attempts = append(meta.Output.Attempts, map[string]any{
		"attempt": job.Attempt, "at": time.Now().UTC().Format(time.RFC3339Nano),
		"class": m.class, "strategy": "exponential", "delay_ms": 1000 * job.Attempt, "error": err.Error(),
	})
	if rerr := river.RecordOutput(ctx, meta.Output); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}

type clientOpts struct {
	recorderClass string // "" for no recorder
	middleware    []rivertype.Middleware
}

// startClient runs a River client working failArgs on pool until the test
// ends.
func startClient(t *testing.T, pool *pgxpool.Pool, opts clientOpts) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, &failWorker{})
	mw := opts.middleware
	if opts.recorderClass != "" {
		mw = append(mw, &historyRecorder{class: opts.recorderClass})
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		Middleware:        mw,
		RetryPolicy:       fastRetry{},
		FetchCooldown:     10 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.DiscardHandler),
		TestOnly:          true,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() {
		stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer stopCancel()
		_ = client.Stop(stopCtx)
		cancel()
	})
	return client
}

// waitFinal waits until job id is in one of states.
func waitFinal(t *testing.T, pool *pgxpool.Pool, id int64, states ...string) {
	t.Helper()
	var state string
	require.Eventually(t, func() bool {
		err := pool.QueryRow(context.Background(), "SELECT state::text FROM river_job WHERE id = $1", id).Scan(&state)
		if err != nil {
			return false
		}
		for _, s := range states {
			if s == state {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "job %d never reached %v", id, states)
}

func entriesOf(t *testing.T, pool *pgxpool.Pool, riverJobID int64) []*deadletter.Entry {
	t.Helper()
	rows, err := pool.Query(context.Background(), "SELECT id FROM job_dead_letter_queue WHERE river_job_id = $1 ORDER BY attempt", riverJobID)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	require.NoError(t, err)
	store, err := deadletter.New(pool, nil)
	require.NoError(t, err)
	out := make([]*deadletter.Entry, 0, len(ids))
	for _, id := range ids {
		e, err := store.Get(context.Background(), id)
		require.NoError(t, err)
		out = append(out, e)
	}
	return out
}

func count(t *testing.T, pool *pgxpool.Pool, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// insertEntries adds n synthetic dead-letter rows straight into the table
// (as the trigger would), for tests of the operations.
func insertEntries(t *testing.T, pool *pgxpool.Pool, n int, kind, class string, firstJobID int64) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, metadata, errors, history,
		 failure_class, failure_reason, operation_key, dead_lettered_at)
		SELECT $4 + g, 1, 3, $2, 'default', 1, 'discarded', jsonb_build_object('n', g), '{}', '[]', '[]',
		       $3, 'boom ' || (g % 3), 'op-' || (g % 2), now() - make_interval(secs => $1 - g)
		FROM generate_series(1, $1) g`, n, kind, class, firstJobID)
	require.NoError(t, err)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

var _ = fmt.Sprintf
