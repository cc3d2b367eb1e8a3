package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/config"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/migrations"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Limits of enqueue.
const (
	// insertBatchSize is how many jobs go in one INSERT ... RETURNING (the
	// path that returns the jobs' IDs: --json, --unique, --args).
	insertBatchSize = 1000
	// copyBatchSize is how many jobs go in one COPY (the fast path: a
	// --file without --json or --unique) once the copying is under way;
	// the progress bar moves by batch.
	copyBatchSize = 10000
	// firstCopyBatchSize is how many jobs go in the first COPY: the
	// batches after it double up to copyBatchSize (2,500, 5,000, 10,000,
	// 10,000...). The first COPY starts once this many lines are valid,
	// so the database gets its first rows about 20 ms after the start
	// instead of about 45 ms, and each batch's parsing and preparation
	// (about 4 µs a line) take less time than the COPY before it (about 10
	// µs a row), so no COPY waits for the next batch.
	firstCopyBatchSize = copyBatchSize / 4
	// parseChunkLines is how many lines one goroutine parses at a time.
	parseChunkLines = 1000
	// readAheadChunks is how many chunks of parseChunkLines lines are read
	// and parsed ahead of the one being consumed (copied or collected):
	// with the batches waiting for their COPY (copyBatchesAhead,
	// copyBatchesInFlight), it bounds the memory of the fast path whatever
	// the input's size.
	readAheadChunks = 2 * copyBatchSize / parseChunkLines
	// copyBatchesAhead is how many filled COPY batches wait to be taken
	// by the copying goroutine.
	copyBatchesAhead = 2
	// copyBatchesInFlight is how many batches the copying goroutine has
	// taken at most: one being copied and the next ones prepared for their
	// COPY (River's params built, the insert middleware run) while they
	// wait their turn (copyTurnstile).
	copyBatchesInFlight = 3
	// copyGCPercent is the garbage collector's GOGC during the fast path
	// (Go's default: 100): its live heap is bounded by readAheadChunks,
	// copyBatchesAhead and copyBatchesInFlight, so the heap may grow to 5
	// times it (not 2 times) between collections, which then run about a
	// quarter as often. A GOGC in the environment wins.
	copyGCPercent = 400
	// maxLineBytes is the longest NDJSON line accepted.
	maxLineBytes = 10 << 20
	// maxMaxAttempts is the largest max attempts River's smallint column
	// holds.
	maxMaxAttempts = retrypolicy.MaxMaxAttempts
	// progressThreshold is the number of lines from which a progress bar is
	// drawn (when stderr is a terminal).
	progressThreshold = 5000
	// maxScheduleIn is the latest --schedule-in: 365 days. A job meant to
	// run further out than a year belongs in a calendar that enqueues it
	// nearer the time (its URL, args and max attempts will have changed);
	// above it, the value is a typo (2562047h is the year 2319), refused
	// before it hides a job for centuries.
	maxScheduleIn = 365 * 24 * time.Hour
)

type options struct {
	args        string
	argsSet     bool
	file        string
	queue       string
	priority    int
	maxAttempts int
	scheduleIn  time.Duration
	unique      bool
	json        bool
	configPath  string

	maxAttemptsSet bool
	// ref names a flag as the user gave it: --flag, or its REBOUND_
	// variable (cli.FlagRef).
	ref func(flag string) string
}

func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := &options{}
	registry := jobs.Builtin()
	cmd := &cobra.Command{
		Use:   "enqueue KIND (--args JSON | --file PATH|-)",
		Short: "Insert rebound jobs of one kind",
		Long: `enqueue inserts jobs of one kind into the rebound queue in PostgreSQL (DATABASE_URL).

  --args JSON      one job, its args as a JSON object
  --file PATH|-    many jobs: NDJSON, one args object per line (blank lines are
                   skipped; - reads standard input). Every line is validated;
                   if any is bad, nothing is inserted and the error names the
                   line. All lines go in one transaction: by COPY (fast, no IDs
                   printed; copying starts while later lines are still being
                   validated, and commits only if all are valid) unless --json
                   or --unique is given.

Every flag can also be set through the environment as REBOUND_<FLAG>
(REBOUND_MAX_ATTEMPTS=8, REBOUND_ARGS='{...}'), with the same rules; a flag on
the command line wins, and --file or --args on the command line wins over
the other one's variable (REBOUND_ARGS is ignored when --file is given).

Known kinds: ` + strings.Join(registry.Names(), ", ") + `; ` + "`enqueue KIND --help`" + ` lists the args of KIND.`,

		Example: `  enqueue http_request --args '{"url": "https://example.com/hook", "body": {"id": 1}}'
  enqueue http_request --file jobs.ndjson --queue webhooks --max-attempts 8
  producer | enqueue http_request --file - --json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("want exactly one KIND (known kinds: %s)", strings.Join(registry.Names(), ", "))
			}
			return nil
		},
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cli.BindEnv(cmd, "REBOUND")
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.argsSet = cmd.Flags().Changed("args")
			o.maxAttemptsSet = cmd.Flags().Changed("max-attempts")
			o.ref = func(flag string) string { return cli.FlagRef(cmd, flag) }
			return run(cmd.Context(), registry, args[0], o, stdin, stdout, stderr)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.AddCommand(newBatchCmd(registry, stdin, stdout, stderr))
	help := cmd.HelpFunc()
	cmd.SetHelpFunc(func(c *cobra.Command, args []string) {
		help(c, args)
		// `enqueue KIND --help` also lists the args of KIND.
		if names := c.Flags().Args(); len(names) > 0 {
			if kind, err := registry.Lookup(names[0]); err == nil {
				_ = writeArgsHelp(c.OutOrStdout(), kind)
			}
		}
	})
	f := cmd.Flags()
	f.StringVar(&o.args, "args", "", "the job's args, a JSON object")
	f.StringVar(&o.file, "file", "", "NDJSON file of args objects, one per line (- for standard input)")
	f.StringVar(&o.queue, "queue", river.QueueDefault, "queue to insert into")
	f.IntVar(&o.priority, "priority", river.PriorityDefault, "priority from 1 (first) to 4 (last)")
	f.IntVar(&o.maxAttempts, "max-attempts", 0, "attempts before a job is dead-lettered (default: the kind's max_attempts in --config, else 5)")
	f.StringVar(&o.configPath, "config", "", "the workers' YAML config file: jobs get their kind's retry.max_attempts from it (env REBOUND_CONFIG)")
	f.DurationVar(&o.scheduleIn, "schedule-in", 0, "run the jobs this long from now (e.g. 10m, at most 8760h = 365 days) instead of at once")
	f.BoolVar(&o.unique, "unique", false, "skip a job when a twin (same kind, queue and args) enqueued with --unique is still waiting or running")
	f.BoolVar(&o.json, "json", false, "print the result (inserted IDs) as JSON")
	// A second --file or --args would silently drop the first one's jobs,
	// a second --queue leave in doubt where they went.
	return cmd
}

// writeArgsHelp lists the fields of kind's args object, from its registry
// entry.
func writeArgsHelp(w io.Writer, kind jobs.Kind) error {
	if len(kind.Args) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "\nArgs of %s (--args, or one JSON object per line of --file):\n", kind.Name); err != nil {
		return err
	}
	rows := make([][]string, len(kind.Args))
	for i, a := range kind.Args {
		rows[i] = []string{"  " + a.Name, a.Type, a.Help}
	}
	return cli.Table(w, []string{"  FIELD", "TYPE", "MEANING"}, rows)
}

// line is one validated job of the input.
type line struct {
	number int
	args   river.JobArgs
}

func run(ctx context.Context, registry *jobs.Registry, kindName string, o *options, stdin io.Reader, stdout, stderr io.Writer) error {
	kind, err := registry.Lookup(kindName)
	if err != nil {
		return err
	}
	opts, err := o.insertOpts()
	if err != nil {
		return err
	}
	// The workers' config: the kind's policy gives max attempts (so River's
	// max attempts and the workers' retry policy agree), and
	// weekly_intelligence's base URL its operation key. Its alerts section
	// is left out: enqueue sends no alert, so the channels' ${NAME} secrets
	// need not be set here.
	settings, err := config.LoadWithoutAlerts(o.configPath)
	if err != nil {
		return config.NameSource(err, o.ref("config"))
	}
	registry.Register(jobs.WeeklyIntelligenceKind(settings.WeeklyIntelligence))
	// A file the worker would refuse (a kind it does not work under
	// retry.kinds) is refused here too, with the worker's message.
	if err := settings.CheckKinds(o.configPath, registry); err != nil {
		return err
	}
	if kind, err = registry.Lookup(kindName); err != nil {
		return err
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = settings.Retry.Lookup(kind.Name).MaxAttempts
	}

	// The environment gives defaults: a --file or --args on the command line
	// wins over the other one's REBOUND_ variable.
	if o.argsSet && o.file != "" {
		argsFromEnv, fileFromEnv := strings.HasPrefix(o.ref("args"), "REBOUND_"), strings.HasPrefix(o.ref("file"), "REBOUND_")
		switch {
		case argsFromEnv && !fileFromEnv:
			o.argsSet = false
		case fileFromEnv && !argsFromEnv:
			o.file = ""
		}
	}
	var lines []line
	switch {
	case o.argsSet && o.file != "":
		return fmt.Errorf("give %s or %s, not both", o.ref("args"), o.ref("file"))
	case o.argsSet:
		args, err := kind.Parse([]byte(o.args))
		if err != nil {
			return fmt.Errorf("%s: %w", o.ref("args"), err)
		}
		lines = []line{{number: 1, args: args}}
	case o.file != "" && !o.json && !o.unique:
		// Without --json nobody reads the IDs: the file goes in by COPY
		// (InsertManyFastTx), which returns none, while it is still being
		// validated. --unique needs River's INSERT ... ON CONFLICT to skip
		// twins.
		return insertFileByCopy(ctx, registry, kind, o, opts, stdin, stdout, stderr)
	case o.file != "":
		if lines, err = readFile(kind, o.file, stdin); err != nil {
			return err
		}
		if len(lines) == 0 {
			return fmt.Errorf("%s: no jobs in it", displayName(o.file))
		}
	default:
		return errors.New("give the args: --args JSON or --file PATH (- for standard input)")
	}

	// River refuses a batch holding two unique jobs with the same key, so
	// twins within the input are skipped here, as the table's are by River.
	skippedInInput := 0
	if o.unique {
		lines, skippedInInput = dedupe(lines)
	}

	pool, client, err := connectForInsert(ctx, registry)
	if err != nil {
		return insertFailed(err) // as --file's COPY says it
	}
	defer pool.Close()

	var bar *progressbar.ProgressBar
	if len(lines) >= progressThreshold && cli.IsTerminal(stderr) && !o.json {
		bar = newInsertBar(stderr, kind.Name, len(lines))
	}

	res := result{Kind: kind.Name, Queue: o.queue, SkippedDuplicates: skippedInInput, IDs: make([]int64, 0, len(lines))}
	start := time.Now()
	err = insertTx(ctx, pool, func(tx pgx.Tx) error {
		params := make([]river.InsertManyParams, 0, insertBatchSize)
		for i := 0; i < len(lines); i += insertBatchSize {
			params = params[:0]
			for _, l := range lines[i:min(i+insertBatchSize, len(lines))] {
				params = append(params, river.InsertManyParams{Args: l.args, InsertOpts: opts})
			}
			inserted, err := client.InsertManyTx(ctx, tx, params)
			for _, r := range inserted {
				if r.UniqueSkippedAsDuplicate {
					res.SkippedDuplicates++
					continue
				}
				res.IDs = append(res.IDs, r.Job.ID)
			}
			res.Inserted = len(res.IDs)
			if err != nil {
				if o.argsSet {
					return fmt.Errorf("insert: %w", err)
				}
				return fmt.Errorf("insert lines %d-%d: %w", lines[i].number, lines[i+len(params)-1].number, err)
			}
			if bar != nil {
				_ = bar.Add(len(params))
			}
		}
		return nil
	})
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return insertFailed(err)
	}

	if o.json {
		return cli.PrintJSON(stdout, res)
	}
	return printResult(stdout, res, time.Since(start))
}

// printResult prints what was inserted, in one line: the count, the IDs
// (when known), the twins skipped, and for progressThreshold jobs or more
// the time it took.
func printResult(stdout io.Writer, res result, elapsed time.Duration) error {
	msg := fmt.Sprintf("inserted %d %s job(s) into queue %s", res.Inserted, res.Kind, res.Queue)
	switch {
	case len(res.IDs) == 1:
		msg += fmt.Sprintf(" (id %d)", res.IDs[0])
	case len(res.IDs) > 1:
		// Not a range: another session's inserts may take IDs in between.
		msg += fmt.Sprintf(" (first id %d, last id %d)", res.IDs[0], res.IDs[len(res.IDs)-1])
	}
	if res.SkippedDuplicates > 0 {
		msg += fmt.Sprintf("; skipped %d duplicate(s) still waiting or running", res.SkippedDuplicates)
	}
	if res.Inserted >= progressThreshold {
		msg += fmt.Sprintf(" in %s", elapsed.Round(time.Millisecond))
	}
	_, err := fmt.Fprintln(stdout, msg)
	return err
}

// newInsertBar is the progress bar of inserting max jobs of kind on stderr
// (max -1: not known yet, see ChangeMax).
func newInsertBar(stderr io.Writer, kind string, max int) *progressbar.ProgressBar {
	return progressbar.NewOptions(max,
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("inserting "+kind),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
}

// result is what enqueue prints with --json.
type result struct {
	Kind              string  `json:"kind"`
	Queue             string  `json:"queue"`
	Inserted          int     `json:"inserted"`
	SkippedDuplicates int     `json:"skipped_duplicates"`
	IDs               []int64 `json:"ids"`
}

func (o *options) insertOpts() (*river.InsertOpts, error) {
	if o.priority < 1 || o.priority > 4 {
		return nil, fmt.Errorf("invalid %s %d: must be from 1 to 4", o.ref("priority"), o.priority)
	}
	if o.maxAttempts < 0 || (o.maxAttemptsSet && o.maxAttempts == 0) || o.maxAttempts > maxMaxAttempts {
		return nil, fmt.Errorf("invalid %s %d: must be from 1 to %d", o.ref("max-attempts"), o.maxAttempts, maxMaxAttempts)
	}
	if o.scheduleIn < 0 {
		return nil, fmt.Errorf("invalid %s %s: must not be negative", o.ref("schedule-in"), o.scheduleIn)
	}
	if o.scheduleIn > maxScheduleIn {
		return nil, fmt.Errorf("invalid %s %s: must be at most %s (365 days)", o.ref("schedule-in"), o.scheduleIn, maxScheduleIn)
	}
	// River refuses a bad queue name only at insert, after the whole input
	// is read and parsed: refuse it first.
	if err := cli.CheckQueueName(o.queue); err != nil {
		if o.queue == "" {
			return nil, fmt.Errorf("invalid %s: %w", o.ref("queue"), err)
		}
		return nil, fmt.Errorf("invalid %s %q: %w", o.ref("queue"), o.queue, err)
	}
	opts := &river.InsertOpts{Queue: o.queue, Priority: o.priority, MaxAttempts: o.maxAttempts}
	if o.scheduleIn > 0 {
		opts.ScheduledAt = time.Now().Add(o.scheduleIn)
	}
	if o.unique {
		// Twins that are still waiting or running; a completed, cancelled
		// or discarded twin does not stop a new job.
		opts.UniqueOpts = river.UniqueOpts{ByArgs: true, ByQueue: true, ByState: []rivertype.JobState{
			rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
			rivertype.JobStateRunning, rivertype.JobStateScheduled,
		}}
	}
	return opts, nil
}

// dedupe drops lines whose args equal an earlier line's (same JSON
// encoding), keeping the first; it returns the kept lines and how many were
// dropped.
func dedupe(lines []line) ([]line, int) {
	seen := make(map[string]bool, len(lines))
	out := lines[:0]
	for _, l := range lines {
		b, err := json.Marshal(l.args)
		if err == nil && seen[string(b)] {
			continue
		}
		seen[string(b)] = true
		out = append(out, l)
	}
	return out, len(lines) - len(out)
}

func displayName(path string) string {
	if path == "-" {
		return "stdin"
	}
	return path
}

// connectForInsert opens a small pool (2 connections) on DATABASE_URL,
// checks that the database is migrated, and returns a River client that
// inserts through registry's insert middleware (operation key stamped, args
// checked), then through extra, innermost last. The caller closes the pool.
func connectForInsert(ctx context.Context, registry *jobs.Registry, extra ...rivertype.Middleware) (*pgxpool.Pool, *river.Client[pgx.Tx], error) {
	pool, err := cli.Connect(ctx, func(c *pgxpool.Config) { c.MaxConns = 2 })
	if err != nil {
		return nil, nil, err
	}
	m, err := migrations.New(pool, nil)
	if err == nil {
		err = m.Check(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Middleware: append([]rivertype.Middleware{registry.InsertMiddleware()}, extra...),
	})
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, client, nil
}
