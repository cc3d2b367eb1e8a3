package batch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// itemArgs is a batch item: GET URL on the test's upstream. Its operation
// key is the URL's path, so one item's failures open no other item's
// breaker.
type itemArgs struct {
	URL string `json:"url"`
}

func (itemArgs) Kind() string { return "test_batch_item" }

func (a itemArgs) OperationKey() string {
	u, err := url.Parse(a.URL)
	if err != nil {
		return "bad-url"
	}
	return u.Path
}

// statusError is an upstream's non-2xx answer, classified by its status.
type statusError struct{ status int }

func (e *statusError) Error() string   { return fmt.Sprintf("upstream answered HTTP %d", e.status) }
func (e *statusError) StatusCode() int { return e.status }

type itemWorker struct {
	river.WorkerDefaults[itemArgs]
	client *http.Client
}

func (w *itemWorker) Work(ctx context.Context, job *river.Job[itemArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.URL, nil)
	if err != nil {
		return err
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return &statusError{status: resp.StatusCode}
	}
	return nil
}

// doneArgs is the completion callback: the batch's summary.
type doneArgs struct {
	batch.Summary
}

func (doneArgs) Kind() string { return "test_batch_done" }

type doneWorker struct {
	river.WorkerDefaults[doneArgs]
	mu   sync.Mutex
	seen []batch.Summary
}

func (w *doneWorker) Work(_ context.Context, job *river.Job[doneArgs]) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, job.Args.Summary)
	return nil
}

func (w *doneWorker) calls() []batch.Summary {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]batch.Summary(nil), w.seen...)
}

// upstream answers /ok/* 200, /bad/* 400, /flaky/* 503 the first time and
// 200 after, /down/* 503 until healed.
type upstream struct {
	*httptest.Server
	mu     sync.Mutex
	flaky  map[string]bool
	healed atomic.Bool
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{flaky: map[string]bool{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/ok/"):
		case strings.HasPrefix(r.URL.Path, "/bad/"):
			w.WriteHeader(http.StatusBadRequest)
		case strings.HasPrefix(r.URL.Path, "/flaky/"):
			u.mu.Lock()
			seen := u.flaky[r.URL.Path]
			u.flaky[r.URL.Path] = true
			u.mu.Unlock()
			if !seen {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		case strings.HasPrefix(r.URL.Path, "/down/"):
			if !u.healed.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(u.Close)
	return u
}

type fixture struct {
	db       *dbtest.Database
	pod      *rebound.Pod
	done     *doneWorker
	registry *prometheus.Registry
}

// newFixture builds a pod working test_batch_item and test_batch_done on a
// fresh database, 3 attempts 100 ms apart; start says whether it works.
func newFixture(t *testing.T, start bool) *fixture {
	t.Helper()
	db := dbtest.New(t)
	done := &doneWorker{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &itemWorker{client: &http.Client{Timeout: 5 * time.Second}})
	river.AddWorker(workers, done)
	reg := prometheus.NewPedanticRegistry()
	pod, err := rebound.New(rebound.Config{
		Pool:              db.Pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       retrypolicy.Policy{MaxAttempts: 3, InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second, Jitter: retrypolicy.JitterNone},
		Registerer:        reg,
	})
	require.NoError(t, err)
	if start {
		require.NoError(t, pod.Start(context.Background()))
		t.Cleanup(func() { require.NoError(t, pod.Stop(context.Background())) })
	}
	return &fixture{db: db, pod: pod, done: done, registry: reg}
}

func (f *fixture) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, f.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitCompleted(t *testing.T, f *fixture, id int64) *batch.Summary {
	t.Helper()
	var s *batch.Summary
	waitFor(t, 60*time.Second, fmt.Sprintf("batch %d to complete", id), func() bool {
		var err error
		s, err = batch.GetSummary(context.Background(), f.db.Pool, id)
		require.NoError(t, err)
		return s.CompletedAt != nil
	})
	return s
}

func ptr[T any](v T) *T { return &v }

// A batch of successes, permanent failures, a job that succeeds after
// failing once and one that runs out of attempts: each counted as the
// package doc says; the summary survives River's cleaner; the callback runs
// once with the summary; a DLQ replay keeps the batch ID and moves the
// counts without reopening the batch.
func TestSummaryFromRealRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := newUpstream(t)
	f := newFixture(t, true)
	p, err := batch.New(f.db.Pool, f.pod, &batch.Config{BatchSize: 4})
	require.NoError(t, err)

	paths := []string{"/ok/1", "/ok/2", "/ok/3", "/ok/4", "/bad/1", "/bad/2", "/flaky/1", "/flaky/2", "/down/1"}
	items := make([]river.JobArgs, len(paths))
	for i, path := range paths {
		items[i] = itemArgs{URL: up.URL + path}
	}
	res, err := p.Enqueue(ctx, batch.Batch{Name: "arithmetic", Kind: "test_batch_item", Items: items, CallbackKind: "test_batch_done"})
	require.NoError(t, err)
	require.Equal(t, 9, res.Total)

	s := waitCompleted(t, f, res.ID)
	require.Equal(t, int64(9), s.Total)
	require.Equal(t, int64(6), s.Succeeded)
	require.Equal(t, int64(3), s.Failed)
	require.Equal(t, int64(0), s.Cancelled)
	require.Equal(t, int64(0), s.Pending)
	require.Equal(t, int64(3), s.Retried, "two flaky jobs and the one that ran out of attempts")
	require.Equal(t, ptr(66.7), s.SuccessRate)
	require.Equal(t, map[string]int64{"bad_request": 2, "server_error": 1}, s.FailuresByClass)
	require.Len(t, s.DeadLetterIDs, 3)
	require.Equal(t, 3, f.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE id = ANY($1) AND (metadata->>'batch_id')::bigint = $2", s.DeadLetterIDs, res.ID))
	require.NotNil(t, s.CallbackJobID)

	waitFor(t, 30*time.Second, "the callback job", func() bool { return len(f.done.calls()) == 1 })
	got := f.done.calls()[0]
	require.Equal(t, res.ID, got.ID)
	require.Equal(t, int64(6), got.Succeeded)
	require.Equal(t, ptr(66.7), got.SuccessRate)
	require.Equal(t, 1.0, testutil.ToFloat64(counterOf(t, f.registry, "rebound_batches_completed_total", "test_batch_item")))

	// River's cleaner deletes finished jobs: the summary stays.
	_, err = f.db.Pool.Exec(ctx, "DELETE FROM river_job WHERE kind = 'test_batch_item' AND state IN ('completed', 'discarded', 'cancelled') AND NOT args->>'url' LIKE '%/down/1'")
	require.NoError(t, err)
	after, err := p.Summary(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, s.Succeeded, after.Succeeded)
	require.Equal(t, s.Failed, after.Failed)
	require.Equal(t, s.Retried, after.Retried)
	require.Equal(t, s.FailuresByClass, after.FailuresByClass)

	// Replay the server_error dead letter once the upstream is healed.
	var entry int64
	require.NoError(t, f.db.Pool.QueryRow(ctx, "SELECT id FROM job_dead_letter_queue WHERE id = ANY($1) AND failure_class = 'server_error'", s.DeadLetterIDs).Scan(&entry))
	up.healed.Store(true)
	rr, err := f.pod.DeadLetterQueue().Retry(ctx, deadletter.RetryParams{ID: entry})
	require.NoError(t, err)
	var meta string
	require.NoError(t, f.db.Pool.QueryRow(ctx, "SELECT metadata->>'batch_id' FROM river_job WHERE id = $1", rr.NewJobID).Scan(&meta))
	require.Equal(t, fmt.Sprint(res.ID), meta, "the replay keeps the batch ID")
	waitFor(t, 30*time.Second, "the replay to count", func() bool {
		s, err := p.Summary(ctx, res.ID)
		require.NoError(t, err)
		return s.Succeeded == 7
	})
	final, err := p.Summary(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), final.Failed)
	require.Equal(t, int64(0), final.Pending)
	require.Equal(t, int64(3), final.Retried, "the replay needed more than one attempt; the dead letter it replaced no longer counts")
	require.Equal(t, ptr(77.8), final.SuccessRate)
	require.Equal(t, map[string]int64{"bad_request": 2}, final.FailuresByClass)
	require.Len(t, final.DeadLetterIDs, 2)
	require.NotContains(t, final.DeadLetterIDs, entry)
	require.Equal(t, s.CompletedAt.UnixMicro(), final.CompletedAt.UnixMicro(), "a replay does not reopen the batch")
	time.Sleep(1500 * time.Millisecond) // a fold or two more
	require.Len(t, f.done.calls(), 1, "the callback ran once")
	require.Equal(t, 1.0, testutil.ToFloat64(counterOf(t, f.registry, "rebound_batches_completed_total", "test_batch_item")))
}

func counterOf(t *testing.T, reg *prometheus.Registry, name, kind string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
		for _, m := range fam.GetMetric() {
			if m.GetLabel()[0].GetValue() == kind {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	t.Fatalf("no %s{kind=%q}", name, kind)
	return nil
}

// An empty batch reports n/a and completes; manual cancels and deletes of
// unfinished jobs count as cancelled (neither success nor failure).
func TestSummaryEmptyAndCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, true)
	p, err := batch.New(f.db.Pool, f.pod, nil)
	require.NoError(t, err)

	empty, err := p.Enqueue(ctx, batch.Batch{Name: "empty", Kind: "test_batch_item"})
	require.NoError(t, err)
	s, err := p.Summary(ctx, empty.ID)
	require.NoError(t, err)
	require.Nil(t, s.SuccessRate)
	require.Contains(t, mustJSON(t, s), `"success_rate":null`)
	s = waitCompleted(t, f, empty.ID)
	require.Nil(t, s.SuccessRate)
	require.Equal(t, int64(0), s.Total)

	later := batch.Batch{Name: "later", Kind: "test_batch_item", StartAt: time.Now().Add(time.Hour),
		Items: []river.JobArgs{itemArgs{URL: "http://127.0.0.1:1/a"}, itemArgs{URL: "http://127.0.0.1:1/b"}, itemArgs{URL: "http://127.0.0.1:1/c"}}}
	res, err := p.Enqueue(ctx, later)
	require.NoError(t, err)
	var ids []int64
	rows, err := f.db.Pool.Query(ctx, "SELECT id FROM river_job WHERE (metadata->>'batch_id')::bigint = $1 ORDER BY id", res.ID)
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	require.NoError(t, rows.Err())
	require.Len(t, ids, 3)
	_, err = f.pod.Client().JobCancel(ctx, ids[0])
	require.NoError(t, err)
	_, err = f.pod.Client().JobDelete(ctx, ids[1])
	require.NoError(t, err)
	s, err = p.Summary(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, int64(2), s.Cancelled)
	require.Equal(t, int64(1), s.Pending)
	require.Nil(t, s.SuccessRate, "cancels are neither success nor failure")
	require.Nil(t, s.CompletedAt)
	_, err = f.pod.Client().JobCancel(ctx, ids[2])
	require.NoError(t, err)
	s = waitCompleted(t, f, res.ID)
	require.Equal(t, int64(3), s.Cancelled)
	require.Nil(t, s.SuccessRate)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// With batch size 10 and a delay of 5 s, 35 items get 4 distinct scheduled
// times 5 s apart (10, 10, 10 and 5 jobs), each job with the batch ID in
// its metadata and nothing added to its args.
func TestSchedulingBySubBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, false)
	p, err := batch.New(f.db.Pool, f.pod, &batch.Config{BatchSize: 10, DelayBetweenBatches: 5 * time.Second})
	require.NoError(t, err)
	items := make([]river.JobArgs, 35)
	for i := range items {
		items[i] = itemArgs{URL: fmt.Sprintf("http://127.0.0.1:1/ok/%d", i)}
	}
	start := time.Now().Add(time.Minute).UTC().Truncate(time.Microsecond)
	res, err := p.Enqueue(ctx, batch.Batch{Name: "spread", Kind: "test_batch_item", Items: items, StartAt: start})
	require.NoError(t, err)
	require.Equal(t, []time.Time{start, start.Add(5 * time.Second), start.Add(10 * time.Second), start.Add(15 * time.Second)}, res.ScheduledAt)

	rows, err := f.db.Pool.Query(ctx, `SELECT scheduled_at, count(*), min(id), max(id) FROM river_job
		WHERE (metadata->>'batch_id')::bigint = $1 GROUP BY scheduled_at ORDER BY scheduled_at`, res.ID)
	require.NoError(t, err)
	var times []time.Time
	var counts []int
	for rows.Next() {
		var at time.Time
		var n int
		var lo, hi int64
		require.NoError(t, rows.Scan(&at, &n, &lo, &hi))
		times, counts = append(times, at.UTC()), append(counts, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int{10, 10, 10, 5}, counts)
	for k := range times {
		require.Equal(t, start.Add(time.Duration(k)*5*time.Second), times[k])
	}
	require.Equal(t, 0, f.count(t, "SELECT count(*) FROM river_job WHERE args ? 'batch_id'"))
	require.Equal(t, 35, f.count(t, "SELECT total::int FROM job_batch WHERE id = $1", res.ID))
}

// Bad batches are refused with one error naming the problem, and nothing
// is written: no job_batch row, no job, and the caller's transaction still
// usable.
func TestEnqueueRefusesBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, false)
	p, err := batch.New(f.db.Pool, f.pod, nil)
	require.NoError(t, err)
	_, err = p.Enqueue(ctx, batch.Batch{Name: "taken", Kind: "test_batch_item", Items: []river.JobArgs{itemArgs{URL: "http://x/1"}}})
	require.NoError(t, err)

	tests := []struct {
		name    string
		batch   batch.Batch
		wantErr error
		want    string
	}{
		{"duplicate name", batch.Batch{Name: "taken", Kind: "test_batch_item", Items: []river.JobArgs{itemArgs{URL: "http://x/2"}}},
			batch.ErrDuplicateName, `batch "taken": a batch with this name already exists (names are unique; pick another, or see rebound batch list)`},
		{"empty name", batch.Batch{Name: " ", Kind: "test_batch_item"}, batch.ErrInvalidBatch, "invalid batch: the name is empty"},
		{"control character", batch.Batch{Name: "a\nb", Kind: "test_batch_item"}, batch.ErrInvalidBatch, "invalid batch: the name holds a control character"},
		{"long name", batch.Batch{Name: strings.Repeat("é", 201), Kind: "test_batch_item"}, batch.ErrInvalidBatch, "invalid batch: the name has 201 characters (at most 200)"},
		{"mixed kinds", batch.Batch{Name: "mixed", Kind: "test_batch_item", Items: []river.JobArgs{itemArgs{URL: "http://x/3"}, doneArgs{}}},
			batch.ErrInvalidBatch, `invalid batch: item 2 is of kind "test_batch_done", not the batch's kind "test_batch_item"`},
		{"kind with NUL", batch.Batch{Name: "k", Kind: "a\x00b"}, batch.ErrInvalidBatch, `invalid batch: kind "a\x00b": want 1 to 200 printable characters of valid UTF-8`},
		{"callback kind not UTF-8", batch.Batch{Name: "c", Kind: "test_batch_item", CallbackKind: "done\xff"}, batch.ErrInvalidBatch, `invalid batch: callback kind "done\xff": want 1 to 200 printable characters of valid UTF-8`},
		{"unknown kind", batch.Batch{Name: "unknown", Kind: "nope", Items: []river.JobArgs{unknownArgs{}}}, nil, "job kind is not registered"},
		{"unstorable args", batch.Batch{Name: "nul", Kind: "test_batch_item", Items: []river.JobArgs{itemArgs{URL: "http://x/4"}, itemArgs{URL: "a\x00b"}}},
			nil, `contains a NUL character`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := f.db.Pool.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = tx.Rollback(ctx) }()
			_, err = p.EnqueueTx(ctx, tx, tt.batch)
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.Equal(t, tt.want, err.Error())
			} else {
				require.ErrorContains(t, err, tt.want)
			}
			var n int
			require.NoError(t, tx.QueryRow(ctx, "SELECT (SELECT count(*) FROM job_batch) + (SELECT count(*) FROM river_job)").Scan(&n), "the caller's transaction is still usable")
			require.Equal(t, 2, n, "only the first batch and its job")
			require.NoError(t, tx.Commit(ctx))
		})
	}

	_, err = batch.New(f.db.Pool, f.pod, &batch.Config{BatchSize: -1})
	require.EqualError(t, err, "batch: BatchSize -1: must be at least 1 (0 means 10)")
	_, err = batch.New(f.db.Pool, f.pod, &batch.Config{DelayBetweenBatches: -time.Second})
	require.EqualError(t, err, "batch: DelayBetweenBatches -1s: must not be negative")
}

type unknownArgs struct{}

func (unknownArgs) Kind() string { return "nope" }

// The pod's handler serves the batches' admin API.
func TestAdminRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFixture(t, false)
	p, err := batch.New(f.db.Pool, f.pod, nil)
	require.NoError(t, err)
	res, err := p.Enqueue(ctx, batch.Batch{Name: "api", Kind: "test_batch_item", Items: []river.JobArgs{itemArgs{URL: "http://127.0.0.1:1/a"}}})
	require.NoError(t, err)
	srv := httptest.NewServer(f.pod.Handler())
	t.Cleanup(srv.Close)

	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var b strings.Builder
		_, err = io.Copy(&b, resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b.String()
	}
	code, body := get(batch.APIPath)
	require.Equal(t, http.StatusOK, code, body)
	var list struct{ Batches []batch.Summary }
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Batches, 1)
	require.Equal(t, res.ID, list.Batches[0].ID)
	require.Equal(t, int64(1), list.Batches[0].Pending)

	code, body = get(fmt.Sprintf("%s/%d", batch.APIPath, res.ID))
	require.Equal(t, http.StatusOK, code, body)
	var s batch.Summary
	require.NoError(t, json.Unmarshal([]byte(body), &s))
	require.Equal(t, "api", s.Name)
	require.Nil(t, s.SuccessRate)
	require.Contains(t, body, `"success_rate": null`)

	for _, tt := range []struct {
		path string
		code int
		want string
	}{
		{batch.APIPath + "/abc", http.StatusBadRequest, `{"error": "invalid batch ID \"abc\": want a positive integer"}`},
		{batch.APIPath + "/424242", http.StatusNotFound, `{"error": "batch 424242: no such batch"}`},
		{batch.APIPath + "?limit=0", http.StatusBadRequest, `{"error": "invalid limit \"0\": want a number from 1 to 1000"}`},
		{batch.APIPath + "?open=maybe", http.StatusBadRequest, `{"error": "invalid open \"maybe\": want true or false"}`},
		{batch.APIPath + "?colour=red", http.StatusBadRequest, `{"error": "unknown query parameter \"colour\" (known: limit, open)"}`},
		{batch.APIPath + "/?limit=1&limit=2", http.StatusBadRequest, `{"error": "query parameter \"limit\" given 2 times (give it once)"}`},
		{fmt.Sprintf("%s/%d?open=true", batch.APIPath, res.ID), http.StatusBadRequest, `{"error": "unknown query parameter \"open\" (this route takes none)"}`},
		{batch.APIPath + "/1/extra", http.StatusNotFound, `{"error": "no such endpoint: GET /api/admin/batches/1/extra"}`},
	} {
		code, body := get(tt.path)
		require.Equal(t, tt.code, code, tt.path)
		require.JSONEq(t, tt.want, body, tt.path)
	}
	for _, path := range []string{batch.APIPath, batch.APIPath + "/", fmt.Sprintf("%s/%d", batch.APIPath, res.ID)} {
		req, err := http.NewRequest(http.MethodDelete, srv.URL+path, nil)
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, path)
		require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"), path)
		require.JSONEq(t, fmt.Sprintf(`{"error": "DELETE is not allowed on %s: use GET"}`, path), string(body), path)
	}
	var n int
	require.NoError(t, f.db.Pool.QueryRow(ctx, "SELECT count(*) FROM job_batch").Scan(&n))
	require.Equal(t, 1, n, "refused requests changed nothing")
}

// A counting trigger that fails never stops River's completer: with
// job_batch_delta gone, the batch's jobs still complete (the batch misses
// their counts, as the package doc says), and so do other jobs.
func TestCountTriggerNeverRaises(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := newUpstream(t)
	f := newFixture(t, true)
	p, err := batch.New(f.db.Pool, f.pod, nil)
	require.NoError(t, err)
	_, err = f.db.Pool.Exec(ctx, "ALTER TABLE job_batch_delta RENAME TO job_batch_delta_gone")
	require.NoError(t, err)
	items := []river.JobArgs{itemArgs{URL: up.URL + "/ok/1"}, itemArgs{URL: up.URL + "/ok/2"}, itemArgs{URL: up.URL + "/bad/1"}}
	res, err := p.Enqueue(ctx, batch.Batch{Name: "no counts", Kind: "test_batch_item", Items: items})
	require.NoError(t, err)
	waitFor(t, 30*time.Second, "the jobs to finish", func() bool {
		return f.count(t, "SELECT count(*) FROM river_job WHERE state IN ('completed', 'cancelled', 'discarded') AND (metadata->>'batch_id')::bigint = $1", res.ID) == 3
	})
	require.Equal(t, 2, f.count(t, "SELECT count(*) FROM river_job WHERE state = 'completed' AND (metadata->>'batch_id')::bigint = $1", res.ID))
	require.Equal(t, 1, f.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE (metadata->>'batch_id')::bigint = $1", res.ID), "the DLQ capture still ran")
	_, err = f.db.Pool.Exec(ctx, "ALTER TABLE job_batch_delta_gone RENAME TO job_batch_delta")
	require.NoError(t, err)
	s, err := p.Summary(ctx, res.ID)
	require.NoError(t, err)
	require.Equal(t, int64(0), s.Succeeded+s.Failed, "counts missed while the trigger failed")
	require.Equal(t, int64(3), s.Pending)
}
