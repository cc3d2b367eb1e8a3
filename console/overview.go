package console

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/health"
	"github.com/rebound-queue/rebound/retrypolicy"
)

type overviewData struct {
	Report       *health.Report
	Kinds        []kindHealth
	BreakerCount map[string]int64
	OpenBreakers []*breaker.Row
	MoreOpen     bool
	Chart        template.HTML
	ChartTotals  []classCount
	ChartTotal   int64
	Queues       []queueRow
	QueueError   string
}

type kindHealth struct {
	Name string
	health.Kind
}

type queueRow struct {
	Queue, Kind                                            string
	Available, Pending, Retryable, Running, Scheduled, Sum int64
	OldestSeconds                                          float64
}

type classCount struct {
	Class string
	Color string
	Count int64
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, v *view) {
	ctx, cancel := pageContext(r)
	defer cancel()
	d := &overviewData{}
	rep, err := c.cfg.Health.Check(ctx)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	d.Report = rep
	for _, k := range sortedKeys(rep.Jobs) {
		d.Kinds = append(d.Kinds, kindHealth{Name: k, Kind: rep.Jobs[k]})
	}
	counts, err := c.cfg.Breakers.CountByState(ctx)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	d.BreakerCount = map[string]int64{}
	for st, n := range counts {
		d.BreakerCount[st.String()] = n
	}
	open, _, err := c.cfg.Breakers.Page(ctx, breaker.PageParams{States: []breaker.State{breaker.StateOpen, breaker.StateHalfOpen}, Limit: 11})
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	if len(open) > 10 {
		open, d.MoreOpen = open[:10], true
	}
	for _, row := range open {
		row.LastError = redact.Text(row.LastError)
	}
	d.OpenBreakers = open
	now := time.Now()
	buckets, err := deadLettersByHour(ctx, c.cfg.Pool, now)
	if err != nil {
		c.failErr(w, r, v, err)
		return
	}
	d.Chart, d.ChartTotals, d.ChartTotal = drawChart(buckets, now)
	if c.cfg.Snapshots != nil {
		depth, err := monitor.ReadQueueDepth(ctx, c.cfg.Snapshots, 0)
		if err != nil {
			d.QueueError = "queue depth unavailable: " + err.Error()
		} else {
			d.Queues = queueRows(depth)
		}
	}
	v.Title, v.Nav, v.Data = "Overview", "overview", d
	c.render(w, r, http.StatusOK, "overview", v)
}

func queueRows(d *monitor.QueueDepth) []queueRow {
	type qk struct{ q, k string }
	rows := map[qk]*queueRow{}
	for _, j := range d.Jobs {
		k := qk{j.Queue, j.Kind}
		row := rows[k]
		if row == nil {
			row = &queueRow{Queue: j.Queue, Kind: j.Kind, OldestSeconds: d.OldestSeconds[j.Queue]}
			rows[k] = row
		}
		switch j.State {
		case "available":
			row.Available = j.Count
		case "pending":
			row.Pending = j.Count
		case "retryable":
			row.Retryable = j.Count
		case "running":
			row.Running = j.Count
		case "scheduled":
			row.Scheduled = j.Count
		}
		row.Sum += j.Count
	}
	out := make([]queueRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b queueRow) int {
		if c := strings.Compare(a.Queue, b.Queue); c != 0 {
			return c
		}
		return strings.Compare(a.Kind, b.Kind)
	})
	return out
}

// hourBucket is the dead letters of one class in one hour of the chart.
type hourBucket struct {
	Hour  int // 0 = the oldest hour, 23 = the current one
	Class string
	Count int64
}

// deadLettersByHour counts the entries dead-lettered in the 24 hours before
// now, by hour and failure class. The status condition (every status) lets
// PostgreSQL range-scan job_dead_letter_queue_status_dead_lettered_at_idx
// instead of reading the table.
func deadLettersByHour(ctx context.Context, pool *pgxpool.Pool, now time.Time) ([]hourBucket, error) {
	rows, err := pool.Query(ctx, `SELECT least(23, greatest(0, floor(extract(epoch FROM dead_lettered_at - $1::timestamptz) / 3600)))::int, failure_class, count(*)
		FROM job_dead_letter_queue
		WHERE status IN ('unresolved', 'retried', 'resolved') AND dead_lettered_at >= $1::timestamptz
		GROUP BY 1, 2`, now.Add(-24*time.Hour))
	if err != nil {
		return nil, fmt.Errorf("dead letters by hour: %w", err)
	}
	defer rows.Close()
	var out []hourBucket
	for rows.Next() {
		var b hourBucket
		if err := rows.Scan(&b.Hour, &b.Class, &b.Count); err != nil {
			return nil, fmt.Errorf("dead letters by hour: %w", err)
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// palette gives each failure class a colour, in retrypolicy.Classes()
// order, distinguishable and dark enough on white; unknown classes get grey.
var palette = []string{"#1f77b4", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e", "#2ca02c", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"}

func classColor(class string) string {
	for i, c := range retrypolicy.Classes() {
		if string(c) == class {
			return palette[i%len(palette)]
		}
	}
	return "#555555"
}

// drawChart draws the hourly stacked bars as an SVG (no script), and
// returns the totals by class for the legend and the table beside it.
func drawChart(buckets []hourBucket, now time.Time) (template.HTML, []classCount, int64) {
	const (
		width, height     = 720, 220
		left, bottom, top = 44, 28, 10
		barGap            = 4
		plotW, plotH      = width - left - 8, height - bottom - top
		hours             = 24
	)
	perHour := make([]map[string]int64, hours)
	totals := map[string]int64{}
	var max, total int64
	for i := range perHour {
		perHour[i] = map[string]int64{}
	}
	for _, b := range buckets {
		perHour[b.Hour][b.Class] += b.Count
		totals[b.Class] += b.Count
		total += b.Count
	}
	for _, h := range perHour {
		var s int64
		for _, n := range h {
			s += n
		}
		max = maxI(max, s)
	}
	classes := sortedKeys(totals)
	scale := niceCeil(max)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">`, width, height)
	fmt.Fprintf(&sb, `<title id="chart-title">Dead letters per hour by failure class, last 24 hours</title><desc id="chart-desc">%d dead letters in 24 hours; the table below the chart gives the totals by class.</desc>`, total)
	// axis and grid
	for i := 0; i <= 4; i++ {
		y := top + plotH - plotH*i/4
		fmt.Fprintf(&sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d0d0d0" stroke-width="1"/>`, left, y, width-8, y)
		fmt.Fprintf(&sb, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#333">%d</text>`, left-6, y+4, scale*int64(i)/4)
	}
	barW := plotW/hours - barGap
	start := now.Add(-24 * time.Hour)
	for i, h := range perHour {
		x := left + i*(plotW/hours) + barGap/2
		y := top + plotH
		for _, class := range classes {
			n := h[class]
			if n == 0 || scale == 0 {
				continue
			}
			bh := int(int64(plotH) * n / scale)
			if bh < 1 {
				bh = 1
			}
			y -= bh
			fmt.Fprintf(&sb, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"><title>%s: %d (%s)</title></rect>`,
				x, y, barW, bh, classColor(class), template.HTMLEscapeString(class), n, start.Add(time.Duration(i)*time.Hour).UTC().Format("15:04"))
		}
		if i%4 == 0 {
			fmt.Fprintf(&sb, `<text x="%d" y="%d" font-size="11" fill="#333">%s</text>`, x, height-10, start.Add(time.Duration(i)*time.Hour).UTC().Format("15:04"))
		}
	}
	sb.WriteString(`</svg>`)
	out := make([]classCount, 0, len(classes))
	for _, cl := range classes {
		out = append(out, classCount{Class: cl, Color: classColor(cl), Count: totals[cl]})
	}
	slices.SortStableFunc(out, func(a, b classCount) int { return int(b.Count - a.Count) })
	// The SVG is built from numbers, fixed strings and escaped class names.
	return template.HTML(sb.String()), out, total //nolint:gosec
}

func maxI(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// niceCeil rounds n up to 4 x a round step, so the 4 grid lines are whole.
func niceCeil(n int64) int64 {
	if n <= 0 {
		return 4
	}
	step := int64(1)
	for {
		for _, m := range []int64{1, 2, 5} {
			if step*m*4 >= n {
				return step * m * 4
			}
		}
		step *= 10
	}
}
