package bench_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/bench"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// The insert harness runs the real enqueue binary and InsertManyFast on a
// small size and reports sane numbers: every side runs once per round,
// rotating which goes first; every round inserted exactly the file's lines
// (RunInsert checks the row count after each round, and that --json's IDs
// are exactly the rows, and fails otherwise); the table and the SVG say so.
// No figure is compared with a target.
func TestInsertHarnessReportsSaneNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := bench.NewDatabase(ctx, serverURL(t), 4)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	var progress bytes.Buffer
	rep, err := bench.RunInsert(ctx, db.Pool, db.URL, bench.InsertConfig{Lines: 2000, Rounds: 2, EnqueueBin: proctest.Bin(t, "enqueue"), Dir: t.TempDir()}, &progress)
	require.NoError(t, err, progress.String())

	var order []bench.Side
	for _, r := range rep.Rounds {
		order = append(order, r.Side)
		require.Equal(t, 2000, r.Jobs)
		require.Greater(t, r.JobsPerSecond(), 10.0, "round %d %s", r.Number, r.Side)
		require.Greater(t, r.CPUPerJob(), 0.0, "round %d %s", r.Number, r.Side)
	}
	require.Equal(t, []bench.Side{
		bench.SideInsertManyFast, bench.SideInsertManyFastKeyed, bench.SideEnqueue, bench.SideEnqueueJSON,
		bench.SideInsertManyFastKeyed, bench.SideEnqueue, bench.SideEnqueueJSON, bench.SideInsertManyFast,
	}, order)
	require.Equal(t, 8, strings.Count(progress.String(), "jobs/s"))
	// PostgreSQL's CPU is read from /proc when the server is a local
	// process (as in CI): then every round has some.
	_, measured := bench.DBOf(rep.Rounds, bench.SideInsertManyFast)
	if os.Getenv("CI") == "true" {
		require.True(t, measured, "PostgreSQL's CPU is measured on a local server")
	}
	if measured {
		for _, r := range rep.Rounds {
			require.Greater(t, r.DBCPUPerJob(), 0.0, "round %d %s", r.Number, r.Side)
		}
		require.Equal(t, 8, strings.Count(progress.String(), "µs PostgreSQL CPU/job"))
	}
	require.Greater(t, rep.FileBytes, int64(2000*60))
	require.Greater(t, rep.Ratio(bench.SideEnqueue), 0.0)
	require.Greater(t, rep.Ratio(bench.SideEnqueueJSON), 0.0)

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	require.Contains(t, table.String(), "insert: 2000 http_request jobs per round")
	if os.Getenv("CI") == "true" { // CI's role is a superuser
		require.True(t, rep.Checkpoints)
		require.Contains(t, table.String(), "\neach round starts from an empty river_job, right after a CHECKPOINT\n")
	}
	dbColumns := ""
	if measured {
		dbColumns = dbColumnsPattern
	}
	for _, side := range []string{`InsertManyFast`, `InsertManyFast, keyed`, `enqueue --file`, `enqueue --file --json`} {
		require.Regexp(t, `(?m)^`+side+`\s+[\d.]+\s+[\d.]+-[\d.]+\s+\d+\s+\d+-\d+\s+[\d.]+\s+[\d.]+-[\d.]+`+dbColumns+`$`, table.String())
	}
	require.Regexp(t, `ratio to InsertManyFast \(median jobs/s; 1 = as fast\): enqueue --file \d+\.\d{3}, enqueue --file --json \d+\.\d{3}, InsertManyFast keyed \d+\.\d{3}\n`, table.String())
	require.Regexp(t, `ratio to InsertManyFast keyed \(the same rows as enqueue's\): enqueue --file \d+\.\d{3}, enqueue --file --json \d+\.\d{3}\n`, table.String())

	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	require.Equal(t, 8, countPolylines(t, svg.Bytes()), "two panels, one line per side")
}

// RunInsert refuses a missing enqueue binary before it writes anything.
func TestInsertNeedsTheEnqueueBinary(t *testing.T) {
	t.Parallel()
	_, err := bench.RunInsert(context.Background(), nil, "", bench.InsertConfig{EnqueueBin: t.TempDir() + "/nope"}, nil)
	require.ErrorContains(t, err, "insert scenario: enqueue binary: stat ")
}
