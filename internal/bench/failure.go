package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/jobs"
)

// FailureConfig sets the failure-heavy scenario: of every 100 jobs, 30 fail
// once with a 503 and then succeed, 5 fail permanently (3 with a 400, 2 with
// a 404), 65 succeed at once, against a real local [Upstream].
type FailureConfig struct {
	HTTPQueueConfig
	// Jobs is how many jobs each side works per round. Default 5,000.
	Jobs int
	// Rounds is how many rounds each side runs. Default 5.
	Rounds int
	// MaxAttempts is every job's max attempts on both sides. Default 5
	// (http_request's default; River's own is 25). Plain River retries a
	// permanent failure until this many attempts; rebound ends it at once.
	MaxAttempts int
	// BreakerThreshold is rebound's breaker failure threshold (consecutive
	// failures) in this scenario. Default 50: the mix's 503s come 30 % of
	// the time at random, so the default threshold of 5 trips (0.3^5 per
	// call) and parks jobs; this scenario measures retries and the
	// dead-letter queue, the outage scenario the breaker. The ratio rule
	// keeps its ratio, 0.5, over at least BreakerMinimumCalls calls.
	BreakerThreshold int
	// BreakerMinimumCalls is the calls rebound's breaker window must hold
	// before its ratio rule (0.5) applies. Default 100: with the default
	// 20, the first 20 calls of a round hold 10 or more 503s about one
	// time in 20 (binomial, p = 0.3), and the breaker trips.
	BreakerMinimumCalls int
}

func (c FailureConfig) withDefaults() FailureConfig {
	c.HTTPQueueConfig = c.HTTPQueueConfig.withDefaults()
	if c.Jobs <= 0 {
		c.Jobs = 5000
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 50
	}
	if c.BreakerMinimumCalls <= 0 {
		c.BreakerMinimumCalls = 100
	}
	return c
}

// Mix is how a failure-heavy round's jobs split.
type Mix struct {
	// FailOnce jobs get a 503 on their first call, then a 200.
	FailOnce int
	// Permanent jobs get a 400 or a 404 on every call.
	Permanent int
	// Succeed jobs get a 200 at once.
	Succeed int
}

// MixOf is the split of n jobs: job i fails once when i mod 100 < 30, and
// permanently when 30 <= i mod 100 < 35.
func MixOf(n int) Mix {
	var m Mix
	for i := range n {
		switch r := i % 100; {
		case r < 30:
			m.FailOnce++
		case r < 35:
			m.Permanent++
		default:
			m.Succeed++
		}
	}
	return m
}

// FailureReport is the result of [RunFailure].
type FailureReport struct {
	Config  FailureConfig
	Machine Machine
	// PoolSize is the connection pool's size (the sides share the pool).
	PoolSize int
	// Mix is how each round's jobs split.
	Mix Mix
	// Rounds are every round of both sides, in the order they ran.
	Rounds []HTTPRound
}

// ExpectedAttempts is the attempts a round of side must use, exactly:
// rebound 1 per job plus 1 per fail-once job (a permanent failure is not
// retried); plain River the same plus MaxAttempts-1 per permanent job.
func (r *FailureReport) ExpectedAttempts(side Side) int64 {
	n := int64(r.Mix.FailOnce + r.Mix.Permanent + r.Mix.Succeed + r.Mix.FailOnce)
	if side == SideRiver {
		n += int64(r.Mix.Permanent) * int64(r.Config.MaxAttempts-1)
	}
	return n
}

func failureJobs(up *Upstream, n, round int, side Side) []httpJob {
	js := make([]httpJob, n)
	key := fmt.Sprintf("bench-failure-%d-%s", round, side)
	for i := range js {
		what := "ok"
		switch r := i % 100; {
		case r < 30:
			what = "once"
		case r < 35 && r%2 == 0:
			what = "bad"
		case r < 35:
			what = "gone"
		}
		js[i] = httpJob{url: fmt.Sprintf("%s/%s/%d-%s-%d", up.URL, what, round, side, i), key: key}
	}
	// Inserted (and so fetched) in an order shuffled the same way for both
	// sides of a round: the failures come spread out, not 30 in a row.
	rnd := rand.New(rand.NewPCG(uint64(round), 0x5eed))
	rnd.Shuffle(len(js), func(i, j int) { js[i], js[j] = js[j], js[i] })
	return js
}

// RunFailure runs the failure-heavy scenario on pool (a migrated database
// of the bench's own, [NewDatabase]) against an upstream of its own, plain
// River and rebound in alternating rounds. Each round is checked: every
// job finished, the upstream got exactly one call per attempt, and the
// rebound side's dead-letter rows equal the permanent failures; a round
// that breaks one of these is an error. progress, if not nil, gets one
// line per round.
func RunFailure(ctx context.Context, pool *pgxpool.Pool, cfg FailureConfig, progress io.Writer) (rep *FailureReport, err error) {
	cfg = cfg.withDefaults()
	rep = &FailureReport{Config: cfg, Machine: machine(ctx, pool), PoolSize: int(pool.Config().MaxConns), Mix: MixOf(cfg.Jobs)}
	up, err := NewUpstream()
	if err != nil {
		return nil, err
	}
	defer up.Close()
	client := jobs.NewHTTPClient()
	defer client.CloseIdleConnections()
	for n := 1; n <= cfg.Rounds; n++ {
		order := []Side{SideRiver, SideRebound}
		if n%2 == 0 {
			order = []Side{SideRebound, SideRiver}
		}
		for _, sideName := range order {
			var side *httpSide
			if sideName == SideRiver {
				side, err = riverHTTPSide(pool, cfg.HTTPQueueConfig, client)
			} else {
				side, err = reboundHTTPSide(pool, cfg.HTTPQueueConfig, client, cfg.MaxAttempts, breaker.Settings{FailureThreshold: cfg.BreakerThreshold, MinimumCalls: cfg.BreakerMinimumCalls})
			}
			if err != nil {
				return nil, err
			}
			r, err := runHTTPRound(ctx, pool, up, cfg.HTTPQueueConfig, sideName, side, failureJobs(up, cfg.Jobs, n, sideName), cfg.MaxAttempts, 0)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", n, sideName, err)
			}
			r.Number = n
			rep.Rounds = append(rep.Rounds, r)
			if progress != nil {
				fmt.Fprintf(progress, "failure round %d %-7s %7.0f jobs/s %5.2f attempts/job %5d dead %5d DLQ rows %6d calls %7.1f µs CPU/job\n",
					n, sideName, r.JobsPerSecond(), r.AttemptsPerJob(), r.Dead, r.DLQRows, r.Calls, r.CPUPerJob())
			}
			if err := rep.check(r); err != nil {
				return rep, fmt.Errorf("round %d, %s: %w", n, sideName, err)
			}
		}
	}
	rep.Machine.LoadAfter = LoadAverage()
	return rep, nil
}

// check holds a round to what the mix makes certain.
func (rep *FailureReport) check(r HTTPRound) error {
	switch {
	case r.Calls != r.Attempts:
		return fmt.Errorf("the upstream got %d calls for %d attempts", r.Calls, r.Attempts)
	case r.Completed != rep.Mix.FailOnce+rep.Mix.Succeed:
		return fmt.Errorf("%d jobs completed, want %d", r.Completed, rep.Mix.FailOnce+rep.Mix.Succeed)
	case r.Dead != rep.Mix.Permanent:
		return fmt.Errorf("%d jobs ended dead, want the %d permanent failures", r.Dead, rep.Mix.Permanent)
	case r.Side == SideRebound && r.DLQRows != rep.Mix.Permanent:
		return fmt.Errorf("%d dead-letter rows, want the %d permanent failures exactly", r.DLQRows, rep.Mix.Permanent)
	case r.Attempts != rep.ExpectedAttempts(r.Side):
		return fmt.Errorf("%d attempts, want %d", r.Attempts, rep.ExpectedAttempts(r.Side))
	}
	return nil
}
