package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// newDLQCmd is `rebound dlq`: the dead-letter queue's operations, with the
// same semantics as the Go API (package deadletter) and the admin HTTP API.
func newDLQCmd(a *app) *cobra.Command {
	cmd := cli.RequireSubcommand(&cobra.Command{
		Use:   "dlq",
		Short: "Inspect and act on the dead-letter queue (jobs that were discarded or cancelled)",
		Long: `The dead-letter queue holds one entry per River job and attempt that ended
discarded (attempts used up, or rescued after a crash) or cancelled by a
permanent error. Manual cancels are not in it. Secrets in args and metadata are
redacted in every display, and so are secrets in error text (the database
keeps the originals; the replay uses the original args).`,
	})
	cmd.AddCommand(dlqListCmd(a), dlqShowCmd(a), dlqRetryCmd(a), dlqResolveCmd(a), dlqPurgeCmd(a), dlqStatsCmd(a))
	return cmd
}

// dlqFilter is the filter flags every command that selects entries shares.
type dlqFilter struct {
	kinds, classes, statuses, keys, fingerprints []string
	since, until                                 string
}

func (f *dlqFilter) register(cmd *cobra.Command, statusHelp string) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.kinds, "kind", nil, "only entries of this job kind (repeatable, or comma-separated)")
	fl.StringSliceVar(&f.classes, "class", nil, "only entries of this failure class, e.g. server_error (repeatable)")
	fl.StringSliceVar(&f.statuses, "status", nil, "only entries in this status: unresolved, retried, resolved (repeatable; "+statusHelp+")")
	fl.StringSliceVar(&f.keys, "operation-key", nil, "only entries of this operation key (repeatable)")
	fl.StringArrayVar(&f.fingerprints, "fingerprint", nil, "only entries of this failure `fingerprint`: its ID from rebound dlq stats (12 hex digits), or a fingerprint or reason text (repeatable; commas are not separators)")
	fl.StringVar(&f.since, "since", "", "only entries dead-lettered at or after this time: RFC 3339, or an age such as 24h or 7d")
	fl.StringVar(&f.until, "until", "", "only entries dead-lettered before this time: RFC 3339, or an age such as 1h")
}

func (f *dlqFilter) any() bool {
	return len(f.kinds)+len(f.classes)+len(f.statuses)+len(f.keys)+len(f.fingerprints) > 0 || f.since != "" || f.until != ""
}

func (f *dlqFilter) build(now time.Time) (deadletter.Filter, error) {
	out := deadletter.Filter{Kinds: f.kinds, Classes: f.classes, OperationKeys: f.keys, Fingerprints: f.fingerprints}
	for _, c := range f.classes {
		if !retrypolicy.Class(c).Valid() {
			return out, fmt.Errorf("invalid --class %q: want one of %s", c, deadletter.ClassList())
		}
	}
	for _, s := range f.statuses {
		st := deadletter.Status(s)
		if !st.Valid() {
			return out, fmt.Errorf("invalid --status %q: want unresolved, retried or resolved", s)
		}
		out.Statuses = append(out.Statuses, st)
	}
	for _, fp := range f.fingerprints {
		// Said in the command line's terms; Validate below checks the same.
		switch {
		case strings.TrimSpace(fp) == "":
			return out, fmt.Errorf("invalid --fingerprint %q: empty: give an ID from `rebound dlq stats`, or a fingerprint or reason text", fp)
		case strings.ContainsRune(fp, 0):
			return out, fmt.Errorf("invalid --fingerprint %q: contains a NUL byte", fp)
		case !utf8.ValidString(fp):
			return out, fmt.Errorf("invalid --fingerprint %q: not valid UTF-8", fp)
		}
	}
	var err error
	if f.since != "" {
		if out.Since, err = deadletter.ParseSince(f.since, now); err != nil {
			return out, fmt.Errorf("invalid --since: %w", err)
		}
	}
	if f.until != "" {
		if out.Until, err = deadletter.ParseSince(f.until, now); err != nil {
			return out, fmt.Errorf("invalid --until: %w", err)
		}
	}
	if f.since != "" && f.until != "" && !out.Until.After(out.Since) {
		return out, fmt.Errorf("invalid --until %q: must be later than --since %q", f.until, f.since)
	}
	// The store's own check, said in the command line's terms.
	if err := out.Validate(); err != nil {
		if fe, ok := errors.AsType[*deadletter.FilterError](err); ok {
			return out, fmt.Errorf("invalid --%s %q: %s", strings.ReplaceAll(fe.Field, " ", "-"), fe.Value, fe.Problem)
		}
		return out, err
	}
	return out, nil
}

// dlqStore connects, checks that the database is fully migrated (else the
// error says to run `rebound migrate up`) and returns a store and its
// closer.
func (a *app) dlqStore(cmd *cobra.Command) (*deadletter.Store, func(), error) {
	pool, err := a.connectMigrated(cmd.Context())
	if err != nil {
		return nil, nil, err
	}
	store, err := deadletter.New(pool, nil)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return store, pool.Close, nil
}

// dlqTarget reads what a retry or resolve acts on — one entry's ID (args[0])
// or the filters — and who acts (by, the --by flag: ValidateActor's rule),
// checking them before connecting, then opens the store.
func (a *app) dlqTarget(cmd *cobra.Command, args []string, f *dlqFilter, by string) (id int64, filter deadletter.Filter, store *deadletter.Store, done func(), err error) {
	if err = breaker.ValidateActor("--by", by); err != nil {
		return 0, filter, nil, nil, err
	}
	if len(args) == 1 {
		id, err = parseEntryID(args[0])
	} else {
		filter, err = f.build(time.Now())
	}
	if err != nil {
		return 0, filter, nil, nil, err
	}
	store, done, err = a.dlqStore(cmd)
	return id, filter, store, done, err
}

// dlqSelect reads what list or stats looks at — the filters, and how many
// rows (n, the --name flag: 1 to maxN) — checking them before connecting,
// then opens the store.
func (a *app) dlqSelect(cmd *cobra.Command, f *dlqFilter, name string, n, maxN int) (filter deadletter.Filter, store *deadletter.Store, done func(), err error) {
	if filter, err = f.build(time.Now()); err != nil {
		return filter, nil, nil, err
	}
	if n < 1 || n > maxN {
		return filter, nil, nil, fmt.Errorf("invalid --%s %d: want 1 to %d", name, n, maxN)
	}
	store, done, err = a.dlqStore(cmd)
	return filter, store, done, err
}

func defaultActor() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "rebound-cli"
}

func parseEntryID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id < 1 {
		return 0, fmt.Errorf("invalid entry ID %q: want a positive integer (the ID column of `rebound dlq list`)", arg)
	}
	return id, nil
}

func dlqListCmd(a *app) *cobra.Command {
	var (
		f     dlqFilter
		after string
		limit int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-letter entries, newest first, a page at a time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := deadletter.CheckCursor(after); err != nil {
				return fmt.Errorf("invalid --after %q: want the cursor the previous page printed (its \"more:\" line, or next_cursor with --json)", after)
			}
			filter, store, done, err := a.dlqSelect(cmd, &f, "limit", limit, deadletter.MaxListLimit)
			if err != nil {
				return err
			}
			defer done()
			res, err := store.List(cmd.Context(), deadletter.ListParams{Filter: filter, After: after, Limit: limit})
			if err != nil {
				return err
			}
			for i, e := range res.Entries {
				res.Entries[i] = deadletter.Redact(e)
			}
			return a.print(res, func(w io.Writer) error {
				rows := make([][]string, 0, len(res.Entries))
				for _, e := range res.Entries {
					rows = append(rows, []string{
						strconv.FormatInt(e.ID, 10), strconv.FormatInt(e.RiverJobID, 10), e.Kind, e.FailureClass,
						string(e.Status), fmt.Sprintf("%d/%d", e.Attempt, e.MaxAttempts),
						e.DeadLetteredAt.Local().Format("2006-01-02 15:04:05"), e.OperationKey, clip(e.FailureReason, 60),
					})
				}
				if err := cli.Table(w, []string{"ID", "JOB", "KIND", "CLASS", "STATUS", "ATTEMPT", "DEAD-LETTERED", "OPERATION KEY", "REASON"}, rows); err != nil {
					return err
				}
				if res.NextCursor != "" {
					_, err := fmt.Fprintf(w, "more: rebound dlq list --after %s\n", res.NextCursor)
					return err
				}
				return nil
			})
		},
	}
	f.register(cmd, "default: all")
	cmd.Flags().StringVar(&after, "after", "", "the cursor printed after the previous page")
	cmd.Flags().IntVar(&limit, "limit", deadletter.DefaultListLimit, "entries per page (1-1000)")
	return cmd
}

func dlqShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one entry: args (redacted), metadata, every attempt",
		Args:  exactArgs(1, "an entry ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseEntryID(args[0])
			if err != nil {
				return err
			}
			store, done, err := a.dlqStore(cmd)
			if err != nil {
				return err
			}
			defer done()
			e, err := store.Get(cmd.Context(), id)
			if err != nil {
				return err
			}
			e = deadletter.Redact(e)
			return a.print(e, func(w io.Writer) error { return printEntry(w, e) })
		},
	}
}

func printEntry(w io.Writer, e *deadletter.Entry) error {
	ts := func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "Entry %d: River job %d, attempt %d of %d\n", e.ID, e.RiverJobID, e.Attempt, e.MaxAttempts)
	kv := [][]string{
		{"kind", e.Kind}, {"queue", e.Queue}, {"priority", strconv.Itoa(e.Priority)},
		{"final state", e.FinalState}, {"failure class", e.FailureClass}, {"failure reason", e.FailureReason},
		{"fingerprint", e.FailureFingerprint + " (" + e.FailureFingerprintID + ")"},
		{"operation key", e.OperationKey}, {"tags", strings.Join(e.Tags, ", ")},
		{"first attempt", ts(e.FirstAttemptedAt)}, {"last attempt", ts(e.LastAttemptedAt)},
		{"dead-lettered", ts(&e.DeadLetteredAt)}, {"status", string(e.Status)},
	}
	if e.Status == deadletter.StatusResolved {
		kv = append(kv, []string{"resolved", fmt.Sprintf("%s by %s: %s", ts(e.ResolvedAt), e.ResolvedBy, e.ResolutionNote)})
	}
	if e.RetriedJobID != nil {
		kv = append(kv, []string{"retried", fmt.Sprintf("%s by %s as job %d", ts(e.RetriedAt), e.RetriedBy, *e.RetriedJobID)})
	}
	for _, p := range kv {
		fmt.Fprintf(w, "  %-15s %s\n", p[0]+":", p[1])
	}
	fmt.Fprintln(w, "Args:")
	fmt.Fprintln(w, indentJSON(e.Args))
	fmt.Fprintln(w, "Metadata:")
	fmt.Fprintln(w, indentJSON(e.Metadata))
	fmt.Fprintln(w, "History:")
	rows := make([][]string, 0, len(e.History))
	for _, h := range e.History {
		delay := "-"
		if h.DelayMS != nil && *h.DelayMS > 0 {
			delay = (time.Duration(*h.DelayMS) * time.Millisecond).String()
		}
		rows = append(rows, []string{strconv.Itoa(h.Attempt), ts(h.At), h.Class, orDash(h.Strategy), delay, clip(h.Error, 80)})
	}
	return cli.Table(w, []string{"  ATTEMPT", "AT", "CLASS", "STRATEGY", "DELAY", "ERROR"}, prefixRows(rows))
}

func prefixRows(rows [][]string) [][]string {
	for _, r := range rows {
		r[0] = "  " + r[0]
	}
	return rows
}

func indentJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "  ", "  "); err != nil {
		return "  " + string(raw)
	}
	return "  " + b.String()
}

func dlqRetryCmd(a *app) *cobra.Command {
	var (
		f                  dlqFilter
		all, force, dryRun bool
		by                 string
	)
	cmd := &cobra.Command{
		Use:   "retry [ID | --all [filters]]",
		Short: "Replay entries as new jobs with their original args (each entry once; again only with --force)",
		Long: `Insert a new job with the entry's original args, queue, priority and max attempts
(fresh attempts, River's bookkeeping stripped from metadata) and mark the entry
retried, in one transaction. With --all, every entry matching the filters
(default: unresolved ones) — the set is fixed when the command starts, so jobs
that fail again are not picked up by the same run. Two operators retrying the
same entries at once create each job once.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneTarget(args, all, f.any(), "retry"); err != nil {
				return err
			}
			id, filter, store, done, err := a.dlqTarget(cmd, args, &f, by)
			if err != nil {
				return err
			}
			defer done()
			if len(args) == 1 {
				if dryRun {
					e, err := store.Get(cmd.Context(), id)
					if err != nil {
						return err
					}
					res := &deadletter.RetryManyResult{DryRun: true, Retried: []deadletter.RetryResult{}, Skipped: []deadletter.SkippedEntry{}}
					if e.Status == deadletter.StatusUnresolved || force {
						res.Retried = append(res.Retried, deadletter.RetryResult{EntryID: e.ID, RiverJobID: e.RiverJobID, Kind: e.Kind})
					} else {
						return fmt.Errorf("entry %d is %s; add --force to retry it again", e.ID, e.Status)
					}
					warnForeignKinds(cmd.ErrOrStderr(), res)
					return a.print(res, func(w io.Writer) error { return printRetry(w, res) })
				}
				r, err := store.Retry(cmd.Context(), deadletter.RetryParams{ID: id, Force: force, By: by})
				if err != nil {
					return forceHint(err)
				}
				res := &deadletter.RetryManyResult{Retried: []deadletter.RetryResult{*r}, Skipped: []deadletter.SkippedEntry{}}
				warnForeignKinds(cmd.ErrOrStderr(), res)
				return a.print(r, func(w io.Writer) error { return printRetry(w, res) })
			}
			res, err := store.RetryMany(cmd.Context(), deadletter.RetryManyParams{Filter: filter, Force: force, DryRun: dryRun, By: by})
			if err != nil {
				if res != nil && len(res.Retried) > 0 {
					_ = printRetry(cmd.ErrOrStderr(), res)
					warnForeignKinds(cmd.ErrOrStderr(), res)
				}
				return forceHint(err)
			}
			warnForeignKinds(cmd.ErrOrStderr(), res)
			return a.print(res, func(w io.Writer) error { return printRetry(w, res) })
		},
	}
	f.register(cmd, "default: unresolved; others need --force")
	cmd.Flags().BoolVar(&all, "all", false, "retry every entry matching the filters")
	cmd.Flags().BoolVar(&force, "force", false, "also retry entries already retried or resolved")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be retried; change nothing")
	cmd.Flags().StringVar(&by, "by", defaultActor(), "who is retrying (recorded as retried_by)")
	return cmd
}

// warnForeignKinds writes one warning line to w per kind of res's retried
// entries that is not one of rebound's own (jobs.Builtin, or a pod's
// internal rebound_* kinds): the stock worker does not run it, so the new
// job runs only where a service registers the kind; a pod without it
// retries it as unknown_kind and dead-letters it again after
// retrypolicy.UnknownKindFor. Nothing is refused: the kind is usually a
// service's own.
func warnForeignKinds(w io.Writer, res *deadletter.RetryManyResult) {
	own := jobs.Builtin().Names()
	entries := map[string][]string{}
	var kinds []string
	for _, r := range res.Retried {
		if slices.Contains(own, r.Kind) || strings.HasPrefix(r.Kind, "rebound_") {
			continue
		}
		if _, ok := entries[r.Kind]; !ok {
			kinds = append(kinds, r.Kind)
		}
		entries[r.Kind] = append(entries[r.Kind], strconv.FormatInt(r.EntryID, 10))
	}
	for _, k := range kinds {
		fmt.Fprintf(w, "warning: kind %s (entry %s) is not one of rebound's own kinds (%s): the stock worker does not run it; "+
			"only a pod that registers %s will, and pods without it retry it as unknown_kind for up to %s, then dead-letter it again\n",
			k, strings.Join(entries[k], ", "), strings.Join(own, ", "), k, strconv.Itoa(int(retrypolicy.UnknownKindFor.Hours()))+"h")
	}
}

func forceHint(err error) error {
	msg := err.Error()
	if strings.Contains(msg, "use force") {
		return fmt.Errorf("%s", strings.Replace(msg, "use force", "use --force", 1))
	}
	return err
}

func printRetry(w io.Writer, res *deadletter.RetryManyResult) error {
	rows := make([][]string, 0, len(res.Retried))
	for _, r := range res.Retried {
		newID := "-"
		if r.NewJobID != 0 {
			newID = strconv.FormatInt(r.NewJobID, 10)
		}
		rows = append(rows, []string{strconv.FormatInt(r.EntryID, 10), strconv.FormatInt(r.RiverJobID, 10), r.Kind, newID})
	}
	if err := cli.Table(w, []string{"ENTRY", "OLD JOB", "KIND", "NEW JOB"}, rows); err != nil {
		return err
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped entry %d: %s\n", s.EntryID, s.Reason)
	}
	verb := "retried"
	if res.DryRun {
		verb = "would retry (dry run)"
	}
	_, err := fmt.Fprintf(w, "%s %d entries\n", verb, len(res.Retried))
	return err
}

func dlqResolveCmd(a *app) *cobra.Command {
	var (
		f           dlqFilter
		all, dryRun bool
		note, by    string
	)
	cmd := &cobra.Command{
		Use:   "resolve [ID | --all [filters]] --note TEXT",
		Short: "Close entries with a note (what was found, what was done)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := oneTarget(args, all, f.any(), "resolve"); err != nil {
				return err
			}
			if strings.TrimSpace(note) == "" {
				return fmt.Errorf("--note is required: say why the entry is resolved")
			}
			if err := breaker.ValidateText("--note", note); err != nil {
				return err
			}
			id, filter, store, done, err := a.dlqTarget(cmd, args, &f, by)
			if err != nil {
				return err
			}
			defer done()
			if len(args) == 1 {
				if dryRun {
					e, err := store.Get(cmd.Context(), id)
					if err != nil {
						return err
					}
					res := &deadletter.ResolveManyResult{DryRun: true, IDs: []int64{}}
					if e.Status != deadletter.StatusResolved {
						res.IDs = append(res.IDs, e.ID)
					}
					return a.print(res, func(w io.Writer) error { return printResolve(w, res) })
				}
				e, err := store.Resolve(cmd.Context(), deadletter.ResolveParams{ID: id, Note: note, By: by})
				if err != nil {
					return err
				}
				e = deadletter.Redact(e)
				return a.print(e, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "resolved entry %d (River job %d) by %s: %s\n", e.ID, e.RiverJobID, e.ResolvedBy, e.ResolutionNote)
					return err
				})
			}
			res, err := store.ResolveMany(cmd.Context(), deadletter.ResolveManyParams{Filter: filter, Note: note, By: by, DryRun: dryRun})
			if err != nil {
				return err
			}
			return a.print(res, func(w io.Writer) error { return printResolve(w, res) })
		},
	}
	f.register(cmd, "default: unresolved")
	cmd.Flags().BoolVar(&all, "all", false, "resolve every entry matching the filters")
	cmd.Flags().StringVar(&note, "note", "", fmt.Sprintf("why the entries are resolved (required; at most %d bytes)", breaker.MaxTextBytes))
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be resolved; change nothing")
	cmd.Flags().StringVar(&by, "by", defaultActor(), "who is resolving (recorded as resolved_by)")
	return cmd
}

func printResolve(w io.Writer, res *deadletter.ResolveManyResult) error {
	ids := make([]string, len(res.IDs))
	for i, id := range res.IDs {
		ids[i] = strconv.FormatInt(id, 10)
	}
	verb := "resolved"
	if res.DryRun {
		verb = "would resolve (dry run)"
	}
	_, err := fmt.Fprintf(w, "%s %d entries: %s\n", verb, len(res.IDs), strings.Join(ids, " "))
	return err
}

func dlqPurgeCmd(a *app) *cobra.Command {
	var (
		olderThan string
		dryRun    bool
	)
	cmd := &cobra.Command{
		Use:   "purge --older-than AGE",
		Short: "Delete resolved and retried entries older than AGE (e.g. 30d); unresolved ones are never deleted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if olderThan == "" {
				return fmt.Errorf("--older-than is required, e.g. --older-than 30d")
			}
			age, err := deadletter.ParseAge(olderThan)
			if err != nil {
				return fmt.Errorf("invalid --older-than: %w", err)
			}
			store, done, err := a.dlqStore(cmd)
			if err != nil {
				return err
			}
			defer done()
			res, err := store.Purge(cmd.Context(), deadletter.PurgeParams{OlderThan: age, DryRun: dryRun})
			if err != nil {
				return err
			}
			return a.print(res, func(w io.Writer) error {
				verb := "purged"
				if res.DryRun {
					verb = "would purge (dry run)"
				}
				_, err := fmt.Fprintf(w, "%s %d entries (%d resolved, %d retried) older than %s\n", verb, res.Total,
					res.Purged[deadletter.StatusResolved], res.Purged[deadletter.StatusRetried], olderThan)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&olderThan, "older-than", "", "age since the entry's last change: 30d, 12h, 90m (required)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be purged; delete nothing")
	return cmd
}

func dlqStatsCmd(a *app) *cobra.Command {
	var (
		f   dlqFilter
		top int
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Where failures cluster: the largest groups of entries by failure fingerprint x kind x class",
		Long: `Group the selected entries (default: unresolved) by failure fingerprint x kind x
failure class and show the largest groups, largest first, each with its
fingerprint ID, its fingerprint (the reason with numbers, IDs, quoted values,
timestamps, addresses and query strings replaced by placeholders such as <n>,
<uuid> and "<v>") and the reason of its newest entry; then how many groups
were left out. Also: entries by status, kind and class, and the age of the
oldest unresolved one. Select a group's entries with --fingerprint ID (list,
retry --all, resolve --all).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			filter, store, done, err := a.dlqSelect(cmd, &f, "top", top, deadletter.MaxStatsTop)
			if err != nil {
				return err
			}
			defer done()
			st, err := store.Stats(cmd.Context(), deadletter.StatsParams{Filter: filter, Top: top})
			if err != nil {
				return err
			}
			st = deadletter.RedactStats(st)
			return a.print(st, func(w io.Writer) error { return printStats(w, st) })
		},
	}
	f.register(cmd, "default: unresolved")
	cmd.Flags().IntVar(&top, "top", deadletter.DefaultStatsTop, fmt.Sprintf("show the largest N groups (1-%d)", deadletter.MaxStatsTop))
	return cmd
}

func printStats(w io.Writer, st *deadletter.Stats) error {
	fmt.Fprintf(w, "entries: %d unresolved, %d retried, %d resolved\n",
		st.ByStatus[deadletter.StatusUnresolved], st.ByStatus[deadletter.StatusRetried], st.ByStatus[deadletter.StatusResolved])
	if st.OldestUnresolvedAt != nil {
		age := time.Duration(st.OldestUnresolvedAgeSeconds * float64(time.Second)).Round(time.Second)
		fmt.Fprintf(w, "oldest unresolved: %s ago (%s)\n", age, st.OldestUnresolvedAt.Local().Format(time.RFC3339))
	}
	if len(st.Groups) == 0 {
		_, err := fmt.Fprintln(w, "no entries match")
		return err
	}
	fmt.Fprintf(w, "by class: %s\n", countList(st.ByClass))
	fmt.Fprintf(w, "by kind: %s\n", countList(st.ByKind))
	rows := make([][]string, 0, 2*len(st.Groups))
	for _, g := range st.Groups {
		rows = append(rows,
			[]string{strconv.FormatInt(g.Count, 10), g.Kind, g.Class, g.FingerprintID, g.Last.Local().Format("2006-01-02 15:04"), clip(g.Fingerprint, 100)},
			[]string{"", "", "", "", "", clip(fmt.Sprintf("e.g. entry %d: %s", g.ExampleEntryID, firstLine(g.ExampleReason)), 100)})
	}
	if err := cli.Table(w, []string{"COUNT", "KIND", "CLASS", "FINGERPRINT", "LATEST", "REASON"}, rows); err != nil {
		return err
	}
	if st.MoreGroups > 0 {
		fmt.Fprintf(w, "and %d more groups (%d entries): --top N shows up to %d\n", st.MoreGroups, st.MoreEntries, deadletter.MaxStatsTop)
	}
	_, err := fmt.Fprintln(w, "select a group: --fingerprint ID with list, retry --all or resolve --all")
	return err
}

// firstLine is the first line of s that is not blank (a panic's value,
// not its stack).
func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if strings.TrimSpace(line) != "" {
			return strings.TrimSpace(line)
		}
	}
	return ""
}

// countList renders counts as "a 3, b 2", largest first.
func countList(counts map[string]int64) string {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, counts[n])
	}
	return strings.Join(parts, ", ")
}

// oneTarget checks that a command got an ID or --all, not both, and no
// filters without --all.
func oneTarget(args []string, all, filtered bool, verb string) error {
	switch {
	case len(args) == 1 && all:
		return fmt.Errorf("give an entry ID or --all, not both")
	case len(args) == 1 && filtered:
		return fmt.Errorf("filters select entries for --all; with an entry ID they are not used: drop them or use --all")
	case len(args) == 0 && !all:
		return fmt.Errorf("nothing to %s: give an entry ID, or --all (with filters such as --kind to narrow it)", verb)
	}
	return nil
}

func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("want %s, got %d arguments", what, len(args))
		}
		return nil
	}
}

func clip(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
