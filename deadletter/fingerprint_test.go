package deadletter_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/migrations"
)

// fingerprintCases are real-looking failure reasons and their exact
// fingerprints (rebound_failure_fingerprint, migrations/sql/012).
var fingerprintCases = []struct {
	name, reason, want string
}{
	// The example: one group for every upstream.
	{"ID in the text", "HTTP 503 from upstream 10005", "HTTP 503 from upstream <n>"},

	// Go net errors.
	{"dial refused", "dial tcp 10.0.0.5:443: connect: connection refused", "dial tcp <ip>:<n>: connect: connection refused"},
	{"reset", "read tcp 10.1.2.3:54321->10.0.0.5:443: read: connection reset by peer",
		"read tcp <ip>:<n>-><ip>:<n>: read: connection reset by peer"},
	{"IPv6 in brackets", "dial tcp [2001:db8::1]:443: connect: connection refused", "dial tcp [<ip>]:<n>: connect: connection refused"},
	{"IPv6 loopback", "dial tcp [::1]:5432: connect: connection refused", "dial tcp [<ip>]:<n>: connect: connection refused"},
	{"bare IPv6", "no route to fe80::1ff:fe23:4567:890a from here", "no route to <ip> from here"},
	{"DNS", "dial tcp: lookup api.example.com on 10.96.0.10:53: no such host",
		"dial tcp: lookup api.example.com on <ip>:<n>: no such host"},
	{"url.Error with query", `Get "https://api.example.com/v1/items?id=42&sig=abc": dial tcp 10.0.0.5:443: i/o timeout`,
		`Get "https://api.example.com/v1/items?<q>": dial tcp <ip>:<n>: i/o timeout`},
	{"client timeout", "GET https://api.example.com/health: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
		"GET https://api.example.com/health: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"},
	{"redirects", "GET https://a.example.com/loop: stopped after 10 redirects", "GET https://a.example.com/loop: stopped after <n> redirects"},

	// rebound's http_request: "METHOD URL: HTTP status text (Retry-After: v): body".
	{"http_request with body", `POST https://api.example.com/v1/orders/12345: HTTP 503 Service Unavailable (Retry-After: 30): {"error":"overloaded","request_id":"req_8f3a2b9c1d"}`,
		`POST https://api.example.com/v1/orders/<n>: HTTP 503 Service Unavailable (Retry-After: <n>): {"error":"<v>","request_id":"<v>"}`},
	{"http_request UUID path", "GET https://api.example.com/users/8f14e45f-ceea-467f-a0e6-1b2c3d4e5f60/avatar: HTTP 404 Not Found",
		"GET https://api.example.com/users/<uuid>/avatar: HTTP 404 Not Found"},
	{"http_request ID path", "POST https://hooks.example.com/services/T024BE7LD/B024BE7LH: HTTP 500 Internal Server Error: <html><body>oops</body></html>",
		"POST https://hooks.example.com/services/<id>/<id>: HTTP 500 Internal Server Error: <html><body>oops</body></html>"},
	{"http_request HTTP date", "PUT https://api.example.com/v2/files/a1b2c3d4e5f6: HTTP 429 Too Many Requests (Retry-After: Mon, 30 Nov 2026 08:00:00 GMT)",
		"PUT https://api.example.com/v2/files/<hex>: HTTP 429 Too Many Requests (Retry-After: <ts>)"},
	{"http_request JSON spaced", `POST https://pay.example.com/charge: HTTP 402 Payment Required: {"error": {"code": "card_declined", "amount": 1999, "email": "jane.doe+x@example.co.uk"}}`,
		`POST https://pay.example.com/charge: HTTP 402 Payment Required: {"error": {"code": "<v>", "amount": <n>, "email": "<v>"}}`},

	// pgx errors.
	{"pgx unique", `ERROR: duplicate key value violates unique constraint "orders_pkey" (SQLSTATE 23505)`,
		`ERROR: duplicate key value violates unique constraint "<v>" (SQLSTATE 23505)`},
	{"pgx SQLSTATE with letters", `ERROR: relation "orders_2026_11" does not exist (SQLSTATE 42P01)`,
		`ERROR: relation "<v>" does not exist (SQLSTATE 42P01)`},
	{"pgx connect", "failed to connect to `user=app database=orders`: 10.0.0.7:5432 (db.internal): dial error: dial tcp 10.0.0.7:5432: connect: connection refused",
		"failed to connect to `user=app database=orders`: <ip>:<n> (db.internal): dial error: dial tcp <ip>:<n>: connect: connection refused"},
	{"pgx timeout", "timeout: context deadline exceeded", "timeout: context deadline exceeded"},

	// River's prefix (the capture removes it too) and panics.
	{"JobCancelError", "JobCancelError: card declined for customer 'cus_NffrFeUfNV2Hib'", "card declined for customer '<v>'"},
	{"JobCancelError twice", "JobCancelError: JobCancelError: gone", "gone"},
	{"panic value", "runtime error: index out of range [5] with length 3", "runtime error: index out of range [<n>] with length <n>"},
	{"panic with stack", "panic: runtime error: invalid memory address or nil pointer dereference [recovered]\n" +
		"[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a2b3c]\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d",
		"panic: runtime error: invalid memory address or nil pointer dereference [recovered]"},
	{"pointer", "timeout after 1m30.5s waiting for job 0xc000123abc", "timeout after <dur> waiting for job <hex>"},

	// Cloud APIs.
	{"AWS", "operation error S3: GetObject, https response error StatusCode: 404, RequestID: 8A7B9C3D2E1F0A4B, HostID: Xy7zU8vK2m9p/Q4rT6wN1+bL3cD5eF7gH9jK0lM2nO4pQ6rS8tU0vW2xY4zA6bC8dE0fG=, api error NoSuchKey: The specified key does not exist.",
		"operation error S3: GetObject, https response error StatusCode: 404, RequestID: <hex>, HostID: <id>, api error NoSuchKey: The specified key does not exist."},
	{"AWS UUID request ID", "operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: 4d1bd0b2-8f1c-4a43-b3c6-6d6e2a1d4a5b, ConditionalCheckFailedException: The conditional request failed",
		"operation error DynamoDB: PutItem, https response error StatusCode: 400, RequestID: <uuid>, ConditionalCheckFailedException: The conditional request failed"},
	{"Stripe", "No such customer: cus_NffrFeUfNV2Hib; request-id: req_8mHlJ2w3ZvN7Xq", "No such customer: cus_<id>; request-id: req_<id>"},
	{"Stripe body", `{"error":{"code":"resource_missing","doc_url":"https://stripe.com/docs/error-codes/resource-missing","request_log_url":"https://dashboard.stripe.com/test/logs/req_8mHlJ2w3ZvN7Xq?t=1700000000"}}`,
		`{"error":{"code":"<v>","doc_url":"https://stripe.com/docs/error-codes/resource-missing","request_log_url":"https://dashboard.stripe.com/test/logs/req_<id>?<q>"}}`},

	// Timestamps, e-mail, quoting.
	{"RFC 3339", "tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time 2026-11-30T08:00:00Z is after 2026-10-01T00:00:00.123+02:00",
		"tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time <ts> is after <ts>"},
	{"Go time", "job scheduled at 2026-11-30 08:00:00.123456789 +0000 UTC is too old", "job scheduled at <ts> is too old"},
	{"date and time of day", "batch 2026-11-30 failed at 08:00:01", "batch <ts> failed at <ts>"},
	{"e-mail", "user jane.doe+test@example.co.uk not found", "user <email> not found"},
	{"Go %q", `strconv.Atoi: parsing "12a": invalid syntax`, `strconv.Atoi: parsing "<v>": invalid syntax`},
	{"escaped quotes", `bad value "say \"hi\"" here`, `bad value "<v>" here`},
	{"apostrophes", "can't parse 'x1' in user's input", "can't parse '<v>' in user's input"},
	{"kept words with digits", "sha256 mismatch for v1 over http2 (utf8mb4)", "sha256 mismatch for v1 over http2 (utf8mb4)"},
	{"status code", "unexpected status code 502 after 3 tries; status: 500; status=404", "unexpected status code 502 after <n> tries; status: 500; status=404"},
	{"decimals and versions", "took 1.25 of 2.0.1 budget", "took <n> of <n> budget"},

	// Form.
	{"blank lines first", "\n\n  \t HTTP   503\t\tfrom  upstream 7  \r\nsecond line", "HTTP 503 from upstream <n>"},
	{"CR line end", "first 1\rsecond 2", "first <n>"},
	{"empty", "", ""},
	{"blank", " \n\t ", ""},
	{"private-use characters dropped", "a\ue000b\ue001c 1", "abc <n>"},
	{"long: cut between words", strings.Repeat("abcdefghij ", 19) + "abcdefghijklmnopqrstuvwxyz 12345",
		strings.TrimSpace(strings.Repeat("abcdefghij ", 18))},
	{"long: one word", strings.Repeat("x", 300), "<id>"},
	{"long: cut inside a placeholder", strings.Repeat("ab ", 66) + "12345678", strings.TrimSpace(strings.Repeat("ab ", 66))},
	{"long: cut after a placeholder", strings.Repeat("ab ", 65) + "x 1 and more", strings.Repeat("ab ", 65) + "x <n>"},
}

func fingerprintOf(t testing.TB, pool *pgxpool.Pool, reason string) string {
	t.Helper()
	var fp string
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT rebound_failure_fingerprint($1)", reason).Scan(&fp))
	return fp
}

// The fingerprint of real-looking reasons, exactly; and it is its own
// fingerprint.
func TestFailureFingerprint(t *testing.T) {
	t.Parallel()
	pool := dbtest.Pool(t)
	for _, tt := range fingerprintCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := fingerprintOf(t, pool, tt.reason)
			require.Equal(t, tt.want, got)
			require.Equal(t, got, fingerprintOf(t, pool, got), "idempotent")
		})
	}
}

// Fuzz: the SQL function never raises, returns one line of at most 200
// characters, the same answer twice (deterministic) and its own
// fingerprint for its output (idempotent).
func FuzzFailureFingerprint(f *testing.F) {
	for _, tt := range fingerprintCases {
		f.Add(tt.reason)
	}
	for _, s := range []string{
		`{"a":"b","c":{"d":"e"}}`, `{"a" "b":1}`, `x "a, "k": 1`, `,"<v>"`, `{"abc"`, `"https://x/y": "z"`,
		"https://x/y?<", "https://x/y?", "::", "a::b", "1:2:3:4:5:6:7:8", "[::]", "0x", "=", strings.Repeat("a1", 120),
		"HTTP 5031234", "status code", "'", "''", `"`, `\"`, "µs 5µs", "2026-13-45T99:99:99Z", "1.2.3.4.5",
	} {
		f.Add(s)
	}
	pool := dbtest.Pool(f)
	f.Fuzz(func(t *testing.T, reason string) {
		// PostgreSQL text holds valid UTF-8 without NUL: what reaches the
		// column always is (River and rebound sanitise error text).
		reason = strings.ReplaceAll(strings.ToValidUTF8(reason, "\uFFFD"), "\x00", "")
		fp := fingerprintOf(t, pool, reason)
		require.LessOrEqual(t, utf8.RuneCountInString(fp), 200)
		require.NotContains(t, fp, "\n")
		require.Equal(t, fp, fingerprintOf(t, pool, reason), "deterministic")
		require.Equal(t, fp, fingerprintOf(t, pool, fp), "idempotent for %q", reason)
	})
}

// A job that dies through River gets its fingerprint from the capture
// trigger, and one the reconciliation adds gets the same.
func TestCaptureStoresFingerprint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	client := startClient(t, b.pool, clientOpts{})
	res, err := client.Insert(ctx, failArgs{Mode: "cancel", Message: "HTTP 503 from upstream 10005"}, nil)
	require.NoError(t, err)
	waitFinal(t, b.pool, res.Job.ID, "cancelled")
	entries := entriesOf(t, b.pool, res.Job.ID)
	require.Len(t, entries, 1)
	require.Equal(t, "HTTP 503 from upstream <n>", entries[0].FailureFingerprint)

	// Without the trigger the reconciliation writes the row, through the
	// same capture function: the same fingerprint.
	_, err = b.pool.Exec(ctx, "ALTER TABLE river_job DISABLE TRIGGER rebound_dead_letter_capture")
	require.NoError(t, err)
	res, err = client.Insert(ctx, failArgs{Mode: "cancel", Message: "JobCancelError: HTTP 503 from upstream 20007"}, nil)
	require.NoError(t, err)
	waitFinal(t, b.pool, res.Job.ID, "cancelled")
	require.Empty(t, entriesOf(t, b.pool, res.Job.ID))
	rec, err := deadletter.NewReconciler(b.pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	require.Len(t, rec.Added, 1)
	entries = entriesOf(t, b.pool, res.Job.ID)
	require.Len(t, entries, 1)
	require.Equal(t, "HTTP 503 from upstream <n>", entries[0].FailureFingerprint)
}

// The capture trigger on river_job never raises, and a fingerprint that
// fails never costs a row: with rebound_failure_fingerprint broken, dying
// jobs still get their entries (the reason's first line stands in for the
// fingerprint), healthy jobs on the same client complete, nothing stays
// running.
func TestBrokenFingerprintNeverStopsCapture(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `CREATE OR REPLACE FUNCTION rebound_failure_fingerprint(p_reason text) RETURNS text
		LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RAISE EXCEPTION 'fingerprint broken on purpose'; END $$`)
	require.NoError(t, err)

	client := startClient(t, b.pool, clientOpts{})
	params := []river.InsertManyParams{
		{Args: failArgs{Mode: "cancel", Message: "  HTTP 503 from upstream 10005\nsecond line"}},
		{Args: failArgs{Mode: "error", Message: "boom 1"}, InsertOpts: &river.InsertOpts{MaxAttempts: 1}},
	}
	for range 6 {
		params = append(params, river.InsertManyParams{Args: failArgs{Mode: "ok"}})
	}
	inserted, err := client.InsertMany(ctx, params)
	require.NoError(t, err)
	waitFinal(t, b.pool, inserted[0].Job.ID, "cancelled")
	waitFinal(t, b.pool, inserted[1].Job.ID, "discarded")
	for _, r := range inserted[2:] {
		waitFinal(t, b.pool, r.Job.ID, "completed")
	}
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job WHERE state = 'running'"))
	for i, want := range []string{"HTTP 503 from upstream 10005", "boom 1"} {
		entries := entriesOf(t, b.pool, inserted[i].Job.ID)
		require.Len(t, entries, 1)
		require.Equal(t, want, entries[0].FailureFingerprint)
	}
	rec, err := deadletter.NewReconciler(b.pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, rec.Added, "the trigger wrote every row")
	require.Empty(t, rec.Failed)
}

// Migration 012 fills the fingerprint of rows written before it, makes the
// column a plain NOT NULL one (no generation expression left), counts the
// groups, and from then on every row gets one when it is written.
func TestMigrationFillsFingerprints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// Back to just before the migration.
	_, err := b.pool.Exec(ctx, `DELETE FROM rebound_migration WHERE name = 'dead_letter_fingerprint';
		DROP TABLE job_dead_letter_queue_group_counts;
		DROP TRIGGER rebound_dead_letter_group_count_insert ON job_dead_letter_queue;
		DROP TRIGGER rebound_dead_letter_group_count_update ON job_dead_letter_queue;
		DROP TRIGGER rebound_dead_letter_group_count_delete ON job_dead_letter_queue;
		DROP FUNCTION rebound_dead_letter_group_count_insert();
		DROP FUNCTION rebound_dead_letter_group_count_update();
		DROP FUNCTION rebound_dead_letter_group_count_delete();
		DROP TRIGGER rebound_dead_letter_fingerprint ON job_dead_letter_queue;
		DROP FUNCTION rebound_dead_letter_fingerprint();
		ALTER TABLE job_dead_letter_queue DROP COLUMN failure_fingerprint;
		DROP FUNCTION rebound_failure_fingerprint_safe(text, bigint);
		DROP FUNCTION rebound_failure_fingerprint(text);
		DROP FUNCTION rebound_failure_fingerprint_id(text)`)
	require.NoError(t, err)
	_, err = b.pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason)
		SELECT g, 1, 3, 'k', 'default', 1, 'discarded', '{}', 'server_error',
		       CASE WHEN g % 2 = 0 THEN 'HTTP 503 from upstream ' || g ELSE 'job ' || md5(g::text)::uuid || ' timed out' END
		FROM generate_series(1, 24000) g;
		DELETE FROM job_dead_letter_queue WHERE river_job_id BETWEEN 5000 AND 9000`)
	require.NoError(t, err)

	m, err := migrations.New(b.pool, nil)
	require.NoError(t, err)
	applied, err := m.Up(ctx)
	require.NoError(t, err)
	require.Len(t, applied, 1)
	require.Equal(t, "dead_letter_fingerprint", applied[0].Name)
	require.NoError(t, m.Check(ctx))

	rows, err := b.pool.Query(ctx, "SELECT failure_fingerprint, count(*) FROM job_dead_letter_queue GROUP BY 1 ORDER BY 1")
	require.NoError(t, err)
	type group struct {
		Fingerprint string
		N           int
	}
	groups, err := pgx.CollectRows(rows, pgx.RowToStructByPos[group])
	require.NoError(t, err)
	require.Equal(t, []group{{"HTTP 503 from upstream <n>", 9999}, {"job <uuid> timed out", 10000}}, groups)
	// The group counts start from the same numbers.
	rows, err = b.pool.Query(ctx, `SELECT failure_fingerprint, sum(n)::int FROM job_dead_letter_queue_group_counts
		WHERE status = 'unresolved' AND kind = 'k' AND failure_class = 'server_error' GROUP BY 1 ORDER BY 1`)
	require.NoError(t, err)
	counted, err := pgx.CollectRows(rows, pgx.RowToStructByPos[group])
	require.NoError(t, err)
	require.Equal(t, groups, counted)
	var generated, nullable string
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT is_generated, is_nullable FROM information_schema.columns
		WHERE table_name = 'job_dead_letter_queue' AND column_name = 'failure_fingerprint'`).Scan(&generated, &nullable))
	require.Equal(t, []string{"NEVER", "NO"}, []string{generated, nullable})

	insertReasons(t, b.pool, "k", "timeout", 100_000, "GET https://x.example.com/a?b=c: EOF")
	e, err := b.store.Get(ctx, entryID(t, b.pool, 100_001))
	require.NoError(t, err)
	require.Equal(t, "GET https://x.example.com/a?<q>: EOF", e.FailureFingerprint)
	_, err = b.pool.Exec(ctx, "INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason, failure_fingerprint) VALUES (1, 2, 3, 'k', 'q', 1, 'discarded', '{}', 'x', 'HTTP 500 from 9', NULL)")
	require.NoError(t, err, "the trigger fills the column even when NULL is given")
}
