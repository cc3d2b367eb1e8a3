package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/migrations"
)

func newMigrateCmd(a *app) *cobra.Command {
	cmd := cli.RequireSubcommand(&cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema (River's tables, then rebound's)",
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "up",
		Short: "Apply every pending migration; safe to run from many pods at once",
		Long: `Apply River's pending migrations, then rebound's, and (re)create rebound's
triggers on river_job. Idempotent. Each migration runs in its own transaction,
which takes an advisory lock first, so pods running it at the same moment apply
each migration once. Works through PgBouncer in transaction mode too (add
default_query_exec_mode=cache_describe to DATABASE_URL), but prefer a direct
connection to PostgreSQL: a pooler's timeouts can cut a long migration short
(it then rolls back).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			m, err := migrations.New(pool, &migrations.Config{Logger: logger})
			if err != nil {
				return err
			}
			applied, err := m.Up(cmd.Context())
			if err != nil {
				return err
			}
			if applied == nil {
				applied = []migrations.Applied{}
			}
			return a.print(map[string]any{"applied": applied}, func(w io.Writer) error {
				if len(applied) == 0 {
					_, err := fmt.Fprintln(w, "database is up to date; nothing to apply")
					return err
				}
				var migrated, created, recreated int
				for _, m := range applied {
					switch {
					case m.Line != "trigger":
						migrated++
						fmt.Fprintf(w, "applied %s %03d_%s (%s)\n", m.Line, m.Version, m.Name, m.Duration.Round(time.Millisecond))
					case m.Repaired:
						recreated++
						fmt.Fprintf(w, "recreated trigger %s on river_job (it was missing or disabled)\n", m.Name)
					default:
						created++
						fmt.Fprintf(w, "created trigger %s on river_job\n", m.Name)
					}
				}
				_, err := fmt.Fprintln(w, summary(
					counted{migrated, "migration", "applied"}, counted{created, "trigger", "created"}, counted{recreated, "trigger", "recreated"}))
				return err
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List every migration and trigger and whether it is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := a.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			m, err := migrations.New(pool, nil)
			if err != nil {
				return err
			}
			statuses, err := m.Status(cmd.Context())
			if err != nil {
				return err
			}
			// Counted as `migrate up` reports what it does, and as the
			// workers' start-up check says: migrations apart from triggers.
			behind := migrations.CountBehind(statuses)
			out := map[string]any{"migrations": statuses, "pending": behind.Migrations, "triggers_missing": behind.TriggersMissing, "triggers_disabled": behind.TriggersDisabled}
			return a.print(out, func(w io.Writer) error {
				rows := make([][]string, 0, len(statuses))
				for _, s := range statuses {
					state, version, at := "pending", "", ""
					if s.Applied {
						state = "applied"
					}
					if s.Line == "trigger" {
						state = map[bool]string{true: "present", false: "missing"}[s.Applied]
						if s.Disabled {
							state = "disabled"
						}
					} else {
						version = strconv.Itoa(s.Version)
					}
					if s.AppliedAt != nil {
						at = s.AppliedAt.Local().Format(time.DateTime)
					}
					rows = append(rows, []string{s.Line, version, s.Name, state, at})
				}
				if err := cli.Table(w, []string{"LINE", "VERSION", "NAME", "STATE", "APPLIED AT"}, rows); err != nil {
					return err
				}
				if behind != (migrations.Behind{}) {
					_, err := fmt.Fprintf(w, "\n%s: run `rebound migrate up`\n", behind)
					return err
				}
				_, err := fmt.Fprintln(w, "\nup to date")
				return err
			})
		},
	})
	return cmd
}

// counted is one part of a summary line: n things of a noun, and what
// happened to them.
type counted struct {
	n         int
	noun, how string
}

// summary joins the non-zero parts: "14 migrations applied, 1 trigger
// created". `migrate status` and `migrate up` count the same things, so
// their numbers agree.
func summary(parts ...counted) string {
	var out []string
	for _, p := range parts {
		if p.n == 0 {
			continue
		}
		noun := p.noun
		if p.n != 1 {
			noun += "s"
		}
		out = append(out, fmt.Sprintf("%d %s %s", p.n, noun, p.how))
	}
	return strings.Join(out, ", ")
}
