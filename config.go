package rebound

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/trace"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/monitor/notify"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Defaults of a pod. A zero field of [Config] means the default named in its
// doc.
const (
	// DefaultQueueWorkers is the number of jobs of the default queue worked
	// at once when Config.Queues is nil ("default" with 50 workers).
	DefaultQueueWorkers = 50

	// DefaultFetchCooldown is the least time between two fetches of one
	// queue. River's own default is 100 ms, which caps a queue at
	// MaxWorkers / FetchCooldown jobs per second (500/s for 50 workers);
	// 20 ms lifts that to 2,500/s at the cost of up to 50 fetch queries per
	// second per queue and pod when the queue is busy.
	DefaultFetchCooldown = 20 * time.Millisecond

	// DefaultFetchPollInterval is how often an idle queue polls for jobs
	// when no LISTEN/NOTIFY wake-up arrives (River's default: 1 s).
	DefaultFetchPollInterval = time.Second

	// DefaultShutdownTimeout bounds a graceful stop: 25 s, under
	// Kubernetes' default grace period of 30 s.
	DefaultShutdownTimeout = 25 * time.Second

	// DefaultJobTimeout bounds the Work of a job whose kind sets no timeout
	// of its own: River's default, 1 minute.
	DefaultJobTimeout = river.JobTimeoutDefault

	// DefaultRescueGrace is how long after a job's own deadline River's
	// rescuer still leaves it alone (jobs.DefaultRescueGrace, 15 s): it
	// covers the difference between the leader pod's clock and the
	// database's, and the time to save the job's result.
	DefaultRescueGrace = jobs.DefaultRescueGrace

	// DefaultHTTPAddr is the address of the worker binary's HTTP server
	// (its --http-addr default): loopback only. A Go pod serves HTTP on an
	// address of its own only when Config.HTTPAddr is set.
	DefaultHTTPAddr = "127.0.0.1:8080"
)

// Config configures a pod: one River client working the queues of a
// process, with rebound's retry policy, circuit breakers, dead-letter
// queue, metrics and HTTP routes around it. Pool and Workers are required;
// every other field has a default. [New] validates it and returns a
// [*ConfigError] naming the first field that is wrong.
type Config struct {
	// Pool connects to the PostgreSQL database that holds River's tables and
	// rebound's (see package migrations). Required.
	Pool *pgxpool.Pool

	// Workers holds the workers of your job kinds, registered with
	// river.AddWorker as usual. Required. New adds rebound's own kinds to it
	// (see [ReservedKinds]), so one Workers bundle serves one pod: a kind of
	// yours with a reserved name, or a bundle given to a second pod, is
	// refused with a ConfigError on Workers.
	Workers *river.Workers

	// Queues maps the names of the queues this pod works to their River
	// settings: MaxWorkers (jobs worked at once, 1 to
	// river.QueueNumWorkersMax) and optional FetchCooldown and
	// FetchPollInterval (0 means this Config's). Names follow River's rule:
	// lower-case letters and digits, separated by '_' or '-', at most 64
	// characters. nil means {"default": {MaxWorkers: DefaultQueueWorkers}}.
	Queues map[string]river.QueueConfig

	// FetchCooldown is the least time between two fetches of one queue, for
	// queues without their own. 0 means [DefaultFetchCooldown] (20 ms); at
	// least river.FetchCooldownMin (1 ms).
	FetchCooldown time.Duration

	// FetchPollInterval is how often an idle queue polls for jobs when no
	// LISTEN/NOTIFY wake-up arrives, for queues without their own. 0 means
	// [DefaultFetchPollInterval] (1 s); at least FetchCooldown.
	FetchPollInterval time.Duration

	// PollOnly makes River find jobs by polling alone, without
	// LISTEN/NOTIFY, as it must behind PgBouncer in transaction mode. Set
	// Breaker.ListenDisabled (or Breaker.ListenConfig to a direct
	// connection) too.
	PollOnly bool

	// JobTimeout bounds one attempt of a job whose worker has no Timeout
	// method of its own (River's rule; http_request follows its
	// timeout_seconds). 0 means [DefaultJobTimeout], 1 minute; -1 means no
	// timeout. See also KindConfig.Timeout.
	JobTimeout time.Duration

	// RescueGrace is how long after a job's own deadline River's rescuer
	// still leaves it alone; it sets RescueStuckJobsAfter's default. Kinds
	// with a deadline of their own add it to their River timeout: give
	// jobs.HTTPRequestWorker (or jobs.WorkerDeps) the same value. 0 means
	// [DefaultRescueGrace], 15 s.
	RescueGrace time.Duration

	// RescueStuckJobsAfter is how long a job may stay running before River's
	// rescuer takes it back as lost (its pod died or hung). At least
	// JobTimeout + RescueGrace, so a job of a kind without a timeout of its
	// own is never taken back while it may still be running. 0 means
	// JobTimeout + RescueGrace (1m15s with the defaults; River's 1 hour when
	// JobTimeout is -1). Only the leader pod rescues, with its own value:
	// give every pod the same one.
	//
	// River's rescuer runs on the leader every 30 s (fixed by River) and
	// takes a running job once both this and the job's own timeout have
	// passed since its attempt started (http_request: timeout_seconds +
	// RescueGrace, 45 s by default; a kind without one: JobTimeout). It
	// schedules the retry after the delay of class lost (2 s +-20% for a
	// first loss by default), and River's scheduler (every 5 s) makes the
	// job available. So, with the defaults, a job whose pod died is
	// available again at most 75 + 30 + 2.4 + 5 = 112.4 s after its
	// attempt started.
	RescueStuckJobsAfter time.Duration

	// ShutdownTimeout bounds a graceful stop ([Pod.Stop]): running jobs get
	// this long, minus a hard-stop margin of a fifth (at least 1 s or half
	// the timeout, whichever is less; at most 5 s), to finish; then their contexts are cancelled and they return to the
	// queue without using an attempt. 0 means [DefaultShutdownTimeout]
	// (25 s).
	ShutdownTimeout time.Duration

	// RetryPolicy is the retry policy of every kind without its own in
	// Kinds: max attempts, backoff per failure class, jitter (see
	// retrypolicy.Policy). Zero fields mean retrypolicy's defaults (5
	// attempts, 2 s initial delay, 300 s cap, the seed's decision matrix).
	// It does not apply to alert deliveries (kind rebound_notify), which
	// have their own policy, notify.RetryPolicy (150 attempts, 5 s doubling
	// to 5 min: about 12 h of retries).
	RetryPolicy retrypolicy.Policy

	// Kinds holds per-kind settings: retry policy, operation key, timeout.
	// Every kind named must have a worker in Workers ([Pod.Start] checks).
	// nil means every kind uses the pod-wide settings. The pod's job
	// counters (attempts, errors, retries, batches) are created at 0 at
	// start for the kinds named here (an empty KindConfig is enough), so
	// Prometheus counts each one's first event; other kinds' series appear
	// at their first attempt.
	Kinds map[string]KindConfig

	// DefaultOperationKey names the circuit breaker of a job whose args do
	// not implement [OperationKeyer] and whose kind has no
	// KindConfig.OperationKey (see [OperationKeyer] for the whole rule). nil
	// (or "") means the job's kind: one breaker per kind. rebound's own
	// kinds (rebound_alert_evaluate, rebound_breaker_cleanup,
	// rebound_job_metrics_rollup, rebound_notify) name their keys
	// themselves, so this rule never parks them behind a breaker of yours.
	DefaultOperationKey OperationKeyFunc

	// Breaker configures the circuit breakers: Settings for every
	// operation key, Keys for per-key overrides, RefreshInterval,
	// ListenConfig, ListenDisabled (see breaker.Config). Its Metrics and
	// Logger are the pod's. A nil Settings.IsFailure means retrypolicy's
	// classifier: only server_error, timeout and network failures count.
	Breaker breaker.Config

	// BreakerIdleTTL is how long a breaker row may stay idle before the
	// cleanup periodic job removes it. 0 means breaker.DefaultIdleTTL
	// (7 days); otherwise at least 1 minute.
	BreakerIdleTTL time.Duration

	// MaintenanceQueue is the queue of rebound's own periodic jobs (the
	// breaker cleanup, hourly). River's leader inserts them; any pod working
	// the queue runs them. It must be one of Queues. "" means "default" when
	// Queues has it, else the first queue name in sorted order.
	MaintenanceQueue string

	// PeriodicJobs are your own River periodic jobs, run by this pod's
	// client next to rebound's (River's leader inserts them).
	PeriodicJobs []*river.PeriodicJob

	// Middleware is your own River middleware (insert and worker). Worker
	// middleware runs inside rebound's, around the job's Work: rebound's
	// [tracing span ->] metrics -> job counts -> breaker gate -> attempt recorder ->
	// KindConfig.Timeout -> yours -> Work, so the attempt recorder classifies the errors it
	// returns. Insert middleware runs after rebound's (see [Pod.Insert]).
	Middleware []rivertype.Middleware

	// Registerer receives the pod's Prometheus metrics (job attempts,
	// errors, retries, queue depth, dead-letter queue size, breaker state;
	// see the README's Metrics table). nil means a registry of the pod's
	// own with Go and process collectors. A metric already registered there
	// (a second pod on the same registry) is a ConfigError; give each pod a
	// registry, or wrap one with prometheus.WrapRegistererWith.
	Registerer prometheus.Registerer

	// Gatherer is what the pod's /metrics route serves. nil means the
	// Registerer when it is also a Gatherer (a *prometheus.Registry), else
	// no /metrics route (serve your registry yourself).
	Gatherer prometheus.Gatherer

	// HTTPAddr is an address (host:port) where the pod serves [Pod.Handler]
	// on an HTTP server of its own, from Start to Stop. "" means no server:
	// mount Pod.Handler on yours.
	HTTPAddr string

	// AdminToken guards the admin routes (/api/admin/..., /riverui/,
	// /console/): requests need "Authorization: Bearer <token>"; the console
	// and the River UI also take the session cookie the console's login
	// form sets (see [ConsoleConfig]). At least 16 characters,
	// no leading or trailing space, no control characters. "" serves them
	// to loopback clients only, and refuses an HTTPAddr that is not a
	// loopback address. Behind a reverse proxy on the same host every client
	// looks local: set a token.
	AdminToken string

	// Logger receives what the pod logs (River's lines too): starts and
	// stops, breaker transitions, dead-letter reconciliation, warnings, with
	// secrets hidden by redact.NewHandler (the message, string and error
	// attributes through the text rules, attributes with secret names
	// replaced). nil discards.
	Logger *slog.Logger

	// Console configures the web console at /console/ (see [ConsoleConfig]).
	Console ConsoleConfig

	// Monitoring configures job monitoring: the per-kind counts in
	// job_retry_metrics (flush interval, retention) and GET
	// /api/admin/job-health (see [MonitoringConfig]).
	Monitoring MonitoringConfig

	// TracerProvider, when set, traces every job attempt: one span per
	// attempt (River's otelriver middleware, named river.work/<kind>, with
	// the job's kind, queue and attempt) carrying rebound's failure class
	// and what follows the attempt (see package monitor/tracing), and a span
	// per insert through the pod's client, whose trace context the job's
	// spans link to. The caller owns it: shut it down after [Pod.Stop] to
	// flush the last spans. To pass the trace context on to the
	// http_request kind's upstream, wrap its client's transport with
	// tracing.Transport. nil means no tracing: nothing is installed.
	TracerProvider trace.TracerProvider

	// ID names this pod's River client (leader election, attempted_by). ""
	// lets River choose one; at most 100 bytes of valid UTF-8 without control
	// characters (a ConfigError otherwise).
	ID string
}

// KindConfig holds the settings of one job kind (Config.Kinds).
type KindConfig struct {
	// RetryPolicy is the kind's retry policy. Zero fields inherit
	// Config.RetryPolicy's; Rules are layered over its rules. For
	// rebound_notify (alert deliveries) they inherit notify.RetryPolicy's
	// instead.
	RetryPolicy retrypolicy.Policy

	// OperationKey names the circuit breaker of a job of this kind whose
	// args do not implement [OperationKeyer], or that was inserted without
	// its key stamped (by another producer). nil (or "") falls back to
	// Config.DefaultOperationKey. [OperationKeyFromArgs] makes one from
	// the args' own OperationKey method.
	OperationKey OperationKeyFunc

	// Timeout bounds one attempt of the kind, on top of River's timeout
	// (the worker's Timeout method, else Config.JobTimeout): the shorter
	// wins, and an attempt cut short fails with class timeout. To give a
	// kind more time than Config.JobTimeout, implement Timeout on its
	// worker (River's way). 0 means no bound of rebound's.
	Timeout time.Duration
}

// ReservedKinds are the job kinds rebound registers in Config.Workers
// itself; a worker of yours under one of these names is refused.
var ReservedKinds = []string{breaker.CleanupArgs{}.Kind(), metricstore.RollupArgs{}.Kind(), alert.EvaluateArgs{}.Kind(), notify.Kind}

// ConfigError is a refused [Config]: Field names it in Go terms
// (`Queues["mail"].MaxWorkers`, `Kinds["charge"].RetryPolicy.MaxDelay`),
// Problem says what is wrong.
type ConfigError struct {
	// Field is the Config field, with map keys and sub-fields.
	Field string
	// Problem says what is wrong with it and, where it helps, what to do.
	Problem string
}

// Error returns "rebound: Config.<Field>: <Problem>".
func (e *ConfigError) Error() string { return "rebound: Config." + e.Field + ": " + e.Problem }

func configErr(field, format string, args ...any) *ConfigError {
	return &ConfigError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// queueNameRE is River's rule for queue names.
var queueNameRE = regexp.MustCompile(`^[a-z0-9]+(?:[_|\-]?[a-z0-9]+)*$`)

// withDefaults returns a copy of c with every zero field set to its
// default. It does not validate.
func (c *Config) withDefaults() Config {
	out := *c
	if out.Queues == nil {
		out.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: DefaultQueueWorkers}}
	}
	if out.FetchCooldown == 0 {
		out.FetchCooldown = DefaultFetchCooldown
	}
	if out.FetchPollInterval == 0 {
		out.FetchPollInterval = DefaultFetchPollInterval
	}
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = DefaultShutdownTimeout
	}
	if out.JobTimeout == 0 {
		out.JobTimeout = DefaultJobTimeout
	}
	if out.RescueGrace == 0 {
		out.RescueGrace = DefaultRescueGrace
	}
	if out.RescueStuckJobsAfter == 0 && out.JobTimeout > 0 && out.RescueGrace > 0 {
		out.RescueStuckJobsAfter = out.JobTimeout + out.RescueGrace
	}
	if out.MaintenanceQueue == "" {
		if _, ok := out.Queues[river.QueueDefault]; ok {
			out.MaintenanceQueue = river.QueueDefault
		} else if names := slices.Sorted(maps.Keys(out.Queues)); len(names) > 0 {
			out.MaintenanceQueue = names[0]
		}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	} else {
		out.Logger = slog.New(redact.NewHandler(out.Logger.Handler()))
	}
	return out
}

// validate checks a Config after withDefaults, returning a *ConfigError
// naming the first field that is wrong, and the resolved retry policies.
func (c *Config) validate() (*retrypolicy.Policies, error) {
	if c.Pool == nil {
		return nil, configErr("Pool", "required: a *pgxpool.Pool on the database rebound's migrations were applied to")
	}
	if c.Workers == nil {
		return nil, configErr("Workers", "required: river.NewWorkers() with your kinds added by river.AddWorker")
	}
	if c.FetchCooldown < river.FetchCooldownMin {
		return nil, configErr("FetchCooldown", "%s is below River's minimum of %s", c.FetchCooldown, river.FetchCooldownMin)
	}
	if c.FetchPollInterval < c.FetchCooldown {
		return nil, configErr("FetchPollInterval", "%s is shorter than FetchCooldown (%s)", c.FetchPollInterval, c.FetchCooldown)
	}
	if len(c.Queues) == 0 {
		return nil, configErr("Queues", "empty: a pod works at least one queue (nil means {%q: {MaxWorkers: %d}})", river.QueueDefault, DefaultQueueWorkers)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Queues)) {
		if err := validateQueue(name, c.Queues[name], c.FetchCooldown, c.FetchPollInterval); err != nil {
			return nil, err
		}
	}
	if _, ok := c.Queues[c.MaintenanceQueue]; !ok {
		return nil, configErr("MaintenanceQueue", "%q is not one of Queues (%s): rebound's periodic jobs would never run", c.MaintenanceQueue, strings.Join(slices.Sorted(maps.Keys(c.Queues)), ", "))
	}
	if c.JobTimeout < -1 {
		return nil, configErr("JobTimeout", "%s is negative (-1 means no timeout, 0 the default)", c.JobTimeout)
	}
	if c.RescueGrace < 0 {
		return nil, configErr("RescueGrace", "%s is negative (0 means %s)", c.RescueGrace, DefaultRescueGrace)
	}
	if c.RescueStuckJobsAfter < 0 {
		return nil, configErr("RescueStuckJobsAfter", "%s is negative (0 means JobTimeout + RescueGrace)", c.RescueStuckJobsAfter)
	}
	if least := c.JobTimeout + c.RescueGrace; c.JobTimeout > 0 && c.RescueStuckJobsAfter < least {
		return nil, configErr("RescueStuckJobsAfter", "%s is shorter than JobTimeout + RescueGrace (%s + %s = %s): a job still within its timeout would count as lost; lower JobTimeout too",
			c.RescueStuckJobsAfter, c.JobTimeout, c.RescueGrace, least)
	}
	if c.ShutdownTimeout < 0 {
		return nil, configErr("ShutdownTimeout", "%s is negative", c.ShutdownTimeout)
	}
	if c.BreakerIdleTTL != 0 && c.BreakerIdleTTL < time.Minute {
		return nil, configErr("BreakerIdleTTL", "%s is under 1m (0 means %s)", c.BreakerIdleTTL, breaker.DefaultIdleTTL)
	}
	if len(c.ID) > 100 {
		return nil, configErr("ID", "%d characters; River allows at most 100", len(c.ID))
	}
	if !utf8.ValidString(c.ID) || strings.ContainsFunc(c.ID, unicode.IsControl) {
		// PostgreSQL refuses such an ID in River's leader election, forever.
		return nil, configErr("ID", "%q is not valid UTF-8 or holds a control character", c.ID)
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return nil, configErr("HTTPAddr", "%q is not host:port: %v", c.HTTPAddr, err)
		}
	}
	if c.AdminToken != "" {
		if err := adminauth.ValidateTokenNamed("AdminToken", c.AdminToken); err != nil {
			return nil, &ConfigError{Field: "AdminToken", Problem: err.Error()}
		}
	} else if c.HTTPAddr != "" && !adminauth.IsLoopback(c.HTTPAddr) {
		return nil, configErr("AdminToken", "empty while HTTPAddr %q is not a loopback address: admin routes (/api/admin/..., /console/, /riverui/) would be open to anyone who can reach it; set a token, or listen on 127.0.0.1", c.HTTPAddr)
	}
	for kind := range c.Kinds {
		if c.Kinds[kind].Timeout < 0 {
			return nil, configErr(fmt.Sprintf("Kinds[%q].Timeout", kind), "%s is negative (0 means no bound of rebound's)", c.Kinds[kind].Timeout)
		}
	}
	if err := c.Console.validate(); err != nil {
		return nil, err
	}
	if err := c.Monitoring.validate(); err != nil {
		return nil, err
	}
	return c.policies()
}

// validateQueue applies River's rules to one queue, naming the field.
func validateQueue(name string, q river.QueueConfig, fetchCooldown, fetchPollInterval time.Duration) error {
	field := fmt.Sprintf("Queues[%q]", name)
	switch {
	case name == "":
		return configErr(field, "a queue needs a name")
	case len(name) > 64 || !queueNameRE.MatchString(name):
		return configErr(field, "River refuses the name: use lower-case letters and digits separated by '_' or '-', at most 64 characters")
	case q.MaxWorkers < 1 || q.MaxWorkers > river.QueueNumWorkersMax:
		return configErr(field+".MaxWorkers", "%d is not between 1 and %d", q.MaxWorkers, river.QueueNumWorkersMax)
	case q.FetchCooldown < 0:
		return configErr(field+".FetchCooldown", "%s is negative (0 means Config.FetchCooldown)", q.FetchCooldown)
	case q.FetchPollInterval < 0:
		return configErr(field+".FetchPollInterval", "%s is negative (0 means Config.FetchPollInterval)", q.FetchPollInterval)
	}
	cooldown, poll := q.FetchCooldown, q.FetchPollInterval
	if cooldown == 0 {
		cooldown = fetchCooldown
	}
	if poll == 0 {
		poll = fetchPollInterval
	}
	if poll < cooldown {
		return configErr(field+".FetchPollInterval", "%s is shorter than the queue's fetch cooldown (%s)", poll, cooldown)
	}
	return nil
}

// policyFields maps retrypolicy's YAML setting names to Policy's fields.
var policyFields = map[string]string{
	"max_attempts":    "MaxAttempts",
	"initial_delay":   "InitialDelay",
	"max_delay":       "MaxDelay",
	"min_delay":       "MinDelay",
	"jitter":          "Jitter",
	"retry_after_max": "RetryAfterMax",
	"rescue_limit":    "RescueLimit",
}

// policies resolves RetryPolicy and each kind's into a retrypolicy set,
// naming a refused setting by its Go field.
func (c *Config) policies() (*retrypolicy.Policies, error) {
	if _, err := retrypolicy.NewPolicies(c.RetryPolicy, nil); err != nil {
		return nil, policyError("RetryPolicy", retrypolicy.ConfigKey+".default.", err)
	}
	kinds := make(map[string]retrypolicy.Policy, len(c.Kinds))
	for _, kind := range slices.Sorted(maps.Keys(c.Kinds)) {
		if kind == "" {
			return nil, configErr("Kinds", `a kind named "" (kinds have at least 2 characters)`)
		}
		if kind == notify.Kind {
			continue
		}
		if _, err := retrypolicy.NewPolicies(c.RetryPolicy, map[string]retrypolicy.Policy{kind: c.Kinds[kind].RetryPolicy}); err != nil {
			return nil, policyError(fmt.Sprintf("Kinds[%q].RetryPolicy", kind), retrypolicy.ConfigKey+".kinds."+kind+".", err)
		}
		kinds[kind] = c.Kinds[kind].RetryPolicy
	}
	// Alert deliveries have a policy of their own (notify.RetryPolicy: 150
	// attempts, 5 s doubling to 5 min, about 12 h), not RetryPolicy's: a
	// receiver outage of an hour must not lose a notification.
	// Kinds[notify.Kind].RetryPolicy is layered over it. Resolved here, the
	// policy has every field set, so NewPolicies below keeps it as is.
	own, err := retrypolicy.NewPolicies(notify.RetryPolicy(), map[string]retrypolicy.Policy{notify.Kind: c.Kinds[notify.Kind].RetryPolicy})
	if err != nil {
		return nil, policyError(fmt.Sprintf("Kinds[%q].RetryPolicy", notify.Kind), retrypolicy.ConfigKey+".kinds."+notify.Kind+".", err)
	}
	kinds[notify.Kind] = own.Lookup(notify.Kind)
	return retrypolicy.NewPolicies(c.RetryPolicy, kinds)
}

// policyError turns retrypolicy's *ConfigError (named in YAML terms under
// prefix) into one naming the Go field under field.
func policyError(field, prefix string, err error) error {
	ce, ok := errors.AsType[*retrypolicy.ConfigError](err)
	if !ok || !strings.HasPrefix(ce.Key, prefix) {
		return &ConfigError{Field: field, Problem: err.Error()}
	}
	setting := strings.TrimPrefix(ce.Key, prefix)
	if name, ok := policyFields[setting]; ok {
		return &ConfigError{Field: field + "." + name, Problem: ce.Problem}
	}
	if class, ok := strings.CutPrefix(setting, "classes."); ok {
		if c, found := strings.CutSuffix(class, ".strategy"); found {
			return &ConfigError{Field: fmt.Sprintf("%s.Rules[%q].Strategy", field, c), Problem: ce.Problem}
		}
		return &ConfigError{Field: fmt.Sprintf("%s.Rules[%q]", field, class), Problem: ce.Problem}
	}
	return &ConfigError{Field: field, Problem: ce.Error()}
}
