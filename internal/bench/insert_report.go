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
// side (median and spread of seconds per round, jobs/s and CPU µs/job) and
// each enqueue side's ratio to InsertManyFast.
func (rep *InsertReport) WriteTable(w io.Writer) error {
	c, m := rep.Config, rep.Machine
	fmt.Fprintf(w, "insert: %d http_request jobs per round (NDJSON file of %d bytes), %d rounds per side, rotating which side goes first; enqueue runs as a subprocess (%s)\n",
		c.Lines, rep.FileBytes, c.Rounds, c.EnqueueBin)
	writeMachine(w, m)
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
	if err := cli.Table(w, []string{"SIDE", "SECONDS (MEDIAN)", "SECONDS (MIN-MAX)", "JOBS/S (MEDIAN)", "JOBS/S (MIN-MAX)", "CPU µS/JOB (MEDIAN)", "CPU µS/JOB (MIN-MAX)"}, rows); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "ratio to InsertManyFast (median jobs/s; 1 = as fast): enqueue --file %.3f, enqueue --file --json %.3f\n",
		rep.Ratio(SideEnqueue), rep.Ratio(SideEnqueueJSON))
	return err
}

// WriteSVG draws rep as an SVG image: jobs/s per round (left) and CPU µs
// per job per round (right; the inserting process's CPU), one line per
// side.
func (rep *InsertReport) WriteSVG(w io.Writer) error {
	const panelW, panelH, pad = 440.0, 280.0, 50.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", 2*panelW, panelH+40)
	b.WriteString(`<rect width="100%" height="100%" fill="white"/>` + "\n")
	fmt.Fprintf(&b, `<text x="10" y="18" font-size="13">%s</text>`+"\n", html.EscapeString(fmt.Sprintf(
		"insert %d http_request jobs: enqueue --file / InsertManyFast %.3f, enqueue --file --json / InsertManyFast %.3f (median jobs/s)",
		rep.Config.Lines, rep.Ratio(SideEnqueue), rep.Ratio(SideEnqueueJSON))))
	colors := map[Side]string{SideInsertManyFast: "#1f77b4", SideEnqueue: "#d62728", SideEnqueueJSON: "#2ca02c"}
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
			y := bottom - (bottom-top)*float64(i)/4
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="end">%.0f</text>`+"\n", left-4, y+4, maxV*float64(i)/4)
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
		for si, side := range insertSides {
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
			fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" fill="%s">%s</text>`+"\n", right-150, top+14+16*float64(si), colors[side], html.EscapeString(string(side)))
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">round</text>`+"\n", (left+right)/2, bottom+32)
	}
	panel(0, "jobs/s per round", Round.JobsPerSecond)
	panel(panelW, "CPU µs per job per round (inserting process, user+sys)", Round.CPUPerJob)
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
