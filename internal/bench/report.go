package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"

	"github.com/rebound-queue/rebound/internal/cli"
)

// WriteTable prints rep for humans: the settings, the machine, one line per
// side (median and spread of jobs/s and CPU µs/job) and the ratios.
func (rep *NoopReport) WriteTable(w io.Writer) error {
	c, m := rep.Config, rep.Machine
	fmt.Fprintf(w, "no-op jobs: %d per round, %d rounds per side, alternating; MaxWorkers %d, FetchCooldown %s, FetchPollInterval %s, pool %d connections\n",
		c.Jobs, c.Rounds, c.Workers, c.FetchCooldown, c.FetchPollInterval, rep.PoolSize)
	writeMachine(w, m)
	var rows [][]string
	for _, side := range []Side{SideRiver, SideRebound} {
		rate, cpu := Of(rep.Rounds, side)
		rows = append(rows, []string{string(side),
			fmt.Sprintf("%.0f", rate.Median), fmt.Sprintf("%.0f-%.0f", rate.Min, rate.Max),
			fmt.Sprintf("%.1f", cpu.Median), fmt.Sprintf("%.1f-%.1f", cpu.Min, cpu.Max)})
	}
	if err := cli.Table(w, []string{"SIDE", "JOBS/S (MEDIAN)", "JOBS/S (MIN-MAX)", "CPU µS/JOB (MEDIAN)", "CPU µS/JOB (MIN-MAX)"}, rows); err != nil {
		return err
	}
	rate, cpu := rep.Ratio()
	_, err := fmt.Fprintf(w, "ratio rebound/river: jobs/s %.3f, CPU per job %.3f (river's CPU per job / rebound's; 1 = no overhead)\n", rate, cpu)
	return err
}

// WriteSVG draws rep as an SVG image: jobs/s per round (left) and CPU µs
// per job per round (right), one line per side.
func (rep *NoopReport) WriteSVG(w io.Writer) error {
	const panelW, panelH, pad = 420.0, 260.0, 50.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", 2*panelW, panelH+40)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	rate, cpu := rep.Ratio()
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="13">%s</text>`+"\n", html.EscapeString(fmt.Sprintf(
		"no-op jobs, %d per round, MaxWorkers %d, FetchCooldown %s: rebound/river jobs/s %.3f, CPU/job %.3f",
		rep.Config.Jobs, rep.Config.Workers, rep.Config.FetchCooldown, rate, cpu)))
	colors := map[Side]string{SideRiver: "#1f77b4", SideRebound: "#d62728"}
	panel := func(x0 float64, title string, value func(Round) float64) {
		var maxV float64
		for _, r := range rep.Rounds {
			maxV = math.Max(maxV, value(r))
		}
		if maxV == 0 {
			maxV = 1
		}
		maxV *= 1.1
		top, bottom, left, right := 40.0, panelH, x0+pad, x0+panelW-20
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", left, top-6, html.EscapeString(title))
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, bottom, right, bottom)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black"/>`+"\n", left, top, left, bottom)
		for i := 0; i <= 4; i++ {
			v := maxV * float64(i) / 4
			y := bottom - (bottom-top)*float64(i)/4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%.0f</text>`+"\n", left-4, y+4, v)
		}
		n := rep.Config.Rounds
		xOf := func(round int) float64 {
			if n <= 1 {
				return (left + right) / 2
			}
			return left + 10 + (right-left-20)*float64(round-1)/float64(n-1)
		}
		for i := 1; i <= n; i++ {
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">%d</text>`+"\n", xOf(i), bottom+16, i)
		}
		for si, side := range []Side{SideRiver, SideRebound} {
			var pts []string
			for _, r := range rep.Rounds {
				if r.Side != side {
					continue
				}
				x, y := xOf(r.Number), bottom-(bottom-top)*value(r)/maxV
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x, y, colors[side])
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), colors[side])
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", right-70, top+14+16*float64(si), colors[side], side)
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">round</text>`+"\n", (left+right)/2, bottom+32)
	}
	panel(0, "jobs/s per round", Round.JobsPerSecond)
	panel(panelW, "CPU µs per job per round (Go process, user+sys)", Round.CPUPerJob)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
