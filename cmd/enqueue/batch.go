package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/config"
	"github.com/rebound-queue/rebound/jobs"
)

// ExitNotAllSucceeded is the exit code of `enqueue batch --wait` when the
// batch completed but some of its jobs did not succeed (dead-lettered or
// cancelled). 1 stays "the command failed".
const ExitNotAllSucceeded = 3

type batchOptions struct {
	kind         string
	name         string
	file         string
	format       string
	queue        string
	priority     int
	maxAttempts  int
	configPath   string
	batchSize    int
	delay        time.Duration
	callbackKind string
	wait         bool
	waitInterval time.Duration
	json         bool

	// ref names a flag as the user gave it: --flag, or its REBOUND_
	// variable (cli.FlagRef).
	ref func(flag string) string
}

func newBatchCmd(registry *jobs.Registry, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := &batchOptions{}
	cmd := &cobra.Command{
		Use:   "batch --kind KIND --name NAME --file PATH|-",
		Short: "Insert items of one kind as a named batch, in sub-batches spread over time",
		Long: `enqueue batch inserts a list of items of one kind as a named batch, all in one
transaction: nothing is inserted if any item is bad (the error names its line),
or if a batch of that name exists (batch names are unique).

  --file PATH|-    NDJSON (one args object per line) or CSV (a header row naming
                   the args fields, then one item per row; cells are typed by the
                   kind's args: numbers are numbers; an empty cell leaves the
                   field out). The format comes from the extension (.csv, .ndjson,
                   .jsonl), or --format; on standard input, from the first byte.
  --batch-size N   jobs per sub-batch (default 10)
  --delay-between-batches D
                   sub-batch k is scheduled at start + k x D (default 5s)
  --wait           follow the batch until every job has finished, with a
                   progress bar on stderr, then print its summary. Exit code 0
                   when every job succeeded, 3 when some were dead-lettered or
                   cancelled, 1 when the command failed.

Each job carries the batch ID in its metadata (batch_id). The worker pods count
the jobs as they finish; rebound batch show ID prints the summary any time.

Known kinds: ` + strings.Join(registry.Names(), ", "),
		Example: `  enqueue batch --kind weekly_intelligence --name "weekly 2026-W49" --file users.csv
  enqueue batch --kind http_request --name hooks-42 --file hooks.ndjson --batch-size 50 --delay-between-batches 1m --wait`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cli.BindEnv(cmd, "REBOUND")
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.ref = func(flag string) string { return cli.FlagRef(cmd, flag) }
			return runBatch(cmd.Context(), registry, o, cmd.Flags().Changed("max-attempts"), stdin, stdout, stderr)
		},
	}
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	f := cmd.Flags()
	f.StringVar(&o.kind, "kind", "", "the kind of every item (required)")
	f.StringVar(&o.name, "name", "", "the batch's name, unique among all batches (required; at most 200 characters)")
	f.StringVar(&o.file, "file", "", "NDJSON or CSV file of items (- for standard input; required)")
	f.StringVar(&o.format, "format", "auto", "format of --file: auto, ndjson or csv")
	f.IntVar(&o.batchSize, "batch-size", 10, "jobs per sub-batch (at least 1)")
	f.DurationVar(&o.delay, "delay-between-batches", 5*time.Second, "time between the scheduled times of two sub-batches (0 or more)")
	f.StringVar(&o.queue, "queue", river.QueueDefault, "queue to insert into")
	f.IntVar(&o.priority, "priority", river.PriorityDefault, "priority from 1 (first) to 4 (last)")
	f.IntVar(&o.maxAttempts, "max-attempts", 0, "attempts before a job is dead-lettered (default: the kind's max_attempts in --config, else 5)")
	f.StringVar(&o.configPath, "config", "", "the workers' YAML config file: jobs get their kind's retry.max_attempts from it (env REBOUND_CONFIG)")
	f.StringVar(&o.callbackKind, "callback-kind", "", "kind of a job inserted once the batch completes, with the summary as args: a kind the workers run whose args a summary can be (of rebound's own, synthetic; other kinds are refused)")
	f.BoolVar(&o.wait, "wait", false, "follow the batch to completion with a progress bar on stderr, then print its summary (exit 3 if some job did not succeed)")
	f.DurationVar(&o.waitInterval, "wait-interval", time.Second, "with --wait, how often to read the batch's counts")
	f.BoolVar(&o.json, "json", false, "print JSON: what was enqueued, or with --wait the summary")
	return cmd
}

func (o *batchOptions) check(registry *jobs.Registry) (jobs.Kind, error) {
	switch {
	case o.kind == "":
		return jobs.Kind{}, fmt.Errorf("give --kind (known kinds: %s)", strings.Join(registry.Names(), ", "))
	case o.name == "":
		return jobs.Kind{}, errors.New("give --name: the batch's name, unique among all batches")
	case o.file == "":
		return jobs.Kind{}, errors.New("give --file PATH (- for standard input)")
	case o.batchSize < 1:
		return jobs.Kind{}, fmt.Errorf("invalid %s %d: must be at least 1", o.ref("batch-size"), o.batchSize)
	case o.delay < 0:
		return jobs.Kind{}, fmt.Errorf("invalid %s %s: must not be negative", o.ref("delay-between-batches"), o.delay)
	case !slices.Contains([]string{"", "auto", "ndjson", "csv"}, o.format):
		return jobs.Kind{}, fmt.Errorf("invalid %s %q: want auto, ndjson or csv", o.ref("format"), o.format)
	case o.wait && o.waitInterval < 10*time.Millisecond:
		return jobs.Kind{}, fmt.Errorf("invalid %s %s: must be at least 10ms", o.ref("wait-interval"), o.waitInterval)
	}
	if err := batch.ValidateName(o.name); err != nil {
		return jobs.Kind{}, fmt.Errorf("invalid --name: %s", strings.TrimPrefix(err.Error(), batch.ErrInvalidBatch.Error()+": "))
	}
	// Checked here, before the input is read, rather than by Enqueue after.
	if o.callbackKind != "" {
		if err := batch.ValidateCallbackKind(o.callbackKind); err != nil {
			return jobs.Kind{}, fmt.Errorf("invalid %s %q: want 1 to 200 printable characters of valid UTF-8", o.ref("callback-kind"), o.callbackKind)
		}
	}
	kind, err := registry.Lookup(o.kind)
	if err != nil {
		return jobs.Kind{}, fmt.Errorf("invalid --kind: %w", err)
	}
	if o.callbackKind != "" {
		if err := checkCallbackKind(registry, o.callbackKind, o.kind, o.name); err != nil {
			return jobs.Kind{}, fmt.Errorf("invalid %s %q: %w", o.ref("callback-kind"), o.callbackKind, err)
		}
	}
	return kind, nil
}

// checkCallbackKind refuses a callback kind that cannot work: the pod that
// completes the batch inserts the callback job through its River client,
// which refuses a kind it has no worker for, so the kind must be one the
// workers run — one of registry's — and its worker gets the batch's
// summary (batch.Summary) as args, so the kind must accept those as its
// worker decodes them (jobs.Kind.ParseKnownFields). Of rebound's own kinds
// only synthetic does (it ignores the summary and succeeds).
func checkCallbackKind(registry *jobs.Registry, name, itemKind, batchName string) error {
	k, err := registry.Lookup(name)
	if err != nil {
		var uk *jobs.UnknownKindError
		if errors.As(err, &uk) {
			return fmt.Errorf("unknown job kind (known kinds: %s); a kind of your own can be a callback only in a batch enqueued from Go (batch.Batch.CallbackKind), with its worker on every pod",
				strings.Join(uk.Known, ", "))
		}
		return err
	}
	sample, err := json.Marshal(batch.Summary{Name: batchName, Kind: itemKind, FailuresByClass: map[string]int64{}, DeadLetterIDs: []int64{}})
	if err != nil {
		return err
	}
	if _, err := k.ParseKnownFields(sample); err != nil {
		return fmt.Errorf("a callback job gets the batch's summary as its args (id, name, kind, total, succeeded, failed, ...), and %s cannot run on them: %w", name, err)
	}
	return nil
}

func runBatch(ctx context.Context, registry *jobs.Registry, o *batchOptions, maxAttemptsSet bool, stdin io.Reader, stdout, stderr io.Writer) error {
	kind, err := o.check(registry)
	if err != nil {
		return err
	}
	base := &options{queue: o.queue, priority: o.priority, maxAttempts: o.maxAttempts, maxAttemptsSet: maxAttemptsSet, ref: o.ref}
	opts, err := base.insertOpts()
	if err != nil {
		return err
	}
	// The workers' config, as for single jobs (see run).
	settings, err := config.LoadWithoutAlerts(o.configPath)
	if err != nil {
		return config.NameSource(err, o.ref("config"))
	}
	registry.Register(jobs.WeeklyIntelligenceKind(settings.WeeklyIntelligence))
	if err := settings.CheckKinds(o.configPath, registry); err != nil {
		return err
	}
	if kind, err = registry.Lookup(kind.Name); err != nil {
		return err
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = settings.Retry.Lookup(kind.Name).MaxAttempts
	}
	lines, _, err := readItems(kind, o.file, o.format, stdin)
	if err != nil {
		return err
	}
	if len(lines) == 0 {
		return fmt.Errorf("%s: no items in it", displayName(o.file))
	}
	items := make([]river.JobArgs, len(lines))
	for i, l := range lines {
		items[i] = l.args
	}

	pool, client, err := connectForInsert(ctx, registry)
	if err != nil {
		return insertFailed(err) // as enqueue KIND says it
	}
	defer pool.Close()
	p, err := batch.New(pool, client, &batch.Config{BatchSize: o.batchSize, DelayBetweenBatches: o.delay})
	if err != nil {
		return err
	}
	start := time.Now()
	// In insertTx, as the other inserts are: a COMMIT the server refuses
	// (a deferred constraint) is named as the commit, and one lost on the
	// way is not claimed to have inserted nothing.
	var res *batch.Enqueued
	err = insertTx(ctx, pool, func(tx pgx.Tx) error {
		var err error
		res, err = p.EnqueueTx(ctx, tx, batch.Batch{Name: o.name, Kind: kind.Name, Items: items, InsertOpts: opts, CallbackKind: o.callbackKind})
		return err
	})
	if _, isCommit := errors.AsType[*commitError](err); isCommit {
		return insertFailed(err)
	}
	if err != nil {
		return fmt.Errorf("%s (nothing inserted)", strings.TrimPrefix(err.Error(), "batch: "))
	}
	took := time.Since(start)
	if !o.wait {
		if o.json {
			return cli.PrintJSON(stdout, res)
		}
		_, err := fmt.Fprintln(stdout, enqueuedText(res, o, took))
		return err
	}
	if !o.json {
		fmt.Fprintln(stdout, enqueuedText(res, o, took))
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := follow(ctx, pool, res, o.waitInterval, stderr)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped waiting; batch %d goes on (rebound batch show %d)", res.ID, res.ID)
		}
		return err
	}
	if o.json {
		err = cli.PrintJSON(stdout, s)
	} else {
		err = batch.WriteText(stdout, s)
	}
	if err != nil {
		return err
	}
	if s.Succeeded < s.Total {
		fmt.Fprintf(stderr, "enqueue: batch %d: %d of %d jobs did not succeed (%d dead-lettered, %d cancelled)\n",
			s.ID, s.Total-s.Succeeded, s.Total, s.Failed, s.Cancelled)
		return &cli.ExitCode{Code: ExitNotAllSucceeded}
	}
	return nil
}

func enqueuedText(res *batch.Enqueued, o *batchOptions, took time.Duration) string {
	// Items are split by their position in the input, duplicates skipped
	// included.
	items := res.Total + res.SkippedDuplicates
	subs := (items + o.batchSize - 1) / o.batchSize
	jobs := "jobs"
	if res.Total == 1 {
		jobs = "job"
	}
	msg := fmt.Sprintf("enqueued batch %d %q: %d %s %s in %s", res.ID, res.Name, res.Total, res.Kind, jobs,
		batch.SubBatchesText(int64(items), int64(o.batchSize)))
	if subs > 1 && o.delay > 0 {
		first, last := res.ScheduledAt[0].Local(), res.ScheduledAt[len(res.ScheduledAt)-1].Local()
		layout := time.TimeOnly
		if last.YearDay() != first.YearDay() || last.Year() != first.Year() {
			layout = time.DateTime // another day: say which
		}
		msg += fmt.Sprintf(", %s apart (last at %s)", o.delay, last.Format(layout))
	}
	if res.SkippedDuplicates > 0 {
		dups := "duplicates"
		if res.SkippedDuplicates == 1 {
			dups = "duplicate"
		}
		msg += fmt.Sprintf("; skipped %d %s", res.SkippedDuplicates, dups)
	}
	return msg + fmt.Sprintf(" in %s", took.Round(time.Millisecond))
}

// follow reads the batch's summary every interval until it completes,
// drawing its progress on stderr: a progress bar on a terminal, else a
// line whenever the count of finished jobs changes.
func follow(ctx context.Context, pool *pgxpool.Pool, res *batch.Enqueued, interval time.Duration, stderr io.Writer) (*batch.Summary, error) {
	var bar *progressbar.ProgressBar
	if cli.IsTerminal(stderr) {
		bar = progressbar.NewOptions64(int64(res.Total),
			progressbar.OptionSetWriter(stderr),
			progressbar.OptionSetDescription(fmt.Sprintf("batch %d", res.ID)),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("jobs"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	started := time.Now()
	last := int64(-1)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s, err := batch.GetSummary(ctx, pool, res.ID)
		if err != nil {
			return nil, err
		}
		finished := s.Finished()
		if bar != nil {
			bar.Describe(fmt.Sprintf("batch %d, %d dead-lettered", s.ID, s.Failed))
			_ = bar.Set64(min(finished, s.Total))
		} else if finished != last {
			fmt.Fprintln(stderr, progressLine(s, time.Since(started)))
		}
		last = finished
		if s.CompletedAt != nil {
			if bar != nil {
				_ = bar.Finish()
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// progressLine is the progress of a batch in one line: finished / total,
// the rate since --wait began, the ETA at that rate, and dead letters.
func progressLine(s *batch.Summary, elapsed time.Duration) string {
	finished := s.Finished()
	pct := 100.0
	if s.Total > 0 {
		pct = float64(finished) / float64(s.Total) * 100
	}
	rate := float64(finished) / max(elapsed.Seconds(), 0.001)
	eta := "?"
	switch {
	case s.Pending == 0:
		eta = "0s"
	case rate > 0:
		eta = time.Duration(float64(s.Pending) / rate * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("batch %d: %d/%d finished (%.0f%%), %.1f jobs/s, ETA %s, %d dead-lettered",
		s.ID, finished, s.Total, pct, rate, eta, s.Failed)
}
