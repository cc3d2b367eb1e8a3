package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/jobs"
)

// insertProbe is an insert middleware that reports each batch (by its
// first job's URL) on arrived, or, innermost, records the order in which
// batches reach River's COPY and that no two are ever inside at once. When
// holdFirst is set, the first batch waits inside until the second has
// arrived at the probe before the turnstile; entered, when set, is told
// the first batch's name once it is inside.
type insertProbe struct {
	river.MiddlewareDefaults
	arrived   chan string
	holdFirst <-chan string
	entered   chan<- string
	mu        sync.Mutex
	order     []string
	inside    atomic.Int32
	overlap   atomic.Bool
	held      atomic.Bool
}

func (p *insertProbe) InsertMany(ctx context.Context, manyParams []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	name := strings.TrimPrefix(manyParams[0].Args.(jobs.HTTPRequestArgs).URL, "http://127.0.0.1:9/")
	if p.arrived != nil {
		p.arrived <- name
		return doInner(ctx)
	}
	if p.inside.Add(1) > 1 {
		p.overlap.Store(true)
	}
	defer p.inside.Add(-1)
	p.mu.Lock()
	p.order = append(p.order, name)
	first := len(p.order) == 1
	p.mu.Unlock()
	if first && p.entered != nil {
		p.entered <- name
	}
	if first && p.holdFirst != nil {
		select {
		case <-p.holdFirst:
			p.held.Store(true)
		case <-time.After(30 * time.Second):
		}
	}
	return doInner(ctx)
}

func probeBatch(name string, n int) []line {
	b := make([]line, n)
	for i := range b {
		b[i] = line{number: i + 1, args: jobs.HTTPRequestArgs{URL: "http://127.0.0.1:9/" + name}}
	}
	return b
}

// River's work for a batch (its params, the insert middleware) runs while
// the batch before is still being copied, and the copies themselves happen
// one at a time, in batch order; a batch after one that failed copies
// nothing and the failed batch's error is the one kept.
func TestCopyTurnstileOverlapsPreparationAndKeepsOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	refuseURL(t, db, "http://127.0.0.1:9/boom", "boom refused", false)

	tests := []struct {
		name      string
		batches   []string
		abort     bool     // the input is refused (abort closed) once the second batch is prepared, while the first is still inside
		wantOrder []string // batches that reached the COPY, in order
		wantErrs  []string // each batch's error, "" for none
		wantRows  int
	}{
		{name: "all copied in order", batches: []string{"a", "b", "c", "d"},
			wantOrder: []string{"a", "b", "c", "d"}, wantErrs: []string{"", "", "", ""}, wantRows: 4 * 50},
		{name: "a refused batch stops the ones after it", batches: []string{"a", "boom", "c", "d"},
			wantOrder: []string{"a", "boom"}, wantErrs: []string{"", "insert lines 1-50: ERROR: boom refused (SQLSTATE P0001)", errEarlierBatchFailed.Error(), errEarlierBatchFailed.Error()}},
		// A bad line read while the first batch is being copied: the
		// batch waiting at the turnstile copies nothing.
		{name: "a refused input stops the batch waiting to be copied", batches: []string{"a", "b"}, abort: true,
			wantOrder: []string{"a"}, wantErrs: []string{"", errCopyingStopped.Error()}},
	}
	for _, tt := range tests {
		before := jobCount(t, db)
		arrived := make(chan string, len(tt.batches))
		second := make(chan string, 1)
		entered := make(chan string, 1)
		abort := make(chan struct{})
		go func() { // the first batch is held inside until the second has been prepared
			var got []string
			for name := range arrived {
				if got = append(got, name); len(got) == 2 {
					if tt.abort { // the first is past the turnstile: only the second must stop
						<-entered
						close(abort)
					}
					second <- name
				}
			}
		}()
		inner := &insertProbe{holdFirst: second, entered: entered}
		client, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{
			Middleware: []rivertype.Middleware{jobs.Builtin().InsertMiddleware(), &insertProbe{arrived: arrived}, &copyTurnstile{}, inner},
		})
		require.NoError(t, err)
		var errs []string
		err = pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			var (
				wg     sync.WaitGroup
				failed atomic.Bool
				after  = closedTurn
				all    []*batchInsert
			)
			for _, name := range tt.batches {
				bi := startBatchInsert(ctx, &wg, client, tx, nil, probeBatch(name, 50), after, &failed, abort)
				after = bi.left
				all = append(all, bi)
			}
			wg.Wait()
			for _, bi := range all {
				errs = append(errs, fmt.Sprint(bi.err))
			}
			if failed.Load() || tt.abort {
				return errors.New("roll back")
			}
			return nil
		})
		close(arrived)
		for i, e := range tt.wantErrs {
			if e == "" {
				tt.wantErrs[i] = "<nil>"
			}
		}
		require.Equal(t, tt.wantErrs, errs, tt.name)
		require.Equal(t, tt.wantOrder, inner.order, tt.name)
		require.False(t, inner.overlap.Load(), "%s: two batches inside the transaction at once", tt.name)
		require.True(t, inner.held.Load(), "%s: the second batch was prepared while the first was in the transaction", tt.name)
		require.Equal(t, before+tt.wantRows, jobCount(t, db), tt.name)
		if tt.wantRows == 0 {
			require.Error(t, err, tt.name)
		}
	}
}
