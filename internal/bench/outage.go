package bench

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/jobs"
)

// OutageConfig sets the outage scenario: every job calls one real local
// [Upstream], which answers 503 to everything from before the start of the
// round until Outage after it, then 200. Three sides: plain River, rebound
// with its breaker, and rebound with a breaker that cannot trip.
type OutageConfig struct {
	HTTPQueueConfig
	// Jobs is how many jobs each side works per round. Default 2,000.
	Jobs int
	// Rounds is how many rounds each side runs. Default 3.
	Rounds int
	// Outage is how long the upstream fails, from the side's start.
	// Default 10 s.
	Outage time.Duration
	// MaxAttempts is every job's max attempts, every side. Default 25
	// (River's default), so that no job runs out of attempts during the
	// outage with the default delays (100 ms doubling, capped at 1 s).
	MaxAttempts int
	// Breaker is rebound's breaker settings (the rebound side's; the
	// no-breaker side gets these with FailureThreshold 1,000,000,000 and
	// FailureRatio -1). Zero fields mean the breaker's defaults, except
	// OpenTimeout, which defaults to 2 s here (the breaker's 30 s is longer
	// than the outage).
	Breaker breaker.Settings `json:"-"`
	// NoBreakerSide adds the rebound-no-breaker side. Default off in Go;
	// `rebound bench` turns it on.
	NoBreakerSide bool
}

func (c OutageConfig) withDefaults() OutageConfig {
	c.HTTPQueueConfig = c.HTTPQueueConfig.withDefaults()
	if c.Jobs <= 0 {
		c.Jobs = 2000
	}
	if c.Rounds <= 0 {
		c.Rounds = 3
	}
	if c.Outage <= 0 {
		c.Outage = 10 * time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 25
	}
	if c.Breaker.OpenTimeout <= 0 {
		c.Breaker.OpenTimeout = 2 * time.Second
	}
	return c
}

// Sides are the sides the scenario runs, in the order of odd rounds (even
// rounds run them in reverse).
func (c OutageConfig) Sides() []Side {
	if c.NoBreakerSide {
		return []Side{SideRiver, SideRebound, SideReboundNoBreaker}
	}
	return []Side{SideRiver, SideRebound}
}

// OutageReport is the result of [RunOutage].
type OutageReport struct {
	Config  OutageConfig
	Machine Machine
	// PoolSize is the connection pool's size (the sides share the pool).
	PoolSize int
	// Breaker is the rebound side's breaker settings, defaults filled in.
	Breaker OutageBreaker
	// Rounds are every round of every side, in the order they ran.
	Rounds []HTTPRound
}

// OutageBreaker is the rebound side's breaker settings as the report gives
// them (see breaker.Settings).
type OutageBreaker struct {
	// FailureThreshold is the consecutive failures that open the breaker.
	FailureThreshold int
	// FailureRatio opens it at this share of failed calls in the window
	// (negative: the rule is off), once the window holds MinimumCalls.
	FailureRatio float64
	MinimumCalls int
	// OpenTimeout is how long it stays open before a probe; each repeated
	// trip multiplies it by OpenTimeoutMultiplier.
	OpenTimeout           time.Duration
	OpenTimeoutMultiplier float64
	// HalfOpenMaxProbes is the probes admitted at once while half-open.
	HalfOpenMaxProbes int
	// ParkSpread is the random spread added to a parked job's snooze;
	// WakeSpread caps the spread of the wake-up of parked jobs when the
	// breaker closes, WakeWave is its time per wave of the pod's workers.
	ParkSpread, WakeSpread, WakeWave time.Duration
}

// RunOutage runs the outage scenario on pool (a migrated database of the
// bench's own, [NewDatabase]) against an upstream of its own. Each round is
// checked: every job finished and the upstream got one call per attempt.
// progress, if not nil, gets one line per round.
func RunOutage(ctx context.Context, pool *pgxpool.Pool, cfg OutageConfig, progress io.Writer) (*OutageReport, error) {
	cfg = cfg.withDefaults()
	bs := cfg.Breaker.WithDefaults()
	if err := bs.Validate(); err != nil {
		return nil, fmt.Errorf("breaker settings: %w", err)
	}
	rep := &OutageReport{Config: cfg, Machine: machine(ctx, pool), PoolSize: int(pool.Config().MaxConns), Breaker: OutageBreaker{
		FailureThreshold: bs.FailureThreshold, FailureRatio: bs.FailureRatio, MinimumCalls: bs.MinimumCalls,
		OpenTimeout: bs.OpenTimeout, OpenTimeoutMultiplier: bs.OpenTimeoutMultiplier, HalfOpenMaxProbes: bs.HalfOpenMaxProbes,
		ParkSpread: bs.ParkSpread, WakeSpread: bs.WakeSpread, WakeWave: bs.WakeWave,
	}}
	up, err := NewUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()
	client := jobs.NewHTTPClient()
	defer client.CloseIdleConnections()
	for n := 1; n <= cfg.Rounds; n++ {
		order := cfg.Sides()
		if n%2 == 0 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, sideName := range order {
			var side *httpSide
			switch sideName {
			case SideRiver:
				side, err = riverHTTPSide(pool, cfg.HTTPQueueConfig, client)
			case SideRebound:
				side, err = reboundHTTPSide(pool, cfg.HTTPQueueConfig, client, cfg.MaxAttempts, cfg.Breaker)
			default:
				off := cfg.Breaker
				off.FailureThreshold, off.FailureRatio = 1_000_000_000, -1
				side, err = reboundHTTPSide(pool, cfg.HTTPQueueConfig, client, cfg.MaxAttempts, off)
			}
			if err != nil {
				return nil, err
			}
			js := make([]httpJob, cfg.Jobs)
			for i := range js {
				js[i] = httpJob{url: fmt.Sprintf("%s/outage/%d-%s-%d", up.URL, n, sideName, i), key: fmt.Sprintf("bench-outage-%d-%s", n, sideName)}
			}
			r, err := runHTTPRound(ctx, pool, up, cfg.HTTPQueueConfig, sideName, side, js, cfg.MaxAttempts, cfg.Outage)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", n, sideName, err)
			}
			r.Number = n
			rep.Rounds = append(rep.Rounds, r)
			if progress != nil {
				fmt.Fprintf(progress, "outage round %d %-18s %6d calls during the outage, %6d in all, drained %6.2f s after recovery, %5d completed, %5d dead, %6d parked\n",
					n, sideName, r.CallsDuringOutage, r.Calls, r.Drain.Seconds(), r.Completed, r.Dead, r.Parked)
			}
			if r.Calls != r.Attempts {
				return rep, fmt.Errorf("round %d, %s: the upstream got %d calls for %d attempts", n, sideName, r.Calls, r.Attempts)
			}
		}
	}
	rep.Machine.LoadAfter = LoadAverage()
	return rep, nil
}
