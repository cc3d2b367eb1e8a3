// Package failurelog keeps a background loop that fails every pass (its
// database gone) from flooding the log: the first failure is logged, then
// at most one line a minute, and the recovery once.
package failurelog

import (
	"context"
	"log/slog"
	"time"
)

// DefaultEvery is how often a loop that keeps failing logs again.
const DefaultEvery = time.Minute

// Log logs the failures of a loop that runs every second or so
// without flooding the log while the database is away: the first failure
// at warn with its error, then at most one warn per failureLogEvery
// carrying how many failures it stands for (held_back), and one info line
// (recovered) when a pass succeeds again, with the number of failed passes.
// One goroutine uses it (the loop's); not safe for concurrent use.
type Log struct {
	// Logger receives the lines.
	Logger *slog.Logger
	// Msg is the warn line's message.
	Msg string
	// Recovered is the info line's message.
	Recovered string
	// Every is how often a loop that keeps failing logs again; zero means
	// DefaultEvery (1 minute).
	Every time.Duration

	failing    bool
	lastLogged time.Time
	heldBack   int // failures since the last line
	failures   int // failures since the first
}

// Observe records one pass's outcome (err nil: it succeeded) at now.
func (f *Log) Observe(ctx context.Context, now time.Time, err error) {
	every := f.Every
	if every <= 0 {
		every = DefaultEvery
	}
	if err == nil {
		if f.failing {
			f.Logger.InfoContext(ctx, f.Recovered, "failed_passes", f.failures)
		}
		f.failing, f.heldBack, f.failures = false, 0, 0
		return
	}
	f.failures++
	if !f.failing {
		f.failing, f.lastLogged, f.heldBack = true, now, 0
		f.Logger.WarnContext(ctx, f.Msg, "error", err)
		return
	}
	f.heldBack++
	if now.Sub(f.lastLogged) >= every {
		f.Logger.WarnContext(ctx, f.Msg, "error", err, "held_back", f.heldBack)
		f.lastLogged, f.heldBack = now, 0
	}
}
