package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// Bad input the other tables do not cover, for enqueue and enqueue batch:
// items over the size cap (10 MiB a line or a CSV row), absurd numbers and
// durations, names no one can read. Each is exit code 1, one short line on
// stderr, and every table as it was.
func TestBadInputEnqueueLimitsAndNumbers(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	before := db.RowCounts(t)

	good := `{"url": "http://127.0.0.1:9/a"}`
	over := strings.Repeat("x", maxLineBytes+1)
	bigLine := writeFile(t, good+"\n"+`{"url": "http://127.0.0.1:9/a", "body": "`+over+`"}`+"\n")
	bigRow := writeNamed(t, "big.csv", "url,body\nhttp://127.0.0.1:9/a,\"\"\""+over+"\"\"\"\n")
	bigBadCell := writeNamed(t, "cell.csv", "url,timeout_seconds\nhttp://127.0.0.1:9/a,"+strings.Repeat("9x", 1<<20)+"\n")
	goodCSV := writeNamed(t, "good.csv", "url\nhttp://127.0.0.1:9/a\n")
	goodNDJSON := writeFile(t, good+"\n")
	batch := func(args ...string) []string {
		return append([]string{"batch", "--kind", "http_request", "--name", "b", "--file", goodCSV}, args...)
	}
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"an NDJSON line over 10 MiB", []string{"http_request", "--file", bigLine}, "enqueue: " + bigLine + " line 2: longer than 10 MiB (nothing inserted)"},
		{"a batch NDJSON line over 10 MiB", []string{"batch", "--kind", "http_request", "--name", "b", "--file", bigLine}, "enqueue: " + bigLine + " line 2: longer than 10 MiB (nothing inserted)"},
		{"a CSV row over 10 MiB", []string{"batch", "--kind", "http_request", "--name", "b", "--file", bigRow}, "enqueue: " + bigRow + " line 2: longer than 10 MiB (nothing inserted)"},
		{"a 2 MiB bad cell", []string{"batch", "--kind", "http_request", "--name", "b", "--file", bigBadCell},
			"enqueue: " + bigBadCell + ` line 2: column timeout_seconds: want a number, not "` + strings.Repeat("9x", 32) + `"… (nothing inserted)`},
		{"priority past int64", []string{"http_request", "--args", good, "--priority", "99999999999999999999"}, `enqueue: invalid --priority "99999999999999999999"`},
		{"max attempts a billion", []string{"http_request", "--args", good, "--max-attempts", "1000000000"}, "enqueue: invalid --max-attempts 1000000000: must be from 1 to 32767"},
		{"max attempts a fraction", []string{"http_request", "--args", good, "--max-attempts", "2.5"}, `enqueue: invalid --max-attempts "2.5": want a whole number`},
		{"schedule-in past int64 nanoseconds", []string{"http_request", "--args", good, "--schedule-in", "9999999999h"}, `enqueue: invalid --schedule-in "9999999999h"`},
		{"batch size negative", batch("--batch-size", "-1"), "enqueue: invalid --batch-size -1: must be at least 1"},
		{"batch size past int64", batch("--batch-size", "99999999999999999999"), `enqueue: invalid --batch-size "99999999999999999999"`},
		{"batch delay absurd", batch("--delay-between-batches", "9999999999h"), `enqueue: invalid --delay-between-batches "9999999999h"`},
		{"batch wait interval zero", batch("--wait", "--wait-interval", "0s"), "enqueue: invalid --wait-interval 0s"},
		{"batch wait interval negative", batch("--wait", "--wait-interval", "-1s"), "enqueue: invalid --wait-interval -1s"},
		{"batch name in invalid UTF-8", []string{"batch", "--kind", "http_request", "--name", "caf\xe9", "--file", goodCSV}, "enqueue: invalid --name"},
		{"batch name over 200 characters", []string{"batch", "--kind", "http_request", "--name", strings.Repeat("n", 201), "--file", goodCSV}, "enqueue: invalid --name"},
		// A callback kind's form is checked first, then whether it can work.
		{"batch callback kind over 200 characters", batch("--callback-kind", strings.Repeat("k", 201)), "want 1 to 200 printable characters of valid UTF-8"},
		{"batch callback kind with a tab", batch("--callback-kind", "a\tb"), "want 1 to 200 printable characters of valid UTF-8"},
		{"batch unknown format", batch("--format", "xml"), `enqueue: invalid --format "xml": want auto, ndjson or csv`},
		{"batch kind SQL-looking", []string{"batch", "--kind", sqlLooking[0], "--name", "b", "--file", goodCSV}, `enqueue: invalid --kind: unknown job kind "'); DROP TABLE river_job; --"`},
		{"kind SQL-looking", []string{sqlLooking[1], "--args", good}, `enqueue: unknown job kind "' OR 1=1 --"`},
		{"queue SQL-looking", []string{"http_request", "--args", good, "--queue", sqlLooking[0]}, `enqueue: invalid --queue "'); DROP TABLE river_job; --": use lower-case letters and digits separated by '_' or '-', at most 64 characters`},
		// A single-value flag given twice is refused (pflag would keep the
		// last one silently).
		{"two --file", []string{"http_request", "--file", goodNDJSON, "--file=" + goodNDJSON}, "enqueue: --file given twice: give it once\n"},
		{"two --args", []string{"http_request", "--args", good, "--args", good}, "enqueue: --args given twice: give it once\n"},
		{"two --queue", []string{"http_request", "--args", good, "--queue", "a", "--queue", "b"}, "enqueue: --queue given twice: give it once\n"},
		{"batch two --file", batch("--file", goodCSV), "enqueue: --file given twice: give it once\n"},
		{"batch two --name", batch("--name", "c"), "enqueue: --name given twice: give it once\n"},
		{"batch two --kind", batch("--kind", "synthetic"), "enqueue: --kind given twice: give it once\n"},
		{"two --max-attempts", []string{"http_request", "--args", good, "--max-attempts", "3", "--max-attempts", "4"}, "enqueue: --max-attempts given twice: give it once\n"},
		{"batch two --callback-kind", batch("--callback-kind", "A", "--callback-kind", "B"), "enqueue: --callback-kind given twice: give it once\n"},
		{"batch two --queue", batch("--queue", "a", "--queue", "b"), "enqueue: --queue given twice: give it once\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.Run(t, env, "enqueue", tt.args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %.500s", res.Stdout, res.Stderr)
			require.Empty(t, res.Stdout)
			require.Less(t, len(res.Stderr), 1000, "a short message: %.500s", res.Stderr)
			require.Equal(t, 1, strings.Count(strings.TrimSpace(res.Stderr), "\n")+1, "one line: %.500s", res.Stderr)
			require.Contains(t, res.Stderr, tt.wantErr)
		})
	}
	t.Cleanup(func() { require.Equal(t, before, db.RowCounts(t), "every table as it was") })
}

// sqlLooking are texts that look like SQL: stored verbatim, never executed.
var sqlLooking = []string{`'); DROP TABLE river_job; --`, `' OR 1=1 --`, `"; DELETE FROM job_batch; --`}

// Text that looks like SQL is data: a job's args and a batch's name are
// stored exactly as given and read back the same, and every table still
// exists.
func TestSQLLookingInputStoredVerbatim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	tables := db.RowCounts(t)

	body, err := json.Marshal(map[string]any{"q": sqlLooking[0], "w": sqlLooking[1], sqlLooking[2]: sqlLooking[2]})
	require.NoError(t, err)
	args := `{"url": "http://127.0.0.1:9/a?q=%27%20OR%201%3D1%20--", "body": ` + string(body) + `, "operation_key": "` + strings.ReplaceAll(sqlLooking[1], `"`, `\"`) + `"}`
	res := proctest.Run(t, env, "enqueue", "http_request", "--args", args)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var stored struct {
		URL          string         `json:"url"`
		Body         map[string]any `json:"body"`
		OperationKey string         `json:"operation_key"`
	}
	var raw []byte
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT args FROM river_job").Scan(&raw))
	require.NoError(t, json.Unmarshal(raw, &stored))
	require.Equal(t, "http://127.0.0.1:9/a?q=%27%20OR%201%3D1%20--", stored.URL)
	require.Equal(t, map[string]any{"q": sqlLooking[0], "w": sqlLooking[1], sqlLooking[2]: sqlLooking[2]}, stored.Body)
	require.Equal(t, sqlLooking[1], stored.OperationKey)

	for i, name := range sqlLooking {
		file := writeNamed(t, "items.csv", "url\nhttp://127.0.0.1:9/a\n")
		res := proctest.Run(t, env, "enqueue", "batch", "--kind", "http_request", "--name", name, "--file", file, "--queue", "parked")
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		var got string
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT name FROM job_batch ORDER BY id DESC LIMIT 1").Scan(&got))
		require.Equal(t, name, got, "batch %d", i)
	}
	after := db.RowCounts(t)
	require.Equal(t, tables["public.river_job"]+1+int64(len(sqlLooking)), after["public.river_job"])
	require.Equal(t, int64(len(sqlLooking)), after["public.job_batch"])
	require.Len(t, after, len(tables), "every table still exists")
	for table := range tables {
		require.Contains(t, after, table)
	}
}

// A queue name River would refuse, or a batch's callback kind no one can
// read or that cannot work, is refused before the input is read: the message is about the flag
// even when the input is bad too (a bad line, or a file that does not
// exist), it is the whole of stderr, and nothing is inserted.
func TestBadQueueRefusedBeforeInput(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	before := db.RowCounts(t)
	goodFile := writeFile(t, `{"url": "http://127.0.0.1:9/a"}`+"\n"+`{"url": "http://127.0.0.1:9/b"}`+"\n")
	goodCSV := writeNamed(t, "good.csv", "url\nhttp://127.0.0.1:9/a\n")
	missing := filepath.Join(t.TempDir(), "missing.ndjson")
	const rule = ": use lower-case letters and digits separated by '_' or '-', at most 64 characters\n"
	long := strings.Repeat("q", 65)
	tests := []struct {
		name    string
		env     []string
		stdin   string
		args    []string
		wantErr string
	}{
		{"upper case, good file", nil, "", []string{"http_request", "--file", goodFile, "--queue", "Webhooks"},
			`enqueue: invalid --queue "Webhooks"` + rule},
		{"space, bad stdin line", nil, "not json\n", []string{"http_request", "--file", "-", "--queue", "bad queue"},
			`enqueue: invalid --queue "bad queue"` + rule},
		{"double underscore, missing file", nil, "", []string{"http_request", "--file", missing, "--queue", "a__b", "--json"},
			`enqueue: invalid --queue "a__b"` + rule},
		{"65 characters, --args", nil, "", []string{"http_request", "--args", `{"url": "http://127.0.0.1:9/a"}`, "--queue", long},
			`enqueue: invalid --queue "` + long + `"` + rule},
		{"from REBOUND_QUEUE, bad stdin line", []string{"REBOUND_QUEUE=Mail"}, "{\n", []string{"http_request", "--file", "-", "--unique"},
			`enqueue: invalid REBOUND_QUEUE "Mail"` + rule},
		{"batch, bad stdin line", nil, "url\nnot a url\n", []string{"batch", "--kind", "http_request", "--name", "b", "--file", "-", "--format", "csv", "--queue", "-x"},
			`enqueue: invalid --queue "-x"` + rule},
		{"batch, good CSV", nil, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", goodCSV, "--queue", "x-"},
			`enqueue: invalid --queue "x-"` + rule},
		// The other flags that need no input are checked before it too.
		{"batch callback kind with a tab, bad stdin line", nil, "url\nnot a url\n", []string{"batch", "--kind", "http_request", "--name", "b", "--file", "-", "--format", "csv", "--callback-kind", "a\tb"},
			`enqueue: invalid --callback-kind "a\tb": want 1 to 200 printable characters of valid UTF-8` + "\n"},
		{"batch callback kind from REBOUND_CALLBACK_KIND, missing file", []string{"REBOUND_CALLBACK_KIND=" + strings.Repeat("k", 201)}, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", missing},
			`enqueue: invalid REBOUND_CALLBACK_KIND "` + strings.Repeat("k", 201) + `": want 1 to 200 printable characters of valid UTF-8` + "\n"},
		// Batch settings from the environment are named by their variable.
		{"batch size from REBOUND_BATCH_SIZE, missing file", []string{"REBOUND_BATCH_SIZE=0"}, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", missing},
			"enqueue: invalid REBOUND_BATCH_SIZE 0: must be at least 1\n"},
		{"batch delay from REBOUND_DELAY_BETWEEN_BATCHES, missing file", []string{"REBOUND_DELAY_BETWEEN_BATCHES=-1s"}, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", missing},
			"enqueue: invalid REBOUND_DELAY_BETWEEN_BATCHES -1s: must not be negative\n"},
		{"batch format from REBOUND_FORMAT, bad stdin line", []string{"REBOUND_FORMAT=xml"}, "url\nnot a url\n", []string{"batch", "--kind", "http_request", "--name", "b", "--file", "-"},
			`enqueue: invalid REBOUND_FORMAT "xml": want auto, ndjson or csv` + "\n"},
		{"batch format, missing file", nil, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", missing, "--format", "xml"},
			`enqueue: invalid --format "xml": want auto, ndjson or csv` + "\n"},
		// A callback kind that cannot work: no pod of rebound's has its
		// worker (the completing pod's insert would be refused), or its
		// worker cannot run on a batch summary (it would be dead-lettered).
		{"batch callback kind unknown, bad stdin line", nil, "url\nnot a url\n", []string{"batch", "--kind", "http_request", "--name", "b", "--file", "-", "--format", "csv", "--callback-kind", "nope"},
			`enqueue: invalid --callback-kind "nope": unknown job kind (known kinds: http_request, synthetic, weekly_intelligence); ` +
				"a kind of your own can be a callback only in a batch enqueued from Go (batch.Batch.CallbackKind), with its worker on every pod\n"},
		{"batch callback kind http_request, good CSV", nil, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", goodCSV, "--callback-kind", "http_request"},
			`enqueue: invalid --callback-kind "http_request": a callback job gets the batch's summary as its args (id, name, kind, total, succeeded, failed, ...), ` +
				"and http_request cannot run on them: invalid args: url is required\n"},
		{"batch callback kind weekly_intelligence from REBOUND_CALLBACK_KIND, missing file", []string{"REBOUND_CALLBACK_KIND=weekly_intelligence"}, "", []string{"batch", "--kind", "http_request", "--name", "b", "--file", missing},
			`enqueue: invalid REBOUND_CALLBACK_KIND "weekly_intelligence": a callback job gets the batch's summary as its args (id, name, kind, total, succeeded, failed, ...), ` +
				"and weekly_intelligence cannot run on them: invalid args: user_id must be a positive integer, got 0\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.RunStdin(t, append([]string{"DATABASE_URL=" + db.URL}, tt.env...), tt.stdin, "enqueue", tt.args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Empty(t, res.Stdout)
			require.Equal(t, tt.wantErr, res.Stderr)
		})
	}
	t.Cleanup(func() { require.Equal(t, before, db.RowCounts(t), "every table as it was") })
}
