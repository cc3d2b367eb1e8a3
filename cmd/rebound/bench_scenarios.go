package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/bench"
)

// benchScenarios are the values of `rebound bench --scenario`.
var benchScenarios = []string{"noop", "failure", "outage", "insert", "all"}

// benchHTTPFlags are the flags of the failure and outage scenarios.
type benchHTTPFlags struct {
	scenario      string
	retryDelay    time.Duration
	maxRetryDelay time.Duration
	outage        time.Duration
	openTimeout   time.Duration
	parkSpread    time.Duration
	wakeSpread    time.Duration
	wakeWave      time.Duration
}

func (f *benchHTTPFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.scenario, "scenario", "noop", "what to measure: noop, failure (30% 503 once, 5% 400/404), outage (upstream down, then up), insert (enqueue --file against InsertManyFast), or all")
	fs.DurationVar(&f.retryDelay, "retry-delay", 100*time.Millisecond, "failure, outage: first retry delay, doubling, both sides")
	fs.DurationVar(&f.maxRetryDelay, "max-retry-delay", time.Second, "failure, outage: cap of a retry delay, both sides")
	fs.DurationVar(&f.outage, "outage", 10*time.Second, "outage: how long the upstream answers 503 from each side's start")
	fs.DurationVar(&f.openTimeout, "open-timeout", 2*time.Second, "outage: rebound's breaker open timeout")
	fs.DurationVar(&f.parkSpread, "park-spread", breaker.DefaultParkSpread, "outage: rebound's breaker park spread")
	fs.DurationVar(&f.wakeSpread, "wake-spread", breaker.DefaultWakeSpread, "outage: rebound's breaker wake spread (the cap of the spread of the wake-up of parked jobs)")
	fs.DurationVar(&f.wakeWave, "wake-wave", breaker.DefaultWakeWave, "outage: rebound's breaker wake wave (the wake-up's time per wave of the pod's workers)")
}

func (f *benchHTTPFlags) validate() error {
	switch {
	case !slices.Contains(benchScenarios, f.scenario):
		return fmt.Errorf("--scenario must be one of %s, got %q", strings.Join(benchScenarios, ", "), f.scenario)
	case f.retryDelay < time.Millisecond || f.retryDelay > time.Minute:
		return fmt.Errorf("--retry-delay must be between 1ms and 1m, got %s", f.retryDelay)
	case f.maxRetryDelay < f.retryDelay || f.maxRetryDelay > time.Hour:
		return fmt.Errorf("--max-retry-delay must be between --retry-delay (%s) and 1h, got %s", f.retryDelay, f.maxRetryDelay)
	case f.outage < 100*time.Millisecond || f.outage > time.Hour:
		return fmt.Errorf("--outage must be between 100ms and 1h, got %s", f.outage)
	case f.openTimeout < time.Millisecond || f.openTimeout > time.Hour:
		return fmt.Errorf("--open-timeout must be between 1ms and 1h, got %s", f.openTimeout)
	case f.parkSpread < time.Millisecond || f.parkSpread > 24*time.Hour:
		return fmt.Errorf("--park-spread must be between 1ms and 24h, got %s", f.parkSpread)
	case f.wakeSpread < time.Millisecond || f.wakeSpread > breaker.MaxWakeSpread:
		return fmt.Errorf("--wake-spread must be between 1ms and 1h, got %s", f.wakeSpread)
	case f.wakeWave < time.Millisecond || f.wakeWave > breaker.MaxWakeSpread:
		return fmt.Errorf("--wake-wave must be between 1ms and 1h, got %s", f.wakeWave)
	}
	return nil
}

// runs reports whether the --scenario value asks for scenario.
func (f *benchHTTPFlags) runs(scenario string) bool {
	return f.scenario == scenario || f.scenario == "all"
}

// svgPath is where scenario's plot goes: path itself for one scenario;
// with --scenario all, path with -SCENARIO before its extension
// (bench.svg: bench-noop.svg, bench-failure.svg, bench-outage.svg). No
// --svg (path "") is no plot: "", not a file named -noop.
func (f *benchHTTPFlags) svgPath(path, scenario string) string {
	if f.scenario != "all" || path == "" {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + scenario + ext
}

// benchOutput collects the reports of one `rebound bench` run: one report
// prints as itself, several (--scenario all) as a JSON object by scenario
// or their tables one after the other.
type benchOutput struct {
	names   []string
	reports map[string]any
	tables  []func(io.Writer) error
}

func (o *benchOutput) add(name string, rep any, table func(io.Writer) error) {
	if o.reports == nil {
		o.reports = map[string]any{}
	}
	o.names = append(o.names, name)
	o.reports[name] = rep
	o.tables = append(o.tables, table)
}

func (o *benchOutput) print(a *app) error {
	var v any = o.reports
	if len(o.names) == 1 {
		v = o.reports[o.names[0]]
	}
	return a.print(v, func(w io.Writer) error {
		for i, t := range o.tables {
			if i > 0 {
				fmt.Fprintln(w)
			}
			if err := t(w); err != nil {
				return err
			}
		}
		return nil
	})
}

func writeBenchSVG(path string, write func(io.Writer) error) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	return errors.Join(write(f), f.Close())
}

// runBenchHTTP runs the failure and outage scenarios --scenario asks for.
// --jobs, --rounds and --workers apply when given; otherwise each scenario
// has its own defaults (failure 5,000 jobs x 5 rounds, outage 2,000 x 3,
// both 100 workers).
func runBenchHTTP(cmd *cobra.Command, f *benchHTTPFlags, db *bench.Database, noop bench.NoopConfig, svgPath string, out *benchOutput) error {
	q := bench.HTTPQueueConfig{
		FetchCooldown:     noop.FetchCooldown,
		FetchPollInterval: noop.FetchPollInterval,
		RetryDelay:        f.retryDelay,
		MaxRetryDelay:     f.maxRetryDelay,
	}
	var jobs, rounds int
	flags := cmd.Flags()
	if flags.Changed("workers") {
		q.Workers = noop.Workers
	}
	if flags.Changed("jobs") {
		jobs = noop.Jobs
	}
	if flags.Changed("rounds") {
		rounds = noop.Rounds
	}
	ctx := cmd.Context()
	if f.runs("failure") {
		rep, err := bench.RunFailure(ctx, db.Pool, bench.FailureConfig{HTTPQueueConfig: q, Jobs: jobs, Rounds: rounds}, cmd.ErrOrStderr())
		if err != nil {
			return fmt.Errorf("failure scenario: %w", err)
		}
		if err := writeBenchSVG(f.svgPath(svgPath, "failure"), rep.WriteSVG); err != nil {
			return err
		}
		out.add("failure", rep, rep.WriteTable)
	}
	if f.runs("outage") {
		rep, err := bench.RunOutage(ctx, db.Pool, bench.OutageConfig{
			HTTPQueueConfig: q, Jobs: jobs, Rounds: rounds, Outage: f.outage, NoBreakerSide: true,
			Breaker: breaker.Settings{OpenTimeout: f.openTimeout, ParkSpread: f.parkSpread, WakeSpread: f.wakeSpread, WakeWave: f.wakeWave},
		}, cmd.ErrOrStderr())
		if err != nil {
			return fmt.Errorf("outage scenario: %w", err)
		}
		if err := writeBenchSVG(f.svgPath(svgPath, "outage"), rep.WriteSVG); err != nil {
			return err
		}
		out.add("outage", rep, rep.WriteTable)
	}
	return nil
}
