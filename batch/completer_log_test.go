package batch

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stretchr/testify/require"
)

// TestCompleterLogsAnUnreachableDatabaseOnce runs a Completer against a
// port where no PostgreSQL listens (every fold fails to connect) for about
// 30 passes: one warning, not one a pass.
func TestCompleterLogsAnUnreachableDatabaseOnce(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	var buf syncBuffer
	c := NewCompleter(pool, &CompleterConfig{Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	c.Start(context.Background())
	time.Sleep(300 * time.Millisecond)
	c.Stop()
	out := buf.String()
	require.Equal(t, 1, strings.Count(out, `msg="batch fold failed; next pass retries"`), out)
	require.Contains(t, out, "connection refused")
}

// syncBuffer is a bytes.Buffer safe for the Completer's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
