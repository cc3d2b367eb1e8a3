package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/internal/bench"
	"github.com/rebound-queue/rebound/internal/cli"
)

// newBenchCmd is `rebound bench`: rebound against plain River, same run,
// same database (docs/benchmarks.md).
func newBenchCmd(a *app) *cobra.Command {
	var (
		cfg        bench.NoopConfig
		poolSize   int
		svgPath    string
		cpuProfile string
		hf         benchHTTPFlags
		insert     insertFlags
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure rebound against plain River (no-op jobs; failure mix and outage against a local HTTP upstream; enqueue --file against InsertManyFast)",
		Long: `bench works no-op jobs through a plain River client and through a whole rebound
pod, in alternating rounds, and prints per side the median and spread of jobs/s
and of this process's CPU time (user + system) per job, and their ratios; when
the PostgreSQL server runs on this machine (its /proc entries readable), the
no-op and insert scenarios print the server's CPU time per job too.

It creates a scratch database rebound_bench_<random> on the server DATABASE_URL
points to (the role needs CREATEDB), migrates it, and drops it at the end: it
never touches the database DATABASE_URL names. See docs/benchmarks.md.

--scenario failure and outage call a real HTTP server of the bench's own on
loopback (http_request jobs on rebound, a plain River worker making the same
call): a failure-heavy mix (30% 503 once, 5% 400/404), and an upstream down
for --outage then up (calls during the outage, time to drain after).

--scenario insert times the enqueue binary (run as a subprocess: enqueue
http_request --file of --lines lines, with and without --json) against River's
InsertManyFast called directly with the same args, without and with the
operation key already in the metadata (the rows enqueue stores); CPU per job is
the inserting process's (enqueue's for its sides), and each round starts right
after a CHECKPOINT when the role may run it.`,
		Example: `  rebound bench                                  # 5 rounds of 20,000 jobs per side
  rebound bench --jobs 5000 --rounds 3 --svg noop.svg
  rebound bench --cpuprofile cpu.out && go tool pprof -top -tagfocus side=rebound bin/rebound cpu.out
  rebound bench --scenario failure --jobs 5000 --svg failure.svg
  rebound bench --scenario outage --jobs 2000 --outage 10s --svg outage.svg
  rebound bench --scenario insert --lines 100000 --rounds 5 --svg insert.svg
  rebound bench --scenario all --svg bench.svg    # bench-noop.svg, bench-failure.svg, ...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch {
			case cfg.Jobs < 1 || cfg.Jobs > 10_000_000:
				return fmt.Errorf("--jobs must be between 1 and 10000000, got %d", cfg.Jobs)
			case cfg.Rounds < 1 || cfg.Rounds > 1000:
				return fmt.Errorf("--rounds must be between 1 and 1000, got %d", cfg.Rounds)
			case cfg.Workers < 1 || cfg.Workers > 10_000:
				return fmt.Errorf("--workers must be between 1 and 10000, got %d", cfg.Workers)
			case cfg.FetchCooldown < time.Millisecond:
				return fmt.Errorf("--fetch-cooldown must be at least 1ms (River's minimum), got %s", cfg.FetchCooldown)
			case cfg.FetchPollInterval < cfg.FetchCooldown:
				return fmt.Errorf("--fetch-poll-interval (%s) must be at least --fetch-cooldown (%s)", cfg.FetchPollInterval, cfg.FetchCooldown)
			case poolSize < 2 || poolSize > 1000:
				return fmt.Errorf("--pool-size must be between 2 and 1000, got %d", poolSize)
			}
			if err := hf.validate(); err != nil {
				return err
			}
			if hf.runs("insert") {
				if err := insert.check(); err != nil {
					return err
				}
			}
			ctx := cmd.Context()
			db, err := bench.NewDatabase(ctx, os.Getenv("DATABASE_URL"), poolSize)
			if err != nil {
				if note := cli.UnsetDatabaseURLNote(); note != "" {
					return fmt.Errorf("%w (%s)", err, note)
				}
				return err
			}
			defer db.Close()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var out benchOutput
			if hf.runs("noop") {
				rep, err := bench.RunNoop(ctx, db.Pool, cfg, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				if err := writeBenchSVG(hf.svgPath(svgPath, "noop"), rep.WriteSVG); err != nil {
					return err
				}
				out.add("noop", rep, rep.WriteTable)
			}
			if err := runBenchHTTP(cmd, &hf, db, cfg, svgPath, &out); err != nil {
				return err
			}
			if hf.runs("insert") {
				if err := runInsertBench(cmd, db, insert, cfg.Rounds, hf.svgPath(svgPath, "insert"), &out); err != nil {
					return err
				}
			}
			return out.print(a)
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Jobs, "jobs", 20000, "jobs per round and side (failure: 5000 and outage: 2000 unless given)")
	f.IntVar(&cfg.Rounds, "rounds", 5, "rounds per side, alternating which side goes first (failure: 5 and outage: 3 unless given)")
	f.IntVar(&cfg.Workers, "workers", 500, "MaxWorkers of the queue, every side (failure and outage: 100 unless given)")
	f.DurationVar(&cfg.FetchCooldown, "fetch-cooldown", 2*time.Millisecond, "FetchCooldown, both sides")
	f.DurationVar(&cfg.FetchPollInterval, "fetch-poll-interval", 50*time.Millisecond, "FetchPollInterval, both sides")
	f.IntVar(&poolSize, "pool-size", 20, "connections in the pool both sides share")
	f.StringVar(&svgPath, "svg", "", "write a plot of jobs/s and CPU per job per round to this SVG file")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (both sides) to this file")
	insert.add(f)
	hf.register(cmd)
	return cmd
}
