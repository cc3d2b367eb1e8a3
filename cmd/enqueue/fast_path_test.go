package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// fastPathLines is four COPY batches: lines 1-2500 (firstCopyBatchSize),
// 2501-7500, 7501-17500 (copyBatchSize) and 17501-20500, so a failure in
// the last batch must undo the first three.
const fastPathLines = 2*copyBatchSize + 500

// refuseURL gives db's river_job a trigger of the test's own that refuses
// a row whose args.url is url with message, as a constraint would: at the
// row's insert, or, when atCommit, at the COMMIT (a deferred constraint
// trigger).
func refuseURL(t *testing.T, db *dbtest.Database, url, message string, atCommit bool) {
	t.Helper()
	trigger := "CREATE TRIGGER refuse_url BEFORE INSERT ON river_job FOR EACH ROW EXECUTE FUNCTION refuse_url()"
	if atCommit {
		trigger = "CREATE CONSTRAINT TRIGGER refuse_url AFTER INSERT ON river_job DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_url()"
	}
	_, err := db.Pool.Exec(context.Background(), fmt.Sprintf(`
CREATE FUNCTION refuse_url() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.args->>'url' = %s THEN RAISE EXCEPTION %s; END IF;
	RETURN NEW;
END $$;
%s;`, quoteLiteral(url), quoteLiteral(message), trigger))
	require.NoError(t, err)
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// startFromStdin starts bin (enqueue) as `http_request --file -` against
// db, its standard input a pipe the test writes, its output collected.
func startFromStdin(ctx context.Context, t *testing.T, bin string, db *dbtest.Database) (*exec.Cmd, io.WriteCloser, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "http_request", "--file", "-")
	cmd.Env = []string{"DATABASE_URL=" + db.URL}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	return cmd, stdin, &stdout, &stderr
}

func manyLines(n int, last string) string {
	var b strings.Builder
	for i := range n - 1 {
		fmt.Fprintf(&b, `{"url": "http://127.0.0.1:9/hook/%d", "body": {"n": %d}, "operation_key": "k%d"}`+"\n", i%7, i, i%3)
	}
	b.WriteString(last + "\n")
	return b.String()
}

func jobCount(t *testing.T, db *dbtest.Database) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
	return n
}

// The fast path (a --file without --json: COPY, several batches in one
// transaction) refuses bad input as the ID-returning path does, naming the
// line, and leaves the job table as it was: a bad last line is found before
// anything is written, and a row the database refuses in the third batch
// undoes the first two.
func TestFastPathBadInputInsertsNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	seed := proctest.Run(t, env, "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/seed"}`)
	require.Equal(t, 0, seed.ExitCode, seed.Stderr)
	refuseURL(t, db, "http://127.0.0.1:9/boom", "boom refused", false)

	ok := `{"url": "http://127.0.0.1:9/ok"}`
	tests := []struct {
		name    string
		first   string // the first line, when not manyLines'
		last    string
		wantErr string
	}{
		{name: "NUL on the last line", last: `{"url": "http://127.0.0.1:9/a", "body": {"name": "a\u0000b"}}`,
			wantErr: fmt.Sprintf("line %d: invalid args: args.body.name: contains a NUL character (\\u0000), which PostgreSQL cannot store (nothing inserted)", fastPathLines)},
		{name: "invalid UTF-8 on the last line", last: "{\"url\": \"http://127.0.0.1:9/caf\xe9\"}",
			wantErr: fmt.Sprintf("line %d: invalid args: args.url: contains invalid UTF-8 (byte 0xe9), which PostgreSQL cannot store (nothing inserted)", fastPathLines)},
		{name: "refused by the database in the last batch", last: `{"url": "http://127.0.0.1:9/boom"}`,
			wantErr: "enqueue: insert lines 17501-20500: ERROR: boom refused"},
		// The next batches are being prepared, or wait to be copied, when
		// the first fails: they copy nothing and the first's error is told.
		{name: "refused by the database in the first batch", first: `{"url": "http://127.0.0.1:9/boom"}`, last: ok,
			wantErr: "enqueue: insert lines 1-2500: ERROR: boom refused"},
	}
	for _, tt := range tests {
		input := manyLines(fastPathLines, tt.last)
		if tt.first != "" {
			input = tt.first + "\n" + manyLines(fastPathLines-1, tt.last)
		}
		res := proctest.Run(t, env, "enqueue", "http_request", "--file", writeFile(t, input))
		require.Equal(t, 1, res.ExitCode, "%s: %s", tt.name, res.Stderr)
		require.Contains(t, res.Stderr, tt.wantErr, tt.name)
		require.Contains(t, res.Stderr, "(nothing inserted)", tt.name)
		require.Empty(t, res.Stdout, tt.name)
		require.Equal(t, 1, jobCount(t, db), "%s: only the seed job", tt.name)
	}
}

// The fast path and --json insert the same rows: the same args, metadata
// (operation key stamped), kind, queue, priority, max attempts, state and
// tags; --json prints every inserted ID, and the fast path says how many
// without IDs. The input spans three COPY batches, whose rows come in the
// input's order.
func TestFastPathAndJSONInsertIdenticalRows(t *testing.T) {
	t.Parallel()
	const n = fastPathLines
	file := writeFile(t, manyLines(n, `{"url": "http://127.0.0.1:9/last", "method": "PUT", "headers": {"X-A": "1"}, "timeout_seconds": 2.5}`))
	flags := []string{"--queue", "webhooks", "--priority", "3", "--max-attempts", "9"}
	rows := func(db *dbtest.Database) []string {
		r, err := db.Pool.Query(context.Background(), `
SELECT concat_ws(' | ', args::text, metadata::text, kind, queue, priority, max_attempts, state, tags::text, attempt, scheduled_at <= now())
FROM river_job ORDER BY id`)
		require.NoError(t, err)
		var out []string
		for r.Next() {
			var s string
			require.NoError(t, r.Scan(&s))
			out = append(out, s)
		}
		require.NoError(t, r.Err())
		return out
	}

	fastDB := dbtest.New(t)
	fast := proctest.Run(t, []string{"DATABASE_URL=" + fastDB.URL}, "enqueue", append([]string{"http_request", "--file", file}, flags...)...)
	require.Equal(t, 0, fast.ExitCode, fast.Stderr)
	require.Regexp(t, fmt.Sprintf(`^inserted %d http_request job\(s\) into queue webhooks( in [0-9.]+m?s)?\n$`, n), fast.Stdout)

	jsonDB := dbtest.New(t)
	withIDs := proctest.Run(t, []string{"DATABASE_URL=" + jsonDB.URL}, "enqueue", append([]string{"http_request", "--file", file, "--json"}, flags...)...)
	require.Equal(t, 0, withIDs.ExitCode, withIDs.Stderr)
	var out result
	require.NoError(t, json.Unmarshal([]byte(withIDs.Stdout), &out))
	require.Equal(t, n, out.Inserted)
	require.Len(t, out.IDs, n)
	var matching int
	require.NoError(t, jsonDB.Pool.QueryRow(context.Background(), "SELECT count(DISTINCT id) FROM river_job WHERE id = ANY($1)", out.IDs).Scan(&matching))
	require.Equal(t, n, matching, "every printed ID is a row")

	fastRows, jsonRows := rows(fastDB), rows(jsonDB)
	require.Len(t, fastRows, n)
	require.Equal(t, jsonRows, fastRows)
	require.Equal(t, `{"url": "http://127.0.0.1:9/hook/0", "body": {"n": 0}, "operation_key": "k0"} | {"operation_key": "k0"} | http_request | webhooks | 3 | 9 | available | {} | 0 | t`, fastRows[0])
	require.Equal(t, `{"url": "http://127.0.0.1:9/last", "method": "PUT", "headers": {"X-A": "1"}, "timeout_seconds": 2.5} | {"operation_key": "127.0.0.1:9"} | http_request | webhooks | 3 | 9 | available | {} | 0 | t`, fastRows[n-1])
}

// copyingLocks counts the RowExclusiveLocks on river_job held by sessions
// other than the test's own: an open transaction that has copied rows into
// it and not ended yet.
const copyingLocks = `
SELECT count(*) FROM pg_locks
WHERE locktype = 'relation' AND relation = 'river_job'::regclass AND mode = 'RowExclusiveLock' AND granted
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND pid <> pg_backend_pid()`

// The fast path starts copying while later lines are still being read and
// validated; a bad line (or a line over 10 MiB) that comes after the first
// COPY batch is already in the transaction still inserts nothing, with the
// same error as when every line was validated before inserting. The input
// comes on stdin, and the test holds back the lines after the first batch
// until that batch has been copied (the enqueue session holds a row lock
// on river_job), so the bad line is always read after a COPY.
func TestFastPathBadLineAfterFirstCopyInsertsNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	bin := proctest.Bin(t, "enqueue")
	first := manyLines(copyBatchSize+1, `{"url": "http://127.0.0.1:9/first"}`) // the first COPY batches and more
	nul := `{"url": "http://127.0.0.1:9/a", "body": {"name": "a\u0000b"}}`
	tests := []struct {
		name    string
		rest    string
		wantErr string
	}{
		{name: "one bad line", rest: manyLines(copyBatchSize, nul),
			wantErr: fmt.Sprintf("enqueue: stdin line %d: invalid args: args.body.name: contains a NUL character (\\u0000), which PostgreSQL cannot store (nothing inserted)\n", 2*copyBatchSize+1)},
		{name: "three bad lines", rest: nul + "\n" + manyLines(copyBatchSize, `{"url": "ftp://127.0.0.1:9/a"}`) + "not json\n",
			wantErr: fmt.Sprintf("enqueue: stdin line %d: invalid args: args.body.name: contains a NUL character (\\u0000), which PostgreSQL cannot store (and 2 more bad lines; nothing inserted)\n", copyBatchSize+2)},
		{name: "a line over 10 MiB", rest: manyLines(copyBatchSize, `{"url": "http://127.0.0.1:9/a", "body": "`+strings.Repeat("x", maxLineBytes)+`"}`),
			wantErr: fmt.Sprintf("enqueue: stdin line %d: longer than 10 MiB (nothing inserted)\n", 2*copyBatchSize+1)},
	}
	for _, tt := range tests {
		runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		cmd, stdin, stdout, stderr := startFromStdin(runCtx, t, bin, db)
		_, err := io.WriteString(stdin, first)
		require.NoError(t, err, tt.name)
		require.Eventually(t, func() bool {
			var n int
			require.NoError(t, db.Pool.QueryRow(ctx, copyingLocks).Scan(&n))
			return n == 1
		}, time.Minute, 10*time.Millisecond, "%s: the first batch is copied before the rest is read", tt.name)
		_, err = io.WriteString(stdin, tt.rest)
		require.NoError(t, err, tt.name)
		require.NoError(t, stdin.Close(), tt.name)
		err = cmd.Wait()
		cancel()
		var exitErr *exec.ExitError
		require.True(t, errors.As(err, &exitErr), "%s: %v", tt.name, err)
		require.Equal(t, 1, exitErr.ExitCode(), tt.name)
		require.Equal(t, tt.wantErr, stderr.String(), tt.name)
		require.Empty(t, stdout.String(), tt.name)
		require.Equal(t, 0, jobCount(t, db), "%s: nothing inserted", tt.name)
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, copyingLocks).Scan(&n))
		require.Equal(t, 0, n, "%s: the transaction ended", tt.name)
	}
}

// A producer on stdin slower than the server's
// idle_in_transaction_session_timeout still gets its jobs inserted when
// its input fits in one COPY batch: the fast path opens its transaction
// only once it has a batch to copy, not while it waits for the first lines.
func TestFastPathSlowProducerHoldsNoIdleTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	// The enqueue process connects after this, so its sessions have it.
	_, err := db.Pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db.Name}.Sanitize()+" SET idle_in_transaction_session_timeout = '300ms'")
	require.NoError(t, err)
	bin := proctest.Bin(t, "enqueue")
	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd, stdin, stdout, stderr := startFromStdin(runCtx, t, bin, db)
	_, err = io.WriteString(stdin, manyLines(3, `{"url": "http://127.0.0.1:9/third"}`))
	require.NoError(t, err)
	// The producer pauses for more than the timeout, with the enqueue
	// process connected (it checks the migrations before waiting).
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&n))
		return n > 0
	}, time.Minute, 10*time.Millisecond, "enqueue connects")
	time.Sleep(time.Second)
	_, err = io.WriteString(stdin, `{"url": "http://127.0.0.1:9/fourth"}`+"\n")
	require.NoError(t, err)
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), stderr.String())
	require.Equal(t, "", stderr.String())
	require.Equal(t, "inserted 4 http_request job(s) into queue default\n", stdout.String())
	require.Equal(t, 4, jobCount(t, db))
}
