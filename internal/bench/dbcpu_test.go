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

	// The burners stop before dbtest drops the database (cleanups run last
	// registered first), also when the test fails early.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
	})
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

	// A reading that gives up (a child reaped during each of its scans: the
	// suite's other packages open and close connections all the time on
	// CI's one server) is not a wrong reading; only readings that succeed
	// are compared.
	const slack = 50 * time.Millisecond
	var prev time.Duration
	readings, gaveUp, backends := 0, 0, 0
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (backends < 16 || readings < 16) {
		now, ok := d.read()
		if !ok {
			gaveUp++
			continue
		}
		if readings > 0 {
			require.GreaterOrEqual(t, now, prev-slack, "reading %d fell from %v to %v: a reaped backend's CPU was dropped", readings, prev, now)
		}
		prev = max(prev, now)
		readings++
		select {
		case <-burned:
			backends++
		default:
		}
	}
	require.GreaterOrEqual(t, readings, 16, "readings that succeeded (%d gave up)", gaveUp)
	require.GreaterOrEqual(t, backends, 4, "backends came and went during %d readings", readings)
}

// A side whose rounds all read PostgreSQL's CPU shows its median and
// spread; one with rounds that read none (a 10 ms tick is a short round's
// whole CPU) says how many were measured; one with none shows "-".
func TestDBCPUColumnsSayWhatWasMeasured(t *testing.T) {
	t.Parallel()
	round := func(side Side, dbCPU time.Duration) Round {
		return Round{Side: side, Jobs: 1000, DBCPU: dbCPU}
	}
	rounds := []Round{
		round(SideInsertManyFast, 10*time.Millisecond), round(SideInsertManyFast, 30*time.Millisecond), round(SideInsertManyFast, 20*time.Millisecond),
		round(SideInsertManyFastKeyed, 0), round(SideInsertManyFastKeyed, 40*time.Millisecond), round(SideInsertManyFastKeyed, 0),
		round(SideEnqueue, 0), round(SideEnqueue, 0), round(SideEnqueue, 0),
	}
	sides := []Side{SideInsertManyFast, SideInsertManyFastKeyed, SideEnqueue}
	header, rows := dbCPUColumns(rounds, sides, []string{"SIDE"}, [][]string{{"a"}, {"b"}, {"c"}})
	require.Equal(t, []string{"SIDE", "POSTGRESQL CPU µS/JOB (MEDIAN)", "POSTGRESQL CPU µS/JOB (MIN-MAX)"}, header)
	require.Equal(t, [][]string{
		{"a", "20.0", "10.0-30.0"},
		{"b", "40.0 (1 of 3 rounds)", "40.0-40.0"},
		{"c", "-", "-"},
	}, rows)

	// No side measured: no columns.
	header, rows = dbCPUColumns(rounds[6:], sides[2:], []string{"SIDE"}, [][]string{{"c"}})
	require.Equal(t, []string{"SIDE"}, header)
	require.Equal(t, [][]string{{"c"}}, rows)
}
