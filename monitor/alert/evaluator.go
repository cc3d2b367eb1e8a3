package alert

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// Inserter inserts jobs in the caller's transaction: the pod
// (rebound.Pod.InsertManyTx) or a River client.
type Inserter interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// Evaluator evaluates the rules and records and notifies what changed.
// Two evaluators may run at once (two pods, a new leader): each (rule,
// subject) is decided under its job_alert_state row's lock, so one of them
// notifies and the other sees it done.
type Evaluator struct {
	// DB is the database. Required.
	DB DBTX
	// Inserter inserts the delivery jobs in the transaction that records
	// the event. Required to notify; nil records history only.
	Inserter Inserter
	// Queue is the queue of the delivery jobs; "" means River's default.
	Queue string
	// Channels are the configured channels; a rule's channel that is not
	// one of them is recorded as failed in the history row.
	Channels map[string]notify.Channel
	// ExcludeKinds: see EvalOpts.
	ExcludeKinds []string
	// Link is put in every message (e.g. the job-health URL); "" for none.
	Link string
	// Metrics, when set, counts each delivery the evaluator records failed
	// itself (a channel of the rule that Channels does not define) in
	// rebound_notifications_total{channel,outcome="failed"}, once its event
	// is committed; see notify.Metrics.CountUndefined for the channel label.
	Metrics *notify.Metrics
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one info line per firing and resolution.
	Logger *slog.Logger
}

// Result counts what one evaluation did.
type Result struct {
	Firing   int `json:"firing"`
	Repeat   int `json:"repeat"`
	Resolved int `json:"resolved"`
}

// Events of job_alert_history.
const (
	EventFiring   = "firing"
	EventRepeat   = "repeat"
	EventResolved = "resolved"
	EventTest     = "test"
)

type pairKey struct{ rule, subject string }

// Run evaluates every enabled rule once.
func (e *Evaluator) Run(ctx context.Context) (Result, error) {
	var res Result
	now := time.Now()
	if e.Now != nil {
		now = e.Now()
	}
	now = now.UTC()
	rules, err := NewRules(e.DB).List(ctx)
	if err != nil {
		return res, err
	}
	byName := map[string]Rule{}
	for _, r := range rules {
		byName[r.Name] = r
	}
	conds, err := Evaluate(ctx, e.DB, rules, now, &EvalOpts{ExcludeKinds: e.ExcludeKinds})
	if err != nil {
		return res, err
	}
	holding := map[pairKey]bool{}
	for _, c := range conds {
		holding[pairKey{c.Rule, c.Subject}] = true
		ev, err := e.decide(ctx, byName[c.Rule], &c, now)
		if err != nil {
			return res, err
		}
		res.count(ev)
	}
	// Pairs firing that no longer hold (or whose rule was disabled or
	// removed) resolve.
	rows, err := e.DB.Query(ctx, `SELECT rule, subject, severity, value, threshold FROM job_alert_state WHERE firing_since IS NOT NULL ORDER BY rule, subject`)
	if err != nil {
		return res, fmt.Errorf("read alert state: %w", err)
	}
	var stale []Condition
	for rows.Next() {
		var c Condition
		var sev string
		if err := rows.Scan(&c.Rule, &c.Subject, &sev, &c.Value, &c.Threshold); err != nil {
			rows.Close()
			return res, fmt.Errorf("read alert state: %w", err)
		}
		c.Severity = Severity(sev)
		if !holding[pairKey{c.Rule, c.Subject}] {
			stale = append(stale, c)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return res, fmt.Errorf("read alert state: %w", err)
	}
	for _, c := range stale {
		ev, err := e.decide(ctx, byName[c.Rule], &c, now)
		if err != nil {
			return res, err
		}
		res.count(ev)
	}
	return res, nil
}

func (r *Result) count(ev string) {
	switch ev {
	case EventFiring:
		r.Firing++
	case EventRepeat:
		r.Repeat++
	case EventResolved:
		r.Resolved++
	}
}

// decide settles one (rule, subject) under its row lock. rule is c's rule
// as job_alert_config has it, the zero Rule when it was removed. c.Message
// == "" means the condition no longer holds (or the rule was disabled or
// removed). It returns the event recorded, or "".
func (e *Evaluator) decide(ctx context.Context, rule Rule, c *Condition, now time.Time) (string, error) {
	holds := c.Message != ""
	tx, err := e.DB.Begin(ctx)
	if err != nil {
		return "", fmt.Errorf("alert %s/%s: %w", c.Rule, c.Subject, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if holds {
		if _, err := tx.Exec(ctx, `INSERT INTO job_alert_state (rule, subject, severity, value, threshold, message, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'epoch') ON CONFLICT DO NOTHING`,
			c.Rule, c.Subject, string(c.Severity), c.Value, c.Threshold, storable(c.Message)); err != nil {
			return "", fmt.Errorf("alert %s/%s: %w", c.Rule, c.Subject, err)
		}
	}
	var firingSince, lastNotified *time.Time
	// updatedAt is the last evaluation that decided the pair: while it
	// fires, the last one at which it held.
	var updatedAt time.Time
	err = tx.QueryRow(ctx, `SELECT firing_since, last_notified, updated_at FROM job_alert_state WHERE rule = $1 AND subject = $2 FOR UPDATE`,
		c.Rule, c.Subject).Scan(&firingSince, &lastNotified, &updatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("alert %s/%s: %w", c.Rule, c.Subject, err)
	}
	if !updatedAt.Before(now) {
		return "", nil // an evaluation of this instant or later already decided this pair
	}
	event := ""
	switch {
	case holds && firingSince == nil:
		event = EventFiring
		firingSince = &now
	case holds && lastNotified != nil && now.Sub(*lastNotified) >= rule.Cooldown:
		event = EventRepeat
	case !holds && firingSince != nil:
		event = EventResolved
	}
	if holds {
		notified := lastNotified
		if event != "" {
			notified = &now
		}
		_, err = tx.Exec(ctx, `UPDATE job_alert_state SET severity = $3, value = $4, threshold = $5, message = $6,
			firing_since = $7, last_notified = $8, updated_at = $9 WHERE rule = $1 AND subject = $2`,
			c.Rule, c.Subject, string(c.Severity), c.Value, c.Threshold, storable(c.Message), firingSince, notified, now)
	} else {
		_, err = tx.Exec(ctx, `UPDATE job_alert_state SET firing_since = NULL, updated_at = $3 WHERE rule = $1 AND subject = $2`,
			c.Rule, c.Subject, now)
	}
	if err != nil {
		return "", fmt.Errorf("alert %s/%s: %w", c.Rule, c.Subject, err)
	}
	if event == "" {
		return "", tx.Commit(ctx)
	}
	msg, channels := c.Message, rule.Channels
	if event == EventResolved {
		// The resolved notice goes where the firing went: the channels it
		// was last notified through, whatever the rule names now (it may
		// have been changed, disabled or removed since). Without that
		// history, the rule's channels.
		changed, err := ruleChangedSince(ctx, tx, rule, c, updatedAt)
		if err != nil {
			return "", err
		}
		msg = resolvedMessage(rule, c, changed)
		fired, found, err := firedChannels(ctx, tx, c, *firingSince)
		if err != nil {
			return "", err
		}
		if found {
			channels = fired
		}
	}
	metric := cmp.Or(c.Metric, rule.Metric)
	undefined, skipped, err := e.record(ctx, tx, channels, c, metric, event, msg, *firingSince, now)
	if err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", fmt.Errorf("alert %s/%s: %w", c.Rule, c.Subject, err)
	}
	if e.Metrics != nil {
		for _, name := range undefined {
			e.Metrics.CountUndefined(name)
		}
		for _, name := range skipped {
			e.Metrics.CountSkipped(name)
		}
	}
	if e.Logger != nil {
		e.Logger.Info("alert "+event, "rule", c.Rule, "subject", redact.Text(c.Subject), "severity", string(c.Severity), "value", c.Value, "threshold", c.Threshold)
		if len(skipped) > 0 {
			msg := "alert not sent through the channels on the host whose breaker it is about; the other channels of the rule get it"
			if len(skipped) == len(channels) {
				msg = "alert not sent: every channel of the rule is on the host whose breaker it is about (recorded in the alert history only)"
			}
			e.Logger.Warn(msg, "rule", c.Rule, "subject", redact.Text(c.Subject), "event", event, "channels", strings.Join(skipped, ","))
		}
	}
	return event, nil
}

// resolvedMessage says why the firing (rule, subject) c resolved: rule is
// the rule as job_alert_config has it now, zero when it was removed;
// changed is whether it was changed after the last evaluation at which c
// held (c's value and threshold are that evaluation's, under the rule as it
// was then).
func resolvedMessage(rule Rule, c *Condition, changed bool) string {
	why := "no longer holds"
	switch {
	case rule.Name == "":
		why = "resolved: the rule was removed"
	case !rule.Enabled:
		why = "resolved: the rule was disabled"
	case changed:
		now := fmt.Sprintf("%s > %g", rule.Metric, rule.Threshold)
		if UsesWindow(rule.Metric) {
			now += " over " + rule.Window.String()
		}
		if rule.Metric == MetricFailureRate {
			now += fmt.Sprintf(" with at least %d finished jobs", rule.MinJobs)
		}
		return fmt.Sprintf("%s on %s resolved after the rule was changed (now %s; it last held with value %g, threshold %g)", c.Rule, c.Subject, now, c.Value, c.Threshold)
	}
	return fmt.Sprintf("%s on %s %s (last value %g, threshold %g)", c.Rule, c.Subject, why, c.Value, c.Threshold)
}

// ruleChangedSince reports whether rule (as Run read it; zero when removed)
// was changed after lastHeld, the last evaluation at which c held: its
// threshold is not c's, or its job_alert_config row was saved since
// (updated_at, set by Rules.Put and SetEnabled).
func ruleChangedSince(ctx context.Context, tx pgx.Tx, rule Rule, c *Condition, lastHeld time.Time) (bool, error) {
	if rule.Name == "" {
		return false, nil
	}
	if rule.Threshold != c.Threshold {
		return true, nil
	}
	var changed bool
	err := tx.QueryRow(ctx, `SELECT updated_at > $2 FROM job_alert_config WHERE name = $1`, rule.Name, lastHeld).Scan(&changed)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("alert %s/%s: read the rule's last change: %w", c.Rule, c.Subject, err)
	}
	return changed, nil
}

// firedChannels returns the channels of the latest firing or repeat event
// of c's firing since since, from job_alert_history (job_alert_state keeps
// no channels); found is false when that history is gone.
func firedChannels(ctx context.Context, tx pgx.Tx, c *Condition, since time.Time) (channels []string, found bool, err error) {
	err = tx.QueryRow(ctx, `SELECT channels FROM job_alert_history WHERE rule = $1 AND subject = $2 AND event IN ('firing', 'repeat')
		AND firing_since = $3 ORDER BY id DESC LIMIT 1`, c.Rule, historySubject(c), since).Scan(&channels)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("alert %s/%s: read fired channels: %w", c.Rule, c.Subject, err)
	}
	return channels, true, nil
}

// historySubject is c's subject as job_alert_history stores it: redacted
// and storable. firedChannels looks rows up by it, so both must agree.
func historySubject(c *Condition) string { return storable(redact.Text(c.Subject)) }

// OwnBreaker reports whether an event of a rule on metric about subject
// is about the circuit breaker of the channel whose host is host: metric
// breaker_open (or "" for a rule since removed) and subject
// "notify:<host>". Such an event is not sent through that channel: the
// delivery would wait behind, or fail on, the very breaker it reports.
func OwnBreaker(metric, subject, host string) bool {
	return (metric == MetricBreakerOpen || metric == "") && host != "" && subject == notify.Args{Host: host}.OperationKey()
}

// record inserts the history row and its delivery jobs (one per channel)
// in tx; metric is the rule's metric ("" when the rule was removed). It
// returns the channels recorded failed at once (not defined in
// e.Channels, or no Inserter) and those skipped (OwnBreaker), for the
// caller to count once tx commits.
func (e *Evaluator) record(ctx context.Context, tx pgx.Tx, channels []string, c *Condition, metric, event, msg string, since, now time.Time) (failed, skipped []string, err error) {
	channels = slices.Clone(channels)
	if channels == nil {
		channels = []string{}
	}
	delivery := map[string]notify.Delivery{}
	var jobs []river.InsertManyParams
	var id int64
	// The history row first, for its ID.
	if err := tx.QueryRow(ctx, `INSERT INTO job_alert_history (rule, subject, event, severity, value, threshold, message, channels, created_at, firing_since)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		c.Rule, historySubject(c), event, string(c.Severity), c.Value, c.Threshold, storable(redact.Text(msg)), channels, now, since).Scan(&id); err != nil {
		return nil, nil, fmt.Errorf("alert %s/%s: record history: %w", c.Rule, c.Subject, err)
	}
	for _, name := range channels {
		ch, ok := e.Channels[name]
		if !ok || e.Inserter == nil {
			delivery[name] = notify.Delivery{Outcome: notify.OutcomeFailed, Error: "channel " + name + " is not configured in this pod", At: now}
			failed = append(failed, name)
			continue
		}
		if OwnBreaker(metric, c.Subject, ch.Host()) {
			delivery[name] = notify.Delivery{Outcome: notify.OutcomeSkipped,
				Error: "not sent through " + name + ": the event is about its own host's circuit breaker (" + notify.Args{Host: ch.Host()}.OperationKey() + ")", At: now}
			skipped = append(skipped, name)
			continue
		}
		var opts *river.InsertOpts
		if e.Queue != "" {
			opts = &river.InsertOpts{Queue: e.Queue}
		}
		jobs = append(jobs, river.InsertManyParams{Args: notify.Args{HistoryID: id, Channel: name, Host: ch.Host()}, InsertOpts: opts})
	}
	if len(delivery) > 0 {
		b, _ := json.Marshal(delivery)
		// A string, not []byte: jsonb cannot read bytea text (exec and
		// simple_protocol modes).
		if _, err := tx.Exec(ctx, `UPDATE job_alert_history SET delivery = delivery || $2::jsonb WHERE id = $1::bigint`, id, string(b)); err != nil {
			return nil, nil, fmt.Errorf("alert %s/%s: record delivery: %w", c.Rule, c.Subject, err)
		}
	}
	if len(jobs) > 0 {
		if _, err := e.Inserter.InsertManyTx(ctx, tx, jobs); err != nil {
			return nil, nil, fmt.Errorf("alert %s/%s: insert delivery jobs: %w", c.Rule, c.Subject, err)
		}
	}
	return failed, skipped, nil
}

// storable drops NUL and invalid UTF-8, which text columns refuse.
func storable(s string) string {
	return strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "\uFFFD")
}
