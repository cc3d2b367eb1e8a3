package deadletter_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
)

// insertReasons adds one unresolved entry per reason straight into the
// table, River job IDs firstJobID+1, +2, ..., dead-lettered one second
// apart in that order (the last one now).
func insertReasons(t *testing.T, pool *pgxpool.Pool, kind, class string, firstJobID int64, reasons ...string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason, operation_key, dead_lettered_at)
		SELECT $1 + o, 1, 3, $2, 'default', 1, 'discarded', '{}', $3, r, 'op', now() - make_interval(secs => $4 - o)
		FROM unnest($5::text[]) WITH ORDINALITY AS u(r, o)`, firstJobID, kind, class, len(reasons), reasons)
	require.NoError(t, err)
}

// fingerprintID is the ID rule computed in Go: the first 12 hex digits of
// the SHA-256 of the fingerprint.
func fingerprintID(fp string) string {
	sum := sha256.Sum256([]byte(fp))
	return hex.EncodeToString(sum[:])[:12]
}

func numbered(format string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, from+i)
	}
	return out
}

// entryID returns the entry of River job jobID.
func entryID(t *testing.T, pool *pgxpool.Pool, jobID int64) int64 {
	t.Helper()
	var id int64
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT id FROM job_dead_letter_queue WHERE river_job_id = $1", jobID).Scan(&id))
	return id
}

// seedClusters writes four groups: 5 + 3 + 2 + 1 unresolved entries, and a
// retried one.
func seedClusters(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	insertReasons(t, pool, "http_request", "server_error", 100, numbered("HTTP 503 from upstream %d", 10001, 5)...)
	insertReasons(t, pool, "http_request", "network", 200, numbered("dial tcp 10.0.0.%d:443: connect: connection refused", 1, 3)...)
	insertReasons(t, pool, "db_write", "unknown", 300,
		`ERROR: duplicate key value violates unique constraint "orders_pkey" (SQLSTATE 23505)`,
		`ERROR: duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)`)
	insertReasons(t, pool, "webhook", "server_error", 400, "HTTP 503 from upstream 7")
	insertReasons(t, pool, "http_request", "server_error", 500, "HTTP 503 from upstream 1")
	_, err := pool.Exec(context.Background(), "UPDATE job_dead_letter_queue SET status = 'retried' WHERE river_job_id = 501")
	require.NoError(t, err)
}

// 200,000 reasons that differ only in an ID were 200,000 groups of one:
// now they are one group, the largest first, the top N shown with how many
// were left out, one example each.
func TestStatsGroupsByFingerprint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	seedClusters(t, b.pool)

	st, err := b.store.Stats(ctx, deadletter.StatsParams{Top: 2})
	require.NoError(t, err)
	require.Len(t, st.Groups, 2)
	g := st.Groups[0]
	require.Equal(t, "HTTP 503 from upstream <n>", g.Fingerprint)
	require.Equal(t, fingerprintID("HTTP 503 from upstream <n>"), g.FingerprintID)
	require.Equal(t, "http_request", g.Kind)
	require.Equal(t, "server_error", g.Class)
	require.Equal(t, int64(5), g.Count)
	require.Equal(t, entryID(t, b.pool, 105), g.ExampleEntryID, "the newest entry")
	require.Equal(t, "HTTP 503 from upstream 10005", g.ExampleReason)
	require.Equal(t, 4*time.Second, g.Last.Sub(g.First))
	g = st.Groups[1]
	require.Equal(t, "dial tcp <ip>:<n>: connect: connection refused", g.Fingerprint)
	require.Equal(t, []any{"network", int64(3), "dial tcp 10.0.0.3:443: connect: connection refused"}, []any{g.Class, g.Count, g.ExampleReason})
	require.Equal(t, int64(4), st.TotalGroups)
	require.Equal(t, int64(2), st.MoreGroups)
	require.Equal(t, int64(3), st.MoreEntries)
	require.Equal(t, int64(11), st.Entries)
	require.Equal(t, map[string]int64{"http_request": 8, "db_write": 2, "webhook": 1}, st.ByKind)
	require.Equal(t, map[string]int64{"server_error": 6, "network": 3, "unknown": 2}, st.ByClass)
	require.Equal(t, map[deadletter.Status]int64{deadletter.StatusUnresolved: 11, deadletter.StatusRetried: 1, deadletter.StatusResolved: 0}, st.ByStatus)

	// The default shows up to 20: all four, by count, then kind.
	st, err = b.store.Stats(ctx, deadletter.StatsParams{})
	require.NoError(t, err)
	got := []string{}
	for _, g := range st.Groups {
		got = append(got, fmt.Sprintf("%d %s %s %s", g.Count, g.Kind, g.Class, g.Fingerprint))
	}
	require.Equal(t, []string{
		"5 http_request server_error HTTP 503 from upstream <n>",
		"3 http_request network dial tcp <ip>:<n>: connect: connection refused",
		`2 db_write unknown ERROR: duplicate key value violates unique constraint "<v>" (SQLSTATE 23505)`,
		"1 webhook server_error HTTP 503 from upstream <n>",
	}, got)
	require.Zero(t, st.MoreGroups)
	require.Zero(t, st.MoreEntries)

	// Statuses select the groups too.
	st, err = b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Statuses: []deadletter.Status{deadletter.StatusRetried}}})
	require.NoError(t, err)
	require.Len(t, st.Groups, 1)
	require.Equal(t, []any{int64(1), "HTTP 503 from upstream 1"}, []any{st.Groups[0].Count, st.Groups[0].ExampleReason})

	// Nothing selected: no groups, zero totals.
	st, err = b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Kinds: []string{"none"}}})
	require.NoError(t, err)
	require.Equal(t, []deadletter.StatsGroup{}, st.Groups)
	require.Equal(t, []int64{0, 0, 0, 0}, []int64{st.TotalGroups, st.MoreGroups, st.Entries, st.MoreEntries})
	require.Equal(t, map[string]int64{}, st.ByKind)
	require.Equal(t, map[string]int64{}, st.ByClass)

	for _, top := range []int{-1, 1001} {
		_, err := b.store.Stats(ctx, deadletter.StatsParams{Top: top})
		require.ErrorIs(t, err, deadletter.ErrInvalid)
		require.ErrorContains(t, err, fmt.Sprintf("top %d is not between 1 and 1000", top))
	}
}

// A fingerprint selects its group: by ID (any case), by the fingerprint,
// or by any reason that has it; in stats, list, retry and resolve.
func TestFilterByFingerprint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	seedClusters(t, b.pool)
	http503 := fingerprintID("HTTP 503 from upstream <n>")
	dial := fingerprintID("dial tcp <ip>:<n>: connect: connection refused")

	tests := []struct {
		name         string
		fingerprints []string
		wantJobs     []int64
	}{
		{"ID", []string{http503}, []int64{501, 401, 105, 104, 103, 102, 101}},
		{"ID in capitals", []string{strings.ToUpper(dial)}, []int64{203, 202, 201}},
		{"two IDs", []string{dial, http503}, []int64{501, 401, 203, 202, 201, 105, 104, 103, 102, 101}},
		{"fingerprint", []string{`ERROR: duplicate key value violates unique constraint "<v>" (SQLSTATE 23505)`}, []int64{302, 301}},
		{"a reason", []string{"dial tcp 192.168.1.1:8443: connect: connection refused"}, []int64{203, 202, 201}},
		{"ID and reason", []string{http503, `ERROR: duplicate key value violates unique constraint "x" (SQLSTATE 23505)`},
			[]int64{501, 401, 302, 301, 105, 104, 103, 102, 101}},
		{"unknown ID", []string{"000000000000"}, []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := b.store.List(ctx, deadletter.ListParams{Filter: deadletter.Filter{Fingerprints: tt.fingerprints}})
			require.NoError(t, err)
			got := []int64{}
			for _, e := range res.Entries {
				got = append(got, e.RiverJobID)
			}
			require.Equal(t, tt.wantJobs, got)
		})
	}

	// Stats of one group.
	st, err := b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Fingerprints: []string{http503}, Kinds: []string{"http_request"}}})
	require.NoError(t, err)
	require.Len(t, st.Groups, 1)
	require.Equal(t, int64(5), st.Groups[0].Count)
	require.Equal(t, map[deadletter.Status]int64{deadletter.StatusUnresolved: 5, deadletter.StatusRetried: 1, deadletter.StatusResolved: 0}, st.ByStatus)

	// A bulk retry and a bulk resolve take one group.
	dry, err := b.store.RetryMany(ctx, deadletter.RetryManyParams{Filter: deadletter.Filter{Fingerprints: []string{dial}}, DryRun: true})
	require.NoError(t, err)
	require.Len(t, dry.Retried, 3)
	res, err := b.store.ResolveMany(ctx, deadletter.ResolveManyParams{Filter: deadletter.Filter{Fingerprints: []string{http503}}, Note: "upstream fixed", By: "dana"})
	require.NoError(t, err)
	require.Len(t, res.IDs, 6, "unresolved entries of both kinds")
	require.Equal(t, 6, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'"))
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved' AND failure_reason NOT LIKE 'HTTP 503 from upstream %'"))

	for _, tt := range []struct{ value, want string }{
		{"", "fingerprint is empty"},
		{"  ", "fingerprint is empty"},
		{"a\x00b", "fingerprint contains a NUL byte"},
		{"a\xffb", "fingerprint is not valid UTF-8"},
	} {
		_, err := b.store.List(ctx, deadletter.ListParams{Filter: deadletter.Filter{Fingerprints: []string{tt.value}}})
		require.ErrorIs(t, err, deadletter.ErrInvalid)
		require.ErrorContains(t, err, tt.want)
		_, err = b.store.ResolveMany(ctx, deadletter.ResolveManyParams{Filter: deadletter.Filter{Fingerprints: []string{tt.value}}, Note: "x"})
		require.ErrorIs(t, err, deadletter.ErrInvalid)
	}
	require.Equal(t, 6, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'"), "refused filters change nothing")
}

// An entry carries its fingerprint and ID; a fingerprint set by hand is
// computed again from the reason.
func TestEntryFingerprint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertReasons(t, b.pool, "k", "timeout", 10, "GET https://api.example.com/v1/items/42?page=3: context deadline exceeded")
	id := entryID(t, b.pool, 11)
	e, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, "GET https://api.example.com/v1/items/<n>?<q>: context deadline exceeded", e.FailureFingerprint)
	require.Equal(t, fingerprintID(e.FailureFingerprint), e.FailureFingerprintID)

	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET failure_fingerprint = 'made up' WHERE id = $1", id)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET failure_reason = 'HTTP 500 at 2026-11-30T08:00:00Z' WHERE id = $1", id)
	require.NoError(t, err)
	rows, err := b.pool.Query(ctx, "SELECT failure_fingerprint FROM job_dead_letter_queue WHERE id = $1", id)
	require.NoError(t, err)
	fp, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Equal(t, "HTTP 500 at <ts>", fp)
}

// /api/admin/dlq/stats takes top= and fingerprint=; the bulk routes take
// "fingerprints"; bad values are a 400 that changes nothing.
func TestAdminAPIStatsTopAndFingerprint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	seedClusters(t, b.pool)
	srv := apiServer(t, b, "tok")
	auth := "Bearer tok"
	http503 := fingerprintID("HTTP 503 from upstream <n>")

	code, body := call(t, srv, "GET", deadletter.APIPath+"/stats?top=1", auth, "")
	require.Equal(t, 200, code, body)
	var st deadletter.Stats
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Len(t, st.Groups, 1)
	require.Equal(t, []any{http503, "HTTP 503 from upstream <n>", int64(5), "HTTP 503 from upstream 10005"},
		[]any{st.Groups[0].FingerprintID, st.Groups[0].Fingerprint, st.Groups[0].Count, st.Groups[0].ExampleReason})
	require.Equal(t, []int64{4, 3, 6, 11}, []int64{st.TotalGroups, st.MoreGroups, st.MoreEntries, st.Entries})
	for _, field := range []string{"fingerprint_id", "fingerprint", "example_entry_id", "example_reason", "total_groups",
		"more_groups", "more_entries", "entries", "by_kind", "by_class", "by_status"} {
		require.Contains(t, body, `"`+field+`": `)
	}

	code, body = call(t, srv, "GET", deadletter.APIPath+"/stats?fingerprint="+http503+"&kind=webhook", auth, "")
	require.Equal(t, 200, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &st))
	require.Len(t, st.Groups, 1)
	require.Equal(t, []any{"webhook", int64(1)}, []any{st.Groups[0].Kind, st.Groups[0].Count})

	code, body = call(t, srv, "GET", deadletter.APIPath+"?fingerprint="+url.QueryEscape("dial tcp 192.168.7.7:1: connect: connection refused"), auth, "")
	require.Equal(t, 200, code, body)
	var list deadletter.ListResult
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Entries, 3)
	require.Equal(t, "dial tcp <ip>:<n>: connect: connection refused", list.Entries[0].FailureFingerprint)

	code, body = call(t, srv, "POST", deadletter.APIPath+"/resolve", auth, `{"all":true,"fingerprints":["`+http503+`"],"kinds":["http_request"],"note":"fixed"}`)
	require.Equal(t, 200, code, body)
	require.JSONEq(t, `{"dry_run":false,"ids":[`+itoa(entryID(t, b.pool, 101))+`,`+itoa(entryID(t, b.pool, 102))+`,`+itoa(entryID(t, b.pool, 103))+
		`,`+itoa(entryID(t, b.pool, 104))+`,`+itoa(entryID(t, b.pool, 105))+`]}`, body)
	code, body = call(t, srv, "POST", deadletter.APIPath+"/retry", auth, `{"all":true,"fingerprints":["`+strings.ToUpper(http503)+`"],"dry_run":true}`)
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"entry_id": `+itoa(entryID(t, b.pool, 401)))
	require.Equal(t, 1, strings.Count(body, `"entry_id"`))

	tests := []struct{ name, method, path, body, wantErr string }{
		{"top zero", "GET", "/stats?top=0", "", `top "0" is not a number between 1 and 1000`},
		{"top too large", "GET", "/stats?top=1001", "", `top "1001" is not a number between 1 and 1000`},
		{"top not a number", "GET", "/stats?top=ten", "", `top "ten" is not a number between 1 and 1000`},
		{"top on the list", "GET", "?top=5", "", `unknown query parameter "top" (known: kind, class, status, operation_key, fingerprint, since, until, after, limit)`},
		{"limit on stats", "GET", "/stats?limit=5", "", `unknown query parameter "limit" (known: kind, class, status, operation_key, fingerprint, since, until, top)`},
		{"empty fingerprint", "GET", "/stats?fingerprint=", "", "fingerprint is empty"},
		{"NUL in fingerprint", "GET", "?fingerprint=a%00b", "", "fingerprint contains a NUL byte"},
		{"invalid UTF-8 in fingerprint", "GET", "?fingerprint=a%FFb", "", "fingerprint is not valid UTF-8"},
		{"NUL in bulk fingerprints", "POST", "/resolve", `{"all":true,"fingerprints":["a\u0000"],"note":"x"}`, "fingerprint contains a NUL byte"},
		{"fingerprints not an array", "POST", "/retry", `{"all":true,"fingerprints":"abc"}`, `"fingerprints" must be an array of strings, not a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, srv, tt.method, deadletter.APIPath+tt.path, auth, tt.body)
			require.Equal(t, 400, code, body)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Contains(t, e.Error, tt.wantErr)
		})
	}
	require.Equal(t, 5, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'"))
}

// The group counts the triggers keep stay equal to the entries through
// inserts, status changes, reason changes, deletes and the reconciliation's
// fold: stats read from them give what a pass over the entries gives.
func TestStatsGroupCountsStayExact(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	seedClusters(t, b.pool)
	longAgo := time.Now().Add(-365 * 24 * time.Hour)

	check := func(step string) {
		t.Helper()
		for _, statuses := range [][]deadletter.Status{nil, {deadletter.StatusRetried}, {deadletter.StatusResolved},
			{deadletter.StatusUnresolved, deadletter.StatusResolved}} {
			// From the group counts (no time range) and from the entries.
			counted, err := b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Statuses: statuses}, Top: 1000})
			require.NoError(t, err)
			scanned, err := b.store.Stats(ctx, deadletter.StatsParams{Filter: deadletter.Filter{Statuses: statuses, Since: longAgo}, Top: 1000})
			require.NoError(t, err)
			counted.OldestUnresolvedAgeSeconds, scanned.OldestUnresolvedAgeSeconds = 0, 0
			require.Equal(t, scanned, counted, "%s, statuses %v", step, statuses)

			if len(statuses) == 0 {
				statuses = []deadletter.Status{deadletter.StatusUnresolved}
			}
			rows, err := b.pool.Query(ctx, `SELECT failure_fingerprint || ' ' || kind || ' ' || failure_class || ' ' || count(*)
				FROM job_dead_letter_queue WHERE status = ANY($1) GROUP BY failure_fingerprint, kind, failure_class
				ORDER BY count(*) DESC, kind, failure_class, failure_fingerprint`, statuses)
			require.NoError(t, err)
			want, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			got := []string{}
			for _, g := range counted.Groups {
				got = append(got, fmt.Sprintf("%s %s %s %d", g.Fingerprint, g.Kind, g.Class, g.Count))
			}
			require.Equal(t, append([]string{}, want...), got, "%s, statuses %v", step, statuses)
		}
	}
	check("seeded")

	http503 := fingerprintID("HTTP 503 from upstream <n>")
	_, err := b.store.ResolveMany(ctx, deadletter.ResolveManyParams{Filter: deadletter.Filter{Fingerprints: []string{http503}, Kinds: []string{"http_request"}}, Note: "fixed"})
	require.NoError(t, err)
	check("resolved a group")
	_, err = b.pool.Exec(ctx, "UPDATE job_dead_letter_queue SET failure_reason = 'HTTP 502 from upstream 9' WHERE river_job_id IN (201, 202)")
	require.NoError(t, err)
	check("reasons changed")
	insertReasons(t, b.pool, "http_request", "network", 1000, numbered("dial tcp 10.1.1.%d:443: connect: connection refused", 1, 250)...)
	_, err = b.pool.Exec(ctx, "DELETE FROM job_dead_letter_queue WHERE river_job_id IN (301, 1001, 1002)")
	require.NoError(t, err)
	check("inserted and deleted")

	_, err = deadletter.NewReconciler(b.pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	check("folded")
	require.Equal(t,
		count(t, b.pool, "SELECT count(*) FROM (SELECT DISTINCT status, failure_fingerprint, kind, failure_class FROM job_dead_letter_queue) d"),
		count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue_group_counts"), "one row per group after a fold")
}
