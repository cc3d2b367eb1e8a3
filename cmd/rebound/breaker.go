package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/redact"
)

func newBreakerCmd(a *app) *cobra.Command {
	cmd := cli.RequireSubcommand(&cobra.Command{
		Use:   "breaker",
		Short: "Inspect and operate the circuit breakers shared by every pod",
		Long: `Each operation key (a downstream: an http_request job's host, or a job kind)
has one circuit breaker, stored in circuit_breaker_state and shared by every pod.
Pods notice a change within a second. A key is 1 to 255 characters, not blank,
without control characters.`,
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List every breaker: key, state, failures, opened at, next probe at, last error",
		Long: `List every breaker: key, state, failures, opened at, next probe at, last error.
The table shortens keys longer than 48 characters and errors longer than 60
(ending them with "…"); --json and ` + "`rebound breaker show KEY`" + ` give full values.
Secrets in the last error (X-Api-Key: ..., token=..., Bearer ...) show as
[REDACTED], as in every rebound display (docs/redaction.md).

An open breaker whose NEXT PROBE AT has passed (database clock) shows as
"open (probe due)" ("probe_due": true in JSON): it no longer holds calls off,
and the next job for the key runs as its probe. It stays open in the table
until that job comes. rebound health and the breaker-open alert stop counting
it at once if the open was a hold set by hand, else once its probe has been
due for as long as that open lasted (at least 1m) (docs/circuit-breakers.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			rows, err := breaker.NewStore(pool).List(cmd.Context())
			if err != nil {
				return err
			}
			shown := make([]*breaker.Row, len(rows))
			for i, r := range rows {
				shown[i] = redactRow(r)
			}
			rows = shown
			return a.print(rows, func(w io.Writer) error {
				if len(rows) == 0 {
					_, err := fmt.Fprintln(w, "no circuit breaker state: every key is closed")
					return err
				}
				table := make([][]string, 0, len(rows))
				for _, r := range rows {
					table = append(table, []string{shorten(r.Key, keyCellWidth), stateText(r), fmt.Sprint(r.FailureCount),
						timeOrDash(r.OpenedAt), timeOrDash(r.NextProbeAt), shorten(r.LastError, errorCellWidth)})
				}
				return cli.Table(w, []string{"KEY", "STATE", "FAILURES", "OPENED AT", "NEXT PROBE AT", "LAST ERROR"}, table)
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "show KEY",
		Short: "Show one breaker's whole row",
		Args:  exactlyOneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			row, err := breaker.NewStore(pool).Get(cmd.Context(), args[0])
			if err != nil {
				return breakerError(args[0], err)
			}
			row = redactRow(row)
			return a.print(row, func(w io.Writer) error { return printRow(w, row) })
		},
	})
	var resetBy, resetReason string
	reset := &cobra.Command{
		Use:   "reset KEY",
		Short: "Close a breaker by hand (recorded with who and when)",
		Long: `Close KEY's breaker now: a new generation, counters, probes and trips cleared.
The change is recorded in changed_by, change_reason and changed_at.`,
		Args: exactlyOneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := validateChange(resetBy, resetReason); err != nil {
				return err
			}
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			row, err := breaker.NewStore(pool).Reset(cmd.Context(), breaker.ResetParams{Key: args[0], By: resetBy, Reason: resetReason})
			if err != nil {
				return breakerError(args[0], err)
			}
			row = redactRow(row)
			return a.print(row, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "breaker %q closed by %s\n", row.Key, row.ChangedBy)
				return err
			})
		},
	}
	reset.Flags().StringVar(&resetBy, "by", defaultActor(), "who resets (recorded)")
	reset.Flags().StringVar(&resetReason, "reason", "", fmt.Sprintf("why (recorded; at most %d bytes)", breaker.MaxTextBytes))
	cmd.AddCommand(reset)

	var openFor time.Duration
	var openBy, openReason string
	open := &cobra.Command{
		Use:   "open KEY --for DURATION",
		Short: "Hold a breaker open (maintenance): no pod calls KEY's downstream until then",
		Long: `Open KEY's breaker until now + --for (database clock); its row is created if
absent. Jobs for KEY are parked (snoozed, no attempt used) meanwhile; afterwards
the breaker probes as usual. Recorded with who and when.`,
		Args: exactlyOneKey,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("for") {
				return errors.New("--for is required, e.g. --for 10m")
			}
			if openFor <= 0 || openFor > breaker.MaxHold {
				return fmt.Errorf("--for %s: must be in (0s, %s]", openFor, breaker.MaxHold)
			}
			if err := validateChange(openBy, openReason); err != nil {
				return err
			}
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			row, err := breaker.NewStore(pool).Open(cmd.Context(), breaker.OpenParams{Key: args[0], For: openFor, By: openBy, Reason: openReason})
			if err != nil {
				return breakerError(args[0], err)
			}
			row = redactRow(row)
			return a.print(row, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "breaker %q open until %s (by %s)\n", row.Key, timeOrDash(row.NextProbeAt), row.ChangedBy)
				return err
			})
		},
	}
	open.Flags().DurationVar(&openFor, "for", 0, "how long to hold the breaker open, e.g. 10m (required)")
	open.Flags().StringVar(&openBy, "by", defaultActor(), "who opens (recorded)")
	open.Flags().StringVar(&openReason, "reason", "", fmt.Sprintf("why (recorded; at most %d bytes)", breaker.MaxTextBytes))
	cmd.AddCommand(open)
	return cmd
}

// validateChange checks --by and --reason by the rule of every text an
// operator records (breaker.ValidateActor, breaker.ValidateText), naming the
// flag, before the database is touched.
func validateChange(by, reason string) error {
	if err := breaker.ValidateActor("--by", by); err != nil {
		return err
	}
	return breaker.ValidateText("--reason", reason)
}

// Widths (in characters) of the list table's shortened columns.
const (
	keyCellWidth   = 48
	errorCellWidth = 60
)

// redactRow returns a copy of r for display, its last error through
// redact.Text (an upstream's error text may echo a secret; the stored row
// keeps it): every breaker command prints rows so, tables and --json alike.
func redactRow(r *breaker.Row) *breaker.Row {
	c := *r
	c.LastError = redact.Text(r.LastError)
	return &c
}

// exactlyOneKey accepts one argument that is a valid operation key
// (breaker.ValidateKey).
func exactlyOneKey(_ *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		return errors.New("missing KEY (an operation key, see `rebound breaker list`)")
	case len(args) > 1:
		return fmt.Errorf("one KEY expected, got %d arguments", len(args))
	}
	return breaker.ValidateKey(args[0])
}

func breakerError(key string, err error) error {
	if errors.Is(err, breaker.ErrNotFound) {
		return fmt.Errorf("no circuit breaker state for key %q (see `rebound breaker list`)", key)
	}
	return err
}

func timeOrDash(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// shorten makes s one table cell of at most n characters: runs of white
// space become one space, other control characters and invalid UTF-8 become
// "�", and a longer s is cut to n-1 characters and "…". "" becomes "-".
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
	if s == "" {
		return "-"
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// stateText is the state as the table and show print it: "open (probe due)"
// for an open breaker whose probe time has passed.
func stateText(r *breaker.Row) string {
	if r.ProbeDue {
		return r.State.String() + " (probe due)"
	}
	return r.State.String()
}

func printRow(w io.Writer, r *breaker.Row) error {
	probes := make([]string, 0, len(r.Probes))
	for tok, at := range r.Probes {
		probes = append(probes, tok+" since "+at.Local().Format(time.RFC3339))
	}
	fields := [][]string{
		{"key", r.Key},
		{"state", stateText(r)},
		{"generation", fmt.Sprint(r.Generation)},
		{"failures", fmt.Sprint(r.FailureCount)},
		{"probe successes", fmt.Sprint(r.SuccessCount)},
		{"window", fmt.Sprintf("%d calls, %d failures since %s", r.WindowCalls, r.WindowFailures, timeOrDash(r.WindowStartedAt))},
		{"trips", fmt.Sprint(r.TripCount)},
		{"open since", timeOrDash(r.OpenSince)},
		{"opened at", timeOrDash(r.OpenedAt)},
		{"next probe at", timeOrDash(r.NextProbeAt)},
		{"probes", orDash(strings.Join(probes, "; "))},
		{"last error", orDash(r.LastError)},
		{"last failure at", timeOrDash(r.LastFailureAt)},
		{"last success at", timeOrDash(r.LastSuccessAt)},
		{"changed by", orDash(r.ChangedBy)},
		{"change reason", orDash(r.ChangeReason)},
		{"changed at", timeOrDash(r.ChangedAt)},
		{"updated at", timeOrDash(&r.UpdatedAt)},
	}
	for _, f := range fields {
		if _, err := fmt.Fprintf(w, "%-16s %s\n", f[0]+":", f[1]); err != nil {
			return err
		}
	}
	return nil
}
