package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// Kind is the job kind of a delivery.
const Kind = "rebound_notify"

// Retry settings of the rebound_notify kind's own policy ([RetryPolicy]):
// pod-wide retry settings (Config.RetryPolicy, retry.default) do not apply
// to deliveries.
const (
	// RetryMaxAttempts is a delivery's attempts, the first included: 150.
	RetryMaxAttempts = 150
	// RetryInitialDelay is the first wait: 5 s, doubling per failure
	// (server_error, network; rate_limited triples, timeout grows linearly).
	RetryInitialDelay = 5 * time.Second
	// RetryMaxDelay caps a wait: 5 minutes.
	RetryMaxDelay = 5 * time.Minute
	// RetrySpan is the time a delivery spends waiting between its
	// attempts before it is dead-lettered, with the exponential strategy
	// and no jitter: 5+10+20+40+80+160 s, then 143 waits of 300 s —
	// 43,215 s, 12 h 0 min 15 s (jitter moves each wait by up to ±20 %).
	// Time parked behind the channel's open breaker uses no attempt and
	// comes on top (at most the breaker's max_park, 24 h, per park).
	RetrySpan = 43215 * time.Second
)

// RetryPolicy returns the rebound_notify kind's own retry policy, resolved
// (every field set, Rules holding every class): RetryMaxAttempts attempts,
// RetryInitialDelay doubling up to RetryMaxDelay, and retrypolicy's
// defaults for the rest (100 ms floor, ±20 % jitter, Retry-After capped at
// 1 h, 2 rescues, the decision matrix). A receiver outage of up to about
// RetrySpan loses nothing; after a few failures the channel's breaker
// (notify:<host>) opens and parks the host's deliveries, without using
// attempts, until a probe succeeds.
func RetryPolicy() retrypolicy.Policy {
	return retrypolicy.Policy{MaxAttempts: RetryMaxAttempts, InitialDelay: RetryInitialDelay, MaxDelay: RetryMaxDelay}.WithDefaults()
}

// ResolveRetryPolicy layers the settings of the worker configuration's
// retry.kinds.rebound_notify section (c; unset fields and classes keep
// [RetryPolicy]'s, not retry.default's) over RetryPolicy and returns the
// resolved policy. A refused setting is a *retrypolicy.ConfigError naming
// its key ("retry.kinds.rebound_notify.max_delay: must be >= initial_delay
// (5s)").
func ResolveRetryPolicy(c retrypolicy.PolicyConfig) (retrypolicy.Policy, error) {
	attempts, initial, maxDelay := RetryMaxAttempts, retrypolicy.Duration(RetryInitialDelay), retrypolicy.Duration(RetryMaxDelay)
	set, err := retrypolicy.Config{
		Default: retrypolicy.PolicyConfig{MaxAttempts: &attempts, InitialDelay: &initial, MaxDelay: &maxDelay},
		Kinds:   map[string]retrypolicy.PolicyConfig{Kind: c},
	}.Policies()
	if err != nil {
		return retrypolicy.Policy{}, err
	}
	return set.Lookup(Kind), nil
}

// Args are a delivery job's args: which history row to send through which
// channel. No message text, no secret.
type Args struct {
	// HistoryID is the job_alert_history row.
	HistoryID int64 `json:"history_id"`
	// Channel is the channel's name in the configuration.
	Channel string `json:"channel"`
	// Host is the channel's host, the job's circuit breaker key after
	// "notify:" (filled at insert from the configuration).
	Host string `json:"host"`
}

// Kind returns "rebound_notify".
func (Args) Kind() string { return Kind }

// OperationKey is "notify:" and the host: one circuit breaker per
// channel host, so a Slack outage parks Slack's deliveries only.
func (a Args) OperationKey() string { return "notify:" + a.Host }

// Delivery is a channel's outcome for one history row, stored in
// job_alert_history.delivery under the channel's name.
type Delivery struct {
	// Outcome is delivered, retrying or failed.
	Outcome string `json:"outcome"`
	// Attempts is the delivery job's attempts so far.
	Attempts int `json:"attempts"`
	// Error is the last failure, redacted ("" when delivered).
	Error string `json:"error,omitempty"`
	// At is when this outcome was recorded.
	At time.Time `json:"at"`
}

// Outcomes of a delivery.
const (
	// OutcomeDelivered: the channel accepted the message.
	OutcomeDelivered = "delivered"
	// OutcomeRetrying: an attempt failed; the delivery will be retried.
	OutcomeRetrying = "retrying"
	// OutcomeFailed: the delivery failed for good (dead-lettered, or the
	// channel is not configured).
	OutcomeFailed = "failed"
	// OutcomeSkipped: not sent, by decision of the evaluator: the event is
	// about the channel's own circuit breaker (breaker_open, subject
	// notify:<the channel's host>), which a message through that host
	// would wait behind or fail on. No delivery job is inserted.
	OutcomeSkipped = "skipped"
	// OutcomeSuperseded: not sent because a newer event of the same
	// (rule, subject) through the same channel already has a final outcome
	// (a firing whose resolved notice was delivered first, or was
	// dead-lettered): the receiver never gets a stale firing after its
	// resolution.
	OutcomeSuperseded = "superseded"
)

// Metrics counts deliveries.
type Metrics struct {
	// Notifications is rebound_notifications_total{channel,outcome}:
	// attempts to deliver and deliveries decided without one, by channel
	// name and outcome (delivered, retrying, failed, skipped, superseded).
	// Channels are configured names, and (outcome
	// failed only, see CountUndefined) the names alert rules list that the
	// pod does not define: the series stay bounded by the channels and
	// the rules.
	Notifications *prometheus.CounterVec
}

// InvalidChannelLabel is the channel label CountUndefined gives a name
// that breaks [ChannelNameRule] (a rule row written by hand in SQL), so a
// row cannot add series of any text or length.
const InvalidChannelLabel = "(invalid name)"

// CountUndefined counts one failed notification through channel, a name
// an alert rule lists that the pod does not define (the delivery is
// recorded failed without an attempt): rebound_notifications_total{
// channel=name, outcome="failed"}, or channel=InvalidChannelLabel for a
// name that breaks ChannelNameRule.
func (m *Metrics) CountUndefined(channel string) {
	if !ValidChannelName(channel) {
		channel = InvalidChannelLabel
	}
	m.Notifications.WithLabelValues(channel, OutcomeFailed).Inc()
}

// Outcomes lists every value of the outcome label of
// rebound_notifications_total, in a fixed order.
func Outcomes() []string {
	return []string{OutcomeDelivered, OutcomeRetrying, OutcomeFailed, OutcomeSkipped, OutcomeSuperseded}
}

// CountSkipped counts one delivery through channel (a configured channel's
// name) that the evaluator skipped: rebound_notifications_total{
// channel=channel, outcome="skipped"}.
func (m *Metrics) CountSkipped(channel string) {
	m.Notifications.WithLabelValues(channel, OutcomeSkipped).Inc()
}

// NewMetrics creates and registers the delivery metrics, with the series of
// every channel named in channels × every outcome created at 0 (so
// Prometheus's increase() counts a pod's first delivery of each):
// 5·len(channels) series.
func NewMetrics(reg prometheus.Registerer, channels ...string) (*Metrics, error) {
	m := &Metrics{Notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "rebound", Name: "notifications_total",
		Help: "Alert notification delivery attempts and skipped or superseded deliveries, by channel and outcome (delivered, retrying, failed, skipped, superseded).",
	}, []string{"channel", "outcome"})}
	for _, channel := range channels {
		for _, outcome := range Outcomes() {
			m.Notifications.WithLabelValues(channel, outcome)
		}
	}
	if err := reg.Register(m.Notifications); err != nil {
		return nil, fmt.Errorf("register rebound_notifications_total: %w", err)
	}
	return m, nil
}

// Worker works Args.
type Worker struct {
	river.WorkerDefaults[Args]
	// Channels are the configured channels. Required.
	Channels map[string]Channel
	// Load reads the message of a history row. Required.
	Load func(ctx context.Context, historyID int64) (*Message, error)
	// Record stores a channel's delivery outcome on a history row. Required.
	Record func(ctx context.Context, historyID int64, channel string, d Delivery) error
	// InOrder, when set, runs attempt (one send and the Record of its
	// outcome) and returns its error, unless a newer event of the history
	// row's (rule, subject) through channel already has a final outcome
	// (delivered, failed, skipped, superseded): then it returns superseded
	// true without calling attempt. It must keep two deliveries of one
	// (rule, subject) through one channel from overlapping, across pods
	// (alert.History.InOrder holds a PostgreSQL advisory lock while attempt
	// runs), so an older event is never sent after a newer one. nil sends
	// every delivery.
	InOrder func(ctx context.Context, historyID int64, channel string, attempt func(context.Context) error) (superseded bool, err error)
	// Redact hides secrets in an error before it is recorded; nil keeps it.
	Redact func(string) string
	// HTTPClient sends Slack and webhook requests; nil means one with a
	// 10 s timeout.
	HTTPClient *http.Client
	// Metrics, when set, counts each attempt.
	Metrics *Metrics
	// Logger receives one warning per delivery that failed for good.
	Logger *slog.Logger
}

// Timeout bounds one attempt: 30 s.
func (w *Worker) Timeout(*river.Job[Args]) time.Duration { return 30 * time.Second }

// Work sends the history row's message through the channel and records
// the outcome. A channel no longer configured fails for good (the
// configuration changed); a row superseded by a newer event of its (rule,
// subject) through the channel (see InOrder) is not sent, is recorded
// superseded and completes; other failures are returned for rebound's retry policy to
// classify.
func (w *Worker) Work(ctx context.Context, job *river.Job[Args]) error {
	ch, ok := w.Channels[job.Args.Channel]
	if !ok {
		err := fmt.Errorf("channel %q is not configured", job.Args.Channel)
		w.record(ctx, job, OutcomeFailed, err)
		return river.JobCancel(err)
	}
	msg, err := w.Load(ctx, job.Args.HistoryID)
	if errors.Is(err, ErrNoMessage) {
		return river.JobCancel(err) // the history row is gone: nothing to send
	}
	if err != nil {
		return err
	}
	client := w.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	// attempt sends once and records the outcome (inside InOrder, so the
	// next delivery of the pair through the channel sees it); it returns
	// the job's result.
	attempt := func(ctx context.Context) error {
		sendErr := Send(ctx, client, job.Args.Channel, &ch, msg)
		if sendErr == nil {
			w.record(ctx, job, OutcomeDelivered, nil)
			return nil
		}
		// A 4xx other than 408 and 429 (a removed Slack hook, a bad URL)
		// will not heal by retrying: the delivery fails now, to the
		// dead-letter queue.
		if he, ok := errors.AsType[*HTTPError](sendErr); ok && he.Status/100 == 4 && he.Status != 408 && he.Status != 429 {
			w.record(ctx, job, OutcomeFailed, sendErr)
			return river.JobCancel(sendErr)
		}
		outcome := OutcomeRetrying
		if job.Attempt >= job.MaxAttempts {
			outcome = OutcomeFailed
		}
		w.record(ctx, job, outcome, sendErr)
		return sendErr
	}
	if w.InOrder == nil {
		return attempt(ctx)
	}
	superseded, err := w.InOrder(ctx, job.Args.HistoryID, job.Args.Channel, attempt)
	if superseded {
		w.record(ctx, job, OutcomeSuperseded, errSuperseded)
		return nil
	}
	return err
}

// errSuperseded is the error a superseded delivery records: why it was
// not sent.
var errSuperseded = errors.New("not sent: a newer event of this rule and subject was already settled through the channel")

// ErrNoMessage is what Load returns (wrapped) for a history row that no
// longer exists; the delivery then ends without a retry.
var ErrNoMessage = errors.New("no such alert history row")

func (w *Worker) record(ctx context.Context, job *river.Job[Args], outcome string, err error) {
	d := Delivery{Outcome: outcome, Attempts: job.Attempt, At: time.Now().UTC()}
	if err != nil {
		d.Error = err.Error()
		if w.Redact != nil {
			d.Error = w.Redact(d.Error)
		}
		if len(d.Error) > 500 {
			d.Error = d.Error[:500]
		}
		// Storable: jsonb refuses NUL and invalid UTF-8.
		d.Error = strings.ToValidUTF8(strings.ReplaceAll(d.Error, "\x00", ""), "\uFFFD")
	}
	if w.Metrics != nil {
		w.Metrics.Notifications.WithLabelValues(job.Args.Channel, outcome).Inc()
	}
	if outcome == OutcomeFailed && w.Logger != nil {
		w.Logger.Warn("alert notification failed for good", "channel", job.Args.Channel, "history_id", job.Args.HistoryID, "attempts", job.Attempt, "error", d.Error)
	}
	_ = w.Record(ctx, job.Args.HistoryID, job.Args.Channel, d)
}
