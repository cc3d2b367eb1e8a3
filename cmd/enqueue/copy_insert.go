package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/schollz/progressbar/v3"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/jobs"
)

// errInputRefused rolls back the COPY transaction when the input turned out
// bad (or empty) after some of it was copied.
var errInputRefused = errors.New("input refused")

// copyOutcome is what the inserting goroutine of insertFileByCopy did.
type copyOutcome struct {
	inserted int
	elapsed  time.Duration
	err      error
}

// insertFileByCopy is enqueue's fast path, a --file without --json or
// --unique: the input is read and validated while its first lines are
// already being copied (River's InsertManyFastTx, firstCopyBatchSize jobs
// in the first COPY, up to copyBatchSize in the next ones) into one
// transaction, opened once the first batch is full (or the input has
// ended). The transaction commits only once the whole input has been read
// and every line is valid; a bad line, an empty input
// or a reading error rolls it back, so, as when validating first, nothing
// is inserted and the error (the first bad line, and how many more are
// bad) is the same. A bad input wins over a database error, as it did when
// it was found before connecting.
func insertFileByCopy(ctx context.Context, registry *jobs.Registry, kind jobs.Kind, o *options, opts *river.InsertOpts, stdin io.Reader, stdout, stderr io.Writer) error {
	r, closeFile, err := openInput(o.file, stdin)
	if err != nil {
		return err
	}
	defer closeFile()
	if os.Getenv("GOGC") == "" { // the user's GOGC wins
		defer debug.SetGCPercent(debug.SetGCPercent(copyGCPercent))
	}
	stream := streamLines(kind, o.file, r, copyParsers())

	// A bad line closes abort rather than cancelling ctx: the copying
	// goroutine then ends its transaction with a ROLLBACK the server has
	// answered before the process exits, so no lock or half-copied batch
	// outlives it. A cancelled ctx (an interrupt) drops the connection
	// instead, and the server aborts the transaction when it sees that.
	abort := make(chan struct{})
	var aborted bool
	stopCopying := func() {
		if !aborted {
			aborted = true
			close(abort)
		}
	}
	batches := make(chan []line, copyBatchesAhead)
	commit := make(chan bool, 1)
	stopped := make(chan struct{})
	var out copyOutcome
	go func() {
		defer close(stopped)
		out = copyBatches(ctx, registry, kind.Name, opts, batches, abort, commit, stream, stderr)
	}()
	send := func(b []line) {
		select {
		case batches <- b:
		case <-stopped: // it failed: its error is reported below
		}
	}

	var (
		tally linesTally
		size  = firstCopyBatchSize
		batch = make([]line, 0, size)
		total int
	)
	for c := stream.next(); c != nil; c = stream.next() {
		tally.add(c)
		if tally.bad > 0 {
			stopCopying() // nothing will be committed; read on to count the bad lines
			continue
		}
		total += len(c.lines)
		for _, l := range c.lines {
			batch = append(batch, l)
			if len(batch) == size {
				send(batch)
				size = min(2*size, copyBatchSize)
				batch = make([]line, 0, size)
			}
		}
	}
	inputErr := stream.err(&tally)
	if inputErr == nil && total == 0 {
		inputErr = fmt.Errorf("%s: no jobs in it", displayName(o.file))
	}
	if inputErr == nil && len(batch) > 0 {
		send(batch)
	}
	close(batches)
	commit <- inputErr == nil
	if inputErr != nil {
		stopCopying()
	}
	<-stopped
	if inputErr != nil {
		return inputErr
	}
	if out.err != nil {
		return insertFailed(out.err)
	}
	return printResult(stdout, result{Kind: kind.Name, Queue: o.queue, Inserted: out.inserted}, out.elapsed)
}

// copyParsers is how many goroutines parse the fast path's lines: one CPU
// fewer than GOMAXPROCS (at least one). The other runs the goroutines the
// database waits on: the connection and migration check at the start,
// then pgx's, which writes each COPY's rows to the connection. When the
// parsers had every CPU, those waited behind them: on 2 CPUs the first
// COPY began later, and the server sat in ClientRead mid-COPY. One parser
// reads and validates about 400,000 lines a second, four times what the
// server stores.
func copyParsers() int {
	return max(runtime.GOMAXPROCS(0)-1, 1)
}

// copyBatches connects, and once the first batch has come opens a
// transaction and copies every batch it is sent into it with
// InsertManyFastTx; once batches is closed it commits if commit says so,
// and otherwise rolls back. The transaction is not opened before there is
// a batch to copy, so a slow producer on stdin does not hold a session
// idle in a transaction (which idle_in_transaction_session_timeout ends)
// while the first batch fills. Once abort is closed it copies nothing
// more, not even a batch waiting for its turn (copyTurnstile), and rolls
// back (a COPY already sent runs to its end first). A progress bar is drawn
// on stderr when it is a terminal and the input has at least
// progressThreshold lines.
func copyBatches(ctx context.Context, registry *jobs.Registry, kindName string, opts *river.InsertOpts, batches <-chan []line, abort <-chan struct{}, commit <-chan bool, stream *lineStream, stderr io.Writer) copyOutcome {
	pool, client, err := connectForInsert(ctx, registry, &copyTurnstile{})
	if err != nil {
		return copyOutcome{err: err}
	}
	defer pool.Close()

	var (
		out  copyOutcome
		bar  *progressbar.ProgressBar
		sure bool // bar's max is the input's number of lines
	)
	terminal := cli.IsTerminal(stderr)
	start := time.Now()
	// The first batch, before the transaction.
	var first []line
	select {
	case first = <-batches:
	case <-abort:
	case <-ctx.Done():
		return copyOutcome{err: ctx.Err()}
	}
	if first == nil { // refused, or no batch at all: nothing to copy
		return copyOutcome{err: errInputRefused}
	}
	out.err = insertTx(ctx, pool, func(tx pgx.Tx) error {
		var (
			wg       sync.WaitGroup
			failed   atomic.Bool
			after    = closedTurn
			inFlight []*batchInsert // at most copyBatchesInFlight: one copying, the next ones prepared
		)
		defer wg.Wait() // nothing may use tx once this returns (BeginFunc then rolls back or commits)
		finish := func(bi *batchInsert) error {
			<-bi.left
			out.inserted += bi.n
			if bi.err != nil {
				return bi.err
			}
			if terminal && !sure {
				total, known := int(stream.total.Load()), stream.totalKnown.Load()
				switch {
				case known && total < progressThreshold:
					terminal = false // too few lines for a bar
				case bar == nil:
					bar = newInsertBar(stderr, kindName, -1)
					fallthrough
				default:
					if known {
						bar = knownMax(bar, stderr, kindName, total)
						sure = true
					}
				}
			}
			if bar != nil {
				_ = bar.Add(len(bi.lines))
			}
			return nil
		}
		for b, ok := first, true; ok; {
			select {
			case <-abort:
				return errInputRefused
			default:
			}
			bi := startBatchInsert(ctx, &wg, client, tx, opts, b, after, &failed, abort)
			after = bi.left
			inFlight = append(inFlight, bi)
			if len(inFlight) == copyBatchesInFlight {
				if err := finish(inFlight[0]); err != nil {
					return err
				}
				inFlight = inFlight[1:]
			}
			select {
			case b, ok = <-batches:
			case <-abort:
				return errInputRefused
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		for _, bi := range inFlight {
			if err := finish(bi); err != nil {
				return err
			}
		}
		if !<-commit {
			return errInputRefused
		}
		return nil
	})
	out.elapsed = time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	return out
}

// closedTurn is the turn of the first batch: nothing to wait for.
var closedTurn = func() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// batchInsert is one batch's InsertManyFastTx, running on a goroutine of
// its own (see copyTurnstile). Its n and err are set once left is closed.
type batchInsert struct {
	lines []line
	n     int
	err   error
	left  chan struct{}
}

// startBatchInsert starts InsertManyFastTx of b into tx on a new goroutine
// counted by wg. It copies once the batch before has left the transaction
// (after is closed), and not at all when a batch before failed (failed) or
// the input was refused (abort is closed): it then returns
// errEarlierBatchFailed or errCopyingStopped. Any other error sets failed.
func startBatchInsert(ctx context.Context, wg *sync.WaitGroup, client *river.Client[pgx.Tx], tx pgx.Tx, opts *river.InsertOpts, b []line, after <-chan struct{}, failed *atomic.Bool, abort <-chan struct{}) *batchInsert {
	bi := &batchInsert{lines: b, left: make(chan struct{})}
	params := make([]river.InsertManyParams, len(b))
	for i, l := range b {
		params[i] = river.InsertManyParams{Args: l.args, InsertOpts: opts}
	}
	wg.Go(func() {
		defer close(bi.left)
		n, err := client.InsertManyFastTx(withCopyTurn(ctx, &copyTurn{after: after, failed: failed, abort: abort}), tx, params)
		bi.n = n
		switch {
		case errors.Is(err, errEarlierBatchFailed), errors.Is(err, errCopyingStopped):
			bi.err = err
		case err != nil:
			failed.Store(true)
			bi.err = fmt.Errorf("insert lines %d-%d: %w", b[0].number, b[len(b)-1].number, err)
		}
	})
	return bi
}

// knownMax replaces bar, a spinner until now (max -1), by a bar of max
// lines holding the lines already added. progressbar's ChangeMax would keep
// the spinner's position (its count modulo the bar's width) as the bar's,
// so the percentage lagged the count by what the spinner had shown (20 % at
// 50,000 of 100,000 lines), and it draws a 0 % frame as it switches.
func knownMax(bar *progressbar.ProgressBar, w io.Writer, kind string, max int) *progressbar.ProgressBar {
	done := int64(bar.State().CurrentBytes)
	_ = bar.Finish() // stops the spinner's own redrawing and clears its line
	bar = newInsertBar(w, kind, max)
	_ = bar.Add64(done)
	return bar
}
