// Package worker assembles one worker pod: a River client with rebound's
// job kinds and middleware, and the HTTP server with health, readiness,
// metrics and admin routes. cmd/worker parses flags into a [Config] and
// calls [Run].
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/httpserver"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/migrations"
	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Defaults of a worker pod.
const (
	// DefaultHTTPAddr is where the HTTP server listens: loopback only.
	DefaultHTTPAddr = "127.0.0.1:8080"
	// DefaultQueueWorkers is the number of concurrent jobs of the default
	// queue ("default=50").
	DefaultQueueWorkers = 50
	// DefaultFetchCooldown is the least time between two fetches of one
	// queue. River's own default is 100 ms, which caps a queue at
	// MaxWorkers / FetchCooldown jobs per second (500/s for 50 workers);
	// 20 ms lifts that to 2,500/s at the cost of up to 50 fetch queries
	// per second per queue and pod when the queue is busy.
	DefaultFetchCooldown = 20 * time.Millisecond
	// DefaultFetchPollInterval is how often an idle queue polls for jobs when
	// no LISTEN/NOTIFY wake-up arrives (River's default: 1 s).
	DefaultFetchPollInterval = time.Second
	// DefaultShutdownTimeout is how long running jobs may finish after
	// SIGTERM before they are cancelled: 25 s, under Kubernetes' 30 s grace
	// period.
	DefaultShutdownTimeout = 25 * time.Second
	// DefaultJobTimeout bounds the Work of a job whose kind sets no timeout
	// of its own: River's default, 1 minute.
	DefaultJobTimeout = river.JobTimeoutDefault
	// DefaultRescueGrace is how long after a job's own deadline River's
	// rescuer still leaves it alone (jobs.DefaultRescueGrace, 15 s): it
	// covers the difference between the leader pod's clock and the
	// database's, and the time to save the job's result.
	DefaultRescueGrace = jobs.DefaultRescueGrace
)

// AdminReadinessPath serves /readyz's answer with each failed check's whole
// error (host, user, database...), behind the admin token; /readyz itself
// shows only a short reason such as "unreachable".
const AdminReadinessPath = "/api/admin/readyz"

// Config configures a worker pod. Pool and Queues are required; every
// other field has a default.
type Config struct {
	// Pool connects to the database (DATABASE_URL). Required.
	Pool *pgxpool.Pool
	// Queues maps queue names to the number of jobs worked at once.
	Queues map[string]int
	// FetchCooldown, FetchPollInterval: River's fetch settings for every
	// queue. 0 means [DefaultFetchCooldown], [DefaultFetchPollInterval].
	FetchCooldown     time.Duration
	FetchPollInterval time.Duration
	// JobTimeout bounds a job's Work unless its kind sets its own timeout
	// (http_request follows its timeout_seconds). 0 means
	// [DefaultJobTimeout], 1 minute.
	JobTimeout time.Duration
	// RescueGrace is how long after a job's own deadline River's rescuer
	// still leaves it alone (added to http_request's timeout_seconds to give
	// River the job's timeout). 0 means [DefaultRescueGrace], 15 s.
	RescueGrace time.Duration
	// RescueStuckJobsAfter is how long a job may stay running before River's
	// rescuer takes it back as lost (its pod died or hung). At least
	// JobTimeout + RescueGrace, so a job of a kind without a timeout of its
	// own is never taken back while it may still be running. 0 means
	// JobTimeout + RescueGrace (1m15s with the defaults). Only the leader pod
	// rescues, with its own value: give every pod the same one.
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
	// ShutdownTimeout bounds a graceful stop: running jobs get this long to
	// finish, minus a hard-stop margin, after which they are cancelled and
	// return to the queue without using an attempt. 0 means
	// [DefaultShutdownTimeout].
	ShutdownTimeout time.Duration
	// HTTPAddr is the HTTP server's address; "" means [DefaultHTTPAddr].
	HTTPAddr string
	// Retry holds the retry policy of every job kind. nil means the
	// package defaults (the seed's decision matrix).
	Retry *retrypolicy.Policies
	// Breaker configures the circuit breakers (settings per operation key).
	// A nil Settings.IsFailure means retrypolicy's classifier: only
	// server_error, timeout and network count.
	Breaker breaker.Config
	// BreakerIdleTTL: rows of keys idle this long are removed by the
	// cleanup periodic job. 0 means breaker.DefaultIdleTTL (7 days).
	BreakerIdleTTL time.Duration
	// PollOnly makes River find jobs by polling instead of LISTEN/NOTIFY,
	// as it must behind PgBouncer in transaction mode.
	PollOnly bool
	// Registry holds the job kinds worked. nil means jobs.Builtin().
	Registry *jobs.Registry
	// HTTPClient sends http_request jobs' requests. nil means
	// jobs.NewHTTPClient(). A client without a CheckRedirect gets
	// jobs.CheckRedirect (a redirect loop is class misconfigured).
	HTTPClient *http.Client
	// Logger receives everything the pod logs (River's lines too), with
	// secrets hidden by redact.NewHandler: the message, string and error
	// attributes through the text rules, attributes with secret names
	// replaced. nil discards.
	Logger *slog.Logger
	// ID names this pod in River (leader election, logs). "" lets River
	// choose one.
	ID string
	// AdminToken guards the admin routes (REBOUND_ADMIN_TOKEN; see package
	// adminauth). "" serves them only on a loopback HTTPAddr; New refuses
	// any other address without one.
	AdminToken string
}

func (c *Config) withDefaults() Config {
	out := *c
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
	if out.HTTPAddr == "" {
		out.HTTPAddr = DefaultHTTPAddr
	}
	if out.Retry == nil {
		out.Retry, _ = retrypolicy.NewPolicies(retrypolicy.Policy{}, nil)
	}
	if out.Registry == nil {
		out.Registry = jobs.Builtin()
	}
	if out.HTTPClient == nil {
		out.HTTPClient = jobs.NewHTTPClient()
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	} else {
		out.Logger = slog.New(redact.NewHandler(out.Logger.Handler()))
	}
	return out
}

func (c *Config) validate() error {
	if c.Pool == nil {
		return errors.New("a database pool is required")
	}
	if len(c.Queues) == 0 {
		return errors.New("at least one queue is required")
	}
	for name, n := range c.Queues {
		if n < 1 || n > river.QueueNumWorkersMax {
			return fmt.Errorf("queue %q: workers must be between 1 and %d, got %d", name, river.QueueNumWorkersMax, n)
		}
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return fmt.Errorf("invalid HTTP address %q: %v", c.HTTPAddr, err)
	}
	for _, kind := range c.Retry.Kinds() {
		if _, err := c.Registry.Lookup(kind); err != nil {
			return fmt.Errorf("%s.kinds.%s: %w", retrypolicy.ConfigKey, kind, err)
		}
	}
	if c.FetchCooldown < river.FetchCooldownMin {
		return fmt.Errorf("fetch cooldown must be at least %s", river.FetchCooldownMin)
	}
	if c.FetchPollInterval < c.FetchCooldown {
		return fmt.Errorf("fetch poll interval (%s) must be at least the fetch cooldown (%s)", c.FetchPollInterval, c.FetchCooldown)
	}
	if c.ShutdownTimeout < 0 {
		return errors.New("shutdown timeout must not be negative")
	}
	if c.JobTimeout < 0 || c.RescueGrace < 0 || c.RescueStuckJobsAfter < 0 {
		return errors.New("job timeout, rescue grace and rescue-stuck-jobs-after must not be negative")
	}
	if least := c.JobTimeout + c.RescueGrace; c.RescueStuckJobsAfter < least {
		return fmt.Errorf("rescue-stuck-jobs-after (%s) must be at least the job timeout plus the rescue grace (%s + %s = %s): a job still within its timeout would count as lost; lower the job timeout too",
			c.RescueStuckJobsAfter, c.JobTimeout, c.RescueGrace, least)
	}
	return nil
}

// Worker is one assembled worker pod.
type Worker struct {
	config     Config
	client     *river.Client[pgx.Tx]
	http       *httpserver.Server
	deadLetter *deadLetter
	breaker    *breaker.Breaker
}

// New checks the database (reachable, migrations current) and assembles the
// pod without starting it. Errors name what is wrong: an unreachable
// database, migrations behind (wrapping [migrations.ErrBehind]), a bad
// setting.
func New(ctx context.Context, config Config) (*Worker, error) {
	c := config.withDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}

	if err := c.Pool.Ping(ctx); err != nil {
		return nil, fmt.Errorf("database unreachable: %w", err)
	}
	migrator, err := migrations.New(c.Pool, nil)
	if err != nil {
		return nil, err
	}
	if err := migrator.Check(ctx); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := monitor.NewMetrics(reg)
	queueNames := make([]string, 0, len(c.Queues))
	for name := range c.Queues {
		queueNames = append(queueNames, name)
	}
	reg.MustRegister(monitor.NewQueueCollector(monitor.NewSnapshots(c.Pool), &monitor.QueueCollectorOpts{
		Queues: queueNames, Kinds: c.Registry.Names(), Logger: c.Logger,
	}))

	workers := river.NewWorkers()
	if err := c.Registry.AddWorkers(workers, jobs.WorkerDeps{HTTPClient: c.HTTPClient, RescueGrace: c.RescueGrace}); err != nil {
		return nil, err
	}

	dlLog := deadLetterLog{logger: c.Logger, registry: c.Registry}
	recorder := retrypolicy.NewAttemptRecorder(c.Retry, &retrypolicy.RecorderOpts{
		Logger: c.Logger,
		OnAttempt: func(job *rivertype.JobRow, a retrypolicy.Attempt) {
			metrics.ObserveFailedAttempt(job.Kind, string(a.Class), string(a.Strategy), !a.Final, time.Duration(a.DelayMS)*time.Millisecond)
			dlLog.attempt(job, a)
		},
	})

	br, gate, err := newBreaker(c, reg, workers, dlLog)
	if err != nil {
		return nil, err
	}

	queues := make(map[string]river.QueueConfig, len(c.Queues))
	for name, n := range c.Queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}
	client, err := river.NewClient(riverpgxv5.New(c.Pool), &river.Config{
		ID:                   c.ID,
		Logger:               c.Logger,
		Queues:               queues,
		FetchCooldown:        c.FetchCooldown,
		FetchPollInterval:    c.FetchPollInterval,
		JobTimeout:           c.JobTimeout,
		RescueStuckJobsAfter: c.RescueStuckJobsAfter,
		PollOnly:             c.PollOnly,
		Workers:              workers,
		RetryPolicy:          rescueLogPolicy{ClientRetryPolicy: recorder.ClientRetryPolicy(), log: dlLog},
		// Worker middleware runs in this order around each attempt:
		// metrics -> breaker gate -> attempt recorder -> the job's Work.
		Middleware: []rivertype.Middleware{
			c.Registry.InsertMiddleware(),
			metrics.JobMiddleware(),
			gate,
			recorder,
		},
		PeriodicJobs: []*river.PeriodicJob{breaker.CleanupPeriodicJob(0)},
	})
	if err != nil {
		return nil, fmt.Errorf("river client: %w", err)
	}

	srv := httpserver.New(httpserver.Config{Addr: c.HTTPAddr, Logger: c.Logger, Gatherer: reg})
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
	dl, err := mountDeadLetter(ctx, c, client, srv, reg)
	if err != nil {
		return nil, err
	}
	breakerAPI := adminauth.Require(c.AdminToken, breaker.NewAdminHandler(br.Store(), &breaker.AdminOpts{RedactError: redact.Text}), nil)
	srv.Handle(breaker.AdminPrefix, breakerAPI)
	srv.Handle(breaker.AdminPrefix+"/", breakerAPI)
	// Any other admin path: the same token check, then a JSON 404.
	srv.Handle("/api/admin/", adminauth.Require(c.AdminToken, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpserver.WriteError(w, http.StatusNotFound, "no admin route "+r.URL.Path+" (see /api/admin/dlq, /api/admin/breakers and "+AdminReadinessPath+")")
	}), nil))

	return &Worker{config: c, client: client, http: srv, deadLetter: dl, breaker: br}, nil
}

// Run starts the HTTP server and the River client, works jobs until ctx is
// done, then stops gracefully: no new jobs are fetched, running jobs get
// ShutdownTimeout minus a hard-stop margin to finish, then their contexts
// are cancelled so they return to the queue with their attempt unused
// (River's soft-stop path, which needs the job's error to satisfy
// errors.Is(err, context.Canceled)). It returns nil after a clean stop, and
// an error if the pod could not start or jobs were still running when the
// timeout ran out (River's rescuer will return those jobs later).
func (w *Worker) Run(ctx context.Context) error {
	log := w.config.Logger
	if err := w.http.Start(); err != nil {
		return err
	}
	// The breaker loads every key's state before any job is fetched.
	if err := w.breaker.Start(ctx); err != nil {
		_ = w.http.Shutdown(context.Background())
		return err
	}
	defer func() {
		// Bounded: with the database down it must not hold the pod past
		// its grace period.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = w.breaker.Stop(ctx)
	}()
	// The client's own context is not ctx: cancelling it would skip the
	// soft stop. Stop is driven below.
	if err := w.client.Start(context.WithoutCancel(ctx)); err != nil {
		_ = w.http.Shutdown(context.Background())
		return fmt.Errorf("start river client: %w", err)
	}
	w.deadLetter.start(context.WithoutCancel(ctx))
	log.Info("worker started", "http_addr", w.http.Addr(), "queues", w.config.Queues)

	<-ctx.Done()
	w.http.Drain()
	w.deadLetter.stop()
	stopErr := w.stop(log)

	httpCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = w.http.Shutdown(httpCtx)
	return stopErr
}

func (w *Worker) stop(log *slog.Logger) error {
	total := w.config.ShutdownTimeout
	hard := min(5*time.Second, total/5)
	log.Info("shutting down: no new jobs; waiting for running jobs",
		"soft_timeout", (total - hard).String(), "hard_timeout", hard.String())

	softCtx, cancel := context.WithTimeout(context.Background(), total-hard)
	defer cancel()
	if err := w.client.Stop(softCtx); err == nil {
		w.reportUnsaved(log, "every running job finished")
		return nil
	}
	log.Warn("shutdown timeout reached; cancelling running jobs so they return to the queue")
	hardCtx, cancel := context.WithTimeout(context.Background(), hard)
	defer cancel()
	if err := w.client.StopAndCancel(hardCtx); err != nil {
		return fmt.Errorf("jobs still running after cancellation (River's rescuer will return them after RescueStuckJobsAfter): %w", err)
	}
	w.reportUnsaved(log, "running jobs were cancelled and returned to the queue")
	return nil
}

// reportUnsaved logs how the stop went. River's completer saves results in
// the background and, when the database is down, gives up after a few
// tries: a job this pod worked can then still be marked running, to be run
// again by River's rescuer. So look before saying all went well.
func (w *Worker) reportUnsaved(log *slog.Logger, done string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var unsaved int
	err := w.config.Pool.QueryRow(ctx,
		"SELECT count(*) FROM river_job WHERE state = 'running' AND attempted_by[array_length(attempted_by, 1)] = $1",
		w.client.ID()).Scan(&unsaved)
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

// newBreaker builds the pod's circuit breaker and its River gate: failures
// are what retrypolicy classifies as "downstream unhealthy", keys come from
// the job registry, and a job parked longer than max_park is recorded with
// class breaker_open and cancelled (to the DLQ). It registers the cleanup
// job's worker.
func newBreaker(c Config, reg prometheus.Registerer, workers *river.Workers, dlLog deadLetterLog) (*breaker.Breaker, *breaker.Gate, error) {
	bcfg := c.Breaker
	if bcfg.Settings.IsFailure == nil {
		bcfg.Settings.IsFailure = func(err error) bool { return retrypolicy.Classify(err).DownstreamUnhealthy() }
	}
	m, err := breaker.NewMetrics(reg)
	if err != nil {
		return nil, nil, err
	}
	bcfg.Metrics = m
	bcfg.Logger = c.Logger
	br, err := breaker.New(c.Pool, bcfg)
	if err != nil {
		return nil, nil, err
	}
	gate := breaker.NewGate(br, breaker.GateConfig{
		KeyFunc: func(job *rivertype.JobRow) string {
			return c.Registry.OperationKey(job.Kind, job.EncodedArgs, job.Metadata)
		},
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
	river.AddWorker(workers, &breaker.CleanupWorker{Store: br.Store(), IdleTTL: c.BreakerIdleTTL})
	return br, gate, nil
}
