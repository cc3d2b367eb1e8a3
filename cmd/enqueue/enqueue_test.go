package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobs.ndjson")
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// Every bad input: exit code 1, one line on stderr naming the problem, and
// the job table as it was (one job was there before).
func TestBadInputLeavesJobTableUnchanged(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	seed := proctest.Run(t, env, "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/seed"}`)
	require.Equal(t, 0, seed.ExitCode, seed.Stderr)
	before := db.RowCounts(t)

	behind := dbtest.New(t)
	_, err := behind.Pool.Exec(context.Background(), "DELETE FROM rebound_migration WHERE version = 4; DROP TABLE rebound_metric_snapshot")
	require.NoError(t, err)

	good := `{"url": "http://127.0.0.1:9/a"}`
	unknownKindConfig := writeFile(t, "retry:\n  kinds:\n    sync_stock: {max_attempts: 3}\n")
	tests := []struct {
		name    string
		url     string
		env     []string
		args    []string
		stdin   string
		wantErr string
	}{
		{name: "unknown kind", args: []string{"email", "--args", "{}"}, wantErr: `enqueue: unknown job kind "email" (known kinds: http_request, synthetic, weekly_intelligence)`},
		{name: "no kind", args: []string{"--args", good}, wantErr: "enqueue: want exactly one KIND (known kinds: http_request, synthetic, weekly_intelligence)"},
		{name: "no args", args: []string{"http_request"}, wantErr: "enqueue: give the args: --args JSON or --file PATH (- for standard input)"},
		{name: "args and file", args: []string{"http_request", "--args", good, "--file", "x"}, wantErr: "enqueue: give --args or --file, not both"},
		{name: "malformed args", args: []string{"http_request", "--args", `{"url": `}, wantErr: "enqueue: --args: invalid args: not valid JSON: it ends before the args object does"},
		{name: "args not JSON", args: []string{"http_request", "--args", "notjson"}, wantErr: `enqueue: --args: invalid args: not valid JSON: expected a JSON object {...}, got "notjson" (invalid character 'o' at byte 2)`},
		{name: "args cut short", args: []string{"http_request", "--args", `"https://example.com`}, wantErr: `enqueue: --args: invalid args: not valid JSON: expected a JSON object {...}, got "\"https://example.com" (it ends too early)`},
		{name: "empty args", args: []string{"http_request", "--args", ""}, wantErr: "enqueue: --args: invalid args: empty: expected a JSON object {...}"},
		{name: "a trailing comma", args: []string{"http_request", "--args", `{"url": "http://x",}`}, wantErr: "enqueue: --args: invalid args: not valid JSON: invalid character '}' looking for beginning of object key string at byte 20"},
		{name: "a line not JSON", args: []string{"http_request", "--file", writeFile(t, good+"\nurl=http://x/?token=hunter2hunter2hunter2hunter2\n")}, wantErr: `line 2: invalid args: not valid JSON: expected a JSON object {...}, got "url=http://x/?token=[REDACTED]"… (invalid character 'u' looking for beginning of value at byte 1) (nothing inserted)`},
		{name: "url in invalid UTF-8", args: []string{"http_request", "--args", "{\"url\": \"http://127.0.0.1:9/caf\xe9\"}"}, wantErr: "enqueue: --args: invalid args: args.url: contains invalid UTF-8 (byte 0xe9), which PostgreSQL cannot store"},
		{name: "url with a lone surrogate", args: []string{"http_request", "--args", `{"url": "http://127.0.0.1:9/\udc00"}`}, wantErr: `enqueue: --args: invalid args: args.url: contains an unpaired UTF-16 surrogate (\udc00), which PostgreSQL cannot store`},
		{name: "operation key in invalid UTF-8", args: []string{"http_request", "--args", "{\"url\": \"http://127.0.0.1:9/a\", \"operation_key\": \"billing\xff\"}"}, wantErr: "enqueue: --args: invalid args: args.operation_key: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store"},
		{name: "operation key with a lone surrogate", args: []string{"http_request", "--args", `{"url": "http://127.0.0.1:9/a", "operation_key": "\ud800x"}`}, wantErr: `enqueue: --args: invalid args: args.operation_key: contains an unpaired UTF-16 surrogate (\ud800), which PostgreSQL cannot store`},
		{name: "url in invalid UTF-8 on line 2", args: []string{"http_request", "--file", writeFile(t, good+"\n{\"url\": \"http://127.0.0.1:9/\xff\"}\n")}, wantErr: "line 2: invalid args: args.url: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store (nothing inserted)"},
		{name: "schedule-in in the year 2319", args: []string{"http_request", "--args", good, "--schedule-in", "2562047h"}, wantErr: "enqueue: invalid --schedule-in 2562047h0m0s: must be at most 8760h0m0s (365 days)"},
		{name: "schedule-in a year and an hour", args: []string{"http_request", "--args", good, "--schedule-in", "8761h"}, wantErr: "enqueue: invalid --schedule-in 8761h0m0s: must be at most 8760h0m0s (365 days)"},
		{name: "zero max attempts from env", env: []string{"REBOUND_MAX_ATTEMPTS=0"}, args: []string{"http_request", "--args", good}, wantErr: "enqueue: invalid REBOUND_MAX_ATTEMPTS 0: must be from 1 to 32767"},
		{name: "max attempts from env not a number", env: []string{"REBOUND_MAX_ATTEMPTS=many"}, args: []string{"http_request", "--args", good}, wantErr: `enqueue: invalid REBOUND_MAX_ATTEMPTS "many": want a whole number`},
		{name: "max attempts not a number", args: []string{"http_request", "--args", good, "--max-attempts", "abc"}, wantErr: `enqueue: invalid --max-attempts "abc": want a whole number`},
		{name: "schedule-in from env in the year 2319", env: []string{"REBOUND_SCHEDULE_IN=2562047h"}, args: []string{"http_request", "--args", good}, wantErr: "enqueue: invalid REBOUND_SCHEDULE_IN 2562047h0m0s: must be at most 8760h0m0s (365 days)"},
		{name: "args from env not JSON", env: []string{"REBOUND_ARGS=notjson"}, args: []string{"http_request"}, wantErr: `enqueue: REBOUND_ARGS: invalid args: not valid JSON: expected a JSON object {...}, got "notjson"`},
		// The command line's --file wins over REBOUND_ARGS (a default): the
		// file is read, and this one does not exist.
		{name: "args from env and a file", env: []string{"REBOUND_ARGS=" + good}, args: []string{"http_request", "--file", "/nonexistent/x"}, wantErr: "/nonexistent/x"},
		{name: "args and file both from env", env: []string{"REBOUND_ARGS=" + good, "REBOUND_FILE=x"}, args: []string{"http_request"}, wantErr: "enqueue: give REBOUND_ARGS or REBOUND_FILE, not both"},
		{name: "missing url", args: []string{"http_request", "--args", `{"method": "GET"}`}, wantErr: "enqueue: --args: invalid args: url is required"},
		{name: "relative url", args: []string{"http_request", "--args", `{"url": "/hook"}`}, wantErr: `enqueue: --args: invalid args: url must be absolute http or https, got "/hook"`},
		{name: "unknown field", args: []string{"http_request", "--args", `{"url": "http://x", "timeout": 5}`}, wantErr: `enqueue: --args: invalid args: unknown field "timeout"`},
		{name: "bad method", args: []string{"http_request", "--args", `{"url": "http://x", "method": "FETCH"}`}, wantErr: `method "FETCH" is not one of`},
		{name: "bad timeout", args: []string{"http_request", "--args", `{"url": "http://x", "timeout_seconds": 7200}`}, wantErr: "timeout_seconds must be between 0 (default 30) and 3600, got 7200"},
		{name: "header with newline", args: []string{"http_request", "--args", `{"url": "http://x", "headers": {"X-A": "a\nb"}}`}, wantErr: `headers: the value of "X-A" contains a line break or NUL`},
		{name: "not an object", args: []string{"http_request", "--args", `[1]`}, wantErr: "enqueue: --args: invalid args: the args must be a JSON object, not an array"},
		{name: "trailing data", args: []string{"http_request", "--args", good + ` {}`}, wantErr: "enqueue: --args: invalid args: unexpected data after the args object"},
		{name: "malformed line 3", args: []string{"http_request", "--file", writeFile(t, good+"\n"+good+"\n{oops\n"+good+"\n")}, wantErr: "line 3: invalid args: not valid JSON: invalid character 'o' looking for beginning of object key string at byte 2 (nothing inserted)"},
		{name: "missing url line 2", args: []string{"http_request", "--file", writeFile(t, good+"\n{}\n"+good+"\n")}, wantErr: "line 2: invalid args: url is required (nothing inserted)"},
		{name: "several bad lines", args: []string{"http_request", "--file", writeFile(t, "{}\n"+good+"\n{}\n{}\n")}, wantErr: "line 1: invalid args: url is required (and 2 more bad lines; nothing inserted)"},
		{name: "bad line from stdin", args: []string{"http_request", "--file", "-"}, stdin: good + "\n\n" + `{"url": 5}` + "\n", wantErr: "enqueue: stdin line 3: invalid args: url must be a string, not a number (nothing inserted)"},
		{name: "empty file", args: []string{"http_request", "--file", writeFile(t, "\n\n")}, wantErr: "no jobs in it"},
		{name: "missing file", args: []string{"http_request", "--file", "/nonexistent.ndjson"}, wantErr: "enqueue: --file: open /nonexistent.ndjson: no such file or directory"},
		{name: "bad priority", args: []string{"http_request", "--args", good, "--priority", "9"}, wantErr: "enqueue: invalid --priority 9: must be from 1 to 4"},
		{name: "bad max attempts", args: []string{"http_request", "--args", good, "--max-attempts", "-2"}, wantErr: "enqueue: invalid --max-attempts -2: must be from 1 to 32767"},
		{name: "too many max attempts", args: []string{"http_request", "--args", good, "--max-attempts", "40000"}, wantErr: "enqueue: invalid --max-attempts 40000: must be from 1 to 32767"},
		{name: "bad schedule-in", args: []string{"http_request", "--args", good, "--schedule-in", "tomorrow"}, wantErr: `enqueue: invalid --schedule-in "tomorrow": want a duration such as 30s, 5m or 1h30m`},
		{name: "negative schedule-in", args: []string{"http_request", "--args", good, "--schedule-in", "-5m"}, wantErr: "enqueue: invalid --schedule-in -5m0s: must not be negative"},
		{name: "bad queue name", args: []string{"http_request", "--args", good, "--queue", "Bad Queue"}, wantErr: `enqueue: invalid --queue "Bad Queue": use lower-case letters and digits separated by '_' or '-', at most 64 characters`},
		{name: "bad queue name for a file", args: []string{"http_request", "--file", writeFile(t, good+"\n"+good+"\n"), "--queue", "Bad Queue"}, wantErr: `enqueue: invalid --queue "Bad Queue": use lower-case letters and digits separated by '_' or '-', at most 64 characters`},
		{name: "zero max attempts", args: []string{"http_request", "--args", good, "--max-attempts", "0"}, wantErr: "enqueue: invalid --max-attempts 0: must be from 1 to 32767"},
		{name: "duplicate key", args: []string{"http_request", "--args", `{"url": "http://127.0.0.1:9/a", "url": "http://evil/"}`}, wantErr: `enqueue: --args: invalid args: key "url" appears twice in the args`},
		{name: "directory as file", args: []string{"http_request", "--file", t.TempDir()}, wantErr: "enqueue: --file: read /"},
		{name: "bad config", args: []string{"http_request", "--args", good, "--config", writeFile(t, "retry:\n  kinds:\n    http_request:\n      max_attempts: 0\n")}, wantErr: "retry.kinds.http_request.max_attempts: must be >= 1 (got 0)"},
		// A file the worker refuses is refused here, with the worker's message.
		{name: "config with a kind no worker works", args: []string{"http_request", "--args", good, "--config", unknownKindConfig},
			wantErr: "enqueue: " + unknownKindConfig + `: retry.kinds.sync_stock: unknown job kind "sync_stock" (known kinds: http_request, rebound_notify, synthetic, weekly_intelligence)` + "\n"},
		{name: "batch config with a kind no worker works", args: []string{"batch", "--kind", "http_request", "--name", "b", "--file", writeFile(t, good+"\n"), "--config", unknownKindConfig},
			wantErr: "enqueue: " + unknownKindConfig + `: retry.kinds.sync_stock: unknown job kind "sync_stock" (known kinds: http_request, rebound_notify, synthetic, weekly_intelligence)` + "\n"},
		{name: "missing config", args: []string{"http_request", "--args", good, "--config", "/nonexistent.yaml"}, wantErr: "enqueue: --config /nonexistent.yaml: no such file or directory\n"},
		{name: "missing config from the environment", env: []string{"REBOUND_CONFIG=/nonexistent.yaml"}, args: []string{"batch", "--kind", "http_request", "--name", "b", "--file", writeFile(t, good+"\n")},
			wantErr: "enqueue: REBOUND_CONFIG /nonexistent.yaml: no such file or directory\n"},
		{name: "unknown flag", args: []string{"http_request", "--args", good, "--nope"}, wantErr: "enqueue: unknown flag: --nope"},
		{name: "malformed DATABASE_URL", url: "postgres://%zz", args: []string{"http_request", "--args", good}, wantErr: "enqueue: invalid DATABASE_URL"},
		{name: "unreachable database", url: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", args: []string{"http_request", "--args", good}, wantErr: "enqueue: database unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused (nothing inserted)\n"},
		// Every way in says the same when the database fails it: --args,
		// --file by COPY, --file --json (INSERT) and batch.
		{name: "unreachable database, --file", url: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", args: []string{"http_request", "--file", writeFile(t, good+"\n")}, wantErr: "enqueue: database unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused (nothing inserted)\n"},
		{name: "unreachable database, --file --json", url: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", args: []string{"http_request", "--file", writeFile(t, good+"\n"), "--json"}, wantErr: "enqueue: database unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused (nothing inserted)\n"},
		{name: "unreachable database, batch", url: "postgres://postgres@127.0.0.1:1/x?connect_timeout=2", args: []string{"batch", "--kind", "http_request", "--name", "b", "--file", writeFile(t, good+"\n")}, wantErr: "enqueue: database unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused (nothing inserted)\n"},
		{name: "migrations behind", url: behind.URL, args: []string{"http_request", "--args", good}, wantErr: "enqueue: database migrations are behind: 1 migration pending (rebound 004_metric_snapshot); run `rebound migrate up` (nothing inserted)\n"},
		{name: "migrations behind, --file", url: behind.URL, args: []string{"http_request", "--file", writeFile(t, good+"\n")}, wantErr: "enqueue: database migrations are behind: 1 migration pending (rebound 004_metric_snapshot); run `rebound migrate up` (nothing inserted)\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := tt.url
			if url == "" {
				url = db.URL
			}
			res := proctest.RunStdin(t, append([]string{"DATABASE_URL=" + url}, tt.env...), tt.stdin, "enqueue", tt.args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Contains(t, res.Stderr, tt.wantErr)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %q", res.Stderr)
			require.Empty(t, res.Stdout)
		})
	}

	t.Cleanup(func() { // after the parallel subtests
		var n int
		require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
		require.Equal(t, 1, n, "only the seed job")
		require.Equal(t, before, db.RowCounts(t), "every table as it was")
		require.NoError(t, behind.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
		require.Equal(t, 0, n)
	})
}

func TestEnqueueOptions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}

	// --json prints the IDs; the options reach the rows.
	res := proctest.RunStdin(t, env, `{"url": "http://127.0.0.1:9/a", "operation_key": "billing"}`+"\n"+`{"url": "http://Example.COM:8443/b"}`+"\n",
		"enqueue", "http_request", "--file", "-", "--queue", "webhooks", "--priority", "2", "--max-attempts", "7", "--schedule-in", "1h", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var out struct {
		Kind     string  `json:"kind"`
		Queue    string  `json:"queue"`
		Inserted int     `json:"inserted"`
		IDs      []int64 `json:"ids"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &out))
	require.Equal(t, "http_request", out.Kind)
	require.Equal(t, "webhooks", out.Queue)
	require.Equal(t, 2, out.Inserted)
	require.Len(t, out.IDs, 2)

	rows, err := db.Pool.Query(ctx, `SELECT id, queue, priority, max_attempts, state::text, scheduled_at > now() + interval '50 minutes',
		metadata->>'operation_key' FROM river_job ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var (
			id                   int64
			queue, state, key    string
			priority, maxTries   int
			scheduledInTheFuture bool
		)
		require.NoError(t, rows.Scan(&id, &queue, &priority, &maxTries, &state, &scheduledInTheFuture, &key))
		got = append(got, fmt.Sprintf("%s p%d max%d %s future=%v key=%s", queue, priority, maxTries, state, scheduledInTheFuture, key))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{
		"webhooks p2 max7 scheduled future=true key=billing",
		"webhooks p2 max7 scheduled future=true key=example.com:8443",
	}, got)

	// Without --max-attempts an http_request job gets the seed's 5.
	res = proctest.Run(t, env, "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/c"}`)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Regexp(t, `^inserted 1 http_request job\(s\) into queue default \(id \d+\)\n$`, res.Stdout)
	var maxAttempts int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT max_attempts FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/c'").Scan(&maxAttempts))
	require.Equal(t, 5, maxAttempts)

	// With the workers' --config, the kind's max_attempts applies.
	cfg := writeFile(t, "retry:\n  default:\n    max_attempts: 3\n  kinds:\n    http_request:\n      max_attempts: 9\n")
	res = proctest.Run(t, append(env, "REBOUND_CONFIG="+cfg), "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/d"}`)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT max_attempts FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/d'").Scan(&maxAttempts))
	require.Equal(t, 9, maxAttempts)

	// A flag set through the environment behaves as on the command line:
	// REBOUND_ARGS and REBOUND_MAX_ATTEMPTS reach the job (the kind's
	// default would be 5); a flag on the command line wins.
	res = proctest.Run(t, append(env, `REBOUND_ARGS={"url": "http://127.0.0.1:9/env"}`, "REBOUND_MAX_ATTEMPTS=7", "REBOUND_QUEUE=from_env"), "enqueue", "http_request")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var queue string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT max_attempts, queue FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/env'").Scan(&maxAttempts, &queue))
	require.Equal(t, 7, maxAttempts)
	require.Equal(t, "from_env", queue)
	res = proctest.Run(t, append(env, "REBOUND_MAX_ATTEMPTS=7"), "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/flag"}`, "--max-attempts", "3")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT max_attempts FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/flag'").Scan(&maxAttempts))
	require.Equal(t, 3, maxAttempts)
	// --file on the command line wins over REBOUND_ARGS.
	res = proctest.Run(t, append(env, `REBOUND_ARGS={"url": "http://127.0.0.1:9/env-args"}`), "enqueue", "http_request",
		"--file", writeFile(t, `{"url": "http://127.0.0.1:9/file-wins"}`+"\n"))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var fromFile, fromEnv int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE args->>'url' = 'http://127.0.0.1:9/file-wins'), count(*) FILTER (WHERE args->>'url' = 'http://127.0.0.1:9/env-args') FROM river_job").Scan(&fromFile, &fromEnv))
	require.Equal(t, []int{1, 0}, []int{fromFile, fromEnv})

	// --schedule-in takes up to 365 days.
	res = proctest.Run(t, env, "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/year"}`, "--schedule-in", "8760h")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var days float64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT round(extract(epoch FROM scheduled_at - now()) / 86400) FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/year'").Scan(&days))
	require.Equal(t, float64(365), days)

	// --unique skips a job whose twin is still waiting, in the file and in the table.
	twin := `{"url": "http://127.0.0.1:9/u"}`
	res = proctest.RunStdin(t, env, twin+"\n"+twin+"\n", "enqueue", "http_request", "--file", "-", "--unique")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var twinID int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT id FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/u'").Scan(&twinID))
	require.Equal(t, fmt.Sprintf("inserted 1 http_request job(s) into queue default (id %d); skipped 1 duplicate(s) still waiting or running\n", twinID), res.Stdout)
	// Several jobs: their first and last IDs (not a range: other sessions'
	// inserts may take IDs in between).
	res = proctest.RunStdin(t, env, `{"url": "http://127.0.0.1:9/u1"}`+"\n"+`{"url": "http://127.0.0.1:9/u2"}`+"\n"+`{"url": "http://127.0.0.1:9/u3"}`+"\n", "enqueue", "http_request", "--file", "-", "--unique")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var firstID, lastID int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT min(id), max(id) FROM river_job WHERE args->>'url' IN ('http://127.0.0.1:9/u1', 'http://127.0.0.1:9/u3')").Scan(&firstID, &lastID))
	require.Equal(t, fmt.Sprintf("inserted 3 http_request job(s) into queue default (first id %d, last id %d)\n", firstID, lastID), res.Stdout)
	res = proctest.Run(t, env, "enqueue", "http_request", "--args", twin, "--unique", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, `"skipped_duplicates": 1`)
	var n int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE args->>'url' = 'http://127.0.0.1:9/u'").Scan(&n))
	require.Equal(t, 1, n)

	// Once the twin has finished, the same job can be enqueued again.
	_, err = db.Pool.Exec(ctx, "UPDATE river_job SET state = 'completed', finalized_at = now() WHERE args->>'url' = 'http://127.0.0.1:9/u'")
	require.NoError(t, err)
	res = proctest.Run(t, env, "enqueue", "http_request", "--args", twin, "--unique", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Contains(t, res.Stdout, `"inserted": 1`)
}

// A large file goes in one transaction, in batches, in seconds.
func TestEnqueueLargeFile(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	var b strings.Builder
	const lines = 20_000
	for i := range lines {
		fmt.Fprintf(&b, `{"url": "http://127.0.0.1:9/%d", "body": {"n": %d}}`+"\n", i, i)
	}
	start := time.Now()
	res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "http_request", "--file", writeFile(t, b.String()))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	t.Logf("%d lines in %s", lines, time.Since(start))
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
	require.Equal(t, lines, n)
}

// `enqueue KIND --help` lists the args of KIND, from its registry entry.
func TestHelpListsTheKindsArgs(t *testing.T) {
	t.Parallel()
	res := proctest.Run(t, nil, "enqueue", "http_request", "--help")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	_, args, ok := strings.Cut(res.Stdout, "\nArgs of http_request (--args, or one JSON object per line of --file):\n")
	require.True(t, ok, res.Stdout)
	lines := strings.Split(strings.TrimSpace(args), "\n")
	require.Len(t, lines, 7, args)
	for i, want := range [][2]string{
		{"FIELD", "TYPE"},
		{"url", "string"}, {"method", "string"}, {"headers", "object"}, {"body", "any JSON"},
		{"timeout_seconds", "number"}, {"operation_key", "string"},
	} {
		fields := strings.Fields(lines[i])
		require.Equal(t, want[0], fields[0], lines[i])
		require.Equal(t, want[1], strings.Join(fields[1:1+len(strings.Fields(want[1]))], " "), lines[i])
	}
	require.Contains(t, lines[5], "(default 30, at most 3600)")

	plain := proctest.Run(t, nil, "enqueue", "--help")
	require.Equal(t, 0, plain.ExitCode, plain.Stderr)
	require.NotContains(t, plain.Stdout, "Args of")
	require.Contains(t, plain.Stdout, "`enqueue KIND --help` lists the args of KIND")
}

// enqueue sends no alert: a --config whose alerts section names secrets
// (${NAME}) that are not set where jobs are enqueued still gives the kind's
// retry settings, to single jobs and batches; the worker, which sends
// alerts, refuses the same file.
func TestConfigAlertSecretsNotNeededToEnqueue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	cfg := writeFile(t, "retry:\n  kinds:\n    http_request:\n      max_attempts: 9\nalerts:\n  channels:\n"+
		"    ops: {type: slack, url: \"${REBOUND_TEST_SLACK_URL}\"}\n"+
		"    pager: {type: webhook, url: \"https://hooks.example.com/x\", secret: \"${REBOUND_TEST_WEBHOOK_SECRET}\"}\n")

	res := proctest.Run(t, env, "enqueue", "http_request", "--args", `{"url": "http://127.0.0.1:9/one"}`, "--config", cfg)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = proctest.Run(t, append(env, "REBOUND_CONFIG="+cfg), "enqueue", "http_request", "--file", writeFile(t, `{"url": "http://127.0.0.1:9/file"}`+"\n"))
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = proctest.Run(t, env, "enqueue", "batch", "--kind", "http_request", "--name", "b", "--file", writeNamed(t, "items.csv", "url\nhttp://127.0.0.1:9/batch\n"), "--config", cfg)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	rows, err := db.Pool.Query(ctx, "SELECT args->>'url', max_attempts FROM river_job ORDER BY id")
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var url string
		var maxAttempts int
		require.NoError(t, rows.Scan(&url, &maxAttempts))
		got = append(got, fmt.Sprintf("%s %d", url, maxAttempts))
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"http://127.0.0.1:9/one 9", "http://127.0.0.1:9/file 9", "http://127.0.0.1:9/batch 9"}, got)

	res = proctest.Run(t, env, "worker", "--config", cfg)
	require.Equal(t, 1, res.ExitCode, res.Stderr)
	require.Equal(t, "worker: "+cfg+": alerts.channels.ops.url: environment variable REBOUND_TEST_SLACK_URL is unset or empty; "+
		"alerts.channels.pager.secret: environment variable REBOUND_TEST_WEBHOOK_SECRET is unset or empty\n", res.Stderr)
}
