package breaker

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// logBuffer collects a pod's JSON log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// lines returns the decoded lines whose msg is msg.
func (l *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, raw := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if raw == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &m), raw)
		if m["msg"] == msg {
			delete(m, "time")
			out = append(out, m)
		}
	}
	return out
}

// Each transition is logged once, at info, by the pod whose statement made
// it, however many pods report outcomes for the key.
func TestTransitionsLoggedOncePerCluster(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	settings := Settings{FailureThreshold: 3, OpenTimeout: 300 * time.Millisecond}
	logs := []*logBuffer{{}, {}, {}}
	pods := make([]*testBundle, len(logs))
	for i, l := range logs {
		pods[i] = setupOn(t, db, Config{Settings: settings, Logger: l.logger()})
	}
	count := func(msg string) (n int, last map[string]any) {
		for _, l := range logs {
			lines := l.lines(t, msg)
			n += len(lines)
			if len(lines) > 0 {
				last = lines[len(lines)-1]
			}
		}
		return n, last
	}

	// Every pod fails calls at once: more failures than the threshold.
	var wg sync.WaitGroup
	for _, p := range pods {
		for range 4 {
			wg.Go(func() { _ = p.b.Execute(ctx, "api", fail) })
		}
	}
	wg.Wait()
	for _, p := range pods {
		require.Eventually(t, func() bool { return p.b.State("api") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	}
	n, line := count("circuit breaker opened")
	require.Equal(t, 1, n)
	require.Equal(t, "INFO", line["level"])
	require.Equal(t, "api", line["key"])
	require.Equal(t, "closed", line["from"])
	require.Equal(t, "open", line["to"])
	require.Equal(t, 1.0, line["trips"])
	require.Equal(t, "300ms", line["open_for"])
	require.GreaterOrEqual(t, line["failure_count"], 3.0)

	// The probe time comes; every pod calls; one probe fails: re-opened.
	time.Sleep(350 * time.Millisecond)
	for _, p := range pods {
		wg.Go(func() { _ = p.b.Execute(ctx, "api", fail) })
	}
	wg.Wait()
	n, line = count("circuit breaker half-open: probing")
	require.Equal(t, 1, n)
	require.Equal(t, map[string]any{"level": "INFO", "msg": "circuit breaker half-open: probing", "key": "api", "from": "open", "to": "half_open"}, line)
	n, line = count("circuit breaker re-opened: a probe failed")
	require.Equal(t, 1, n)
	require.Equal(t, "half_open", line["from"])
	require.Equal(t, 2.0, line["trips"])

	// Then a probe succeeds: closed, logged once.
	require.Eventually(t, func() bool {
		for _, p := range pods {
			_ = p.b.Execute(ctx, "api", succeed)
		}
		return pods[0].b.State("api") == StateClosed
	}, 5*time.Second, 50*time.Millisecond)
	n, line = count("circuit breaker closed")
	require.Equal(t, 1, n)
	require.Equal(t, map[string]any{"level": "INFO", "msg": "circuit breaker closed", "key": "api", "from": "half_open", "to": "closed"}, line)
	n, _ = count("circuit breaker half-open: probing")
	require.Equal(t, 2, n, "the second probe period")

	// The lines add up to the transitions the pods counted.
	var metered float64
	for _, p := range pods {
		metered += sumCounter(t, p, "rebound_breaker_transitions_total")
	}
	require.Equal(t, 5.0, metered)
}

func sumCounter(t *testing.T, tb *testBundle, name string) float64 {
	t.Helper()
	mfs, err := tb.reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// The gate logs a key's first parked job, then one count per interval
// while the key keeps parking jobs, then the total when the key closes:
// never a line per parked job.
func TestGateLogsParkingWithoutALinePerJob(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	tb := setup(t, Config{Settings: Settings{ParkSpread: time.Hour}, Logger: logs.logger()})
	ctx := context.Background()
	_, err := tb.store.Open(ctx, OpenParams{Key: "api.example.com", For: time.Hour, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tb.b.State("api.example.com") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{Rand: func() float64 { return 0.5 }, ParkLogInterval: 2 * time.Second})
	client := startRiver(t, tb, gate, &noopWorker{})

	insert := func(n int) {
		t.Helper()
		params := make([]river.InsertManyParams, n)
		for i := range params {
			params[i] = river.InsertManyParams{Args: noopArgs{}, InsertOpts: &river.InsertOpts{Metadata: []byte(`{"operation_key": "api.example.com"}`)}}
		}
		_, err := client.InsertMany(ctx, params)
		require.NoError(t, err)
	}
	parked := func() int {
		var n int
		require.NoError(t, tb.db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'scheduled' AND metadata ? 'breaker_parked_key'`).Scan(&n))
		return n
	}
	insert(10)
	require.Eventually(t, func() bool { return parked() == 10 }, 10*time.Second, 20*time.Millisecond)
	first := logs.lines(t, "jobs parked behind circuit breaker")
	require.Len(t, first, 1, "one line for the key's first parked job")
	require.Equal(t, "api.example.com", first[0]["key"])
	require.Equal(t, "open", first[0]["state"])

	insert(5)
	require.Eventually(t, func() bool { return parked() == 15 }, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return len(logs.lines(t, "jobs still parked behind circuit breaker")) == 1 }, 10*time.Second, 20*time.Millisecond)
	still := logs.lines(t, "jobs still parked behind circuit breaker")[0]
	require.Equal(t, 14.0, still["parked"], "the jobs after the first")
	require.Equal(t, 15.0, still["parked_total"])
	time.Sleep(2500 * time.Millisecond)
	require.Len(t, logs.lines(t, "jobs still parked behind circuit breaker"), 1, "no line while nothing new is parked")

	_, err = tb.store.Reset(ctx, ResetParams{Key: "api.example.com", By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(logs.lines(t, "circuit breaker closed: parked jobs wake")) == 1 }, 10*time.Second, 20*time.Millisecond)
	closed := logs.lines(t, "circuit breaker closed: parked jobs wake")[0]
	require.Equal(t, 15.0, closed["parked_total"])
	require.Len(t, logs.lines(t, "jobs parked behind circuit breaker"), 1)
}

// While the database refuses the gate's wake-ups (here river_job is renamed
// away), the gate logs the first failure and then at most one line a
// minute, not a line per open key every probeRewake; and once when they
// work again.
func TestGateWakeFailuresNotLoggedPerPass(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	tb := setup(t, Config{Logger: logs.logger()})
	ctx := context.Background()
	for _, key := range []string{"a.example.com", "b.example.com"} {
		openRowProbeDue(t, tb.db, key)
	}
	require.Eventually(t, func() bool {
		return tb.b.State("a.example.com") == StateOpen && tb.b.State("b.example.com") == StateOpen
	}, 5*time.Second, 5*time.Millisecond)
	_, err := tb.db.Pool.Exec(ctx, "ALTER TABLE river_job RENAME TO river_job_away")
	require.NoError(t, err)
	NewGate(tb.b, GateConfig{})
	// Each key's probe wake-up is tried again every probeRewake (2 s):
	// at least 2 failing passes, 4 failed wake-ups over two keys, in 5 s.
	time.Sleep(5 * time.Second)
	failed := logs.lines(t, "breaker gate: waking parked jobs failed")
	require.Len(t, failed, 1, "one line for the first failure")
	require.Contains(t, failed[0]["error"], `wake probe jobs: ERROR: relation "river_job" does not exist (SQLSTATE 42P01)`)
	require.Equal(t, "WARN", failed[0]["level"])

	_, err = tb.db.Pool.Exec(ctx, "ALTER TABLE river_job_away RENAME TO river_job")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return len(logs.lines(t, "breaker gate: waking parked jobs works again")) == 1
	}, 10*time.Second, 20*time.Millisecond)
	recovered := logs.lines(t, "breaker gate: waking parked jobs works again")[0]
	require.Equal(t, "INFO", recovered["level"])
	require.GreaterOrEqual(t, recovered["failed_passes"], 2.0)
	require.Len(t, logs.lines(t, "breaker gate: waking parked jobs failed"), 1)
}

// While the LISTEN connection cannot be made (here its config names a port
// nobody listens on), the breaker logs the first failure and then at most
// one line a minute, not one per reconnection attempt (every 5 s at most).
func TestListenFailuresNotLoggedPerAttempt(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	db := dbtest.New(t)
	dead, err := pgx.ParseConfig("postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	setupOn(t, db, Config{Logger: logs.logger(), ListenConfig: dead})
	// Attempts after 0.1, 0.2, 0.4, 0.8, 1.6 and 3.2 s: 7 failures in 7 s.
	time.Sleep(7 * time.Second)
	lost := logs.lines(t, "breaker: LISTEN connection lost; the 1s refresh covers the gap")
	require.Len(t, lost, 1, "one line for the first failure")
	require.Equal(t, "WARN", lost[0]["level"])
	require.Contains(t, lost[0]["error"], "127.0.0.1:1")
	require.Empty(t, logs.lines(t, "breaker: LISTEN works again"))
}
