package bench

import (
	"fmt"
	"io"

	"github.com/rebound-queue/rebound/internal/cli"
)

// WriteTable prints rep for humans: the settings, the machine, one line per
// side (median and spread of seconds per round, jobs/s and CPU µs/job) and
// each enqueue side's ratio to InsertManyFast.
func (rep *InsertReport) WriteTable(w io.Writer) error {
	c, m := rep.Config, rep.Machine
	fmt.Fprintf(w, "insert: %d http_request jobs per round (NDJSON file of %d bytes), %d rounds per side, rotating which side goes first; enqueue runs as a subprocess (%s)\n",
		c.Lines, rep.FileBytes, c.Rounds, c.EnqueueBin)
	writeMachine(w, m)
	if rep.Checkpoints {
		fmt.Fprintln(w, "each round starts from an empty river_job, right after a CHECKPOINT")
	} else {
		fmt.Fprintln(w, "each round starts from an empty river_job (no CHECKPOINT between rounds: the role may not run it, so a round may pay for the WAL of the one before)")
	}
	header := []string{"SIDE", "SECONDS (MEDIAN)", "SECONDS (MIN-MAX)", "JOBS/S (MEDIAN)", "JOBS/S (MIN-MAX)", "CPU µS/JOB (MEDIAN)", "CPU µS/JOB (MIN-MAX)"}
	var rows [][]string
	for _, side := range insertSides {
		rate, cpu := Of(rep.Rounds, side)
		var secs []float64
		for _, r := range rep.Rounds {
			if r.Side == side {
				secs = append(secs, r.Elapsed.Seconds())
			}
		}
		s := summarize(secs)
		rows = append(rows, []string{string(side),
			fmt.Sprintf("%.3f", s.Median), fmt.Sprintf("%.3f-%.3f", s.Min, s.Max),
			fmt.Sprintf("%.0f", rate.Median), fmt.Sprintf("%.0f-%.0f", rate.Min, rate.Max),
			fmt.Sprintf("%.1f", cpu.Median), fmt.Sprintf("%.1f-%.1f", cpu.Min, cpu.Max)})
	}
	header, rows = dbCPUColumns(rep.Rounds, insertSides, header, rows)
	if err := cli.Table(w, header, rows); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "ratio to InsertManyFast (median jobs/s; 1 = as fast): enqueue --file %.3f, enqueue --file --json %.3f, InsertManyFast keyed %.3f\n",
		rep.Ratio(SideEnqueue), rep.Ratio(SideEnqueueJSON), rep.Ratio(SideInsertManyFastKeyed)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "ratio to InsertManyFast keyed (the same rows as enqueue's): enqueue --file %.3f, enqueue --file --json %.3f\n",
		rep.RatioTo(SideEnqueue, SideInsertManyFastKeyed), rep.RatioTo(SideEnqueueJSON, SideInsertManyFastKeyed))
	return err
}

// WriteSVG draws rep as an SVG image: jobs/s per round (left) and CPU µs
// per job per round (right; the inserting process's CPU), one line per
// side.
func (rep *InsertReport) WriteSVG(w io.Writer) error {
	title := fmt.Sprintf("insert %d http_request jobs: enqueue --file / InsertManyFast %.3f, enqueue --file --json / InsertManyFast %.3f (median jobs/s)",
		rep.Config.Lines, rep.Ratio(SideEnqueue), rep.Ratio(SideEnqueueJSON))
	return writeRoundsSVG(w, title, rep.Config.Rounds, insertSides, rep.Rounds, []svgPanel[Round]{
		{"jobs/s per round", Round.JobsPerSecond},
		{"CPU µs per job per round (inserting process, user+sys)", Round.CPUPerJob},
	})
}
