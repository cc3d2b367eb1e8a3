package listencheck_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/listencheck"
)

// On a direct connection the round trip succeeds; a LISTEN connection that
// cannot be made is an error, not ErrLost. (Through PgBouncer in
// transaction mode it is ErrLost: TestWorkerWithoutPollOnlyBehindPgBouncerWarnsOnce
// in cmd/worker.)
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	unreachable, err := pgx.ParseConfig("postgres://postgres@127.0.0.1:1/none?connect_timeout=2")
	require.NoError(t, err)
	tests := []struct {
		name     string
		listen   *pgx.ConnConfig
		wantErr  bool
		wantLost bool
	}{
		{"direct connection", db.Pool.Config().ConnConfig, false, false},
		{"unreachable", unreachable, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			err := listencheck.RoundTrip(context.Background(), tt.listen, db.Pool, 5*time.Second)
			require.Equal(t, tt.wantErr, err != nil, "%v", err)
			require.Equal(t, tt.wantLost, errors.Is(err, listencheck.ErrLost))
			require.Less(t, time.Since(start), 5*time.Second)
			// The backend ends a moment after the connection closes.
			require.Eventually(t, func() bool {
				var listeners int
				require.NoError(t, db.Pool.QueryRow(context.Background(),
					`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN "rebound_listen_check_%'`).Scan(&listeners))
				return listeners == 0
			}, 5*time.Second, 50*time.Millisecond, "the LISTEN connection is closed")
		})
	}
}
