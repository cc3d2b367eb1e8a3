package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// testBundle is one test's database and a started breaker on it.
type testBundle struct {
	db      *dbtest.Database
	b       *Breaker
	store   *Store
	metrics *Metrics
	reg     *prometheus.Registry
	calls   *atomic.Int64 // queries issued by calls (not background work)
}

// queryCounter counts the queries a call costs on a pool (background work
// of the breaker excluded).
type queryCounter struct{ n *atomic.Int64 }

func (q queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	if !IsBackground(ctx) {
		q.n.Add(1)
	}
	return ctx
}

func (q queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	db := dbtest.New(t)
	return setupOn(t, db, cfg)
}

func setupOn(t *testing.T, db *dbtest.Database, cfg Config) *testBundle {
	t.Helper()
	ctx := context.Background()
	pcfg, err := pgxpool.ParseConfig(db.URL)
	require.NoError(t, err)
	calls := &atomic.Int64{}
	pcfg.ConnConfig.Tracer = queryCounter{calls}
	pcfg.MaxConns = 8
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	reg := prometheus.NewPedanticRegistry()
	m, err := NewMetrics(reg)
	require.NoError(t, err)
	cfg.Metrics = m
	b, err := New(pool, cfg)
	require.NoError(t, err)
	require.NoError(t, b.Start(ctx))
	t.Cleanup(func() { require.NoError(t, b.Stop(context.Background())) })
	return &testBundle{db: db, b: b, store: NewStore(db.Pool), metrics: m, reg: reg, calls: calls}
}

var errDown = errors.New("upstream: HTTP 503")

func fail(context.Context) error    { return errDown }
func succeed(context.Context) error { return nil }

// openRowProbeDue forces key's row to open with its probe time passed, in
// one transaction, so no pod ever sees it open with the probe time ahead.
func openRowProbeDue(t *testing.T, db *dbtest.Database, key string) {
	t.Helper()
	ctx := context.Background()
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := NewStore(db.Pool).OpenTx(ctx, tx, OpenParams{Key: key, For: time.Hour, By: "test"}); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE circuit_breaker_state SET next_probe_at = now() - interval '1 minute' WHERE breaker_key = $1`, key)
		return err
	})
	require.NoError(t, err)
}

func TestConsecutiveFailuresTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		threshold int
		outcomes  []error
		wantState State
		wantCount int
		wantGen   int64
	}{
		{"below threshold", 3, []error{errDown, errDown}, StateClosed, 2, 1},
		{"at threshold", 3, []error{errDown, errDown, errDown}, StateOpen, 3, 2},
		{"success in between restarts the count", 3, []error{errDown, errDown, nil, errDown}, StateClosed, 1, 1},
		{"success in between, not yet written, still restarts it", 3, []error{errDown, errDown, nil, errDown, errDown}, StateClosed, 2, 1},
		{"default threshold 5", 0, []error{errDown, errDown, errDown, errDown, errDown}, StateOpen, 5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tb := setup(t, Config{Settings: Settings{FailureThreshold: tt.threshold, FailureRatio: -1}})
			ctx := context.Background()
			// No flush between outcomes: a success waits for the 1s
			// background write, and the failures after it must not undo it.
			for _, o := range tt.outcomes {
				_ = tb.b.Execute(ctx, "k", func(context.Context) error { return o })
			}
			tb.b.flushAll(ctx) // what the 1s refresh does
			row, err := tb.store.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, tt.wantState, row.State)
			require.Equal(t, tt.wantCount, row.FailureCount)
			require.Equal(t, tt.wantGen, row.Generation)
			require.Equal(t, tt.wantState, tb.b.State("k"), "the pod that wrote sees its own transition")
			if tt.wantState == StateOpen {
				require.Equal(t, DefaultOpenTimeout, row.NextProbeAt.Sub(*row.OpenedAt), "next_probe_at = opened_at + open_timeout, database clock")
				require.Equal(t, 1, row.TripCount)
				require.Equal(t, errDown.Error(), row.LastError)
				err := tb.b.Execute(ctx, "k", succeed)
				require.ErrorIs(t, err, ErrOpenState)
				var oe *OpenError
				require.ErrorAs(t, err, &oe)
				require.Equal(t, "breaker_open", oe.FailureClass())
				require.Greater(t, oe.RetryAfter(), 25*time.Second)
				require.LessOrEqual(t, oe.RetryAfter(), 30*time.Second)
			}
		})
	}
}

func TestRatioTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		calls, failures int64
		wantTrip        bool
	}{
		{"below minimum calls", 3, 3, false},
		{"ratio reached", 4, 2, true},
		{"ratio not reached", 5, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			ctx := context.Background()
			s := NewStore(db.Pool)
			st := Settings{FailureThreshold: 100, FailureRatio: 0.5, MinimumCalls: 4}.WithDefaults()
			require.NoError(t, s.ensureRow(ctx, "k"))
			res, err := s.record(ctx, recordParams{key: "k", generation: 1, calls: tt.calls, failures: tt.failures,
				trailing: 1, reset: true, lastError: "x", settings: st, builtin: true})
			require.NoError(t, err)
			require.True(t, res.applied)
			require.Equal(t, tt.wantTrip, res.tripped)
			if tt.wantTrip {
				require.Equal(t, StateOpen, res.row.State)
				require.Equal(t, int64(0), res.row.WindowCalls, "a trip starts a new window")
			} else {
				require.Equal(t, tt.calls, res.row.WindowCalls)
				require.Equal(t, tt.failures, res.row.WindowFailures)
			}
		})
	}
}

func TestRatioWindowRollsOver(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	s := NewStore(db.Pool)
	st := Settings{FailureThreshold: 100, MinimumCalls: 4, Window: time.Second}.WithDefaults()
	require.NoError(t, s.ensureRow(ctx, "k"))
	_, err := db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET window_started_at = now() - interval '2 seconds', window_calls = 3, window_failures = 3 WHERE breaker_key = 'k'`)
	require.NoError(t, err)
	res, err := s.record(ctx, recordParams{key: "k", generation: 1, calls: 1, failures: 1, trailing: 1, settings: st, builtin: true})
	require.NoError(t, err)
	require.False(t, res.tripped, "the old window's calls no longer count")
	require.Equal(t, int64(1), res.row.WindowCalls)
	require.Equal(t, int64(1), res.row.WindowFailures)
}

func TestReadyToTripPolicy(t *testing.T) {
	t.Parallel()
	var seen []Counts
	tb := setup(t, Config{Settings: Settings{ReadyToTrip: func(c Counts) bool {
		seen = append(seen, c)
		return c.ConsecutiveFailures >= 2
	}}})
	ctx := context.Background()
	require.ErrorIs(t, tb.b.Execute(ctx, "k", fail), errDown)
	require.Equal(t, StateClosed, tb.b.State("k"))
	require.ErrorIs(t, tb.b.Execute(ctx, "k", fail), errDown)
	require.Equal(t, StateOpen, tb.b.State("k"))
	require.Equal(t, []Counts{{ConsecutiveFailures: 1, WindowCalls: 1, WindowFailures: 1}, {ConsecutiveFailures: 2, WindowCalls: 2, WindowFailures: 2}}, seen)
}

func TestCancellationNeverCounts(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 1}})
	ctx := context.Background()
	for i := range 10 {
		err := tb.b.Execute(ctx, "k", func(context.Context) error {
			return fmt.Errorf("call %d: shutting down: %w", i, context.Canceled)
		})
		require.ErrorIs(t, err, context.Canceled)
	}
	require.Equal(t, StateClosed, tb.b.State("k"))
	_, err := tb.store.Get(ctx, "k")
	require.ErrorIs(t, err, ErrNotFound, "nothing was written")
}

func TestIsFailurePredicate(t *testing.T) {
	t.Parallel()
	errNotFound := errors.New("HTTP 404")
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 1, IsFailure: func(err error) bool { return errors.Is(err, errDown) }}})
	ctx := context.Background()
	for range 5 {
		require.ErrorIs(t, tb.b.Execute(ctx, "k", func(context.Context) error { return errNotFound }), errNotFound)
	}
	require.Equal(t, StateClosed, tb.b.State("k"))
	require.ErrorIs(t, tb.b.Execute(ctx, "k", fail), errDown)
	require.Equal(t, StateOpen, tb.b.State("k"))
}

func TestHalfOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		settings     Settings
		probes       []error // outcomes of successive probes
		wantState    State
		wantTrips    int
		wantOpenFor  time.Duration // next_probe_at - opened_at when open
		wantSuccess  int
		wantProbeGen int64
	}{
		{"success closes", Settings{}, []error{nil}, StateClosed, 0, 0, 0, 4},
		{"two successes needed", Settings{SuccessThreshold: 2}, []error{nil}, StateHalfOpen, 1, 0, 1, 3},
		{"failure re-opens", Settings{OpenTimeout: time.Second}, []error{errDown}, StateOpen, 2, time.Second, 0, 4},
		{"failure re-opens with a grown timeout", Settings{OpenTimeout: time.Second, OpenTimeoutMultiplier: 3}, []error{errDown}, StateOpen, 2, 3 * time.Second, 0, 4},
		{"growth is capped", Settings{OpenTimeout: time.Second, OpenTimeoutMultiplier: 3, MaxOpenTimeout: 2 * time.Second}, []error{errDown}, StateOpen, 2, 2 * time.Second, 0, 4},
		{"cancelled probe decides nothing", Settings{}, []error{context.Canceled}, StateHalfOpen, 1, 0, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			db := dbtest.New(t)
			ctx := context.Background()
			openRowProbeDue(t, db, "k")
			_, err := db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET trip_count = 1 WHERE breaker_key = 'k'`)
			require.NoError(t, err)
			tb := setupOn(t, db, Config{Settings: tt.settings})
			require.Equal(t, StateOpen, tb.b.State("k"))
			for _, o := range tt.probes {
				p, err := tb.b.Allow(ctx, "k")
				require.NoError(t, err)
				require.True(t, p.Probe())
				require.Equal(t, StateHalfOpen, tb.b.State("k"))
				_, err = tb.b.Allow(ctx, "k")
				require.ErrorIs(t, err, ErrTooManyProbes, "one probe at a time")
				p.Done(ctx, o)
			}
			row, err := tb.store.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, tt.wantState, row.State)
			require.Equal(t, tt.wantTrips, row.TripCount)
			require.Equal(t, tt.wantSuccess, row.SuccessCount)
			require.Equal(t, tt.wantProbeGen, row.Generation)
			if tt.wantState == StateOpen {
				require.Equal(t, tt.wantOpenFor, row.NextProbeAt.Sub(*row.OpenedAt))
			}
			if tt.wantState == StateHalfOpen {
				require.Empty(t, row.Probes, "the probe's slot is free")
				p, err := tb.b.Allow(ctx, "k")
				require.NoError(t, err, "the freed slot admits the next probe")
				require.True(t, p.Probe())
			}
			require.Equal(t, tt.wantState, tb.b.State("k"))
		})
	}
}

func TestProbeTimeoutFreesSlot(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	openRowProbeDue(t, db, "k")
	// Long enough that the refusal below cannot race it on a loaded machine.
	tb := setupOn(t, db, Config{Settings: Settings{ProbeTimeout: 2 * time.Second}})
	p, err := tb.b.Allow(ctx, "k")
	require.NoError(t, err)
	require.True(t, p.Probe()) // never reported: its pod "died"
	_, err = tb.b.Allow(ctx, "k")
	require.ErrorIs(t, err, ErrTooManyProbes)
	time.Sleep(2500 * time.Millisecond)
	p2, err := tb.b.Allow(ctx, "k")
	require.NoError(t, err)
	require.True(t, p2.Probe())
	row, err := tb.store.Get(ctx, "k")
	require.NoError(t, err)
	require.Len(t, row.Probes, 1, "the dead probe's slot was reclaimed")
}

func TestStaleGenerationChangesNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 1}})
	ctx := context.Background()
	old, err := tb.b.Allow(ctx, "k") // admitted while closed, generation 1
	require.NoError(t, err)
	_, err = tb.store.Open(ctx, OpenParams{Key: "k", For: time.Minute, By: "test"})
	require.NoError(t, err)
	_, err = tb.store.Reset(ctx, ResetParams{Key: "k", By: "test"})
	require.NoError(t, err)
	before, err := tb.store.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, int64(3), before.Generation)
	old.Done(ctx, errDown)
	after, err := tb.store.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, before, after, "an outcome of generation 1 changed nothing")
	require.Equal(t, 1.0, testutil.ToFloat64(tb.metrics.staleResults.WithLabelValues("k")))
}

func TestManualSQLResetIsNoticed(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 2}})
	ctx := context.Background()
	for range 2 {
		_ = tb.b.Execute(ctx, "your_key", fail)
	}
	require.Equal(t, StateOpen, tb.b.State("your_key"))
	// The seed document's manual reset, typed by an operator.
	_, err := tb.db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET state = 'closed', failure_count = 0 WHERE breaker_key = 'your_key'`)
	require.NoError(t, err)
	// Within a second by design (LISTEN, else the 1s re-read); 2s of slack
	// for a loaded CI machine. The pods test checks the 1s bound itself.
	require.Eventually(t, func() bool { return tb.b.State("your_key") == StateClosed }, 2*time.Second, 5*time.Millisecond)
	row, err := tb.store.Get(ctx, "your_key")
	require.NoError(t, err)
	require.Equal(t, int64(3), row.Generation, "the trigger bumped the generation")
	require.Nil(t, row.NextProbeAt)
	require.Equal(t, 0, row.TripCount)
	require.Contains(t, row.ChangedBy, "(sql)")
	require.NoError(t, tb.b.Execute(ctx, "your_key", succeed))
}

func TestNotificationPropagatesWithinAPod(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	a := setupOn(t, db, Config{Settings: Settings{FailureThreshold: 1}})
	b := setupOn(t, db, Config{Settings: Settings{FailureThreshold: 1}})
	ctx := context.Background()
	require.NoError(t, b.b.Execute(ctx, "k", succeed))
	_ = a.b.Execute(ctx, "k", fail)
	start := time.Now()
	require.Eventually(t, func() bool { return b.b.State("k") == StateOpen }, 2*time.Second, time.Millisecond)
	t.Logf("pod b saw the trip after %s", time.Since(start))
}

func TestClosedHotPathCostsNoRoundTrip(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{})
	ctx := context.Background()
	tb.calls.Store(0)
	for i := range 1000 {
		require.NoError(t, tb.b.Execute(ctx, fmt.Sprintf("k%d", i%10), succeed))
	}
	require.Equal(t, int64(0), tb.calls.Load())
	// Cancelled calls and client errors on a healthy key cost nothing either.
	_ = tb.b.Execute(ctx, "k1", func(context.Context) error { return context.Canceled })
	require.Equal(t, int64(0), tb.calls.Load())
}

func TestSuccessesWrittenOnlyWhenTheyChangeSomething(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 5}})
	ctx := context.Background()
	_ = tb.b.Execute(ctx, "k", fail)
	row, err := tb.store.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, 1, row.FailureCount)
	require.NoError(t, tb.b.Execute(ctx, "k", succeed))
	require.Eventually(t, func() bool {
		r, err := tb.store.Get(ctx, "k")
		return err == nil && r.FailureCount == 0 && r.WindowCalls == 2
	}, 3*time.Second, 20*time.Millisecond, "the 1s flush resets the consecutive count")
	tb.calls.Store(0)
	for range 100 {
		require.NoError(t, tb.b.Execute(ctx, "k", succeed))
	}
	require.Equal(t, int64(0), tb.calls.Load(), "in-call cost stays zero; the window's calls go in one background write")
}

func TestPanicFreesProbe(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	openRowProbeDue(t, db, "k")
	tb := setupOn(t, db, Config{})
	ctx := context.Background()
	require.Panics(t, func() { _ = tb.b.Execute(ctx, "k", func(context.Context) error { panic("boom") }) })
	row, err := tb.store.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, StateHalfOpen, row.State)
	require.Empty(t, row.Probes)
}

func TestNotStarted(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	b, err := New(db.Pool, Config{})
	require.NoError(t, err)
	require.ErrorIs(t, b.Execute(context.Background(), "k", succeed), ErrNotStarted)
}

func TestRestartedPodStillSeesOpen(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	first := setupOn(t, db, Config{Settings: Settings{FailureThreshold: 1}})
	_ = first.b.Execute(ctx, "k", fail)
	require.NoError(t, first.b.Stop(ctx))
	second := setupOn(t, db, Config{})
	called := false
	err := second.b.Execute(ctx, "k", func(context.Context) error { called = true; return nil })
	require.ErrorIs(t, err, ErrOpenState)
	require.False(t, called)
}

func TestStoreManualOperations(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	s := NewStore(db.Pool)
	_, err := s.Reset(ctx, ResetParams{Key: "nope", By: "alice"})
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s.Open(ctx, OpenParams{Key: "k", For: 0, By: "alice"})
	require.ErrorContains(t, err, "for 0s")
	_, err = s.Open(ctx, OpenParams{Key: "k", For: time.Minute})
	require.ErrorContains(t, err, "by")
	rows, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, rows, "refused input changed nothing")

	row, err := s.Open(ctx, OpenParams{Key: "k", For: 10 * time.Minute, By: "alice", Reason: "maintenance"})
	require.NoError(t, err)
	require.Equal(t, StateOpen, row.State)
	require.Equal(t, 10*time.Minute, row.NextProbeAt.Sub(*row.OpenedAt))
	require.Equal(t, "alice", row.ChangedBy)
	require.Equal(t, "maintenance", row.ChangeReason)
	require.NotNil(t, row.ChangedAt)

	row, err = s.Reset(ctx, ResetParams{Key: "k", By: "bob"})
	require.NoError(t, err)
	require.Equal(t, StateClosed, row.State)
	require.Equal(t, int64(3), row.Generation)
	require.Equal(t, "bob", row.ChangedBy)
	require.Nil(t, row.NextProbeAt)
}

func TestDeleteIdle(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	s := NewStore(db.Pool)
	for _, k := range []string{"idle", "fresh", "held"} {
		require.NoError(t, s.ensureRow(ctx, k))
	}
	_, err := s.Open(ctx, OpenParams{Key: "held", For: 30 * 24 * time.Hour, By: "alice"})
	require.NoError(t, err)
	// updated_at is stamped by the trigger; age the rows with the trigger off.
	_, err = db.Pool.Exec(ctx, `ALTER TABLE circuit_breaker_state DISABLE TRIGGER circuit_breaker_state_before_update;
		UPDATE circuit_breaker_state SET updated_at = now() - interval '8 days' WHERE breaker_key IN ('idle', 'held');
		ALTER TABLE circuit_breaker_state ENABLE TRIGGER circuit_breaker_state_before_update`)
	require.NoError(t, err)
	n, err := s.DeleteIdle(ctx, DefaultIdleTTL)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	rows, err := s.List(ctx)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, "fresh", rows[0].Key)
	require.Equal(t, "held", rows[1].Key, "a breaker held open into the future stays")
}

// TestMetrics: a key's counter series exist at 0 from its first call (so
// Prometheus's increase() counts its first transition), and count exactly.
func TestMetrics(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 1}})
	ctx := context.Background()
	require.NoError(t, tb.b.Execute(ctx, "healthy", succeed))
	require.NoError(t, testutil.CollectAndCompare(tb.reg, stringsReader(`
# HELP rebound_breaker_transitions_total Circuit breaker transitions made by this pod, by operation key and from/to state (closed, half_open, open).
# TYPE rebound_breaker_transitions_total counter
rebound_breaker_transitions_total{from="closed",key="healthy",to="open"} 0
rebound_breaker_transitions_total{from="half_open",key="healthy",to="closed"} 0
rebound_breaker_transitions_total{from="half_open",key="healthy",to="open"} 0
rebound_breaker_transitions_total{from="open",key="healthy",to="half_open"} 0
`), "rebound_breaker_transitions_total"), "a key's series exist before its first transition")
	_ = tb.b.Execute(ctx, "api.example.com", fail)
	_ = tb.b.Execute(ctx, "api.example.com", succeed)
	_ = tb.b.Execute(ctx, "api.example.com", succeed)
	require.NoError(t, tb.b.Execute(ctx, "healthy", succeed))
	require.NoError(t, testutil.CollectAndCompare(tb.reg, stringsReader(`
# HELP rebound_breaker_short_circuited_total Calls and jobs this pod refused (or parked) because the operation key's breaker was open or busy probing.
# TYPE rebound_breaker_short_circuited_total counter
rebound_breaker_short_circuited_total{key="api.example.com"} 2
rebound_breaker_short_circuited_total{key="healthy"} 0
# HELP rebound_breaker_state State of the operation key's circuit breaker as this pod sees it: 0 closed, 1 half-open, 2 open.
# TYPE rebound_breaker_state gauge
rebound_breaker_state{key="api.example.com"} 2
# HELP rebound_breaker_transitions_total Circuit breaker transitions made by this pod, by operation key and from/to state (closed, half_open, open).
# TYPE rebound_breaker_transitions_total counter
rebound_breaker_transitions_total{from="closed",key="api.example.com",to="open"} 1
rebound_breaker_transitions_total{from="half_open",key="api.example.com",to="closed"} 0
rebound_breaker_transitions_total{from="half_open",key="api.example.com",to="open"} 0
rebound_breaker_transitions_total{from="open",key="api.example.com",to="half_open"} 0
rebound_breaker_transitions_total{from="closed",key="healthy",to="open"} 0
rebound_breaker_transitions_total{from="half_open",key="healthy",to="closed"} 0
rebound_breaker_transitions_total{from="half_open",key="healthy",to="open"} 0
rebound_breaker_transitions_total{from="open",key="healthy",to="half_open"} 0
# HELP rebound_breaker_stale_results_total Call outcomes that belonged to an older breaker generation and changed nothing.
# TYPE rebound_breaker_stale_results_total counter
rebound_breaker_stale_results_total{key="api.example.com"} 0
rebound_breaker_stale_results_total{key="healthy"} 0
`), "rebound_breaker_short_circuited_total", "rebound_breaker_state", "rebound_breaker_transitions_total", "rebound_breaker_stale_results_total"))
	problems, err := testutil.CollectAndLint(tb.reg)
	require.NoError(t, err)
	require.Empty(t, problems)
}

func TestMetricKeysAreCapped(t *testing.T) {
	t.Parallel()
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	for i := range MaxMetricKeys + 5 {
		m.shortCircuited(fmt.Sprintf("key-%d", i))
	}
	require.Equal(t, 5.0, testutil.ToFloat64(m.shortCircuits.WithLabelValues(OtherKey)))
	require.Equal(t, MaxMetricKeys+1, testutil.CollectAndCount(m.shortCircuits))
}

// A failure's error text is stored as last_error even when PostgreSQL could
// not store it as is (a NUL byte, invalid UTF-8, a rune cut by the length
// cap), by package storable's rule: the failure still counts and trips the
// breaker.
func TestFailureWithUnstorableErrorTextStillTrips(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantError string
	}{
		{"NUL byte", errors.New("bad\x00body"), "bad\uFFFDbody"},
		{"invalid UTF-8, one U+FFFD per byte", errors.New("bad \xff\xfe body"), "bad \uFFFD\uFFFD body"},
		{"rune cut by the cap", errors.New(strings.Repeat("a", maxErrorText-1) + "é"), strings.Repeat("a", maxErrorText-3) + "…"},
		// As a dead letter's failure_reason reads it.
		{"River's cancel prefix removed", rivertype.JobCancel(errors.New("warehouse: down")), "warehouse: down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs proctest.SyncBuffer
			// Warnings only: the transition's info line is expected.
			tb := setup(t, Config{Settings: Settings{FailureThreshold: 1}, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			ctx := context.Background()
			require.Equal(t, tt.err, tb.b.Execute(ctx, "k", func(context.Context) error { return tt.err }))
			require.Empty(t, logs.String(), "no write failed")
			row, err := tb.store.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, StateOpen, row.State)
			require.Equal(t, tt.wantError, row.LastError)
			var stored string
			require.NoError(t, tb.db.Pool.QueryRow(ctx, "SELECT last_error FROM circuit_breaker_state WHERE breaker_key = 'k'").Scan(&stored))
			require.Equal(t, tt.wantError, stored, "stored as read")
		})
	}
}

// An open row whose next_probe_at has passed (database clock) is read with
// ProbeDue set; its state stays open until a call takes the probe slot.
func TestRowProbeDue(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	s := NewStore(db.Pool)
	require.NoError(t, s.ensureRow(ctx, "closed"))
	_, err := s.Open(ctx, OpenParams{Key: "held", For: time.Hour, By: "test"})
	require.NoError(t, err)
	openRowProbeDue(t, db, "due")

	rows, err := s.List(ctx)
	require.NoError(t, err)
	got := map[string][2]any{}
	for _, r := range rows {
		got[r.Key] = [2]any{r.State, r.ProbeDue}
	}
	require.Equal(t, map[string][2]any{
		"closed": {StateClosed, false},
		"due":    {StateOpen, true},
		"held":   {StateOpen, false},
	}, got)
	row, err := s.Get(ctx, "due")
	require.NoError(t, err)
	require.True(t, row.ProbeDue)
	raw, err := json.Marshal(row)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"next_probe_at":"`)
	require.Contains(t, string(raw), `"probe_due":true`)

	// The probe takes the slot: half_open, no longer "due".
	tb := setupOn(t, db, Config{})
	p, err := tb.b.Allow(ctx, "due")
	require.NoError(t, err)
	require.True(t, p.Probe())
	row, err = s.Get(ctx, "due")
	require.NoError(t, err)
	require.Equal(t, StateHalfOpen, row.State)
	require.False(t, row.ProbeDue)
	p.Done(ctx, nil)
}

// TestOpenGaugeCountsLikeHealth: rebound_breaker_open is 1 for a key that
// counts as open for health and alerts (CountsAsOpen) and 0 for one that
// does not, while rebound_breaker_state still shows the row's state: an
// expired hold set by hand and a probe untaken for longer than the grace
// read 2 and 0.
func TestOpenGaugeCountsLikeHealth(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{})
	ctx := context.Background()
	_, err := tb.db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, state, trip_count, opened_at, next_probe_at, changed_by, changed_at) VALUES
		('hold-expired', 'open', 0, now() - interval '80 seconds', now() - interval '40 seconds', 'ops', now() - interval '80 seconds'),
		('probe-due-after-failures', 'open', 2, now() - interval '40 seconds', now() - interval '10 seconds', NULL, NULL),
		('probe-due-idle', 'open', 1, now() - interval '90 seconds', now() - interval '61 seconds', NULL, NULL),
		('half-open', 'half_open', 1, now() - interval '90 seconds', now() - interval '60 seconds', NULL, NULL),
		('closed', 'closed', 0, NULL, NULL, NULL, NULL)`)
	require.NoError(t, err)
	_, err = tb.store.Open(ctx, OpenParams{Key: "held", For: time.Hour, By: "ops"})
	require.NoError(t, err)
	want := `
# HELP rebound_breaker_open 1 while the operation key's circuit breaker counts as open for health and alerts, as this pod sees it: half-open, open with its probe not yet due, or open by failures with its probe due for less than that open's timeout (at least 1m); else 0.
# TYPE rebound_breaker_open gauge
rebound_breaker_open{key="closed"} 0
rebound_breaker_open{key="half-open"} 1
rebound_breaker_open{key="held"} 1
rebound_breaker_open{key="hold-expired"} 0
rebound_breaker_open{key="probe-due-after-failures"} 1
rebound_breaker_open{key="probe-due-idle"} 0
# HELP rebound_breaker_state State of the operation key's circuit breaker as this pod sees it: 0 closed, 1 half-open, 2 open.
# TYPE rebound_breaker_state gauge
rebound_breaker_state{key="closed"} 0
rebound_breaker_state{key="half-open"} 1
rebound_breaker_state{key="held"} 2
rebound_breaker_state{key="hold-expired"} 2
rebound_breaker_state{key="probe-due-after-failures"} 2
rebound_breaker_state{key="probe-due-idle"} 2
`
	var last error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if last = testutil.CollectAndCompare(tb.reg, stringsReader(want), "rebound_breaker_open", "rebound_breaker_state"); last == nil {
			break
		}
	}
	require.NoError(t, last)
}

// TestOpenSinceSpansAnOutage: open_since is the first open of an outage,
// kept through failed probes (which move opened_at) and holds set by hand
// while open, and cleared by every close (a probe's success, a reset, SQL);
// a row that leaves closed, whoever opens it, takes its opened_at.
func TestOpenSinceSpansAnOutage(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 1, OpenTimeout: time.Hour}})
	ctx := context.Background()
	get := func() *Row {
		t.Helper()
		row, err := tb.store.Get(ctx, "k")
		require.NoError(t, err)
		return row
	}
	// probe makes the probe due and runs one call as the probe, once this
	// pod sees it due.
	probe := func(outcome error) {
		t.Helper()
		_, err := tb.db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET next_probe_at = now() - interval '1 second' WHERE breaker_key = 'k'`)
		require.NoError(t, err)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			p, err := tb.b.Allow(ctx, "k")
			if err == nil {
				require.True(t, p.Probe())
				p.Done(ctx, outcome)
				return
			}
			require.ErrorIs(t, err, ErrOpenState)
			require.True(t, time.Now().Before(deadline), "the probe never came due in this pod's view")
		}
	}
	sql := func(stmt string) {
		t.Helper()
		_, err := tb.db.Pool.Exec(ctx, stmt)
		require.NoError(t, err)
	}

	require.ErrorIs(t, tb.b.Execute(ctx, "k", fail), errDown)
	tripped := get()
	require.Equal(t, StateOpen, tripped.State)
	require.NotNil(t, tripped.OpenSince)
	require.Equal(t, *tripped.OpenedAt, *tripped.OpenSince, "a trip from closed starts the outage")

	probe(errDown)
	reopened := get()
	require.Equal(t, StateOpen, reopened.State)
	require.Equal(t, 2, reopened.TripCount)
	require.True(t, reopened.OpenedAt.After(*tripped.OpenedAt), "a failed probe sets opened_at again")
	require.Equal(t, *tripped.OpenSince, *reopened.OpenSince, "and keeps open_since")

	_, err := tb.store.Open(ctx, OpenParams{Key: "k", For: time.Hour, By: "ops"})
	require.NoError(t, err)
	held := get()
	require.True(t, held.OpenedAt.After(*reopened.OpenedAt))
	require.Equal(t, *tripped.OpenSince, *held.OpenSince, "a hold set during an outage keeps its start")

	probe(nil)
	closed := get()
	require.Equal(t, StateClosed, closed.State)
	require.Nil(t, closed.OpenSince, "a probe's success closes: no outage")

	_, err = tb.store.Open(ctx, OpenParams{Key: "k", For: time.Hour, By: "ops"})
	require.NoError(t, err)
	hold := get()
	require.Equal(t, *hold.OpenedAt, *hold.OpenSince, "a hold set on a closed breaker starts an outage")

	sql(`UPDATE circuit_breaker_state SET state = 'closed' WHERE breaker_key = 'k'`)
	require.Nil(t, get().OpenSince, "a close by SQL clears it")

	sql(`UPDATE circuit_breaker_state SET state = 'open' WHERE breaker_key = 'k'`)
	bySQL := get()
	require.NotNil(t, bySQL.OpenSince)
	require.Equal(t, *bySQL.OpenedAt, *bySQL.OpenSince, "an open by SQL starts an outage")

	_, err = tb.store.Reset(ctx, ResetParams{Key: "k", By: "ops"})
	require.NoError(t, err)
	require.Nil(t, get().OpenSince, "a reset clears it")
}
