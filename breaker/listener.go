package breaker

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rebound-queue/rebound/internal/failurelog"
)

// listenLoop keeps a dedicated connection LISTENing on NotifyChannel and
// re-reads the keys it is told about. After every (re)connection it asks
// for a full reload, covering whatever was announced while it was away.
// A lost connection is logged through failurelog: once, then at most once
// a minute while reconnecting keeps failing (the database is away: every
// 5 s otherwise), and once when LISTEN works again.
func (b *Breaker) listenLoop(ctx context.Context) {
	backoff := 100 * time.Millisecond
	fails := failurelog.Log{Logger: b.logger, Msg: "breaker: LISTEN connection lost; the 1s refresh covers the gap",
		Recovered: "breaker: LISTEN works again"}
	for ctx.Err() == nil {
		err := b.listenOnce(ctx, func() { fails.Observe(ctx, b.now(), nil) })
		if ctx.Err() != nil {
			return
		}
		fails.Observe(ctx, b.now(), err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// listenOnce LISTENs on one connection until it fails; listening runs once
// LISTEN has succeeded.
func (b *Breaker) listenOnce(ctx context.Context, listening func()) error {
	cfg := b.cfg.ListenConfig
	if cfg == nil {
		cfg = b.pool.Config().ConnConfig
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.Copy())
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+NotifyChannel); err != nil {
		return err
	}
	listening()
	b.requestFull()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		keys := []string{n.Payload}
		// Drain what already arrived, so a burst costs one read.
		for len(keys) < 100 {
			dctx, cancel := context.WithTimeout(ctx, time.Millisecond)
			n, err := conn.WaitForNotification(dctx)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if !errors.Is(err, context.DeadlineExceeded) && !conn.PgConn().IsClosed() {
					break
				}
				if conn.PgConn().IsClosed() {
					return err
				}
				break
			}
			keys = append(keys, n.Payload)
		}
		if err := b.refreshKeys(ctx, keys); err != nil {
			b.logger.WarnContext(ctx, "breaker: read notified keys", "error", err)
			b.requestFull()
		}
	}
}

func (b *Breaker) requestFull() {
	select {
	case b.fullCh <- struct{}{}:
	default:
	}
}

// refreshKeys re-reads the rows of keys ("" means every row).
func (b *Breaker) refreshKeys(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if k == "" {
			b.requestFull()
			return nil
		}
	}
	rows, _, err := b.store.byKeys(ctx, keys)
	if err != nil {
		return err
	}
	found := make(map[string]bool, len(rows))
	for _, r := range rows {
		found[r.Key] = true
		b.apply(r)
	}
	for _, k := range keys {
		if !found[k] {
			if v, ok := b.views.Load(k); ok {
				b.forget(v.(*keyView))
			}
		}
	}
	return nil
}

// refreshLoop re-reads rows changed lately every RefreshInterval (every
// row every fullRefreshEvery, or when the listener asks), writes batched
// successes, and runs the registered tickers; kickTickers runs an
// iteration at once.
func (b *Breaker) refreshLoop(ctx context.Context) {
	t := time.NewTicker(b.cfg.RefreshInterval)
	defer t.Stop()
	lastFull := b.now()
	fails := failurelog.Log{Logger: b.logger, Msg: "breaker: refresh", Recovered: "breaker: refresh works again"}
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.tickCh:
		case <-b.fullCh:
			full = true
		}
		if b.now().Sub(lastFull) >= fullRefreshEvery {
			full = true
		}
		if full {
			lastFull = b.now()
		}
		if err := b.refresh(ctx, full); ctx.Err() == nil {
			fails.Observe(ctx, b.now(), err)
		}
		b.views.Range(func(_, val any) bool {
			v := val.(*keyView)
			if v.dirty.Load() && v.flushMu.TryLock() {
				wctx, cancel := context.WithTimeout(ctx, DefaultStatementTimeout)
				b.flushLocked(wctx, v)
				cancel()
				v.flushMu.Unlock()
			}
			return true
		})
		b.hooksMu.Lock()
		tickers := b.tickers
		b.hooksMu.Unlock()
		for _, tick := range tickers {
			tick(ctx)
		}
	}
}

// refresh reads every row (full) or the rows changed since the previous
// refresh minus a margin, applies them, and measures the offset between the
// database clock and the pod's.
func (b *Breaker) refresh(ctx context.Context, full bool) error {
	since := time.Time{}
	if !full && !b.watermark.IsZero() {
		since = b.watermark.Add(-refreshMargin)
	}
	before := b.now()
	rows, dbNow, err := b.store.changedSince(ctx, since)
	after := b.now()
	if err != nil {
		return err
	}
	switch {
	case !dbNow.IsZero():
	case full:
		// No row came back: ask the clock alone (every fullRefreshEvery).
		if err := b.pool.QueryRow(ctx, "SELECT now()").Scan(&dbNow); err != nil {
			return err
		}
		after = b.now()
	default:
		// Nothing changed: keep the offset, move the watermark by our clock.
		b.watermark = before.Add(time.Duration(b.offsetNs.Load()))
		return nil
	}
	// now() is the statement's start: close to the pod's time before it.
	b.offsetNs.Store(int64(dbNow.Sub(before.Add(after.Sub(before) / 4))))
	b.watermark = dbNow
	seen := make(map[string]bool, len(rows))
	for _, r := range rows {
		seen[r.Key] = true
		b.apply(r)
	}
	if full {
		b.views.Range(func(k, val any) bool {
			if !seen[k.(string)] {
				b.forget(val.(*keyView))
			}
			return true
		})
	}
	return nil
}
