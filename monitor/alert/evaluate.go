package alert

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/rebound-queue/rebound/monitor/metricstore"
)

// SubjectDLQ is the subject of the dead-letter queue rules.
const SubjectDLQ = "dlq"

// Condition is a rule that holds for a subject at one evaluation.
type Condition struct {
	// Rule is the rule's name; Metric its metric.
	Rule   string `json:"rule"`
	Metric string `json:"metric"`
	// Subject is what the rule holds for: a job kind (failure_rate), a
	// circuit breaker key (breaker_open) or "dlq".
	Subject  string   `json:"subject"`
	Severity Severity `json:"severity"`
	// Value is the measured value, Threshold the rule's.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Message says it in words, with no job args or error text.
	Message string `json:"message"`
}

// EvalOpts tunes an evaluation.
type EvalOpts struct {
	// ExcludeKinds are job kinds left out of failure_rate and the
	// dead-letter rules: rebound's own notification kind, so a failing
	// channel never raises alerts sent through itself.
	ExcludeKinds []string
}

// Evaluate computes every enabled rule's value at now and returns the
// conditions that hold, ordered by rule then subject.
func Evaluate(ctx context.Context, db DBTX, rules []Rule, now time.Time, opts *EvalOpts) ([]Condition, error) {
	var o EvalOpts
	if opts != nil {
		o = *opts
	}
	excluded := o.ExcludeKinds
	if excluded == nil {
		excluded = []string{}
	}
	metrics := metricstore.New(db)
	windows := map[time.Duration]map[string]*metricstore.KindStats{}
	var out []Condition
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		switch r.Metric {
		case MetricFailureRate:
			stats, ok := windows[r.Window]
			if !ok {
				var err error
				if stats, err = metrics.Window(ctx, now.Add(-r.Window)); err != nil {
					return nil, err
				}
				windows[r.Window] = stats
			}
			for _, kind := range sortedKeys(stats) {
				if slices.Contains(excluded, kind) {
					continue
				}
				k := stats[kind]
				rate, ok := k.SuccessRate()
				if !ok || k.Finished() < int64(r.MinJobs) {
					continue
				}
				failure := round1(100 - rate)
				if failure > r.Threshold {
					out = append(out, Condition{Rule: r.Name, Metric: r.Metric, Subject: kind, Severity: r.Severity, Value: failure, Threshold: r.Threshold,
						Message: fmt.Sprintf("%s: %.1f%% of %d jobs finished dead-lettered in the last %s (threshold %g%%)", kind, failure, k.Finished(), r.Window, r.Threshold)})
				}
			}
		case MetricBreakerOpen:
			// Half-open is not recovered: the breaker is probing after
			// opening, and goes back to open if the probe fails. Judging
			// only 'open' resolved the alert at every probe and fired it
			// again at the probe's failure.
			rows, err := db.Query(ctx, `SELECT breaker_key, state, extract(epoch FROM $1::timestamptz - coalesce(opened_at, $1::timestamptz))::float8
			                              FROM circuit_breaker_state WHERE state IN ('open', 'half_open') ORDER BY breaker_key`, now)
			if err != nil {
				return nil, fmt.Errorf("read circuit breakers: %w", err)
			}
			for rows.Next() {
				var key, state string
				var openFor float64
				if err := rows.Scan(&key, &state, &openFor); err != nil {
					rows.Close()
					return nil, fmt.Errorf("read circuit breakers: %w", err)
				}
				if 1 > r.Threshold {
					out = append(out, Condition{Rule: r.Name, Metric: r.Metric, Subject: key, Severity: r.Severity, Value: 1, Threshold: r.Threshold,
						Message: breakerMessage(key, state, time.Duration(openFor)*time.Second)})
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("read circuit breakers: %w", err)
			}
		case MetricDLQUnresolved:
			var n float64
			if err := db.QueryRow(ctx, `SELECT coalesce(sum(n), 0)::float8 FROM job_dead_letter_queue_counts
			                              WHERE status = 'unresolved' AND NOT kind = ANY($1)`, excluded).Scan(&n); err != nil {
				return nil, fmt.Errorf("read dead-letter queue size: %w", err)
			}
			if n > r.Threshold {
				out = append(out, Condition{Rule: r.Name, Metric: r.Metric, Subject: SubjectDLQ, Severity: r.Severity, Value: n, Threshold: r.Threshold,
					Message: fmt.Sprintf("%.0f unresolved dead-letter queue %s (threshold %g)", n, plural(n, "entry", "entries"), r.Threshold)})
			}
		case MetricDLQGrowth:
			var n float64
			if err := db.QueryRow(ctx, `SELECT count(*)::float8 FROM job_dead_letter_queue
			                              WHERE dead_lettered_at >= $1 AND NOT kind = ANY($2)`, now.Add(-r.Window), excluded).Scan(&n); err != nil {
				return nil, fmt.Errorf("read dead-letter queue growth: %w", err)
			}
			if n > r.Threshold {
				out = append(out, Condition{Rule: r.Name, Metric: r.Metric, Subject: SubjectDLQ, Severity: r.Severity, Value: n, Threshold: r.Threshold,
					Message: fmt.Sprintf("%.0f %s dead-lettered in the last %s (threshold %g)", n, plural(n, "job", "jobs"), r.Window, r.Threshold)})
			}
		case MetricDLQOldestAge:
			var age *float64
			if err := db.QueryRow(ctx, `SELECT floor(extract(epoch FROM $1::timestamptz - min(dead_lettered_at)))::float8 FROM job_dead_letter_queue
			                              WHERE status = 'unresolved' AND NOT kind = ANY($2)`, now, excluded).Scan(&age); err != nil {
				return nil, fmt.Errorf("read oldest dead-letter entry: %w", err)
			}
			if age != nil && *age > r.Threshold {
				out = append(out, Condition{Rule: r.Name, Metric: r.Metric, Subject: SubjectDLQ, Severity: r.Severity, Value: *age, Threshold: r.Threshold,
					Message: fmt.Sprintf("the oldest unresolved dead-letter entry is %s old (threshold %s)", time.Duration(*age)*time.Second, time.Duration(r.Threshold)*time.Second)})
			}
		}
	}
	return out, nil
}

// round1 rounds to one decimal, as job health shows rates.
// breakerMessage describes an open or half-open breaker; opened is how
// long ago it last opened (circuit_breaker_state.opened_at, which a failed
// probe sets again when it re-opens the breaker).
func breakerMessage(key, state string, opened time.Duration) string {
	if state == "half_open" {
		return fmt.Sprintf("circuit breaker %q is half-open (opened %s ago): probing, its other jobs are parked", key, opened.Round(time.Second))
	}
	return fmt.Sprintf("circuit breaker %q is open (for %s): its jobs are parked", key, opened.Round(time.Second))
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// plural returns one when n is 1, else many.
func plural(n float64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
