package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"
)

type noopArgs struct{}

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	ran chan int64
}

func (w *noopWorker) Work(_ context.Context, job *river.Job[noopArgs]) error {
	if w.ran != nil {
		w.ran <- job.ID
	}
	return nil
}

func startRiver(t *testing.T, tb *testBundle, gate *Gate, w *noopWorker) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	cfg := &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Workers:           workers,
	}
	if gate != nil {
		cfg.Middleware = []rivertype.Middleware{gate}
	}
	client, err := river.NewClient(riverpgxv5.New(tb.db.Pool), cfg)
	require.NoError(t, err)
	require.NoError(t, client.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = client.Stop(ctx)
	})
	return client
}

func jobRow(t *testing.T, tb *testBundle, id int64) (state string, attempt int, meta map[string]any, errs []string) {
	t.Helper()
	var raw []byte
	require.NoError(t, tb.db.Pool.QueryRow(context.Background(),
		`SELECT state, attempt, metadata, coalesce((SELECT array_agg(e->>'error') FROM unnest(errors) e), '{}') FROM river_job WHERE id = $1`, id).
		Scan(&state, &attempt, &raw, &errs))
	require.NoError(t, json.Unmarshal(raw, &meta))
	return state, attempt, meta, errs
}

func TestGateParksWithoutUsingAnAttempt(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{ParkSpread: time.Hour}})
	ctx := context.Background()
	_, err := tb.store.Open(ctx, OpenParams{Key: "api.example.com", For: time.Hour, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tb.b.State("api.example.com") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{Rand: func() float64 { return 0.5 }})
	w := &noopWorker{ran: make(chan int64, 1)}
	client := startRiver(t, tb, gate, w)
	res, err := client.Insert(ctx, noopArgs{}, &river.InsertOpts{Metadata: []byte(`{"operation_key": "api.example.com"}`)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		state, _, _, _ := jobRow(t, tb, res.Job.ID)
		return state == "scheduled"
	}, 10*time.Second, 20*time.Millisecond)
	state, attempt, meta, errs := jobRow(t, tb, res.Job.ID)
	require.Equal(t, "scheduled", state)
	require.Equal(t, 0, attempt, "a snooze uses no attempt")
	require.Empty(t, errs)
	require.Equal(t, "api.example.com", meta[MetadataParkedKey])
	require.Equal(t, 1.0, meta["snoozes"])
	var scheduled time.Time
	require.NoError(t, tb.db.Pool.QueryRow(ctx, `SELECT scheduled_at - now() + now() FROM river_job WHERE id = $1`, res.Job.ID).Scan(&scheduled))
	// Until the probe (1h) plus half of the 1h spread.
	require.InDelta(t, (90 * time.Minute).Seconds(), time.Until(scheduled).Seconds(), 10)
	select {
	case <-w.ran:
		t.Fatal("the downstream was called")
	default:
	}

	// The key closes: the gate's waker brings the parked job back now.
	_, err = tb.store.Reset(ctx, ResetParams{Key: "api.example.com", By: "test"})
	require.NoError(t, err)
	select {
	case id := <-w.ran:
		require.Equal(t, res.Job.ID, id)
	case <-time.After(20 * time.Second):
		t.Fatal("the parked job was not woken when its key closed")
	}
	require.Eventually(t, func() bool {
		state, _, _, _ := jobRow(t, tb, res.Job.ID)
		return state == "completed"
	}, 10*time.Second, 20*time.Millisecond)
	_, attempt, meta, _ = jobRow(t, tb, res.Job.ID)
	require.Equal(t, 1, attempt)
	require.Nil(t, meta[MetadataParkedKey], "admission clears the parked marker")
}

func TestGateParkedLongerThanMaxParkGoesToOnParkExpired(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{})
	ctx := context.Background()
	_, err := tb.store.Open(ctx, OpenParams{Key: "noop", For: time.Hour, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tb.b.State("noop") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{})
	client := startRiver(t, tb, gate, &noopWorker{})
	parkedAt := time.Now().Add(-25 * time.Hour).UTC().Format(time.RFC3339Nano)
	res, err := client.Insert(ctx, noopArgs{}, &river.InsertOpts{
		Metadata: []byte(`{"breaker_parked_key": "noop", "breaker_parked_at": "` + parkedAt + `"}`),
	})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		state, _, _, _ := jobRow(t, tb, res.Job.ID)
		return state == "cancelled"
	}, 10*time.Second, 20*time.Millisecond)
	_, _, meta, errs := jobRow(t, tb, res.Job.ID)
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], `parked behind circuit breaker "noop" for 25h0m0s`)
	require.Nil(t, meta[MetadataParkedKey], "a replay of the job must start parking afresh")
	require.Nil(t, meta[MetadataParkedAt])
}

func TestGateWakesAProbeWhenTheProbeTimeComes(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{ParkSpread: time.Hour}})
	ctx := context.Background()
	_, err := tb.store.Open(ctx, OpenParams{Key: "noop", For: 2 * time.Second, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tb.b.State("noop") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{Rand: func() float64 { return 0.99 }, WakeSpread: time.Second})
	w := &noopWorker{ran: make(chan int64, 10)}
	client := startRiver(t, tb, gate, w)
	params := make([]river.InsertManyParams, 5)
	for i := range params {
		params[i] = river.InsertManyParams{Args: noopArgs{}}
	}
	_, err = client.InsertMany(ctx, params)
	require.NoError(t, err)
	// Parked ~1h; the probe time comes after 2s: the waker makes one due, it
	// probes, succeeds, the key closes and the rest are woken.
	for range 5 {
		select {
		case <-w.ran:
		case <-time.After(30 * time.Second):
			t.Fatal("parked jobs did not run after the probe time")
		}
	}
	require.Equal(t, StateClosed, tb.b.State("noop"))
}

type snoozeOnceArgs struct{}

func (snoozeOnceArgs) Kind() string { return "snooze_once" }

type snoozeOnceWorker struct {
	river.WorkerDefaults[snoozeOnceArgs]
}

func (w *snoozeOnceWorker) Work(_ context.Context, job *river.Job[snoozeOnceArgs]) error {
	if job.Metadata == nil || !json.Valid(job.Metadata) || !bytesContains(job.Metadata, `"snoozes"`) {
		return river.JobSnooze(10 * time.Millisecond)
	}
	return nil
}

// A job that snoozes itself under the gate keeps River's snooze semantics:
// no attempt used, no error, and the breaker is told nothing.
func TestGatePassesTheJobsOwnSnoozeThrough(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{})
	ctx := context.Background()
	gate := NewGate(tb.b, GateConfig{})
	workers := river.NewWorkers()
	river.AddWorker(workers, &snoozeOnceWorker{})
	client, err := river.NewClient(riverpgxv5.New(tb.db.Pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		Workers:           workers,
		Middleware:        []rivertype.Middleware{gate},
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	res, err := client.Insert(ctx, snoozeOnceArgs{}, nil)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		state, _, _, _ := jobRow(t, tb, res.Job.ID)
		return state == "completed"
	}, 10*time.Second, 20*time.Millisecond)
	_, attempt, meta, errs := jobRow(t, tb, res.Job.ID)
	require.Equal(t, 1, attempt, "the snooze used no attempt")
	require.Empty(t, errs, "a snooze is not an error")
	require.Equal(t, 1.0, meta["snoozes"])
}

// A probe whose job panics frees its half-open slot at once instead of
// holding it for probe_timeout.
func TestGatePanickingProbeFreesItsSlot(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{HalfOpenMaxProbes: 1, ProbeTimeout: time.Hour}})
	ctx := context.Background()
	openRowProbeDue(t, tb.db, "noop")
	require.Eventually(t, func() bool { return tb.b.State("noop") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{DisableWake: true})
	job := &rivertype.JobRow{ID: 1, Kind: "noop", Metadata: []byte(`{}`)}
	require.PanicsWithValue(t, "boom", func() {
		_ = gate.Work(ctx, job, func(context.Context) error { panic("boom") })
	})
	p, err := tb.b.Allow(ctx, "noop")
	require.NoError(t, err, "the panicking probe's slot is free again")
	require.True(t, p.Probe())
	p.Done(ctx, context.Canceled)
}

// unstorableError holds what PostgreSQL refuses in text and jsonb.
type unstorableError struct{}

func (unstorableError) Error() string { return "upstream said bad\x00byte \xff\xfe" }

// Whatever the gate returns to River is storable — a job's own error, and
// what the OnInvalidKey and OnParkExpired callbacks return — while the
// original stays reachable; a snooze is returned as it is.
func TestGateReturnsStorableErrors(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{FailureThreshold: 100}})
	ctx := context.Background()
	_, err := tb.store.Open(ctx, OpenParams{Key: "open.example", For: time.Hour, By: "test"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return tb.b.State("open.example") == StateOpen }, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{
		DisableWake: true,
		OnInvalidKey: func(_ context.Context, _ *rivertype.JobRow, err error) error {
			return river.JobCancel(fmt.Errorf("refused \x00: %w", err))
		},
		OnParkExpired: func(_ context.Context, _ *rivertype.JobRow, err *OpenError, _ time.Duration) error {
			return river.JobCancel(fmt.Errorf("parked \xff: %w", err))
		},
	})
	row := func(key string, parkedAt time.Time) *rivertype.JobRow {
		meta := map[string]any{MetadataOperationKey: key}
		if !parkedAt.IsZero() {
			meta[MetadataParkedKey], meta[MetadataParkedAt] = key, parkedAt.Format(time.RFC3339Nano)
		}
		raw, err := json.Marshal(meta)
		require.NoError(t, err)
		return &rivertype.JobRow{ID: 1, Kind: "noop", Attempt: 1, MaxAttempts: 5, Metadata: raw}
	}
	tests := []struct {
		name    string
		job     *rivertype.JobRow
		work    error
		wantMsg string
		cancel  bool
	}{
		{"the job's error", row("ok.example", time.Time{}), unstorableError{}, "upstream said bad\uFFFDbyte \uFFFD\uFFFD", false},
		{"OnInvalidKey", row("bad\nkey", time.Time{}), nil, `JobCancelError: refused ` + "\uFFFD" + `: breaker: invalid operation key "bad\nkey": control character U+000A at byte 3`, true},
		{"OnParkExpired", row("open.example", time.Now().Add(-48*time.Hour)), nil, "JobCancelError: parked \uFFFD: ", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := gate.Work(ctx, tt.job, func(context.Context) error { return tt.work })
			require.Error(t, got)
			require.True(t, strings.HasPrefix(got.Error(), tt.wantMsg), got.Error())
			require.True(t, utf8.ValidString(got.Error()) && !strings.Contains(got.Error(), "\x00"))
			_, isCancel := errors.AsType[*rivertype.JobCancelError](got)
			require.Equal(t, tt.cancel, isCancel)
			if tt.work != nil {
				require.ErrorIs(t, got, tt.work)
			}
		})
	}

	snooze := gate.Work(ctx, row("open.example", time.Time{}), func(context.Context) error { return nil })
	_, ok := snooze.(*rivertype.JobSnoozeError)
	require.True(t, ok, "a snooze is returned as it is: %T", snooze)
}

// Admit and Finish, the gate's steps for a caller that runs it inline: on
// an open key the job does not run and gets the gate's snooze; on a
// half-open key it runs as the probe, and Finish with context.Canceled (a
// panicking attempt) frees the slot for the next job without deciding.
func TestGateAdmitAndFinish(t *testing.T) {
	t.Parallel()
	tb := setup(t, Config{Settings: Settings{HalfOpenMaxProbes: 1, ProbeTimeout: time.Hour}})
	ctx := context.Background()
	_, err := NewStore(tb.db.Pool).Open(ctx, OpenParams{Key: "held", For: time.Hour, By: "test"})
	require.NoError(t, err)
	openRowProbeDue(t, tb.db, "probe")
	require.Eventually(t, func() bool {
		return tb.b.State("held") == StateOpen && tb.b.State("probe") == StateOpen
	}, 5*time.Second, 5*time.Millisecond)
	gate := NewGate(tb.b, GateConfig{DisableWake: true, Rand: func() float64 { return 0 }})

	_, run, err := gate.Admit(ctx, &rivertype.JobRow{ID: 1, Kind: "held", Metadata: []byte(`{}`)})
	require.False(t, run)
	snooze, ok := errors.AsType[*rivertype.JobSnoozeError](err)
	require.True(t, ok, "%v", err)
	require.InDelta(t, time.Hour.Seconds(), snooze.Duration.Seconds(), 5, "parked until the breaker may probe")

	p, run, err := gate.Admit(ctx, &rivertype.JobRow{ID: 2, Kind: "probe", Metadata: []byte(`{}`)})
	require.NoError(t, err)
	require.True(t, run)
	require.True(t, p.Probe())
	_, run, _ = gate.Admit(ctx, &rivertype.JobRow{ID: 3, Kind: "probe", Metadata: []byte(`{}`)})
	require.False(t, run, "the only probe slot is taken")
	gate.Finish(ctx, p, context.Canceled)
	p, run, err = gate.Admit(ctx, &rivertype.JobRow{ID: 3, Kind: "probe", Metadata: []byte(`{}`)})
	require.NoError(t, err)
	require.True(t, run, "the slot is free again")
	gate.Finish(ctx, p, nil)
	require.Eventually(t, func() bool { return tb.b.State("probe") == StateClosed }, 5*time.Second, 5*time.Millisecond)
}
