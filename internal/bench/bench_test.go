package bench_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/bench"
)

// dbColumnsPattern matches a side's two PostgreSQL CPU columns: median
// (with "(k of n rounds)" when some rounds read none: /proc counts 10 ms
// ticks, and a round of a few hundred jobs may cost the server less) and
// min-max, or "-" twice when none of the side's rounds read any.
const dbColumnsPattern = `\s+(?:[\d.]+(?: \(\d+ of \d+ rounds\))?\s+[\d.]+-[\d.]+|-\s+-)`

func serverURL(t *testing.T) string {
	t.Helper()
	for _, env := range []string{"TEST_DATABASE_URL", "DATABASE_URL"} {
		if u := os.Getenv(env); u != "" {
			return u
		}
	}
	t.Fatal("bench tests need a PostgreSQL server: set TEST_DATABASE_URL (make test does)")
	return ""
}

// The harness runs on a small size and reports sane numbers: both sides
// alternate, every round works every job at a positive rate and a CPU cost
// per job under 10 ms, the table and the SVG say so, and the scratch
// database is gone afterwards. (Benchmarks are not timed tests: no figure
// is compared with a target here.)
func TestNoopHarnessReportsSaneNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := serverURL(t)
	db, err := bench.NewDatabase(ctx, base, 10)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(db.Name, "rebound_bench_"), db.Name)

	var progress bytes.Buffer
	rep, err := bench.RunNoop(ctx, db.Pool, bench.NoopConfig{Jobs: 300, Rounds: 2, Workers: 50, Timeout: 2 * time.Minute}, &progress)
	require.NoError(t, err)

	var order []bench.Side
	for _, r := range rep.Rounds {
		order = append(order, r.Side)
		require.Equal(t, 300, r.Jobs)
		require.Greater(t, r.JobsPerSecond(), 10.0, "round %d %s", r.Number, r.Side)
		require.Greater(t, r.CPUPerJob(), 0.0, "round %d %s", r.Number, r.Side)
		require.Less(t, r.CPUPerJob(), 10_000.0, "round %d %s: µs per job", r.Number, r.Side)
	}
	require.Equal(t, []bench.Side{bench.SideRiver, bench.SideRebound, bench.SideRebound, bench.SideRiver}, order)
	require.Equal(t, 4, strings.Count(progress.String(), "jobs/s"))
	rate, cpu := rep.Ratio()
	require.Greater(t, rate, 0.0)
	require.Greater(t, cpu, 0.0)

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	require.Contains(t, table.String(), "MaxWorkers 50, FetchCooldown 2ms, FetchPollInterval 50ms, pool 10 connections")
	// PostgreSQL's CPU is read from /proc when the server is a local
	// process (as in CI), and gets two columns and a ratio.
	// Each side's columns show what its rounds read (see dbColumnsPattern).
	_, riverMeasured := bench.DBOf(rep.Rounds, bench.SideRiver)
	_, reboundMeasured := bench.DBOf(rep.Rounds, bench.SideRebound)
	if os.Getenv("CI") == "true" {
		require.True(t, riverMeasured || reboundMeasured, "PostgreSQL's CPU is measured on a local server")
	}
	dbColumns := ""
	if riverMeasured || reboundMeasured {
		dbColumns = dbColumnsPattern
	}
	if riverMeasured && reboundMeasured {
		require.Regexp(t, `PostgreSQL's CPU per job, river's / rebound's: \d+\.\d{3}\n`, table.String())
	}
	require.Regexp(t, `(?m)^river\s+\d+\s+\d+-\d+\s+[\d.]+\s+[\d.]+-[\d.]+`+dbColumns+`$`, table.String())
	require.Regexp(t, `(?m)^rebound\s+\d+\s+\d+-\d+\s+[\d.]+\s+[\d.]+-[\d.]+`+dbColumns+`$`, table.String())
	require.Regexp(t, `ratio rebound/river: jobs/s \d\.\d{3}, CPU per job \d\.\d{3}`, table.String())

	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	require.Equal(t, 4, countPolylines(t, svg.Bytes()), "two panels, one line per side")

	require.NoError(t, db.Close())
	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", db.Name).Scan(&n))
	require.Equal(t, 0, n, "the scratch database is dropped")
}
