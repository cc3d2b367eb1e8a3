package breaker

import (
	"context"
	"log/slog"
	"time"
)

// failureLogEvery is how often a loop that keeps failing logs again.
const failureLogEvery = time.Minute

// failureLog logs the failures of a loop that runs every second or so
// without flooding the log while the database is away: the first failure
// at warn with its error, then at most one warn per failureLogEvery
// carrying how many failures it stands for (held_back), and one info line
// (recovered) when a pass succeeds again, with the number of failed passes.
// One goroutine uses it (the loop's); not safe for concurrent use.
type failureLog struct {
	logger    *slog.Logger
	msg       string // the warn line's message
	recovered string // the info line's message
	every     time.Duration

	failing    bool
	lastLogged time.Time
	heldBack   int // failures since the last line
	failures   int // failures since the first
}

// observe records one pass's outcome (err nil: it succeeded) at now.
func (f *failureLog) observe(ctx context.Context, now time.Time, err error) {
	every := f.every
	if every <= 0 {
		every = failureLogEvery
	}
	if err == nil {
		if f.failing {
			f.logger.InfoContext(ctx, f.recovered, "failed_passes", f.failures)
		}
		f.failing, f.heldBack, f.failures = false, 0, 0
		return
	}
	f.failures++
	if !f.failing {
		f.failing, f.lastLogged, f.heldBack = true, now, 0
		f.logger.WarnContext(ctx, f.msg, "error", err)
		return
	}
	f.heldBack++
	if now.Sub(f.lastLogged) >= every {
		f.logger.WarnContext(ctx, f.msg, "error", err, "held_back", f.heldBack)
		f.lastLogged, f.heldBack = now, 0
	}
}
