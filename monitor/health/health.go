// Package health answers "how are my jobs doing?" from real data: the
// counts in job_retry_metrics, the circuit breakers and the dead-letter
// queue, judged by the alert rules of job_alert_config. It serves GET
// /api/admin/job-health in the seed's shape and backs `rebound health`.
//
// # The report
//
//	{"overall_health": "healthy|degraded|unhealthy|critical",
//	 "jobs": {KIND: {"status": "...", "success_rate": 96.7, "last_run_ago": 12, "issues": ["..."]}},
//	 "alerts": [{"rule", "metric", "subject", "severity", "value", "threshold", "message"}]}
//
// overall_health is critical while a critical rule holds, unhealthy for an
// error, degraded for a warning, healthy otherwise; a kind's status is the
// same over the rules that hold for that kind. success_rate is completed /
// (completed + dead-lettered) over the window, in percent with one
// decimal, null when no job of the kind finished in the window;
// last_run_ago is whole seconds since the kind's latest attempt, null if
// none is recorded. alerts are the rules that hold now (evaluated at the
// request, so the report never lags the evaluation interval; counts lag a
// pod's flush interval). A circuit breaker takes part while it counts as
// open (breaker.CountsAsOpen): half-open, open before its probe time, or
// opened by failures with its probe due for less than that open's timeout
// (at least breaker.ProbeDueGrace); an expired hold set by hand does not.
//
// A kind with jobs waiting because the pods that fetched them have no
// worker for it (river_job state retryable, latest history entry of class
// unknown_kind) gets the issue "N job(s) wait for a pod that registers kind
// KIND (unknown_kind)", listed even when the kind has no counts in the
// window. It is information, not a rule: it changes no status. Such a job,
// dead-lettered after a day, counts as dead-lettered in success_rate.
package health

import (
	"context"
	"fmt"
	"time"

	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/metricstore"
)

// Health states, from best to worst.
const (
	Healthy   = "healthy"
	Degraded  = "degraded"
	Unhealthy = "unhealthy"
	Critical  = "critical"
)

// DefaultWindow is the window of success_rate: 15 minutes (the seed's).
const DefaultWindow = 15 * time.Minute

// Report is the job-health document.
type Report struct {
	// OverallHealth is healthy, degraded, unhealthy or critical.
	OverallHealth string `json:"overall_health"`
	// Jobs holds every kind with counts in job_retry_metrics.
	Jobs map[string]Kind `json:"jobs"`
	// Alerts are the rule conditions that hold now.
	Alerts []alert.Condition `json:"alerts"`
}

// Kind is one job kind's health.
type Kind struct {
	// Status is healthy, degraded, unhealthy or critical.
	Status string `json:"status"`
	// SuccessRate is in percent (0-100, one decimal); nil when no job
	// finished in the window.
	SuccessRate *float64 `json:"success_rate"`
	// LastRunAgo is whole seconds since the latest attempt; nil if never.
	LastRunAgo *int64 `json:"last_run_ago"`
	// Issues are the messages of the rules that hold for the kind.
	Issues []string `json:"issues"`
}

// Checker builds reports.
type Checker struct {
	// DB is the database. Required.
	DB alert.DBTX
	// Window is success_rate's window; 0 means DefaultWindow.
	Window time.Duration
	// ExcludeKinds are left out of the failure-rate and dead-letter rules
	// (rebound's notification kind).
	ExcludeKinds []string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// StatusOf maps a severity to a health state.
func StatusOf(s alert.Severity) string {
	switch s.Rank() {
	case 1:
		return Degraded
	case 2:
		return Unhealthy
	case 3:
		return Critical
	}
	return Healthy
}

// Check reads the rules and counts and returns the report.
func (c *Checker) Check(ctx context.Context) (*Report, error) {
	now := time.Now()
	if c.Now != nil {
		now = c.Now()
	}
	window := c.Window
	if window <= 0 {
		window = DefaultWindow
	}
	rules, err := alert.NewRules(c.DB).List(ctx)
	if err != nil {
		return nil, err
	}
	conds, err := alert.Evaluate(ctx, c.DB, rules, now, &alert.EvalOpts{ExcludeKinds: c.ExcludeKinds})
	if err != nil {
		return nil, err
	}
	stats, err := metricstore.New(c.DB).Window(ctx, now.Add(-window))
	if err != nil {
		return nil, err
	}
	rep := &Report{OverallHealth: Healthy, Jobs: map[string]Kind{}, Alerts: conds}
	if rep.Alerts == nil {
		rep.Alerts = []alert.Condition{}
	}
	worst := alert.Severity("")
	for kind, k := range stats {
		h := Kind{Status: Healthy, Issues: []string{}}
		if rate, ok := k.SuccessRate(); ok {
			r := metricstore.RoundRate(rate)
			h.SuccessRate = &r
		}
		if !k.LastAttemptAt.IsZero() {
			ago := max(int64(now.Sub(k.LastAttemptAt)/time.Second), 0)
			h.LastRunAgo = &ago
		}
		rep.Jobs[kind] = h
	}
	for _, cond := range conds {
		if cond.Severity.Rank() > worst.Rank() {
			worst = cond.Severity
		}
		if cond.Metric != alert.MetricFailureRate {
			continue
		}
		h, ok := rep.Jobs[cond.Subject]
		if !ok {
			continue
		}
		if cond.Severity.Rank() > rankOf(h.Status) {
			h.Status = StatusOf(cond.Severity)
		}
		h.Issues = append(h.Issues, cond.Message)
		rep.Jobs[cond.Subject] = h
	}
	if err := c.addUnknownKindWaits(ctx, rep); err != nil {
		return nil, err
	}
	rep.OverallHealth = StatusOf(worst)
	return rep, nil
}

// addUnknownKindWaits adds, to each kind with jobs retryable after an
// unknown_kind attempt, the issue that names how many wait.
func (c *Checker) addUnknownKindWaits(ctx context.Context, rep *Report) error {
	rows, err := c.DB.Query(ctx, `
SELECT kind, count(*)
  FROM river_job
 WHERE state = 'retryable'
   AND jsonb_typeof(metadata -> 'output' -> 'attempts') = 'array'
   AND metadata -> 'output' -> 'attempts' -> -1 ->> 'class' = 'unknown_kind'
 GROUP BY kind
 ORDER BY kind`)
	if err != nil {
		return fmt.Errorf("health: jobs waiting for a pod that registers their kind: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			kind string
			n    int64
		)
		if err := rows.Scan(&kind, &n); err != nil {
			return fmt.Errorf("health: jobs waiting for a pod that registers their kind: %w", err)
		}
		h, ok := rep.Jobs[kind]
		if !ok {
			h = Kind{Status: Healthy, Issues: []string{}}
		}
		h.Issues = append(h.Issues, UnknownKindIssue(kind, n))
		rep.Jobs[kind] = h
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("health: jobs waiting for a pod that registers their kind: %w", err)
	}
	return nil
}

// UnknownKindIssue is the issue of a kind with n (>= 1) jobs retryable after
// an attempt of class unknown_kind: "1 job waits for a pod that registers
// kind KIND (unknown_kind)", "N jobs wait ..." for more.
func UnknownKindIssue(kind string, n int64) string {
	if n == 1 {
		return fmt.Sprintf("1 job waits for a pod that registers kind %s (unknown_kind)", kind)
	}
	return fmt.Sprintf("%d jobs wait for a pod that registers kind %s (unknown_kind)", n, kind)
}

func rankOf(status string) int {
	switch status {
	case Degraded:
		return 1
	case Unhealthy:
		return 2
	case Critical:
		return 3
	}
	return 0
}

// ExitCode is `rebound health`'s exit code for a state: 0 healthy, 2
// degraded or unhealthy, 3 critical (1 stays "the command failed").
func ExitCode(overall string) int {
	switch overall {
	case Healthy:
		return 0
	case Critical:
		return 3
	}
	return 2
}
