package alert

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rebound-queue/rebound/monitor/notify"
)

// Severity is how bad a firing rule is: warning, error or critical. Job
// health maps them to degraded, unhealthy and critical.
type Severity string

// Severities, from least to most severe.
const (
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: 0 for none or an unknown value, then 1, 2, 3.
func (s Severity) Rank() int {
	switch s {
	case SeverityWarning:
		return 1
	case SeverityError:
		return 2
	case SeverityCritical:
		return 3
	}
	return 0
}

// Metrics a rule watches (job_alert_config.metric), with the unit of their
// threshold.
const (
	// MetricFailureRate: per job kind, 100 - success rate over the window,
	// in percent; only kinds with at least MinJobs finished jobs in the
	// window are judged.
	MetricFailureRate = "failure_rate"
	// MetricBreakerOpen: per circuit breaker key, 1 while the breaker
	// counts as open (breaker.CountsAsOpen; threshold 0: any such breaker
	// fires): half-open, open before its probe time, or opened by failures
	// with its probe due for less than that open's timeout (at least
	// breaker.ProbeDueGrace). Half-open counts: a breaker probing after an
	// outage has not recovered, and judging only open resolved the alert
	// at each probe and fired it again when the probe failed. An expired
	// hold set by hand, and a probe nobody has taken for that long, do
	// not: nothing is held off.
	MetricBreakerOpen = "breaker_open"
	// MetricDLQUnresolved: the number of unresolved dead-letter queue
	// entries (subject "dlq").
	MetricDLQUnresolved = "dlq_unresolved"
	// MetricDLQGrowth: the number of jobs dead-lettered within the window
	// (subject "dlq"), whatever became of their entries since: the larger
	// of the pods' counts (job_retry_metrics.dead_lettered, whole minutes,
	// which a purge never touches) and the entries still in the queue
	// dead-lettered in the window.
	MetricDLQGrowth = "dlq_growth"
	// MetricDLQOldestAge: the age of the oldest unresolved entry, in
	// seconds (subject "dlq").
	MetricDLQOldestAge = "dlq_oldest_age"
)

// Metrics lists every metric a rule may watch.
var Metrics = []string{MetricFailureRate, MetricBreakerOpen, MetricDLQUnresolved, MetricDLQGrowth, MetricDLQOldestAge}

// UsesWindow reports whether metric is computed over a rule's Window:
// true for failure_rate and dlq_growth; the other metrics are a state now
// and ignore it.
func UsesWindow(metric string) bool { return metric == MetricFailureRate || metric == MetricDLQGrowth }

// DefaultCooldown is a rule's cooldown when none is given: 1 hour
// (Alertmanager's repeat_interval).
const DefaultCooldown = time.Hour

// Rule is one alert rule (a job_alert_config row): it fires for a subject
// when Metric's value is above Threshold over Window.
type Rule struct {
	// Name identifies the rule: lower-case letters, digits, '-' and '_', at
	// most 63 characters.
	Name string `json:"name"`
	// Metric is one of Metrics.
	Metric string `json:"metric"`
	// Threshold: the rule fires while the value is strictly above it
	// (percent for failure_rate, a count, or seconds for dlq_oldest_age).
	Threshold float64 `json:"threshold"`
	// Window is the period the value is computed over (failure_rate,
	// dlq_growth; see UsesWindow); 1 minute to 30 days. The other metrics
	// ignore it (job_alert_config still stores one).
	Window time.Duration `json:"-"`
	// MinJobs is, for failure_rate, the least number of finished jobs in
	// the window for a kind to be judged (so 1 failure in 2 jobs is not an
	// incident).
	MinJobs int `json:"min_jobs"`
	// Severity is warning, error or critical.
	Severity Severity `json:"severity"`
	// Cooldown is how long a firing (rule, subject) stays quiet before it
	// is notified again, if still firing; 0 to 30 days.
	Cooldown time.Duration `json:"-"`
	// Channels names the notification channels (from the configuration
	// file) the rule notifies.
	Channels []string `json:"channels"`
	// Enabled: a disabled rule is not evaluated (and resolves what it had
	// fired).
	Enabled bool `json:"enabled"`
}

// WindowSeconds and CooldownSeconds are the JSON forms of Window and
// Cooldown.
func (r Rule) WindowSeconds() int64   { return int64(r.Window / time.Second) }
func (r Rule) CooldownSeconds() int64 { return int64(r.Cooldown / time.Second) }

var ruleNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Validate returns an error naming the first field of r that is wrong: a
// [*FieldError] for the name, metric, threshold, window, min_jobs, severity
// and cooldown, e.g. "threshold -1: a number from 0 up".
func (r *Rule) Validate() error {
	switch {
	case !ruleNameRE.MatchString(r.Name):
		return &FieldError{"name", fmt.Sprintf("%q", r.Name), "use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)"}
	case !validMetric(r.Metric):
		return &FieldError{"metric", fmt.Sprintf("%q", r.Metric), "one of " + strings.Join(Metrics, ", ")}
	case r.Threshold < 0 || r.Threshold != r.Threshold || r.Threshold > 1e15:
		return &FieldError{"threshold", fmt.Sprint(r.Threshold), "a number from 0 up"}
	case r.Metric == MetricFailureRate && r.Threshold >= 100:
		return &FieldError{"threshold", fmt.Sprint(r.Threshold), "a failure rate is a percent below 100"}
	case r.Window < time.Minute || r.Window > 30*24*time.Hour || r.Window%time.Second != 0:
		return &FieldError{"window", r.Window.String(), "whole seconds from 1m to 720h"}
	case r.MinJobs < 0 || r.MinJobs > 1_000_000_000:
		return &FieldError{"min_jobs", strconv.Itoa(r.MinJobs), "from 0 to 1000000000"}
	case r.Severity.Rank() == 0:
		return &FieldError{"severity", fmt.Sprintf("%q", r.Severity), "warning, error or critical"}
	case r.Cooldown < 0 || r.Cooldown > 30*24*time.Hour || r.Cooldown%time.Second != 0:
		return &FieldError{"cooldown", r.Cooldown.String(), "whole seconds from 0 to 720h"}
	}
	for i, c := range r.Channels {
		if !notify.ValidChannelName(c) {
			return fmt.Errorf("channel %q: %s", c, notify.ChannelNameRule)
		}
		// Each channel listed gets its own delivery job: a name listed
		// twice would notify that channel twice per event.
		if slices.Contains(r.Channels[:i], c) {
			return fmt.Errorf("channel %q is listed twice", c)
		}
	}
	return nil
}

// FieldError is a setting of a [Rule] that [Rule.Validate] refuses, so a
// caller can say it in its own terms (rebound alerts set names the flag).
type FieldError struct {
	// Field is the setting as job_alert_config and the JSON name it: name,
	// metric, threshold, window, min_jobs, severity or cooldown.
	Field string
	// Value is the refused value as Validate shows it: quoted for text
	// (`"cpu"`), a duration as time.Duration prints it (10s).
	Value string
	// Problem says what the setting must be, e.g. "a number from 0 up".
	Problem string
}

// Error returns "FIELD VALUE: PROBLEM", e.g. "window 10s: whole seconds
// from 1m to 720h".
func (e *FieldError) Error() string { return e.Field + " " + e.Value + ": " + e.Problem }

func validMetric(m string) bool {
	for _, x := range Metrics {
		if x == m {
			return true
		}
	}
	return false
}

// DBTX is what the alert stores need of a connection: a *pgxpool.Pool, a
// pgx.Tx or a *pgx.Conn.
type DBTX interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Rules reads and changes job_alert_config.
type Rules struct{ db DBTX }

// NewRules returns the rule store on db.
func NewRules(db DBTX) *Rules { return &Rules{db: db} }

// ErrNoRule is returned for a rule name not in job_alert_config.
var ErrNoRule = errors.New("no such alert rule")

const ruleColumns = `name, metric, threshold, window_seconds, min_jobs, severity, cooldown_seconds, channels, enabled`

func scanRule(row pgx.Row) (Rule, error) {
	var r Rule
	var window, cooldown int64
	var sev string
	err := row.Scan(&r.Name, &r.Metric, &r.Threshold, &window, &r.MinJobs, &sev, &cooldown, &r.Channels, &r.Enabled)
	r.Window, r.Cooldown, r.Severity = time.Duration(window)*time.Second, time.Duration(cooldown)*time.Second, Severity(sev)
	if r.Channels == nil {
		r.Channels = []string{}
	}
	return r, err
}

// List returns every rule, by name.
func (s *Rules) List(ctx context.Context) ([]Rule, error) {
	rows, err := s.db.Query(ctx, `SELECT `+ruleColumns+` FROM job_alert_config ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read alert rules: %w", err)
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, fmt.Errorf("read alert rules: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Get returns one rule, or ErrNoRule (also for a name no rule can have,
// such as one that is not valid UTF-8, without asking the database).
func (s *Rules) Get(ctx context.Context, name string) (Rule, error) {
	if !ruleNameRE.MatchString(name) {
		return Rule{}, fmt.Errorf("%w: %q", ErrNoRule, name)
	}
	r, err := scanRule(s.db.QueryRow(ctx, `SELECT `+ruleColumns+` FROM job_alert_config WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("%w: %q", ErrNoRule, name)
	}
	return r, err
}

// Put validates r and creates or replaces the rule of its name.
func (s *Rules) Put(ctx context.Context, r Rule) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Channels == nil {
		r.Channels = []string{}
	}
	_, err := s.db.Exec(ctx, `
INSERT INTO job_alert_config (`+ruleColumns+`, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
ON CONFLICT (name) DO UPDATE SET metric = excluded.metric, threshold = excluded.threshold,
    window_seconds = excluded.window_seconds, min_jobs = excluded.min_jobs, severity = excluded.severity,
    cooldown_seconds = excluded.cooldown_seconds, channels = excluded.channels, enabled = excluded.enabled,
    updated_at = now()`,
		r.Name, r.Metric, r.Threshold, r.WindowSeconds(), r.MinJobs, string(r.Severity), r.CooldownSeconds(), r.Channels, r.Enabled)
	if err != nil {
		return fmt.Errorf("save alert rule %q: %w", r.Name, err)
	}
	return nil
}

// SetEnabled enables or disables a rule; ErrNoRule when there is none
// (also for a name no rule can have).
func (s *Rules) SetEnabled(ctx context.Context, name string, enabled bool) error {
	if !ruleNameRE.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrNoRule, name)
	}
	tag, err := s.db.Exec(ctx, `UPDATE job_alert_config SET enabled = $2, updated_at = now() WHERE name = $1`, name, enabled)
	if err != nil {
		return fmt.Errorf("update alert rule %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%w: %q", ErrNoRule, name)
	}
	return nil
}

// ParseSeconds reads a duration given as Go's "15m" or a number of
// seconds ("900").
func ParseSeconds(s string) (time.Duration, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 || n > 1<<31 {
			return 0, fmt.Errorf("%q: out of range", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: a duration like 15m or 900 (seconds)", s)
	}
	return d, nil
}

// UnknownChannelError is an enabled rule naming a channel the
// configuration does not define (see UnknownChannels): its notifications
// through that channel can only fail.
type UnknownChannelError struct {
	// Rule is the rule's name, Channel the channel it names.
	Rule, Channel string
	// Configured are the channels the configuration defines, sorted.
	Configured []string
}

// Error returns `alert rule "R" names channel "C", which is not configured
// (configured channels: a, b)`, or "(no channel is configured)".
func (e *UnknownChannelError) Error() string {
	have := "no channel is configured"
	if len(e.Configured) > 0 {
		have = "configured channels: " + strings.Join(e.Configured, ", ")
	}
	return fmt.Sprintf("alert rule %q names channel %q, which is not configured (%s)", e.Rule, e.Channel, have)
}

// UnknownChannels returns one *UnknownChannelError per enabled rule and
// channel it names that is not a key of configured: rules in the order
// given (Rules.List sorts by name), each rule's channels in its order; nil
// when there is none. A disabled rule notifies no one and is not checked.
func UnknownChannels[C any](rules []Rule, configured map[string]C) []*UnknownChannelError {
	var out []*UnknownChannelError
	var names []string
	for _, r := range rules {
		if !r.Enabled {
			continue
		}
		for _, c := range r.Channels {
			if _, ok := configured[c]; ok {
				continue
			}
			if names == nil {
				names = slices.Sorted(maps.Keys(configured))
				if names == nil {
					names = []string{}
				}
			}
			out = append(out, &UnknownChannelError{Rule: r.Name, Channel: c, Configured: names})
		}
	}
	return out
}
