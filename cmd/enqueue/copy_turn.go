package main

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// The fast path overlaps River's per-batch work with the database's: while
// batch k's COPY is on the wire, InsertManyFastTx for batch k+1 already
// runs on another goroutine, building its insert params (encoding each
// job's args) and passing them through the insert middleware. Only the
// innermost step, where River copies the batch into the transaction,
// must wait: copyTurnstile, the innermost insert middleware of the fast
// path's client, holds each batch there until the batch before has left
// the transaction. Nothing before that step touches the transaction
// (River's InsertManyFastTx builds the params and runs the middleware
// first, then copies and notifies inside the innermost call), so the
// transaction's connection is used by one goroutine at a time, in batch
// order. Measured on 100,000 lines: River's work took 13-40 ms per batch
// of 10,000 during which the database had nothing to do, 0.2 s in all.

// errEarlierBatchFailed is what a batch returns, without copying, when a
// batch before it failed: the transaction is aborted by then, and the
// earlier batch's error is the one reported.
var errEarlierBatchFailed = errors.New("an earlier batch failed")

// errCopyingStopped is what a batch returns, without copying, when the
// input was refused (a bad line, an empty input, a reading error) before
// its turn came: nothing will be committed, so copying it is wasted work.
var errCopyingStopped = errors.New("copying stopped: the input was refused")

// copyTurn is one batch's place in the order of COPYs.
type copyTurn struct {
	after  <-chan struct{} // closed once the batch before has left the transaction
	failed *atomic.Bool    // set by a batch that failed, before its successor's after is closed
	abort  <-chan struct{} // closed once the input is refused
}

type copyTurnKey struct{}

// withCopyTurn returns ctx carrying t for copyTurnstile.
func withCopyTurn(ctx context.Context, t *copyTurn) context.Context {
	return context.WithValue(ctx, copyTurnKey{}, t)
}

// copyTurnstile is an insert middleware that, for an insert whose context
// carries a copyTurn, waits for the batch before to leave the transaction
// before letting River copy this one. It copies nothing, returning
// errEarlierBatchFailed or errCopyingStopped, once a batch before failed or
// the input was refused. An insert without a turn goes straight through.
type copyTurnstile struct{ river.MiddlewareDefaults }

// InsertMany implements rivertype.JobInsertMiddleware.
func (copyTurnstile) InsertMany(ctx context.Context, manyParams []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	t, ok := ctx.Value(copyTurnKey{}).(*copyTurn)
	if !ok {
		return doInner(ctx)
	}
	select {
	case <-t.after:
	case <-t.abort:
		return nil, errCopyingStopped
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if t.failed.Load() {
		return nil, errEarlierBatchFailed
	}
	select { // after and abort may both have been closed: abort wins
	case <-t.abort:
		return nil, errCopyingStopped
	default:
	}
	return doInner(ctx)
}
