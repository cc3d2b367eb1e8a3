package monitor

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Namespace prefixes every metric rebound exports.
const Namespace = "rebound"

// Metrics holds the metrics a worker pod updates in process. Build it with
// [NewMetrics]; every field is registered and ready to use.
//
// No label ever holds a job ID, an error message or a URL: kind, queue,
// outcome, class and strategy come from small fixed sets (kinds and queues
// are configured by the operator).
type Metrics struct {
	// JobAttempts counts worked attempts by outcome: completed, errored (will
	// be retried), discarded (attempts used up), cancelled (ended for good by
	// the job or the retry policy), snoozed (no attempt used), interrupted
	// (returned to the queue at shutdown, no attempt used) and panicked.
	// rebound_job_attempts_total{kind,queue,outcome}
	JobAttempts *prometheus.CounterVec

	// JobDuration is how long attempts ran, in seconds, by outcome.
	// rebound_job_duration_seconds{kind,outcome}
	JobDuration *prometheus.HistogramVec

	// JobErrors counts failed attempts by failure class.
	// rebound_job_errors_total{kind,class}
	JobErrors *prometheus.CounterVec

	// RetriesScheduled counts retries the retry policy scheduled.
	// rebound_retries_scheduled_total{kind,class,strategy}
	RetriesScheduled *prometheus.CounterVec

	// RetryDelay is the delay chosen before a retry, in seconds.
	// rebound_retry_delay_seconds{class}
	RetryDelay *prometheus.HistogramVec
}

// Outcomes of an attempt, the values of the outcome label.
const (
	OutcomeCompleted   = "completed"
	OutcomeErrored     = "errored"
	OutcomeDiscarded   = "discarded"
	OutcomeCancelled   = "cancelled"
	OutcomeSnoozed     = "snoozed"
	OutcomeInterrupted = "interrupted"
	OutcomePanicked    = "panicked"
)

// ObserveFailedAttempt counts one failed attempt of a job of kind in
// rebound_job_errors_total, and, when a retry follows (retry true, after
// delay), in rebound_retries_scheduled_total and
// rebound_retry_delay_seconds.
func (m *Metrics) ObserveFailedAttempt(kind, class, strategy string, retry bool, delay time.Duration) {
	m.JobErrors.WithLabelValues(kind, class).Inc()
	if retry {
		m.RetriesScheduled.WithLabelValues(kind, class, strategy).Inc()
		m.RetryDelay.WithLabelValues(class).Observe(delay.Seconds())
	}
}

// Outcomes lists every value of the outcome label of
// rebound_job_attempts_total, in a fixed order.
func Outcomes() []string {
	return []string{OutcomeCompleted, OutcomeErrored, OutcomeDiscarded, OutcomeCancelled,
		OutcomeSnoozed, OutcomeInterrupted, OutcomePanicked}
}

// KnownLabels are the label values a pod knows when it starts, for
// [Metrics.Initialize].
type KnownLabels struct {
	// Kinds are the job kinds the pod is configured for.
	Kinds []string
	// Queues are the queues the pod works.
	Queues []string
	// Classes are the failure classes (retrypolicy.Classes()).
	Classes []string
	// Strategy returns the backoff strategy a retry of kind after a failure
	// of class uses, or "" when that class is never retried for kind. nil
	// means no retries_scheduled series are created.
	Strategy func(kind, class string) string
}

// Initialize creates, at 0, the counter series whose label values are
// known at start, so each appears in the first scrape and Prometheus's
// increase() and rate() count its first event (they ignore a series' first
// sample): rebound_job_attempts_total for every kind × queue × outcome
// (len(Kinds)·len(Queues)·7 series), rebound_job_errors_total for every
// kind × class (len(Kinds)·len(Classes)), and
// rebound_retries_scheduled_total for every kind × retried class with its
// strategy (at most len(Kinds)·len(Classes)); and the histograms the same
// way: rebound_job_duration_seconds for every kind × outcome and
// rebound_retry_delay_seconds for every class, so that
// histogram_quantile over rate() sees their first observation too. Safe to
// call more than once; it never resets a count.
func (m *Metrics) Initialize(k KnownLabels) {
	for _, kind := range k.Kinds {
		for _, queue := range k.Queues {
			for _, outcome := range Outcomes() {
				m.JobAttempts.WithLabelValues(kind, queue, outcome)
			}
		}
		for _, outcome := range Outcomes() {
			m.JobDuration.WithLabelValues(kind, outcome)
		}
		for _, class := range k.Classes {
			m.JobErrors.WithLabelValues(kind, class)
			if k.Strategy == nil {
				continue
			}
			if strategy := k.Strategy(kind, class); strategy != "" {
				m.RetriesScheduled.WithLabelValues(kind, class, strategy)
			}
		}
	}
	for _, class := range k.Classes {
		m.RetryDelay.WithLabelValues(class)
	}
}

// NewMetrics creates rebound's in-process metrics and registers them with
// reg (use a non-global registry; prometheus.NewRegistry()). It returns an
// error naming the metric when one is already registered there (a second
// pod on the same registry), and registers none of them then.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		JobAttempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "job_attempts_total",
			Help:      "Attempts worked by this pod, by job kind, queue and outcome (completed, errored, discarded, cancelled, snoozed, interrupted, panicked).",
		}, []string{"kind", "queue", "outcome"}),
		JobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "job_duration_seconds",
			Help:      "Time an attempt ran, in seconds, by job kind and outcome.",
			Buckets:   []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"kind", "outcome"}),
		JobErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "job_errors_total",
			Help:      "Failed attempts by job kind and failure class.",
		}, []string{"kind", "class"}),
		RetriesScheduled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace,
			Name:      "retries_scheduled_total",
			Help:      "Retries scheduled by the retry policy, by job kind, failure class and backoff strategy.",
		}, []string{"kind", "class", "strategy"}),
		RetryDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace,
			Name:      "retry_delay_seconds",
			Help:      "Delay chosen before a retry, in seconds, by failure class.",
			Buckets:   []float64{.1, .5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600},
		}, []string{"class"}),
	}
	collectors := []prometheus.Collector{m.JobAttempts, m.JobDuration, m.JobErrors, m.RetriesScheduled, m.RetryDelay}
	for i, c := range collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range collectors[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("register rebound's job metrics: %w", err)
		}
	}
	return m, nil
}
