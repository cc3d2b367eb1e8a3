package batch

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestCompleterLogsAnUnreachableDatabaseOnce runs a Completer against a
// port where no PostgreSQL listens (every fold fails to connect) for about
// 30 passes: one warning, not one a pass.
func TestCompleterLogsAnUnreachableDatabaseOnce(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var buf proctest.SyncBuffer
	c := NewCompleter(pool, &CompleterConfig{Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	c.Start(context.Background())
	time.Sleep(300 * time.Millisecond)
	c.Stop()
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, `msg="batch fold failed; next pass retries"`), out)
	require.Contains(t, out, "connection refused")
}
