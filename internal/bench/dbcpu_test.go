package bench

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// The server's CPU time never goes backwards while backends come and go:
// each short connection below burns about 0.3 s of CPU in its backend and
// closes, and its CPU moves from the backend's /proc entry into the
// postmaster's cutime when the postmaster reaps it. A reap in the middle of
// a reading's scan of /proc used to drop that backend's CPU from the
// reading (the insert scenario then measured an enqueue round at 0.2
// µs/job instead of 10). A reading may still be below the one before by
// the rounding of a few reaped children's ticks (at most 2 ticks, 20 ms,
// each), far less than the 0.3 s a dropped backend takes away.
func TestDBCPUNeverDropsAReapedBackend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	d := newDBCPU(ctx, db.Pool)
	if d == nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("PostgreSQL's CPU is readable from /proc on CI's local server")
		}
		t.Skip("the server is not a local process whose /proc entries this test can read")
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	burned := make(chan struct{}, 64)
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := pgx.Connect(ctx, db.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, err = conn.Exec(ctx, "SELECT sum(i) FROM generate_series(1, 3000000) i")
				_ = conn.Close(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				burned <- struct{}{}
			}
		})
	}

	const slack = 50 * time.Millisecond
	prev, ok := d.read()
	require.True(t, ok)
	deadline := time.Now().Add(6 * time.Second)
	readings, backends := 0, 0
	for time.Now().Before(deadline) && backends < 16 {
		now, ok := d.read()
		require.True(t, ok, "after %d readings", readings)
		require.GreaterOrEqual(t, now, prev-slack, "reading %d fell from %v to %v: a reaped backend's CPU was dropped", readings, prev, now)
		prev = max(prev, now)
		readings++
		select {
		case <-burned:
			backends++
		default:
		}
	}
	close(stop)
	wg.Wait()
	require.GreaterOrEqual(t, backends, 4, "backends came and went during %d readings", readings)
}
