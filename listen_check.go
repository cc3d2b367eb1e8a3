package rebound

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/rebound-queue/rebound/internal/listencheck"
)

// listenCheckFeature checks, once at start, that the connections the pod
// LISTENs on hear a NOTIFY (River's job wake-ups on the pool unless
// PollOnly; the breakers' notifications on Breaker.ListenConfig, else the
// pool's config, unless ListenDisabled), and logs one warning naming the
// fix when they do not: behind PgBouncer in transaction mode a LISTEN is
// accepted and lost, and the pod would otherwise start without a word.
type listenCheckFeature struct {
	pod    *Pod
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func (f *listenCheckFeature) setup(*assembly) error { return nil }

func (f *listenCheckFeature) mount(p *Pod, _ *assembly) error {
	f.pod = p
	return nil
}

func (f *listenCheckFeature) start(ctx context.Context) error {
	c := &f.pod.config
	var (
		listen *pgx.ConnConfig
		warn   string
	)
	switch {
	case !c.PollOnly:
		listen = c.Pool.Config().ConnConfig
		warn = "LISTEN/NOTIFY does not work on the database connections (PgBouncer in transaction mode?): jobs are found only by polling every fetch-poll-interval and circuit breaker transitions by the 1s re-read; run the worker with --poll-only (Config.PollOnly) and set DATABASE_DIRECT_URL (Config.Breaker.ListenConfig) to a direct connection to PostgreSQL for the breakers' LISTEN"
	case c.Breaker.ListenConfig != nil && !c.Breaker.ListenDisabled:
		listen = c.Breaker.ListenConfig
		warn = "LISTEN/NOTIFY does not work on DATABASE_DIRECT_URL (Config.Breaker.ListenConfig; a pooler in transaction mode?): circuit breaker transitions are seen only by the 1s re-read; point it at PostgreSQL itself"
	default:
		return nil // nothing LISTENs
	}
	ctx, f.cancel = context.WithCancel(ctx)
	f.wg.Go(func() {
		err := listencheck.RoundTrip(ctx, listen, c.Pool, 0)
		switch {
		case errors.Is(err, listencheck.ErrLost):
			c.Logger.Warn(warn, "check", err.Error())
		case err != nil && ctx.Err() == nil:
			c.Logger.Warn("could not check that LISTEN/NOTIFY works", "error", err)
		}
	})
	return nil
}

func (f *listenCheckFeature) stop(context.Context) {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
}
