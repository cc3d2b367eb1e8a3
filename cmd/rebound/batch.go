package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/cli"
)

// newBatchCmd is `rebound batch`: the batches' summaries, as the Go API
// (package batch) and the admin HTTP API give them.
func newBatchCmd(a *app) *cobra.Command {
	cmd := cli.RequireSubcommand(&cobra.Command{
		Use:   "batch",
		Short: "Show batches (enqueue batch): counts, success rate, dead letters",
		Long: `A batch is a named set of jobs of one kind enqueued by enqueue batch (or
package batch). Its counts are kept by the database as jobs finish, so they stay
right after River's cleaner deletes finished jobs.

  succeeded   jobs that completed (after any number of attempts)
  failed      jobs dead-lettered (and not replayed from the DLQ)
  cancelled   jobs an operator cancelled or deleted before they finished
  pending     jobs not finished yet
  retried     succeeded or failed jobs that needed more than one attempt; a job
              replayed from the dead-letter queue (rebound dlq retry) counts
              (its dead-lettered run and the replay are two), so replaying a
              job dead-lettered at its first attempt adds one
  success     succeeded / (succeeded + failed) x 100; n/a while both are 0`,
	})
	var limit int
	var open bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List batches, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 1 || limit > 1000 {
				return fmt.Errorf("invalid --limit %d: must be from 1 to 1000", limit)
			}
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			out, err := batch.List(cmd.Context(), pool, batch.ListOpts{Limit: limit, Open: open})
			if err != nil {
				return err
			}
			return a.print(out, func(w io.Writer) error { return printBatches(w, out) })
		},
	}
	list.Flags().IntVar(&limit, "limit", 50, "most batches to list (1 to 1000)")
	list.Flags().BoolVar(&open, "open", false, "only batches not completed yet")
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one batch's summary: counts, success rate, failures by class, dead-letter IDs",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return errors.New("want exactly one batch ID (see `rebound batch list`)")
			}
			_, err := batch.ParseID(args[0])
			return err
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id, _ := batch.ParseID(args[0])
			pool, err := a.connectMigrated(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			s, err := batch.GetSummary(cmd.Context(), pool, id)
			if errors.Is(err, batch.ErrNotFound) {
				return fmt.Errorf("no batch %d (see `rebound batch list`)", id)
			}
			if err != nil {
				return err
			}
			return a.print(s, func(w io.Writer) error { return batch.WriteText(w, s) })
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

func printBatches(w io.Writer, list []*batch.Summary) error {
	if len(list) == 0 {
		_, err := fmt.Fprintln(w, "no batches")
		return err
	}
	rows := make([][]string, len(list))
	for i, s := range list {
		completed := "-"
		if s.CompletedAt != nil {
			completed = s.CompletedAt.Local().Format(time.DateTime)
		}
		rows[i] = []string{strconv.FormatInt(s.ID, 10), shorten(s.Name, keyCellWidth), s.Kind,
			strconv.FormatInt(s.Total, 10), strconv.FormatInt(s.Succeeded, 10), strconv.FormatInt(s.Failed, 10),
			strconv.FormatInt(s.Cancelled, 10), strconv.FormatInt(s.Pending, 10), strconv.FormatInt(s.Retried, 10),
			batch.RateText(s.SuccessRate), s.CreatedAt.Local().Format(time.DateTime), completed}
	}
	return cli.Table(w, []string{"ID", "NAME", "KIND", "TOTAL", "SUCCEEDED", "FAILED", "CANCELLED", "PENDING", "RETRIED", "SUCCESS", "CREATED", "COMPLETED"}, rows)
}
