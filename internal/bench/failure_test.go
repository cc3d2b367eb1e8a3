package bench_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/bench"
)

// countPolylines checks that svg is well-formed XML and counts its lines.
func countPolylines(t *testing.T, svg []byte) int {
	t.Helper()
	n := 0
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return n
		}
		require.NoError(t, err, "the SVG is well-formed XML")
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
			n++
		}
	}
}

// The failure-heavy mix on a small size: every round's counts are what the
// mix makes certain (200 jobs: 60 fail once, 10 fail permanently, 130
// succeed). Rebound uses 200 + 60 attempts and calls, its DLQ holds exactly
// the 10 permanent failures; plain River retries those until max attempts
// (5): 260 + 10 x 4 = 300. No figure is timed.
func TestFailureMixHarnessReportsSaneNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := bench.NewDatabase(ctx, serverURL(t), 10)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	var progress bytes.Buffer
	rep, err := bench.RunFailure(ctx, db.Pool, bench.FailureConfig{Jobs: 200, Rounds: 1,
		HTTPQueueConfig: bench.HTTPQueueConfig{Workers: 50, RetryDelay: 50 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond, Timeout: 2 * time.Minute}}, &progress)
	require.NoError(t, err, progress.String())
	require.Equal(t, bench.Mix{FailOnce: 60, Permanent: 10, Succeed: 130}, rep.Mix)
	require.Equal(t, int64(260), rep.ExpectedAttempts(bench.SideRebound))
	require.Equal(t, int64(300), rep.ExpectedAttempts(bench.SideRiver))

	want := map[bench.Side]struct {
		attempts int64
		perJob   float64
	}{bench.SideRiver: {300, 1.5}, bench.SideRebound: {260, 1.3}}
	var order []bench.Side
	for _, r := range rep.Rounds {
		order = append(order, r.Side)
		w := want[r.Side]
		require.Equal(t, 200, r.Jobs, r.Side)
		require.Equal(t, 190, r.Completed, r.Side)
		require.Equal(t, 10, r.Dead, r.Side)
		require.Equal(t, w.attempts, r.Attempts, r.Side)
		require.Equal(t, w.attempts, r.Calls, "%s: one upstream call per attempt", r.Side)
		require.InDelta(t, w.perJob, r.AttemptsPerJob(), 1e-9, r.Side)
		require.Equal(t, int64(0), r.Parked, "%s: the mix does not trip rebound's breaker", r.Side)
		require.Greater(t, r.JobsPerSecond(), 0.0, r.Side)
		require.Greater(t, r.CPUPerJob(), 0.0, r.Side)
		// The DLQ capture trigger is on river_job: plain River's
		// discarded jobs get their rows too.
		require.Equal(t, 10, r.DLQRows, r.Side)
	}
	require.Equal(t, []bench.Side{bench.SideRiver, bench.SideRebound}, order)
	require.Equal(t, 2, strings.Count(progress.String(), "failure round 1"))

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	require.Contains(t, table.String(), "200 jobs per round (60 fail once with a 503, 10 fail permanently with a 400 or 404, 130 succeed), 1 rounds per side, alternating; MaxWorkers 50, FetchCooldown 2ms, FetchPollInterval 50ms, pool 10 connections")
	require.Contains(t, table.String(), "max attempts 5, delay 50ms x 2^(n-1) +-20%, capped at 200ms")
	require.Regexp(t, `(?m)^river\s+\d+\s+\d+-\d+\s+1\.50\s+10\s+10\s+300\s+0\s+[\d.]+\s+[\d.]+-[\d.]+$`, table.String())
	require.Regexp(t, `(?m)^rebound\s+\d+\s+\d+-\d+\s+1\.30\s+10\s+10\s+260\s+0\s+[\d.]+\s+[\d.]+-[\d.]+$`, table.String())
	require.Contains(t, table.String(), "upstream calls 0.867;")

	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	require.Equal(t, 6, countPolylines(t, svg.Bytes()), "three panels, one line per side")
}

// The outage on a small size (100 jobs, 20 workers, upstream down 4 s,
// open timeout 1 s): every job of every side completes after the recovery,
// and rebound with its breaker calls the upstream less during the outage
// than plain River and than rebound with a breaker that cannot trip (its
// first wave is at most the 20 workers' calls, then a probe a second; the
// others keep retrying for 4 s). After the recovery each job needs one
// successful call at most. No figure is timed.
func TestOutageHarnessReportsSaneNumbers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db, err := bench.NewDatabase(ctx, serverURL(t), 10)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })

	var progress bytes.Buffer
	rep, err := bench.RunOutage(ctx, db.Pool, bench.OutageConfig{Jobs: 100, Rounds: 1, Outage: 4 * time.Second, NoBreakerSide: true,
		Breaker:         breaker.Settings{OpenTimeout: time.Second},
		HTTPQueueConfig: bench.HTTPQueueConfig{Workers: 20, Timeout: 2 * time.Minute}}, &progress)
	require.NoError(t, err, progress.String())

	bySide := map[bench.Side]bench.HTTPRound{}
	var order []bench.Side
	for _, r := range rep.Rounds {
		order = append(order, r.Side)
		bySide[r.Side] = r
		require.Equal(t, 100, r.Completed, r.Side)
		require.Equal(t, 0, r.Dead, r.Side)
		require.Equal(t, 0, r.DLQRows, r.Side)
		require.Equal(t, r.Calls, r.Attempts, "%s: one upstream call per attempt", r.Side)
		require.GreaterOrEqual(t, r.CallsDuringOutage, int64(1), r.Side)
		require.LessOrEqual(t, r.Calls-r.CallsDuringOutage, int64(100), "%s: one successful call per job at most after recovery", r.Side)
		require.Positive(t, r.Drain, "%s: jobs were still waiting at the recovery", r.Side)
	}
	require.Equal(t, []bench.Side{bench.SideRiver, bench.SideRebound, bench.SideReboundNoBreaker}, order)
	river, withBreaker, without := bySide[bench.SideRiver], bySide[bench.SideRebound], bySide[bench.SideReboundNoBreaker]
	require.Less(t, withBreaker.CallsDuringOutage, river.CallsDuringOutage)
	require.Less(t, withBreaker.CallsDuringOutage, without.CallsDuringOutage)
	require.Positive(t, withBreaker.Parked, "the breaker parked jobs")
	require.Zero(t, river.Parked)
	require.Zero(t, without.Parked)

	var table bytes.Buffer
	require.NoError(t, rep.WriteTable(&table))
	require.Contains(t, table.String(), "outage: 100 jobs per round against one upstream answering 503 for 4s from the start, then 200; 1 rounds per side, alternating; MaxWorkers 20")
	require.Contains(t, table.String(), "rebound's breaker: failure threshold 5, ratio 0.5 over 20 calls, open timeout 1s (x1 per trip), 1 probe(s), park spread 10m0s, wake spread 10s (100ms per wave of 20 workers)\n")
	for _, side := range []string{"river", "rebound", "rebound-no-breaker"} {
		require.Regexp(t, `(?m)^`+side+`\s+\d+\s+\d+-\d+\s+\d+\s+[\d.]+\s+[\d.]+-[\d.]+\s+100\s+0\s+\d+\s+[\d.]+$`, table.String())
	}
	require.Regexp(t, `calls during the outage, rebound with its breaker / river: 0\.\d{3}`, table.String())

	var svg bytes.Buffer
	require.NoError(t, rep.WriteSVG(&svg))
	require.Equal(t, 9, countPolylines(t, svg.Bytes()), "three panels, one line per side")
}
