package retrypolicy_test

import (
	"context"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// riverBundle is a real River client on a fresh, migrated PostgreSQL
// database (internal/dbtest).
type riverBundle struct {
	db     *dbtest.Database
	client *river.Client[pgx.Tx]
}

// newRiverClient builds (does not start) a client on a fresh database. cfg
// supplies Workers, Middleware, RetryPolicy, ErrorHandler ...; fast fetch
// settings are filled in.
func newRiverClient(t *testing.T, cfg *river.Config) *riverBundle {
	t.Helper()
	db := dbtest.New(t)
	if cfg.Queues == nil {
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}}
	}
	cfg.FetchCooldown = 20 * time.Millisecond
	cfg.FetchPollInterval = 50 * time.Millisecond
	cfg.TestOnly = true
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	client, err := river.NewClient(riverpgxv5.New(db.Pool), cfg)
	require.NoError(t, err)
	return &riverBundle{db: db, client: client}
}

// start starts the client and stops it when the test ends.
func (b *riverBundle) start(t *testing.T) {
	t.Helper()
	require.NoError(t, b.client.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.client.Stop(ctx)
	})
}

// waitForState polls the job until it is in one of states, failing after
// timeout.
func (b *riverBundle) waitForState(t *testing.T, id int64, timeout time.Duration, states ...rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		row, err := b.client.JobGet(t.Context(), id)
		require.NoError(t, err)
		if slices.Contains(states, row.State) {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %d still %s after %s (attempt %d, errors %+v)", id, row.State, timeout, row.Attempt, row.Errors)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

var finalStates = []rivertype.JobState{rivertype.JobStateCompleted, rivertype.JobStateCancelled, rivertype.JobStateDiscarded}

// history reads the recorder's history out of a job row.
func history(t *testing.T, row *rivertype.JobRow) retrypolicy.Output {
	t.Helper()
	out, err := retrypolicy.ParseOutput(row.Metadata)
	require.NoError(t, err)
	return out
}
