package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/monitor/health"
)

// newHealthCmd is `rebound health`: the job-health document of GET
// /api/admin/job-health, read from the database.
func newHealthCmd(a *app) *cobra.Command {
	var window time.Duration
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Show job health: success rate, last run and issues per kind, and the alerts that hold",
		Long: `health prints the job-health document of GET /api/admin/job-health: per job kind
its status, success rate (completed / finished, in percent, over --window; "-"
when no job finished), time since its last attempt and issues, then the alert
rules that hold now. --json prints the same document as the endpoint.
A circuit breaker counts (the breaker-open rule, critical) while it is
half-open, open before its probe time, or opened by failures with its probe
due for less than that open's timeout (at least 1m); not once a hold set by
hand (rebound breaker open --for) has expired, nor once a probe has gone
untaken that long (docs/circuit-breakers.md).

Exit code: 0 healthy, 2 degraded or unhealthy, 3 critical; 1 means the command
itself failed (bad flag, database unreachable).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if window < time.Minute || window > 30*24*time.Hour {
				return fmt.Errorf("--window %s: must be between 1m and 720h", window)
			}
			ctx := cmd.Context()
			pool, err := a.connectMigrated(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			rep, err := (&health.Checker{DB: pool, Window: window}).Check(ctx)
			if err != nil {
				return err
			}
			if err := a.print(rep, func(w io.Writer) error { return printHealth(w, rep, window, cli.IsTerminal(w)) }); err != nil {
				return err
			}
			if code := health.ExitCode(rep.OverallHealth); code != 0 {
				return &cli.ExitCode{Code: code}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&window, "window", health.DefaultWindow, "window of the success rate (1m to 720h)")
	return cmd
}

// colours of the states on a terminal.
var stateColour = map[string]string{
	health.Healthy: "\x1b[32m", health.Degraded: "\x1b[33m", health.Unhealthy: "\x1b[31m", health.Critical: "\x1b[1;31m",
	"warning": "\x1b[33m", "error": "\x1b[31m",
}

func printHealth(w io.Writer, rep *health.Report, window time.Duration, colour bool) error {
	paint := func(s string) string {
		if !colour {
			return s
		}
		return stateColour[s] + s + "\x1b[0m"
	}
	fmt.Fprintf(w, "overall: %s\n\n", paint(rep.OverallHealth))
	kinds := make([]string, 0, len(rep.Jobs))
	for k := range rep.Jobs {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	rows := make([][]string, 0, len(kinds))
	for _, kind := range kinds {
		k := rep.Jobs[kind]
		rate, ago := "-", "never"
		if k.SuccessRate != nil {
			rate = strconv.FormatFloat(*k.SuccessRate, 'f', 1, 64) + "%"
		}
		if k.LastRunAgo != nil {
			ago = (time.Duration(*k.LastRunAgo) * time.Second).String() + " ago"
		}
		rows = append(rows, []string{kind, paint(k.Status), rate, ago, strings.Join(k.Issues, "; ")})
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "no job counted yet")
	} else if err := cli.Table(w, []string{"KIND", "STATUS", "SUCCESS (" + window.String() + ")", "LAST RUN", "ISSUES"}, rows); err != nil {
		return err
	}
	if len(rep.Alerts) == 0 {
		_, err := fmt.Fprintln(w, "\nno alert rule holds")
		return err
	}
	fmt.Fprintln(w)
	arows := make([][]string, 0, len(rep.Alerts))
	for _, c := range rep.Alerts {
		arows = append(arows, []string{c.Rule, paint(string(c.Severity)), c.Subject, c.Message})
	}
	return cli.Table(w, []string{"RULE", "SEVERITY", "SUBJECT", "MESSAGE"}, arows)
}
