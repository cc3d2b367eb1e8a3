package bench

import (
	"fmt"
	"io"

	"github.com/rebound-queue/rebound/internal/cli"
)

// WriteTable prints rep for humans: the settings, the machine, one line per
// side (median and spread of jobs/s and CPU µs/job) and the ratios.
func (rep *NoopReport) WriteTable(w io.Writer) error {
	c, m := rep.Config, rep.Machine
	fmt.Fprintf(w, "no-op jobs: %d per round, %d rounds per side, alternating; MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, pool %d connections\n",
		c.Jobs, c.Rounds, c.Workers, c.FetchCooldown, c.FetchPollInterval, rep.PoolSize)
	writeMachine(w, m)
	header := []string{"SIDE", "JOBS/S (MEDIAN)", "JOBS/S (MIN-MAX)", "CPU µS/JOB (MEDIAN)", "CPU µS/JOB (MIN-MAX)"}
	sides := []Side{SideRiver, SideRebound}
	var rows [][]string
	for _, side := range sides {
		rate, cpu := Of(rep.Rounds, side)
		rows = append(rows, []string{string(side),
			fmt.Sprintf("%.0f", rate.Median), fmt.Sprintf("%.0f-%.0f", rate.Min, rate.Max),
			fmt.Sprintf("%.1f", cpu.Median), fmt.Sprintf("%.1f-%.1f", cpu.Min, cpu.Max)})
	}
	header, rows = dbCPUColumns(rep.Rounds, sides, header, rows)
	if err := cli.Table(w, header, rows); err != nil {
		return err
	}
	rate, cpu := rep.Ratio()
	if _, err := fmt.Fprintf(w, "ratio rebound/river: jobs/s %.3f, CPU per job %.3f (river's CPU per job / rebound's; 1 = no overhead)\n", rate, cpu); err != nil {
		return err
	}
	riverDB, okRiver := DBOf(rep.Rounds, SideRiver)
	if reboundDB, ok := DBOf(rep.Rounds, SideRebound); okRiver && ok {
		_, err := fmt.Fprintf(w, "PostgreSQL's CPU per job, river's / rebound's: %.3f\n", ratio(riverDB.Median, reboundDB.Median))
		return err
	}
	return nil
}

// WriteSVG draws rep as an SVG image: jobs/s per round (left) and CPU µs
// per job per round (right), one line per side.
func (rep *NoopReport) WriteSVG(w io.Writer) error {
	rate, cpu := rep.Ratio()
	title := fmt.Sprintf("no-op jobs, %d per round, MaxWorkers %d, FetchCooldown %s: rebound/river jobs/s %.3f, CPU/job %.3f",
		rep.Config.Jobs, rep.Config.Workers, rep.Config.FetchCooldown, rate, cpu)
	return writeRoundsSVG(w, title, rep.Config.Rounds, []Side{SideRiver, SideRebound}, rep.Rounds, []svgPanel[Round]{
		{"jobs/s per round", Round.JobsPerSecond},
		{"CPU µs per job per round (Go process, user+sys)", Round.CPUPerJob},
	})
}
