package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

func writeNamed(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func rowCounts(t *testing.T, db *dbtest.Database) string {
	t.Helper()
	var jobs, batches int
	require.NoError(t, db.Pool.QueryRow(context.Background(),
		"SELECT (SELECT count(*) FROM river_job), (SELECT count(*) FROM job_batch)").Scan(&jobs, &batches))
	return fmt.Sprintf("jobs=%d batches=%d", jobs, batches)
}

// Every bad batch: exit code 1, one line on stderr naming the problem, and
// every table as it was (one batch of one job before).
func TestBatchBadInputInsertsNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	seed := proctest.Run(t, env, "enqueue", "batch", "--kind", "http_request", "--name", "taken",
		"--file", writeNamed(t, "seed.ndjson", `{"url": "http://127.0.0.1:9/seed"}`+"\n"))
	require.Equal(t, 0, seed.ExitCode, seed.Stderr)
	require.Equal(t, "jobs=1 batches=1", rowCounts(t, db))
	before := db.RowCounts(t) // every table

	goodCSV := writeNamed(t, "good.csv", "url,timeout_seconds\nhttp://127.0.0.1:9/a,5\n")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"csv missing column", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "a.csv", "method,timeout_seconds\nGET,5\nPOST,3\n")},
			"enqueue: FILE line 2: invalid args: url is required (and 1 more bad lines; nothing inserted)"},
		{"csv ragged row", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "r.csv", "url,timeout_seconds\nhttp://127.0.0.1:9/a,5\nhttp://127.0.0.1:9/b\n")},
			"enqueue: FILE line 3: 1 fields, but the header has 2 (nothing inserted)"},
		{"csv number column", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "n.csv", "url,timeout_seconds\nhttp://127.0.0.1:9/a,soon\n")},
			`enqueue: FILE line 2: column timeout_seconds: want a number, not "soon" (nothing inserted)`},
		{"csv unknown column", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "u.csv", "url,colour\nhttp://127.0.0.1:9/a,red\n")},
			`enqueue: FILE line 1: column "colour" is not a field of http_request args (fields: url, method, headers, body, timeout_seconds, operation_key) (nothing inserted)`},
		{"csv bad quote", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "q.csv", "url\n\"http://127.0.0.1:9/a\n")},
			"enqueue: FILE line 2: a quoted cell is not closed, or a \" inside it is not doubled (nothing inserted)"},
		{"ndjson read as csv", []string{"--kind", "http_request", "--name", "b", "--format", "csv", "--file", writeNamed(t, "b1.ndjson", `{"url": "http://127.0.0.1:9/a"}`+"\n")},
			`enqueue: FILE line 1: a " inside a cell that does not start with " (quote the whole cell and double each " in it: "say ""hi"""); it looks like NDJSON (it starts with {): give --format ndjson (nothing inserted)`},
		{"bad ndjson line", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "x.ndjson", `{"url": "http://127.0.0.1:9/a"}`+"\n{}\n")},
			"enqueue: FILE line 2: invalid args: url is required (nothing inserted)"},
		{"unknown kind", []string{"--kind", "email", "--name", "b", "--file", goodCSV},
			`enqueue: invalid --kind: unknown job kind "email" (known kinds: http_request, synthetic, weekly_intelligence)`},
		{"negative delay", []string{"--kind", "http_request", "--name", "b", "--file", goodCSV, "--delay-between-batches", "-5s"},
			"enqueue: invalid --delay-between-batches -5s: must not be negative"},
		{"batch size 0", []string{"--kind", "http_request", "--name", "b", "--file", goodCSV, "--batch-size", "0"},
			"enqueue: invalid --batch-size 0: must be at least 1"},
		{"duplicate name", []string{"--kind", "http_request", "--name", "taken", "--file", goodCSV},
			`enqueue: batch "taken": a batch with this name already exists (names are unique; pick another, or see rebound batch list) (nothing inserted)`},
		{"no name", []string{"--kind", "http_request", "--file", goodCSV},
			"enqueue: give --name: the batch's name, unique among all batches"},
		{"name with newline", []string{"--kind", "http_request", "--name", "a\nb", "--file", goodCSV},
			"enqueue: invalid --name: the name holds a control character"},
		{"empty csv", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "e.csv", "url\n")},
			"enqueue: FILE: no items in it"},
		{"max attempts 0", []string{"--kind", "http_request", "--name", "b", "--file", goodCSV, "--max-attempts", "0"},
			"enqueue: invalid --max-attempts 0: must be from 1 to 32767"},
		{"empty queue", []string{"--kind", "http_request", "--name", "b", "--file", goodCSV, "--queue", ""},
			"enqueue: invalid --queue: empty"},
		{"sub-batches spread past a year", []string{"--kind", "http_request", "--name", "b", "--file", writeNamed(t, "s.csv", "url\nhttp://127.0.0.1:9/a\nhttp://127.0.0.1:9/b\nhttp://127.0.0.1:9/c\n"), "--batch-size", "1", "--delay-between-batches", "2000000h"},
			"enqueue: invalid batch: its 3 sub-batches, 2000000h0m0s apart, would spread over more than 8760h0m0s (365 days); give a shorter delay or a larger batch size (nothing inserted)"},
		{"priority 9", []string{"--kind", "http_request", "--name", "b", "--file", goodCSV, "--priority", "9"},
			"enqueue: invalid --priority 9: must be from 1 to 4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := proctest.Run(t, env, "enqueue", append([]string{"batch"}, tt.args...)...)
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			require.Empty(t, res.Stdout)
			want := strings.Replace(tt.wantErr, "FILE", tt.args[slices.Index(tt.args, "--file")+1], 1)
			require.Equal(t, want+"\n", res.Stderr)
			require.Equal(t, before, db.RowCounts(t))
		})
	}
}

// A CSV's cells are typed by the kind's args; 35 items in sub-batches of 10
// with 5 s between them get 4 scheduled times 5 s apart; the batch ID is
// in each job's metadata, not its args.
func TestBatchCSVTypedAndScheduled(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	var csv strings.Builder
	csv.WriteString("url,timeout_seconds,method\n")
	for i := range 35 {
		fmt.Fprintf(&csv, "http://127.0.0.1:9/item/%d,%d.5,POST\n", i, i+1)
	}
	res := proctest.Run(t, env, "enqueue", "batch", "--kind", "http_request", "--name", "spread",
		"--file", writeNamed(t, "items.csv", csv.String()), "--batch-size", "10", "--delay-between-batches", "5s", "--json")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var out batch.Enqueued
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &out))
	require.Equal(t, 35, out.Total)
	require.Len(t, out.ScheduledAt, 4)

	ctx := context.Background()
	rows, err := db.Pool.Query(ctx, `SELECT scheduled_at, count(*) FROM river_job
		WHERE (metadata->>'batch_id')::bigint = $1 GROUP BY scheduled_at ORDER BY scheduled_at`, out.ID)
	require.NoError(t, err)
	var times []time.Time
	var counts []int
	for rows.Next() {
		var at time.Time
		var n int
		require.NoError(t, rows.Scan(&at, &n))
		times, counts = append(times, at), append(counts, n)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int{10, 10, 10, 5}, counts)
	// The first sub-batch is inserted available (scheduled_at: the insert's
	// time, just after the start); the others at start + k x 5 s.
	require.Equal(t, out.ScheduledAt[0].Add(5*time.Second), times[1].UTC())
	require.InDelta(t, 0, times[0].Sub(out.ScheduledAt[0]).Seconds(), 2)
	for k := 2; k < len(times); k++ {
		require.Equal(t, 5*time.Second, times[k].Sub(times[k-1]))
	}
	var available int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'available'").Scan(&available))
	require.Equal(t, 10, available, "the first sub-batch is available at once")
	var args string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT args::text FROM river_job WHERE args->>'url' LIKE '%/item/3'").Scan(&args))
	require.JSONEq(t, `{"url": "http://127.0.0.1:9/item/3", "method": "POST", "timeout_seconds": 4.5}`, args)
}

// --wait follows the batch worked by a real worker against a real upstream:
// progress lines on stderr, the summary on stdout, exit 0 when all
// succeeded and 3 when some were dead-lettered.
func TestBatchWaitExitCodes(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/bad") {
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(up.Close)
	db := dbtest.New(t)
	env := []string{"DATABASE_URL=" + db.URL}
	proctest.StartWorker(t, db.URL, "--fetch-poll-interval", "100ms")

	var all, some strings.Builder
	for i := range 6 {
		fmt.Fprintf(&all, `{"url": "%s/ok/%d"}`+"\n", up.URL, i)
		path := "ok"
		if i%3 == 0 {
			path = "bad"
		}
		fmt.Fprintf(&some, `{"url": "%s/%s/%d"}`+"\n", up.URL, path, i)
	}
	ok := proctest.Run(t, env, "enqueue", "batch", "--kind", "http_request", "--name", "all-good",
		"--file", writeNamed(t, "all.ndjson", all.String()), "--batch-size", "3", "--delay-between-batches", "1s", "--wait", "--wait-interval", "200ms",
		"--callback-kind", "synthetic")
	require.Equal(t, 0, ok.ExitCode, ok.Stderr)
	// synthetic, the one kind of rebound's that runs on a summary, is
	// inserted when the batch completes and succeeds.
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var state string
		err := db.Pool.QueryRow(ctx, `SELECT j.state::text FROM job_batch b JOIN river_job j ON j.id = b.callback_job_id
			WHERE b.name = 'all-good' AND j.kind = 'synthetic'`).Scan(&state)
		if err == nil && state == "completed" {
			break
		}
		require.True(t, time.Now().Before(deadline), "callback job not completed: %v %s", err, state)
		time.Sleep(100 * time.Millisecond)
	}
	require.Contains(t, ok.Stdout, "succeeded:     6\n")
	require.Contains(t, ok.Stdout, "success rate:  100.0%\n")
	require.Contains(t, ok.Stderr, "/6 finished")
	require.Contains(t, ok.Stderr, ": 6/6 finished (100%), ")
	require.Contains(t, ok.Stderr, "ETA 0s, 0 dead-lettered\n")

	bad := proctest.Run(t, env, "enqueue", "batch", "--kind", "http_request", "--name", "some-bad",
		"--file", writeNamed(t, "some.ndjson", some.String()), "--delay-between-batches", "0s", "--wait", "--wait-interval", "200ms", "--json")
	require.Equal(t, ExitNotAllSucceeded, bad.ExitCode, bad.Stderr)
	var s batch.Summary
	require.NoError(t, json.Unmarshal([]byte(bad.Stdout), &s))
	require.Equal(t, int64(6), s.Total)
	require.Equal(t, int64(4), s.Succeeded)
	require.Equal(t, int64(2), s.Failed)
	require.Equal(t, 66.7, *s.SuccessRate)
	require.Equal(t, map[string]int64{"bad_request": 2}, s.FailuresByClass)
	require.Len(t, s.DeadLetterIDs, 2)
	require.Contains(t, bad.Stderr, ": 6/6 finished (100%), ")
	require.Contains(t, bad.Stderr, "ETA 0s, 2 dead-lettered\n")
	require.True(t, strings.HasSuffix(bad.Stderr, fmt.Sprintf("enqueue: batch %d: 2 of 6 jobs did not succeed (2 dead-lettered, 0 cancelled)\n", s.ID)), bad.Stderr)
}

// 100,000 items in one command, in one transaction, all inserted with their
// 100 sub-batch times. The time it takes is logged, not asserted: speed is
// shown by `rebound bench --scenario insert`, not by a timed test.
func TestBatch100kItems(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 100,000 jobs")
	}
	t.Parallel()
	db := dbtest.New(t)
	var b strings.Builder
	for i := range 100_000 {
		fmt.Fprintf(&b, `{"url": "http://127.0.0.1:9/u/%d"}`+"\n", i)
	}
	path := writeNamed(t, "big.ndjson", b.String())
	start := time.Now()
	res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", "batch", "--kind", "http_request", "--name", "big",
		"--file", path, "--batch-size", "1000", "--delay-between-batches", "1s", "--json")
	took := time.Since(start)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	var out batch.Enqueued
	require.NoError(t, json.Unmarshal([]byte(res.Stdout), &out))
	require.Equal(t, 100_000, out.Total)
	require.Len(t, out.ScheduledAt, 100)
	require.Equal(t, "jobs=100000 batches=1", rowCounts(t, db))
	t.Logf("enqueue batch of 100,000 items: %s (command, wall clock)", took.Round(time.Millisecond))
}
