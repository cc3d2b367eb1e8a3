package alert

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
)

// DefaultInterval is how often the rules are evaluated: every minute (the
// seed's 15 minutes is one setting away).
const DefaultInterval = time.Minute

// EvaluateArgs are the args of an evaluation job: the periodic one, and
// the one a breaker opening inserts at once.
type EvaluateArgs struct {
	// Reason is "periodic" or "breaker_open", for the job list.
	Reason string `json:"reason"`
}

// Kind returns "rebound_alert_evaluate".
func (EvaluateArgs) Kind() string { return "rebound_alert_evaluate" }

// OperationKey returns "rebound_alert_evaluate": the evaluation has a
// breaker of its own, whatever a service's Config.DefaultOperationKey says,
// so that it is never parked behind a user's open breaker (the breaker-open
// alert would wait for that breaker's probe).
func (EvaluateArgs) OperationKey() string { return "rebound_alert_evaluate" }

// EvaluateWorker works EvaluateArgs with Evaluator.Run and records its
// Result as the job's output.
type EvaluateWorker struct {
	river.WorkerDefaults[EvaluateArgs]
	// Evaluator runs the rules. Required.
	Evaluator *Evaluator
}

// Work runs one evaluation.
func (w *EvaluateWorker) Work(ctx context.Context, _ *river.Job[EvaluateArgs]) error {
	res, err := w.Evaluator.Run(ctx)
	if err != nil {
		return err
	}
	return river.RecordOutput(ctx, res)
}

// EvaluateOpts are the insert options of an evaluation: unique per period
// (so a second pod, or a new leader restarting the schedule, does not
// evaluate twice in one period) in queue.
func EvaluateOpts(queue string, period time.Duration) *river.InsertOpts {
	return &river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: period}}
}

// FiringCollector exports rebound_alerts_firing{rule,severity}: the
// number of subjects each enabled rule fires for now (0 for a quiet rule),
// read from job_alert_state at scrape time. One series per rule.
type FiringCollector struct {
	db   DBTX
	desc *prometheus.Desc
}

// NewFiringCollector returns the collector reading db.
func NewFiringCollector(db DBTX) *FiringCollector {
	return &FiringCollector{db: db, desc: prometheus.NewDesc("rebound_alerts_firing",
		"Subjects each enabled alert rule is firing for, by rule and severity.", []string{"rule", "severity"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *FiringCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector; a database error reports no
// series.
func (c *FiringCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	rows, err := c.db.Query(ctx, `SELECT r.name, r.severity, count(s.rule)::float8
		FROM job_alert_config r LEFT JOIN job_alert_state s ON s.rule = r.name AND s.firing_since IS NOT NULL
		WHERE r.enabled GROUP BY r.name, r.severity ORDER BY r.name`)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var rule, sev string
		var n float64
		if rows.Scan(&rule, &sev, &n) == nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, rule, sev)
		}
	}
}
