package deadletter_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

func TestListPaginatesEveryEntryOnceInOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const n = 10_001
	insertEntries(t, b.pool, n, "bulk_kind", "server_error", 1_000_000)

	seen := make(map[int64]bool, n)
	var last int64
	cursor := ""
	pages := 0
	for {
		res, err := b.store.List(ctx, deadletter.ListParams{After: cursor, Limit: deadletter.MaxListLimit})
		require.NoError(t, err)
		pages++
		for _, e := range res.Entries {
			require.False(t, seen[e.ID], "entry %d twice", e.ID)
			if last != 0 {
				require.Less(t, e.ID, last, "not in descending order")
			}
			seen[e.ID], last = true, e.ID
		}
		if res.NextCursor == "" {
			break
		}
		cursor = res.NextCursor
	}
	require.Len(t, seen, n)
	require.Equal(t, 11, pages)
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 6, "kind_a", "server_error", 100) // jobs 101..106, op-1/op-0 alternating
	insertEntries(t, b.pool, 4, "kind_b", "timeout", 200)
	_, err := b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET status = 'retried' WHERE river_job_id IN (101, 201)")
	require.NoError(t, err)

	tests := []struct {
		name    string
		params  deadletter.ListParams
		wantJob []int64
		wantErr string
	}{
		{name: "kind", params: deadletter.ListParams{Filter: deadletter.Filter{Kinds: []string{"kind_b"}}}, wantJob: []int64{204, 203, 202, 201}},
		{name: "class and status", params: deadletter.ListParams{Filter: deadletter.Filter{Classes: []string{"server_error"}, Statuses: []deadletter.Status{deadletter.StatusRetried}}}, wantJob: []int64{101}},
		{name: "operation key", params: deadletter.ListParams{Filter: deadletter.Filter{Kinds: []string{"kind_a"}, OperationKeys: []string{"op-0"}}}, wantJob: []int64{106, 104, 102}},
		{name: "page size", params: deadletter.ListParams{Limit: 2}, wantJob: []int64{204, 203}},
		{name: "time range", params: deadletter.ListParams{Filter: deadletter.Filter{Since: time.Now().Add(-24 * time.Hour), Until: time.Now().Add(-time.Hour)}}, wantJob: []int64{}},
		{name: "bad status", params: deadletter.ListParams{Filter: deadletter.Filter{Statuses: []deadletter.Status{"gone"}}}, wantErr: `status "gone" is not one of`},
		{name: "bad class", params: deadletter.ListParams{Filter: deadletter.Filter{Classes: []string{"server_error", "bogus"}}},
			wantErr: `failure class "bogus" is not one of rate_limited, server_error, timeout, network, decode, panic, lost, unknown_kind, unknown, bad_request, unauthorized, not_found, misconfigured, out_of_memory, breaker_open, cancelled`},
		{name: "bad cursor", params: deadletter.ListParams{After: "12"}, wantErr: `cursor "12" is not one this API returned`},
		{name: "bad limit", params: deadletter.ListParams{Limit: 1001}, wantErr: "limit 1001 is not between 1 and 1000"},
		{name: "reversed range", params: deadletter.ListParams{Filter: deadletter.Filter{Since: time.Now(), Until: time.Now().Add(-time.Hour)}}, wantErr: "until"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := b.store.List(ctx, tt.params)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, deadletter.ErrInvalid)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			got := []int64{}
			for _, e := range res.Entries {
				got = append(got, e.RiverJobID)
			}
			require.Equal(t, tt.wantJob, got)
		})
	}
}

func TestRetryInsertsNewJobAndStripsBookkeeping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	client := startClient(t, b.pool, clientOpts{recorderClass: "bad_request"})
	args := failArgs{Mode: "cancel", Message: "HTTP 400", Headers: map[string]string{"Authorization": "Bearer s3cret"}}
	res, err := client.Insert(ctx, args, &river.InsertOpts{
		MaxAttempts: 7, Priority: 3, Tags: []string{"tag-one"},
		Metadata: []byte(`{"operation_key":"api.example.com","snoozes":2,"river:rescue_count":1,"tenant":"acme","breaker_parked_key":"api.example.com","breaker_parked_at":"2026-11-29T08:00:00Z"}`),
	})
	require.NoError(t, err)
	waitFinal(t, b.pool, res.Job.ID, "cancelled")
	entry := entriesOf(t, b.pool, res.Job.ID)[0]

	// Stop the worker so it cannot pick the replay up: this test looks at
	// the new row as inserted. (Pausing the queue raced with a busy fetch.)
	require.NoError(t, client.Stop(ctx))

	out, err := b.store.Retry(ctx, deadletter.RetryParams{ID: entry.ID, By: "alice"})
	require.NoError(t, err)
	require.Equal(t, entry.ID, out.EntryID)
	require.Equal(t, res.Job.ID, out.RiverJobID)
	require.NotEqual(t, res.Job.ID, out.NewJobID)

	job, err := client.JobGet(ctx, out.NewJobID)
	require.NoError(t, err)
	require.JSONEq(t, mustJSON(t, args), string(job.EncodedArgs), "args replayed intact, secrets included")
	require.Equal(t, 7, job.MaxAttempts)
	require.Equal(t, 3, job.Priority)
	require.Equal(t, []string{"tag-one"}, job.Tags)
	require.Equal(t, 0, job.Attempt)
	require.Empty(t, job.Errors)
	var meta map[string]any
	require.NoError(t, json.Unmarshal(job.Metadata, &meta))
	require.Equal(t, "api.example.com", meta["operation_key"])
	require.Equal(t, "acme", meta["tenant"])
	for _, k := range []string{"output", "snoozes", "river:rescue_count", "cancel_attempted_at", "breaker_parked_key", "breaker_parked_at"} {
		require.NotContains(t, meta, k)
	}
	require.Equal(t, map[string]any{"entry_id": float64(entry.ID), "river_job_id": float64(res.Job.ID), "attempt": float64(1)}, meta[deadletter.RetryMetadataKey])

	after, err := b.store.Get(ctx, entry.ID)
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusRetried, after.Status)
	require.Equal(t, out.NewJobID, *after.RetriedJobID)
	require.Equal(t, "alice", after.RetriedBy)

	// Retrying again needs force.
	_, err = b.store.Retry(ctx, deadletter.RetryParams{ID: entry.ID})
	require.ErrorIs(t, err, deadletter.ErrAlreadyRetried)
	require.ErrorContains(t, err, "use force")
	forced, err := b.store.Retry(ctx, deadletter.RetryParams{ID: entry.ID, Force: true})
	require.NoError(t, err)
	require.NotEqual(t, out.NewJobID, forced.NewJobID)
	require.Equal(t, 3, count(t, b.pool, "SELECT count(*) FROM river_job"))
}

func TestRetryRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 3, "kind_r", "timeout", 500)
	var ids []int64
	rows, err := b.pool.Query(ctx, "SELECT id FROM job_dead_letter_queue ORDER BY id")
	require.NoError(t, err)
	for rows.Next() {
		var id int64
		require.NoError(t, rows.Scan(&id))
		ids = append(ids, id)
	}
	_, err = b.store.Resolve(ctx, deadletter.ResolveParams{ID: ids[0], Note: "fixed upstream", By: "bob"})
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET status = 'retried', retried_job_id = 42 WHERE id = $1", ids[1])
	require.NoError(t, err)

	tests := []struct {
		name    string
		params  deadletter.RetryParams
		wantErr error
		wantMsg string
	}{
		{name: "resolved", params: deadletter.RetryParams{ID: ids[0]}, wantErr: deadletter.ErrResolved, wantMsg: "use force to retry it anyway"},
		{name: "retried", params: deadletter.RetryParams{ID: ids[1]}, wantErr: deadletter.ErrAlreadyRetried, wantMsg: "was retried as job 42"},
		{name: "missing", params: deadletter.RetryParams{ID: 999_999}, wantErr: deadletter.ErrNotFound, wantMsg: "no entry 999999"},
		{name: "bad id", params: deadletter.RetryParams{ID: 0}, wantErr: deadletter.ErrInvalid, wantMsg: "entry ID 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.store.Retry(ctx, tt.params)
			require.ErrorIs(t, err, tt.wantErr)
			require.ErrorContains(t, err, tt.wantMsg)
		})
	}
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job"), "nothing inserted")

	_, err = b.store.RetryMany(ctx, deadletter.RetryManyParams{Filter: deadletter.Filter{Statuses: []deadletter.Status{deadletter.StatusResolved}}})
	require.ErrorIs(t, err, deadletter.ErrInvalid)
	require.ErrorContains(t, err, "retrying resolved entries needs force")
}

// Two operators retrying the same 50 entries at the same moment create 50
// jobs, not 100; entries that die again are not picked up by the same run.
func TestConcurrentRetryManyCreatesEachJobOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 50, "kind_c", "server_error", 7_000)

	dry, err := b.store.RetryMany(ctx, deadletter.RetryManyParams{DryRun: true})
	require.NoError(t, err)
	require.True(t, dry.DryRun)
	require.Len(t, dry.Retried, 50)
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job"))

	const operators = 4
	results := make([]*deadletter.RetryManyResult, operators)
	errs := make([]error, operators)
	var wg sync.WaitGroup
	for i := range operators {
		wg.Go(func() {
			results[i], errs[i] = b.store.RetryMany(ctx, deadletter.RetryManyParams{BatchSize: 7, By: "op"})
		})
	}
	wg.Wait()
	retried := 0
	for i := range operators {
		require.NoError(t, errs[i])
		retried += len(results[i].Retried)
	}
	require.Equal(t, 50, retried)
	require.Equal(t, 50, count(t, b.pool, "SELECT count(*) FROM river_job"))
	require.Equal(t, 50, count(t, b.pool, "SELECT count(DISTINCT retried_job_id) FROM job_dead_letter_queue WHERE status = 'retried'"))

	// Nothing left to retry without force.
	again, err := b.store.RetryMany(ctx, deadletter.RetryManyParams{})
	require.NoError(t, err)
	require.Empty(t, again.Retried)
}

func TestResolveAndPurge(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 5, "kind_p", "not_found", 300)
	var first int64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT min(id) FROM job_dead_letter_queue").Scan(&first))

	_, err := b.store.Resolve(ctx, deadletter.ResolveParams{ID: first, Note: "  "})
	require.ErrorIs(t, err, deadletter.ErrInvalid)
	require.ErrorContains(t, err, "a note is required")

	e, err := b.store.Resolve(ctx, deadletter.ResolveParams{ID: first, Note: "customer deleted", By: "carol"})
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusResolved, e.Status)
	require.Equal(t, "customer deleted", e.ResolutionNote)
	require.Equal(t, "carol", e.ResolvedBy)
	require.NotNil(t, e.ResolvedAt)

	_, err = b.store.Resolve(ctx, deadletter.ResolveParams{ID: first, Note: "again"})
	require.ErrorIs(t, err, deadletter.ErrAlreadyResolved)
	_, err = b.store.Resolve(ctx, deadletter.ResolveParams{ID: 424242, Note: "x"})
	require.ErrorIs(t, err, deadletter.ErrNotFound)

	dry, err := b.store.ResolveMany(ctx, deadletter.ResolveManyParams{Filter: deadletter.Filter{OperationKeys: []string{"op-0"}}, DryRun: true})
	require.NoError(t, err)
	require.Len(t, dry.IDs, 2) // jobs 302, 304
	many, err := b.store.ResolveMany(ctx, deadletter.ResolveManyParams{Filter: deadletter.Filter{OperationKeys: []string{"op-0"}}, Note: "bulk"})
	require.NoError(t, err)
	require.Equal(t, dry.IDs, many.IDs)
	_, err = b.store.ResolveMany(ctx, deadletter.ResolveManyParams{})
	require.ErrorContains(t, err, "a note is required")

	// Purge: nothing is old enough yet; unresolved never goes.
	_, err = b.store.Purge(ctx, deadletter.PurgeParams{})
	require.ErrorIs(t, err, deadletter.ErrInvalid)
	p, err := b.store.Purge(ctx, deadletter.PurgeParams{OlderThan: time.Hour})
	require.NoError(t, err)
	require.Equal(t, int64(0), p.Total)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET dead_lettered_at = now() - interval '40 days', resolved_at = now() - interval '31 days' WHERE status = 'resolved' OR river_job_id = 301")
	require.NoError(t, err)
	dryP, err := b.store.Purge(ctx, deadletter.PurgeParams{OlderThan: 30 * 24 * time.Hour, DryRun: true})
	require.NoError(t, err)
	require.Equal(t, map[deadletter.Status]int64{deadletter.StatusResolved: 3, deadletter.StatusRetried: 0}, dryP.Purged)
	p, err = b.store.Purge(ctx, deadletter.PurgeParams{OlderThan: 30 * 24 * time.Hour})
	require.NoError(t, err)
	require.Equal(t, int64(3), p.Total)
	require.Equal(t, 2, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue"))
	require.Equal(t, 2, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'unresolved'"))
}

// A purged entry whose River job is still discarded is not brought back by
// the reconciliation.
func TestPurgedEntryStaysPurged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	client := startClient(t, b.pool, clientOpts{})
	res, err := client.Insert(ctx, failArgs{Mode: "error", Message: "x"}, &river.InsertOpts{MaxAttempts: 1})
	require.NoError(t, err)
	waitFinal(t, b.pool, res.Job.ID, "discarded")
	e := entriesOf(t, b.pool, res.Job.ID)[0]
	_, err = b.store.Resolve(ctx, deadletter.ResolveParams{ID: e.ID, Note: "n"})
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET dead_lettered_at = now() - interval '3 hours', resolved_at = now() - interval '2 hours' WHERE id = $1", e.ID)
	require.NoError(t, err)
	p, err := b.store.Purge(ctx, deadletter.PurgeParams{OlderThan: time.Hour})
	require.NoError(t, err)
	require.Equal(t, int64(1), p.Total)
	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue_purged"))

	rec := deadletter.NewReconciler(b.pool, nil)
	r, err := rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, r.Added)
	require.Empty(t, entriesOf(t, b.pool, res.Job.ID))
	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue_purged"))

	// Once River's cleaner removes the job, the tombstone goes too.
	_, err = b.pool.Exec(ctx, "DELETE FROM river_job WHERE id = $1", res.Job.ID)
	require.NoError(t, err)
	_, err = rec.RunOnce(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue_purged"))
}

func TestStats(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 6, "kind_s", "server_error", 100)
	insertEntries(t, b.pool, 2, "kind_t", "timeout", 200)
	_, err := b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET status = 'retried' WHERE river_job_id = 200 + 1")
	require.NoError(t, err)

	st, err := b.store.Stats(ctx, deadletter.StatsParams{})
	require.NoError(t, err)
	got := []string{}
	for _, g := range st.Groups {
		got = append(got, g.Kind+"|"+g.Class+"|"+g.Fingerprint+"|"+string(rune('0'+g.Count)))
	}
	// "boom 0", "boom 1" and "boom 2" are one fingerprint.
	require.Equal(t, []string{"kind_s|server_error|boom <n>|6", "kind_t|timeout|boom <n>|1"}, got)
	require.Equal(t, map[deadletter.Status]int64{deadletter.StatusUnresolved: 7, deadletter.StatusRetried: 1, deadletter.StatusResolved: 0}, st.ByStatus)
	require.NotNil(t, st.OldestUnresolvedAt)
	require.InDelta(t, 5, st.OldestUnresolvedAgeSeconds, 3) // insertEntries dates entry g at now - (n - g) s

	// A filter narrows the status counts and the oldest entry too.
	st, err = b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Kinds: []string{"kind_t"}}})
	require.NoError(t, err)
	require.Equal(t, map[deadletter.Status]int64{deadletter.StatusUnresolved: 1, deadletter.StatusRetried: 1, deadletter.StatusResolved: 0}, st.ByStatus)
	require.InDelta(t, 1, st.OldestUnresolvedAgeSeconds, 3)
	st, err = b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Classes: []string{"bad_request"}}})
	require.NoError(t, err)
	require.Equal(t, map[deadletter.Status]int64{deadletter.StatusUnresolved: 0, deadletter.StatusRetried: 0, deadletter.StatusResolved: 0}, st.ByStatus)
	require.Nil(t, st.OldestUnresolvedAt)
}

// CheckCursor accepts what List accepts as After ("" and the cursors it
// returns) and refuses anything else as List does, without a database.
func TestCheckCursor(t *testing.T) {
	t.Parallel()
	tests := []struct{ cursor, wantErr string }{
		{"", ""},
		{"id:1", ""},
		{"id:9223372036854775807", ""},
		{"garbage", `invalid parameter: cursor "garbage" is not one this API returned`},
		{"12", `invalid parameter: cursor "12" is not one this API returned`},
		{"id:", `invalid parameter: cursor "id:" is not one this API returned`},
		{"id:0", `invalid parameter: cursor "id:0" is not one this API returned`},
		{"id:-5", `invalid parameter: cursor "id:-5" is not one this API returned`},
		{"id:9223372036854775808", `invalid parameter: cursor "id:9223372036854775808" is not one this API returned`},
		{"id:1 ", `invalid parameter: cursor "id:1 " is not one this API returned`},
	}
	for _, tt := range tests {
		t.Run(tt.cursor, func(t *testing.T) {
			t.Parallel()
			err := deadletter.CheckCursor(tt.cursor)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, deadletter.ErrInvalid)
			require.EqualError(t, err, tt.wantErr)
		})
	}
}
