package breaker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
	"github.com/rebound-queue/rebound/migrations"
)

func TestValidateKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		wantErr string
	}{
		{"host", "api.example.com", ""},
		{"host and port", "api.example.com:8443", ""},
		{"inner spaces", "billing api", ""},
		{"non-ASCII", "zahlungen.bücher.de", ""},
		{"255 characters", strings.Repeat("a", 255), ""},
		{"255 characters of 3 bytes each", strings.Repeat("€", 255), ""},
		{"empty", "", `invalid operation key "": empty`},
		{"blank", "   ", `invalid operation key "   ": blank (white space only)`},
		{"no-break spaces only", "\u00a0\u00a0", `invalid operation key "\u00a0\u00a0": blank (white space only)`},
		{"256 characters", strings.Repeat("a", 256), `invalid operation key "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… (256 characters): longer than 255 characters`},
		{"6000 characters", strings.Repeat("x", 6000), `invalid operation key "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"… (6000 characters): longer than 255 characters`},
		{"256 characters of 3 bytes each, quoted at a rune boundary", strings.Repeat("€", 256), `invalid operation key "€€€€€€€€€€€€€"… (256 characters): longer than 255 characters`},
		{"invalid UTF-8", "api\xff", `invalid operation key "api\xff": not valid UTF-8`},
		{"newline", "api\nexample", `invalid operation key "api\nexample": control character U+000A at byte 3`},
		{"NUL", "\x00api", `invalid operation key "\x00api": control character U+0000 at byte 0`},
		{"escape", "a\x1b[31m", `invalid operation key "a\x1b[31m": control character U+001B at byte 1`},
		{"C1 control", "a\u0085b", `invalid operation key "a\u0085b": control character U+0085 at byte 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateKey(tt.key)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
			require.ErrorIs(t, err, ErrInvalidKey)
		})
	}
}

// An invalid key is an error the caller of Allow/Execute sees, the call does
// not run, and nothing is written, logged or remembered for it.
func TestExecuteRefusesInvalidKey(t *testing.T) {
	t.Parallel()
	var logs proctest.SyncBuffer
	tb := setup(t, Config{
		Settings: Settings{FailureThreshold: 1},
		Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	ctx := context.Background()
	tb.calls.Store(0)
	tests := []struct {
		name    string
		key     string
		wantErr string
	}{
		{"6000 characters", strings.Repeat("k", 6000), `breaker: invalid operation key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"… (6000 characters): longer than 255 characters`},
		{"blank", " ", `breaker: invalid operation key " ": blank (white space only)`},
		{"empty", "", `breaker: invalid operation key "": empty`},
		{"control character", "a\tb", `breaker: invalid operation key "a\tb": control character U+0009 at byte 1`},
	}
	for _, tt := range tests {
		for range 3 {
			called := false
			err := tb.b.Execute(ctx, tt.key, func(context.Context) error { called = true; return errDown })
			require.EqualError(t, err, tt.wantErr, tt.name)
			require.ErrorIs(t, err, ErrInvalidKey, tt.name)
			require.False(t, called, tt.name)
		}
		_, err := tb.b.Allow(ctx, tt.key)
		require.EqualError(t, err, tt.wantErr, tt.name)
		_, ok := tb.b.views.Load(tt.key)
		require.False(t, ok, "%s: no local view kept for an invalid key", tt.name)
	}
	tb.b.flushAll(ctx)
	rows, err := tb.store.List(ctx)
	require.NoError(t, err)
	require.Empty(t, rows)
	require.Empty(t, logs.String(), "no warning per call")
	require.Equal(t, int64(0), tb.calls.Load(), "no query for an invalid key")

	// A key of MaxKeyLength characters (765 bytes here) is protected as any
	// other.
	long := strings.Repeat("€", MaxKeyLength)
	require.ErrorIs(t, tb.b.Execute(ctx, long, fail), errDown)
	require.ErrorIs(t, tb.b.Execute(ctx, long, succeed), ErrOpenState)
	row, err := tb.store.Get(ctx, long)
	require.NoError(t, err)
	require.Equal(t, StateOpen, row.State)
	require.Equal(t, 1, strings.Count(logs.String(), "\n"), "only the transition: %s", logs.String())
	require.Contains(t, logs.String(), `level=INFO msg="circuit breaker opened"`)
}

func TestStoreRefusesInvalidKey(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	s := NewStore(db.Pool)
	long := strings.Repeat("a", 100_000)
	tests := []struct {
		name    string
		op      func() error
		wantErr string
	}{
		{"open a blank key", func() error {
			_, err := s.Open(ctx, OpenParams{Key: " ", For: time.Minute, By: "alice"})
			return err
		}, `breaker open: invalid operation key " ": blank (white space only)`},
		{"open a 100,000-character key", func() error {
			_, err := s.Open(ctx, OpenParams{Key: long, For: time.Minute, By: "alice"})
			return err
		}, `breaker open: invalid operation key "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… (100000 characters): longer than 255 characters`},
		{"reset an empty key", func() error {
			_, err := s.Reset(ctx, ResetParams{Key: "", By: "alice"})
			return err
		}, `breaker reset: invalid operation key "": empty`},
		{"get a key with a newline", func() error {
			_, err := s.Get(ctx, "a\nb")
			return err
		}, `breaker get: invalid operation key "a\nb": control character U+000A at byte 1`},
		{"open with a control character in by", func() error {
			_, err := s.Open(ctx, OpenParams{Key: "k", For: time.Minute, By: "al\x00ice"})
			return err
		}, `breaker open: by "al\x00ice": control character U+0000 at byte 2`},
		{"open with a NUL in the reason", func() error {
			_, err := s.Open(ctx, OpenParams{Key: "k", For: time.Minute, By: "alice", Reason: "a\x00"})
			return err
		}, `breaker open: reason: contains a NUL byte (at byte 1)`},
		{"reset with a reason of 1025 bytes", func() error {
			_, err := s.Reset(ctx, ResetParams{Key: "k", By: "alice", Reason: strings.Repeat("r", 1025)})
			return err
		}, `breaker reset: reason: 1025 bytes, longer than 1024`},
	}
	for _, tt := range tests {
		err := tt.op()
		require.EqualError(t, err, tt.wantErr, tt.name)
	}
	rows, err := s.List(ctx)
	require.NoError(t, err)
	require.Empty(t, rows, "refused input changed nothing")
}

// Migration 010 removes rows whose keys break the rule and adds the rule as
// a CHECK constraint, so SQL written by hand cannot add such a key either.
func TestMigrationEnforcesKeyRule(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	var sql string
	for _, m := range migrations.All() {
		if m.Version == 10 {
			sql = m.SQL
		}
	}
	require.NotEmpty(t, sql, "migration 010")

	bad := []string{"", "  ", strings.Repeat("a", 256), strings.Repeat("é", 256), "a\nb", "a\u0085b", "\u0001"}
	for _, k := range bad {
		_, err := db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key) VALUES ($1)`, k)
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%q: %v", k, err)
		require.Equal(t, "23514", pgErr.Code, "%q: check_violation", k)
		require.Equal(t, "circuit_breaker_state_breaker_key_check", pgErr.ConstraintName)
	}

	// A database that had such rows before 010: they are removed.
	_, err := db.Pool.Exec(ctx, `ALTER TABLE circuit_breaker_state DROP CONSTRAINT circuit_breaker_state_breaker_key_check`)
	require.NoError(t, err)
	for _, k := range append(bad, "api.example.com", strings.Repeat("b", 255), strings.Repeat("é", 255)) {
		_, err := db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key) VALUES ($1)`, k)
		require.NoError(t, err, "%q", k)
	}
	_, err = db.Pool.Exec(ctx, sql)
	require.NoError(t, err)
	rows, err := NewStore(db.Pool).List(ctx)
	require.NoError(t, err)
	var keys []string
	for _, r := range rows {
		keys = append(keys, r.Key)
	}
	require.Equal(t, []string{"api.example.com", strings.Repeat("b", 255), strings.Repeat("é", 255)}, keys)
	_, err = db.Pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key) VALUES (' ')`)
	require.ErrorContains(t, err, "circuit_breaker_state_breaker_key_check")
}

// A job whose key is invalid is not run: the gate hands it to OnInvalidKey
// (default: cancelled, so it lands in the dead-letter queue with the reason).
func TestGateInvalidKeyCancelsTheJob(t *testing.T) {
	t.Parallel()
	var logs proctest.SyncBuffer
	tb := setup(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	gate := NewGate(tb.b, GateConfig{})
	w := &noopWorker{ran: make(chan int64, 1)}
	client := startRiver(t, tb, gate, w)
	key := strings.Repeat("x", 6000)
	res, err := client.Insert(ctx, noopArgs{}, &river.InsertOpts{Metadata: []byte(`{"operation_key": "` + key + `"}`)})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		state, _, _, _ := jobRow(t, tb, res.Job.ID)
		return state == "cancelled"
	}, 10*time.Second, 20*time.Millisecond)
	_, attempt, _, errs := jobRow(t, tb, res.Job.ID)
	require.Equal(t, 1, attempt)
	require.Equal(t, []string{`JobCancelError: breaker: invalid operation key "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"… (6000 characters): longer than 255 characters`}, errs)
	select {
	case <-w.ran:
		t.Fatal("the job ran")
	default:
	}
	require.Empty(t, logs.String())
}
