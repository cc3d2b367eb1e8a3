package bench

import (
	"fmt"
	"io"

	"github.com/rebound-queue/rebound/internal/cli"
)

// WriteTable prints rep for humans: the settings, the machine, one line per
// side (medians, and the spread of the figures that vary) and the reading.
func (rep *FailureReport) WriteTable(w io.Writer) error {
	c, m, mix := rep.Config, rep.Machine, rep.Mix
	fmt.Fprintf(w, "failure-heavy mix: %d jobs per round (%d fail once with a 503, %d fail permanently with a 400 or 404, %d succeed), %d rounds per side, alternating; MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, pool %d connections\n",
		c.Jobs, mix.FailOnce, mix.Permanent, mix.Succeed, c.Rounds, c.Workers, c.FetchCooldown, c.FetchPollInterval, rep.PoolSize)
	fmt.Fprintf(w, "retries, both sides: max attempts %d, delay %s x 2^(n-1) +-20%%, capped at %s (rebound: its policy; river: a ClientRetryPolicy computing the same); rebound's breaker: failure threshold %d, ratio 0.5 over at least %d calls\n",
		c.MaxAttempts, c.RetryDelay, c.MaxRetryDelay, c.BreakerThreshold, c.BreakerMinimumCalls)
	writeMachine(w, m)
	var rows [][]string
	for _, side := range []Side{SideRiver, SideRebound} {
		rate := SummaryOf(rep.Rounds, side, func(r HTTPRound) float64 { return r.JobsPerSecond() })
		cpu := SummaryOf(rep.Rounds, side, func(r HTTPRound) float64 { return r.CPUPerJob() })
		med := func(f func(HTTPRound) float64) float64 { return SummaryOf(rep.Rounds, side, f).Median }
		rows = append(rows, []string{string(side),
			fmt.Sprintf("%.0f", rate.Median), fmt.Sprintf("%.0f-%.0f", rate.Min, rate.Max),
			fmt.Sprintf("%.2f", med(HTTPRound.AttemptsPerJob)),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Dead) })),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.DLQRows) })),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Calls) })),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Parked) })),
			fmt.Sprintf("%.1f", cpu.Median), fmt.Sprintf("%.1f-%.1f", cpu.Min, cpu.Max)})
	}
	if err := cli.Table(w, []string{"SIDE", "JOBS/S (MEDIAN)", "JOBS/S (MIN-MAX)", "ATTEMPTS/JOB", "DEAD", "DLQ ROWS", "UPSTREAM CALLS", "PARKED", "CPU µS/JOB (MEDIAN)", "CPU µS/JOB (MIN-MAX)"}, rows); err != nil {
		return err
	}
	rr := SummaryOf(rep.Rounds, SideRebound, func(r HTTPRound) float64 { return r.JobsPerSecond() }).Median
	pr := SummaryOf(rep.Rounds, SideRiver, func(r HTTPRound) float64 { return r.JobsPerSecond() }).Median
	rc := SummaryOf(rep.Rounds, SideRebound, func(r HTTPRound) float64 { return float64(r.Calls) }).Median
	pc := SummaryOf(rep.Rounds, SideRiver, func(r HTTPRound) float64 { return float64(r.Calls) }).Median
	_, err := fmt.Fprintf(w, "ratio rebound/river: jobs/s %.3f, upstream calls %.3f; checked every round: calls = attempts, %d dead = %d permanent failures, rebound's DLQ rows = %d, attempts = %d (rebound) and %d (river)\n",
		ratio(rr, pr), ratio(rc, pc), mix.Permanent, mix.Permanent, mix.Permanent, rep.ExpectedAttempts(SideRebound), rep.ExpectedAttempts(SideRiver))
	return err
}

// WriteSVG draws rep: jobs/s, upstream calls per job and CPU µs per job,
// per round, one line per side.
func (rep *FailureReport) WriteSVG(w io.Writer) error {
	c := rep.Config
	title := fmt.Sprintf("failure-heavy mix (30%% 503 once, 5%% 400/404), %d jobs per round, MaxWorkers %d, max attempts %d, retry delay %s doubling",
		c.Jobs, c.Workers, c.MaxAttempts, c.RetryDelay)
	return writeRoundsSVG(w, title, c.Rounds, []Side{SideRiver, SideRebound}, rep.Rounds, []svgPanel[HTTPRound]{
		{"jobs/s per round", HTTPRound.JobsPerSecond},
		{"upstream calls per job", HTTPRound.CallsPerJob},
		{"CPU µs per job (Go process, user+sys)", func(r HTTPRound) float64 { return r.CPUPerJob() }},
	})
}

// WriteTable prints rep for humans: the settings, the machine and one line
// per side.
func (rep *OutageReport) WriteTable(w io.Writer) error {
	c, m, b := rep.Config, rep.Machine, rep.Breaker
	fmt.Fprintf(w, "outage: %d jobs per round against one upstream answering 503 for %s from the start, then 200; %d rounds per side, alternating; MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, pool %d connections\n",
		c.Jobs, c.Outage, c.Rounds, c.Workers, c.FetchCooldown, c.FetchPollInterval, rep.PoolSize)
	fmt.Fprintf(w, "retries, every side: max attempts %d, delay %s x 2^(n-1) +-20%%, capped at %s; rebound's breaker: failure threshold %d, ratio %g over %d calls, open timeout %s (x%g per trip), %d probe(s), park spread %s, wake spread %s (%s per wave of %d workers)\n",
		c.MaxAttempts, c.RetryDelay, c.MaxRetryDelay, b.FailureThreshold, b.FailureRatio, b.MinimumCalls, b.OpenTimeout, b.OpenTimeoutMultiplier, b.HalfOpenMaxProbes, b.ParkSpread, b.WakeSpread, b.WakeWave, c.Workers)
	writeMachine(w, m)
	var rows [][]string
	for _, side := range c.Sides() {
		during := SummaryOf(rep.Rounds, side, func(r HTTPRound) float64 { return float64(r.CallsDuringOutage) })
		drain := SummaryOf(rep.Rounds, side, func(r HTTPRound) float64 { return r.Drain.Seconds() })
		med := func(f func(HTTPRound) float64) float64 { return SummaryOf(rep.Rounds, side, f).Median }
		rows = append(rows, []string{string(side),
			fmt.Sprintf("%.0f", during.Median), fmt.Sprintf("%.0f-%.0f", during.Min, during.Max),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Calls) })),
			fmt.Sprintf("%.2f", drain.Median), fmt.Sprintf("%.2f-%.2f", drain.Min, drain.Max),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Completed) })),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Dead) })),
			fmt.Sprintf("%.0f", med(func(r HTTPRound) float64 { return float64(r.Parked) })),
			fmt.Sprintf("%.1f", med(func(r HTTPRound) float64 { return r.CPUPerJob() }))})
	}
	if err := cli.Table(w, []string{"SIDE", "CALLS DURING OUTAGE (MEDIAN)", "(MIN-MAX)", "CALLS IN ALL", "DRAIN AFTER RECOVERY S (MEDIAN)", "(MIN-MAX)", "COMPLETED", "DEAD", "PARKED", "CPU µS/JOB"}, rows); err != nil {
		return err
	}
	rd := SummaryOf(rep.Rounds, SideRebound, func(r HTTPRound) float64 { return float64(r.CallsDuringOutage) }).Median
	pd := SummaryOf(rep.Rounds, SideRiver, func(r HTTPRound) float64 { return float64(r.CallsDuringOutage) }).Median
	_, err := fmt.Fprintf(w, "calls during the outage, rebound with its breaker / river: %.3f\n", ratio(rd, pd))
	return err
}

// WriteSVG draws rep: upstream calls during the outage, seconds to drain
// after recovery and CPU µs per job, per round, one line per side.
func (rep *OutageReport) WriteSVG(w io.Writer) error {
	c := rep.Config
	title := fmt.Sprintf("outage: %d jobs, upstream 503 for %s, MaxWorkers %d, breaker threshold %d, open timeout %s",
		c.Jobs, c.Outage, c.Workers, rep.Breaker.FailureThreshold, rep.Breaker.OpenTimeout)
	return writeRoundsSVG(w, title, c.Rounds, c.Sides(), rep.Rounds, []svgPanel[HTTPRound]{
		{"upstream calls during the outage", func(r HTTPRound) float64 { return float64(r.CallsDuringOutage) }},
		{"seconds to drain after recovery", func(r HTTPRound) float64 { return r.Drain.Seconds() }},
		{"CPU µs per job (Go process, user+sys)", func(r HTTPRound) float64 { return r.CPUPerJob() }},
	})
}

func writeMachine(w io.Writer, m Machine) {
	fmt.Fprintf(w, "machine: %d CPUs, GOMAXPROCS %d, %s, PostgreSQL %s, load average %s before, %s after\n",
		m.CPUs, m.GOMAXPROCS, m.GoVersion, m.PostgreSQL, m.LoadBefore, m.LoadAfter)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
