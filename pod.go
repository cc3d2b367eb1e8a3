package rebound

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/httpserver"
	"github.com/rebound-queue/rebound/migrations"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/tracing"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// AdminReadinessPath serves /readyz's answer with each failed check's whole
// error (host, user, database...), behind the admin token; /readyz itself
// shows only a short reason such as "unreachable".
const AdminReadinessPath = "/api/admin/readyz"

// Pod is one assembled rebound pod: a River client working the configured
// queues with rebound's middleware, retry policy and periodic jobs, the
// circuit breakers, the dead-letter queue's reconciliation, metrics, and
// the HTTP routes of [Pod.Handler]. Build it with [New], then [Pod.Start]
// and [Pod.Stop] it (or [Pod.Run] it). Its methods are safe for concurrent
// use.
type Pod struct {
	// workerMiddleware is River's worker middleware, in order (for the
	// benchmarks of the chain).
	workerMiddleware []rivertype.WorkerMiddleware
	config           Config
	policies         *retrypolicy.Policies
	client           *river.Client[pgx.Tx]
	http             *httpserver.Server
	breaker          *breaker.Breaker
	dlq              *deadletter.Store
	migrator         *migrations.Migrator
	features         []feature
	registry         *trackingRegisterer
	// sessions are the console's browser sessions, also accepted by the
	// River UI.
	sessions *adminauth.Sessions

	mu      sync.Mutex
	state   podState
	cancel  context.CancelFunc // ends the features' background work
	started []feature          // features started, to stop in reverse order
}

type podState int

const (
	podNew podState = iota
	podStarted
	podStopped
)

// New validates config and assembles a pod without touching the database
// or starting anything. A refused setting is a [*ConfigError] naming its
// field; it never panics on a bad Config.
//
// Around each attempt the pod runs, in order: metrics -> job counts (for
// job_retry_metrics, see [MonitoringConfig]) -> circuit breaker
// gate (a job whose operation key is open is snoozed, no attempt used) ->
// attempt recorder (classify the failure, record it in the job's history
// at metadata.output.attempts, decide: retry after the delay its class's
// strategy gives, or end now) -> KindConfig.Timeout -> Config.Middleware ->
// the job's Work. With Config.TracerProvider, the attempt's span and its
// annotator (class and outcome) come first, around all of it. Dead letters
// are written by the database itself (a trigger on river_job) and
// reconciled every minute.
func New(config Config) (*Pod, error) {
	c := config.withDefaults()
	policies, err := c.validate()
	if err != nil {
		return nil, err
	}
	migrator, err := migrations.New(c.Pool, nil)
	if err != nil {
		return nil, err
	}

	reg, gatherer := c.Registerer, c.Gatherer
	if reg == nil {
		own := prometheus.NewRegistry()
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = own
	}
	if gatherer == nil {
		gatherer, _ = reg.(prometheus.Gatherer)
	}
	// Everything the pod registers is unregistered again if New fails, and
	// when the pod stops, so the caller's registry can take another pod.
	tracked := &trackingRegisterer{Registerer: reg}
	p, err := assemble(&c, policies, migrator, tracked, gatherer)
	if err != nil {
		tracked.unregisterAll()
		return nil, err
	}
	return p, nil
}

// assemble is New after validation.
func assemble(cp *Config, policies *retrypolicy.Policies, migrator *migrations.Migrator, reg *trackingRegisterer, gatherer prometheus.Gatherer) (*Pod, error) {
	c := *cp
	metrics, err := monitor.NewMetrics(reg)
	if err != nil {
		return nil, &ConfigError{Field: "Registerer", Problem: err.Error() + " (one registry per pod, or prometheus.WrapRegistererWith)"}
	}
	metrics.Initialize(knownLabels(&c, policies))
	a := &assembly{config: &c, registerer: reg}
	a.collect(monitor.NewQueueCollector(monitor.NewSnapshots(c.Pool), &monitor.QueueCollectorOpts{
		Queues: slices.Sorted(maps.Keys(c.Queues)), Kinds: slices.Sorted(maps.Keys(c.Kinds)), Logger: c.Logger,
	}))

	keys := newOperationKeys(&c)
	dlLog := deadLetterLog{logger: c.Logger, keys: keys}
	recorder := retrypolicy.NewAttemptRecorder(policies, &retrypolicy.RecorderOpts{
		Logger: c.Logger,
		OnAttempt: func(job *rivertype.JobRow, at retrypolicy.Attempt) {
			metrics.ObserveFailedAttempt(job.Kind, string(at.Class), string(at.Strategy), !at.Final, time.Duration(at.DelayMS)*time.Millisecond)
			dlLog.attempt(job, at)
			for _, f := range a.onAttempt {
				f(job, at)
			}
		},
	})

	br, gate, err := newBreaker(&c, reg, keys, a, dlLog)
	if err != nil {
		return nil, err
	}
	features := []feature{&breakerFeature{breaker: br}, &deadLetterFeature{}, &batchFeature{}, &monitoringFeature{}, consoleFeature{}, &listenCheckFeature{}}
	for _, f := range features {
		if err := f.setup(a); err != nil {
			return nil, err
		}
	}
	if a.err != nil {
		return nil, a.err
	}
	for _, add := range a.workers {
		if err := add(c.Workers); err != nil {
			return nil, err
		}
	}

	queues := make(map[string]river.QueueConfig, len(c.Queues))
	maps.Copy(queues, c.Queues)
	// Worker middleware runs in this order around each attempt:
	// [tracing span and annotator ->] the attempt middleware (metrics ->
	// job counts -> breaker gate -> attempt recorder, in one layer) ->
	// kind timeouts -> the caller's middleware -> the job's Work. The
	// insert rules run first on every insert.
	var middleware []rivertype.Middleware
	attempt := &attemptMiddleware{metrics: metrics.JobMiddleware(), counts: a.counts, gate: gate, recorder: recorder}
	if c.TracerProvider != nil {
		tr := tracing.NewJobMiddleware(c.TracerProvider)
		middleware = append(middleware, tr.Outer()...)
		attempt.admitted = tracing.MarkAdmitted
	}
	middleware = append(middleware, &insertRules{keys: keys, policies: policies}, attempt)
	if t := newKindTimeouts(c.Kinds); t != nil {
		middleware = append(middleware, t)
	}
	middleware = append(middleware, c.Middleware...)
	client, err := river.NewClient(riverpgxv5.New(c.Pool), &river.Config{
		ID:                   c.ID,
		Logger:               c.Logger,
		Queues:               queues,
		FetchCooldown:        c.FetchCooldown,
		FetchPollInterval:    c.FetchPollInterval,
		JobTimeout:           c.JobTimeout,
		RescueStuckJobsAfter: c.RescueStuckJobsAfter,
		PollOnly:             c.PollOnly,
		Workers:              c.Workers,
		// Jobs that ask for no max attempts arrive at the insert rules with
		// this, which they replace with the kind's policy's.
		MaxAttempts:  unsetMaxAttempts,
		RetryPolicy:  rescueLogPolicy{ClientRetryPolicy: recorder.ClientRetryPolicy(), log: dlLog},
		ErrorHandler: unknownKindHandler{pool: c.Pool, recorder: recorder, counts: a.counts, metrics: attempt.metrics, logger: c.Logger},
		Middleware:   middleware,
		PeriodicJobs: append(a.periodicJobs, c.PeriodicJobs...),
	})
	if err != nil {
		return nil, riverConfigError(err)
	}

	srv := httpserver.New(httpserver.Config{Addr: c.HTTPAddr, Logger: c.Logger, Gatherer: gatherer})
	// /readyz shows anyone a short reason; the detail is logged and served
	// at /api/admin/readyz behind the admin token.
	srv.AddReadinessCheck("database", httpserver.DatabaseCheck(c.Pool.Ping))
	srv.AddReadinessCheck("migrations", func(ctx context.Context) error {
		err := migrator.Check(ctx)
		if errors.Is(err, migrations.ErrBehind) {
			return httpserver.Unready("behind: run rebound migrate up", err)
		}
		return err
	})
	srv.Handle(AdminReadinessPath, adminauth.Require(c.AdminToken, srv.ReadinessDetail(), nil))
	p := &Pod{workerMiddleware: workerMiddleware(middleware), config: c, policies: policies, client: client, http: srv, breaker: br, migrator: migrator, features: features, registry: reg,
		sessions: adminauth.NewSessions(c.AdminToken, c.Console.SessionTTL)}
	for _, f := range features {
		if err := f.mount(p, a); err != nil {
			return nil, err
		}
	}
	// Any other admin path: the same token check, then a JSON 404.
	srv.Handle("/api/admin/", adminauth.Require(c.AdminToken, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpserver.WriteError(w, http.StatusNotFound, "no admin route "+r.URL.Path+" (see /api/admin/dlq, /api/admin/breakers, /api/admin/batches, /api/admin/job-health and "+AdminReadinessPath+")")
	}), nil))
	return p, nil
}

// Client returns the pod's River client, for River's own API (JobGet,
// JobList, JobCancel, Subscribe, queues). Inserts through it follow
// rebound's rules, as [Pod.InsertManyTx] describes. Do not Start or Stop it
// yourself: use the pod's.
func (p *Pod) Client() *river.Client[pgx.Tx] { return p.client }

// DeadLetterQueue returns the store of the dead-letter queue
// (job_dead_letter_queue): list, show, retry, resolve, purge, stats. Its
// retries insert through the pod's client. A service without a pod reads
// the same with deadletter.New(pool, nil).
func (p *Pod) DeadLetterQueue() *deadletter.Store { return p.dlq }

// Breaker returns the pod's circuit breakers: State(key) is this pod's
// view, Store() reads and changes circuit_breaker_state (List, Get, Reset,
// Open), and Execute guards calls of your own outside the queue with the
// same shared state. A service without a pod reads the rows with
// breaker.NewStore(pool).
func (p *Pod) Breaker() *breaker.Breaker { return p.breaker }

// Handler returns the pod's HTTP routes, to mount on your own server at
// these paths (for example mux.Handle("/", pod.Handler()) on a port of its
// own, or each path on your mux):
//
//   - GET /healthz: 200 while the process lives.
//   - GET /readyz: 200 when the database answers and migrations (with the
//     dead-letter trigger) are in place, cached 5 s; 503 with a short reason
//     otherwise ("unreachable", "behind: run rebound migrate up"), and
//     from the start of Stop. GET /api/admin/readyz (behind the admin
//     token) gives each failed check's whole error.
//   - GET /metrics: Config.Gatherer (see Config.Registerer), when there is
//     one.
//   - /api/admin/dlq, /api/admin/breakers, /api/admin/job-health: the
//     admin API; /console/: the web console (package console); and
//     /riverui/: the River UI, behind Config.AdminToken (see there).
//
// The routes answer from New on; the River UI once Start has run.
// Config.HTTPAddr serves the same handler on a server of the pod's own.
func (p *Pod) Handler() http.Handler { return p.http.Handler() }

// HTTPAddr is the address the pod's own server listens on (useful with
// port 0), "" without one or before Start.
func (p *Pod) HTTPAddr() string { return p.http.Addr() }

// Start checks the database and starts the pod: the HTTP server (when
// Config.HTTPAddr is set), the circuit breakers (every key's state loaded
// before any job is fetched), the River client, and the dead-letter
// reconciliation. It returns once jobs are being fetched. Errors: the
// database unreachable, its migrations behind (wrapping
// migrations.ErrBehind; migrate with migrations.New(pool, nil).Up), a kind
// in Config.Kinds without a worker (a *ConfigError), an address in use.
// After an error the pod holds nothing running. ctx bounds the start only:
// the pod runs until Stop. An enabled alert rule naming a channel
// Config.Monitoring.Channels does not define does not stop the start: it
// is logged as a warning (see checkAlertChannels), and each notification
// of that rule through that channel is recorded as failed.
func (p *Pod) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case podStarted:
		return errors.New("rebound: pod already started")
	case podStopped:
		return errors.New("rebound: pod stopped; build a new one with New")
	}
	c := &p.config
	if err := c.Pool.Ping(ctx); err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	if err := p.migrator.Check(ctx); err != nil {
		return err
	}
	if err := p.checkKinds(ctx); err != nil {
		return err
	}
	p.checkAlertChannels(ctx)
	if c.HTTPAddr != "" {
		if err := p.http.Start(); err != nil {
			return err
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) error {
		p.stopFeatures()
		cancel()
		if c.HTTPAddr != "" {
			_ = p.http.Shutdown(context.Background())
		}
		return err
	}
	for _, f := range p.features {
		if err := f.start(runCtx); err != nil {
			return fail(err)
		}
		p.started = append(p.started, f)
	}
	// The client's own context is not ctx: cancelling it would skip the
	// soft stop. Stop drives it.
	if err := p.client.Start(runCtx); err != nil {
		return fail(fmt.Errorf("start river client: %w", err))
	}
	p.cancel = cancel
	p.state = podStarted
	c.Logger.Info("worker started", "http_addr", p.http.Addr(), "queues", queueWorkers(c.Queues))
	return nil
}

// queueWorkers is the queues' worker counts, for the start log line.
func queueWorkers(queues map[string]river.QueueConfig) map[string]int {
	out := make(map[string]int, len(queues))
	for name, q := range queues {
		out[name] = q.MaxWorkers
	}
	return out
}

// podWorkers is how many jobs a pod works at once: the sum of its queues'
// MaxWorkers.
func podWorkers(queues map[string]river.QueueConfig) int {
	n := 0
	for _, q := range queues {
		n += q.MaxWorkers
	}
	return n
}

// checkKinds refuses a kind in Config.Kinds that has no worker: its settings
// would silently apply to nothing. River has no API to list a Workers
// bundle, so each kind is tried with River's own check (an insert refused
// with *river.UnknownJobKindError before any SQL) inside a transaction that
// is rolled back.
func (p *Pod) checkKinds(ctx context.Context) error {
	if len(p.config.Kinds) == 0 {
		return nil
	}
	tx, err := p.config.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("database unreachable: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	for _, kind := range slices.Sorted(maps.Keys(p.config.Kinds)) {
		_, err := p.client.InsertTx(ctx, tx, probeArgs{kind: kind}, nil)
		if _, unknown := errors.AsType[*river.UnknownJobKindError](err); unknown {
			return configErr(fmt.Sprintf("Kinds[%q]", kind), "no worker for this kind in Workers (add one with river.AddWorker): its settings would apply to nothing")
		}
		if err != nil {
			return fmt.Errorf("check Config.Kinds[%q]: %w", kind, err)
		}
	}
	return nil
}

// checkAlertChannels logs one warning per enabled alert rule
// (job_alert_config) and channel it names that Config.Monitoring.Channels
// does not define: the rule's notifications through that channel will
// fail (the evaluator records each as a failed delivery). It never stops
// the start: the rules are rows any operator can change, and a mistake in
// them must not keep a pod from working jobs. When the rules cannot be
// read, that is one warning and nothing is checked.
func (p *Pod) checkAlertChannels(ctx context.Context) {
	log := p.config.Logger
	rules, err := alert.NewRules(p.config.Pool).List(ctx)
	if err != nil {
		log.Warn("alert rules not checked against the configured channels", slog.String("error", err.Error()))
		return
	}
	for _, uc := range alert.UnknownChannels(rules, p.config.Monitoring.Channels) {
		log.Warn(fmt.Sprintf("%v: its notifications through it will fail; define it (the worker's alerts.channels, Config.Monitoring.Channels), "+
			"or change the rule (rebound alerts set %s --channels ...) or disable it (rebound alerts disable %s)", uc, uc.Rule, uc.Rule),
			slog.String("rule", uc.Rule), slog.String("channel", uc.Channel), slog.String("configured_channels", strings.Join(uc.Configured, ",")))
	}
}

// probeArgs are the args of checkKinds' rolled-back inserts.
type probeArgs struct{ kind string }

func (a probeArgs) Kind() string                 { return a.kind }
func (a probeArgs) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }

// Stop stops the pod gracefully: /readyz answers 503, no new jobs are
// fetched, running jobs get Config.ShutdownTimeout minus a hard-stop margin
// (or until ctx ends, if sooner) to finish, then their contexts are
// cancelled so they return to the queue with their attempt unused (River's
// soft-stop path, which needs the job's error to satisfy
// errors.Is(err, context.Canceled)); then the breakers write what they
// still owe and the HTTP server shuts down. It returns nil after a clean
// stop, and an error if jobs were still running when the time ran out
// (River's rescuer returns those jobs later). Stop on a pod never started
// releases what New built; a second Stop does nothing.
func (p *Pod) Stop(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != podStarted {
		if p.state == podNew {
			p.registry.unregisterAll()
		}
		p.state = podStopped
		return nil
	}
	p.state = podStopped
	defer p.registry.unregisterAll()
	log := p.config.Logger
	p.http.Drain()
	stopErr := p.stop(ctx, log)
	p.stopFeatures()
	p.cancel()
	if p.config.HTTPAddr != "" {
		httpCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = p.http.Shutdown(httpCtx)
	}
	return stopErr
}

// Run starts the pod, works jobs until ctx is done, then stops it
// gracefully ([Pod.Stop]). It returns the error of Start or Stop.
func (p *Pod) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return p.Stop(context.WithoutCancel(ctx))
}

// stopFeatures stops the started features, last started first.
func (p *Pod) stopFeatures() {
	for _, f := range slices.Backward(p.started) {
		// Bounded: with the database down a feature must not hold the pod
		// past its grace period.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		f.stop(ctx)
		cancel()
	}
	p.started = nil
}

func (p *Pod) stop(ctx context.Context, log *slog.Logger) error {
	total := p.config.ShutdownTimeout
	if deadline, ok := ctx.Deadline(); ok {
		total = min(total, time.Until(deadline))
	}
	// The hard-stop margin is the time cancelled jobs get to return and
	// River's completer to write them: a fifth of the total, at least 1 s
	// (or half the total, when that is less), at most 5 s.
	hard := min(5*time.Second, max(total/5, min(time.Second, total/2)))
	log.Info("shutting down: no new jobs; waiting for running jobs",
		"soft_timeout", (total - hard).String(), "hard_timeout", hard.String())

	softCtx, cancel := context.WithTimeout(ctx, total-hard)
	defer cancel()
	if err := p.client.Stop(softCtx); err == nil {
		p.reportUnsaved(log, "every running job finished")
		return nil
	}
	log.Warn("shutdown timeout reached; cancelling running jobs so they return to the queue")
	hardCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hard)
	defer cancel()
	if err := p.client.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("jobs still running after cancellation (River's rescuer will return them after RescueStuckJobsAfter): %w", err)
	}
	p.reportUnsaved(log, "running jobs were cancelled and returned to the queue")
	return nil
}

// reportUnsaved logs how the stop went. River's completer saves results in
// the background and, when the database is down, gives up after a few
// tries: a job this pod worked can then still be marked running, to be run
// again by River's rescuer. So look before saying all went well.
func (p *Pod) reportUnsaved(log *slog.Logger, done string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var unsaved int
	err := p.config.Pool.QueryRow(ctx,
		"SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1",
		p.client.ID()).Scan(&unsaved)
	switch {
	case err != nil:
		log.Warn("worker stopped: "+done+", but whether their results were saved is unknown (database unreachable); River's rescuer runs again any job left running",
			"error", err.Error())
	case unsaved > 0:
		log.Warn("worker stopped: "+done+", but the results of some could not be saved; River's rescuer will run them again after RescueStuckJobsAfter",
			"jobs_left_running", unsaved)
	default:
		log.Info("worker stopped: " + done)
	}
}

// knownLabels are the label values the pod's job counters are created
// with at 0 (see monitor.Metrics.Initialize): the kinds of Config.Kinds
// (rebound's own kinds are left out), the queues of Config.Queues, every
// failure class, and the strategy each kind's policy retries a class with
// (unknown_kind: exponential, its own schedule's, whatever the rule says).
func knownLabels(c *Config, policies *retrypolicy.Policies) monitor.KnownLabels {
	classes := retrypolicy.Classes()
	names := make([]string, len(classes))
	for i, class := range classes {
		names[i] = string(class)
	}
	return monitor.KnownLabels{
		Kinds:   slices.Sorted(maps.Keys(c.Kinds)),
		Queues:  slices.Sorted(maps.Keys(c.Queues)),
		Classes: names,
		Strategy: func(kind, class string) string {
			rule := policies.Lookup(kind).Rule(retrypolicy.Class(class))
			switch {
			case !rule.Retry:
				return ""
			case retrypolicy.Class(class) == retrypolicy.ClassUnknownKind:
				// Its own schedule, whatever the rule's strategy.
				return string(retrypolicy.StrategyExponential)
			}
			return string(rule.Strategy)
		},
	}
}

// newBreaker builds the pod's circuit breaker and its River gate: failures
// are what retrypolicy classifies as "downstream unhealthy", keys follow
// the operation key rule, and a job parked longer than max_park is recorded
// with class breaker_open and cancelled (to the DLQ).
func newBreaker(c *Config, reg prometheus.Registerer, keys *operationKeys, a *assembly, dlLog deadLetterLog) (*breaker.Breaker, *breaker.Gate, error) {
	bcfg := c.Breaker
	if bcfg.Settings.IsFailure == nil {
		bcfg.Settings.IsFailure = func(err error) bool { return retrypolicy.Classify(err).DownstreamUnhealthy() }
	}
	// The features' observers see every transition, after the caller's own
	// OnStateChange.
	observe := func(own func(key string, from, to breaker.State)) func(key string, from, to breaker.State) {
		return func(key string, from, to breaker.State) {
			if own != nil {
				own(key, from, to)
			}
			for _, f := range a.onBreakerChange {
				f(key, from, to)
			}
		}
	}
	bcfg.Settings.OnStateChange = observe(bcfg.Settings.OnStateChange)
	if len(bcfg.Keys) > 0 {
		perKey := make(map[string]breaker.Settings, len(bcfg.Keys))
		for key, s := range bcfg.Keys {
			if s.OnStateChange != nil {
				s.OnStateChange = observe(s.OnStateChange)
			}
			perKey[key] = s
		}
		bcfg.Keys = perKey
	}
	m, err := breaker.NewMetrics(reg)
	if err != nil {
		return nil, nil, &ConfigError{Field: "Registerer", Problem: err.Error()}
	}
	bcfg.Metrics = m
	bcfg.Logger = c.Logger
	br, err := breaker.New(c.Pool, bcfg)
	if err != nil {
		return nil, nil, breakerConfigError(err)
	}
	gate := breaker.NewGate(br, breaker.GateConfig{
		KeyFunc: keys.ofJob,
		Workers: podWorkers(c.Queues),
		OnParkExpired: func(ctx context.Context, job *rivertype.JobRow, err *breaker.OpenError, parkedFor time.Duration) error {
			cause := fmt.Errorf("parked behind circuit breaker %q for %s: %w", err.Key, parkedFor.Round(time.Second), err)
			dlLog.ended(job, retrypolicy.ClassBreakerOpen, cause.Error())
			return retrypolicy.CancelWithClass(ctx, job, retrypolicy.ClassBreakerOpen, cause)
		},
		// A key no breaker can hold (control characters, say) is the job's
		// own defect: it ends now, in the DLQ as bad_request.
		OnInvalidKey: func(ctx context.Context, job *rivertype.JobRow, err error) error {
			dlLog.ended(job, retrypolicy.ClassBadRequest, err.Error())
			return retrypolicy.CancelWithClass(ctx, job, retrypolicy.ClassBadRequest, err)
		},
	})
	return br, gate, nil
}

// workerMiddleware returns the worker middleware of ms, in order.
func workerMiddleware(ms []rivertype.Middleware) []rivertype.WorkerMiddleware {
	var out []rivertype.WorkerMiddleware
	for _, m := range ms {
		if w, ok := m.(rivertype.WorkerMiddleware); ok {
			out = append(out, w)
		}
	}
	return out
}

// riverConfigError names the Config field of a setting River's NewClient
// refused, as a *ConfigError, where River's message shows which: a job
// kind of Workers (River's kind rule: a letter, digit or underscore, then
// at least one more of those or -[]<>/.·:+), a periodic job's ID. Other
// refusals (rebound validates the rest first) are wrapped as they are.
func riverConfigError(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "job kind "):
		return &ConfigError{Field: "Workers", Problem: "River refuses " + msg + " (rename the kind: its Kind method)"}
	case strings.HasPrefix(msg, "PeriodicJob.ID "):
		return &ConfigError{Field: "PeriodicJobs", Problem: "River refuses " + msg}
	}
	return fmt.Errorf("rebound: River refused the client's configuration: %w", err)
}
