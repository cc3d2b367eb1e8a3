package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// fastPathLines is more than two COPY batches (copyBatchSize), so a failure
// in the third batch must undo the first two.
const fastPathLines = 2*copyBatchSize + 500

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
	// A trigger of the test's own refuses one URL, as a constraint would.
	_, err := db.Pool.Exec(context.Background(), `
CREATE FUNCTION refuse_boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.args->>'url' = 'http://127.0.0.1:9/boom' THEN RAISE EXCEPTION 'boom refused'; END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER refuse_boom BEFORE INSERT ON river_job FOR EACH ROW EXECUTE FUNCTION refuse_boom();`)
	require.NoError(t, err)

	tests := []struct {
		name    string
		last    string
		wantErr string
	}{
		{name: "NUL on the last line", last: `{"url": "http://127.0.0.1:9/a", "body": {"name": "a\u0000b"}}`,
			wantErr: fmt.Sprintf("line %d: invalid args: args.body.name: contains a NUL character (\\u0000), which PostgreSQL cannot store (nothing inserted)", fastPathLines)},
		{name: "invalid UTF-8 on the last line", last: "{\"url\": \"http://127.0.0.1:9/caf\xe9\"}",
			wantErr: fmt.Sprintf("line %d: invalid args: args.url: contains invalid UTF-8 (byte 0xe9), which PostgreSQL cannot store (nothing inserted)", fastPathLines)},
		{name: "refused by the database in the third batch", last: `{"url": "http://127.0.0.1:9/boom"}`,
			wantErr: fmt.Sprintf("enqueue: insert lines %d-%d: ERROR: boom refused", 2*copyBatchSize+1, fastPathLines)},
	}
	for _, tt := range tests {
		res := proctest.Run(t, env, "enqueue", "http_request", "--file", writeFile(t, manyLines(fastPathLines, tt.last)))
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
// without IDs.
func TestFastPathAndJSONInsertIdenticalRows(t *testing.T) {
	t.Parallel()
	const n = 3000
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
	require.Regexp(t, fmt.Sprintf(`^inserted %d http_request job\(s\) into queue webhooks\n$`, n), fast.Stdout)

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
