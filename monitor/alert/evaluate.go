package alert

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/rebound-queue/rebound/breaker"
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
			// A breaker counts while breaker.CountsAsOpen says so (the
			// rebound_breaker_open gauge's rule): half-open is not
			// recovered (judging only 'open' resolved the alert at every
			// probe and fired it again at the probe's failure), and a
			// probe-due breaker nobody calls stops counting.
			rows, err := db.Query(ctx, `SELECT breaker_key, state, opened_at, next_probe_at, changed_at, trip_count, open_since
			                              FROM circuit_breaker_state WHERE state IN ('open', 'half_open') ORDER BY breaker_key`)
			if err != nil {
				return nil, fmt.Errorf("read circuit breakers: %w", err)
			}
			for rows.Next() {
				var b openBreaker
				var state string
				var opened, next, changed, since *time.Time
				if err := rows.Scan(&b.key, &state, &opened, &next, &changed, &b.trips, &since); err != nil {
					rows.Close()
					return nil, fmt.Errorf("read circuit breakers: %w", err)
				}
				if b.state, err = breaker.ParseState(state); err != nil {
					rows.Close()
					return nil, fmt.Errorf("read circuit breakers: %w", err)
				}
				b.openedAt, b.nextProbeAt, b.changedAt, b.openSince = finite(opened), finite(next), finite(changed), finite(since)
				if breaker.CountsAsOpen(b.state, b.openedAt, b.nextProbeAt, b.changedAt, now) && 1 > r.Threshold {
					out = append(out, Condition{Rule: r.Name, Metric: r.Metric, Subject: b.key, Severity: r.Severity, Value: 1, Threshold: r.Threshold,
						Message: b.message(now)})
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
			// Jobs dead-lettered in the window, whatever became of their
			// entries since: a purge deletes handled entries, and counting
			// the rows still there resolved the alert at every purge. The
			// pods' job counts (job_retry_metrics.dead_lettered, whole
			// minutes as metricstore.Window counts them) outlive a purge
			// but miss jobs River's rescuer discards; the entries miss
			// purged ones. Each can only undercount, so the larger is
			// taken.
			var n float64
			if err := db.QueryRow(ctx, `SELECT greatest(
			        (SELECT coalesce(sum(dead_lettered), 0) FROM job_retry_metrics WHERE period_start >= $1 AND NOT kind = ANY($3)),
			        (SELECT count(*) FROM job_dead_letter_queue WHERE dead_lettered_at >= $2 AND NOT kind = ANY($3)))::float8`,
				now.Add(-r.Window).UTC().Truncate(time.Minute), now.Add(-r.Window), excluded).Scan(&n); err != nil {
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

// openBreaker is a row of circuit_breaker_state as the breaker_open rule
// reads it (zero times: NULL columns).
type openBreaker struct {
	key                                         string
	state                                       breaker.State
	openedAt, nextProbeAt, changedAt, openSince time.Time
	trips                                       int
}

// finite is *t, zero for NULL.
func finite(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// message describes a breaker that counts as open at now: how long it has
// been out of closed (open_since, the first open of this outage; opened_at
// restarts at every re-open), how many times it opened in that time and
// the last one's age when more than once, or that an operator holds it
// open:
//
//	circuit breaker "api" is open (for 5m3s; opened 7 times, last 0s ago): its jobs are parked
//	circuit breaker "maint1" is open (held open by hand 10s ago, for another 30s): its jobs are parked
func (b openBreaker) message(now time.Time) string {
	ago := func(t time.Time) string { return max(now.Sub(t), 0).Round(time.Second).String() }
	since := b.openSince
	if since.IsZero() {
		since = b.openedAt
	}
	byHand := !b.openedAt.IsZero() && !b.changedAt.IsZero() && !b.changedAt.Before(b.openedAt)
	var parts []string
	switch {
	case byHand && since.Equal(b.openedAt):
		// The hold started the time out of closed: said once, below.
	case since.IsZero():
		parts = append(parts, "since an unknown time")
	case b.state == breaker.StateHalfOpen:
		parts = append(parts, "out of closed for "+ago(since))
	default:
		parts = append(parts, "for "+ago(since))
	}
	switch {
	case b.openedAt.IsZero():
	case byHand:
		hold := "held open by hand " + ago(b.openedAt) + " ago"
		if b.state == breaker.StateOpen && b.nextProbeAt.After(now) {
			hold += ", for another " + b.nextProbeAt.Sub(now).Round(time.Second).String()
		}
		parts = append(parts, hold)
	case b.trips > 1:
		parts = append(parts, fmt.Sprintf("opened %d times, last %s ago", b.trips, ago(b.openedAt)))
	}
	detail := strings.Join(parts, "; ")
	switch {
	case b.state == breaker.StateHalfOpen:
		return fmt.Sprintf("circuit breaker %q is half-open (%s): probing, its other jobs are parked", b.key, detail)
	case !b.nextProbeAt.IsZero() && !b.nextProbeAt.After(now):
		return fmt.Sprintf("circuit breaker %q is open (%s): its probe has been due for %s and no job has taken it yet", b.key, detail, ago(b.nextProbeAt))
	}
	return fmt.Sprintf("circuit breaker %q is open (%s): its jobs are parked", b.key, detail)
}

// round1 rounds to one decimal, as job health shows rates.
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
