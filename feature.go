package rebound

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// feature is one part of a pod around its River client: the circuit
// breakers' admin API and cleanup, the dead-letter queue's API, River UI and
// reconciliation, and the others (monitoring and alerts, batches, the
// console) plug in the same way, so the worker binary and a Go
// service get one assembly.
//
// New calls setup on every feature before it builds the River client (a
// feature adds its workers, periodic jobs, metrics and attempt observers to
// the assembly there), then mount once the client exists (routes,
// readiness checks, stores that insert through the client). Start starts
// the features in order before the River client starts, so what jobs rely
// on is ready when the first is fetched; Stop stops them in reverse order
// after the client has stopped, so they see every attempt.
type feature interface {
	setup(a *assembly) error
	mount(p *Pod, a *assembly) error
	start(ctx context.Context) error
	stop(ctx context.Context)
}

// assembly is what features add to while New builds a pod.
type assembly struct {
	config       *Config
	registerer   prometheus.Registerer
	periodicJobs []*river.PeriodicJob
	// workers register rebound's own kinds in Config.Workers (addWorker).
	workers []func(*river.Workers) error
	// onAttempt observers see every failed attempt the attempt recorder
	// records (after its decision), on the job's goroutine.
	onAttempt []func(job *rivertype.JobRow, a retrypolicy.Attempt)
	// onBreakerChange observers see every change of this pod's view of a
	// breaker (its own transitions, notifications, refreshes), on the
	// goroutine that saw it; they must not block.
	onBreakerChange []func(key string, from, to breaker.State)
	// counts is the job counts' recorder (job_retry_metrics), run around
	// each attempt by the pod's attempt middleware.
	counts *metricstore.Recorder
	err    error
}

// collect registers a collector on the pod's registerer; the first failure
// is kept as a *ConfigError on Registerer and returned by New.
func (a *assembly) collect(cs ...prometheus.Collector) {
	for _, c := range cs {
		if a.err != nil {
			return
		}
		if err := a.registerer.Register(c); err != nil {
			a.err = &ConfigError{Field: "Registerer", Problem: err.Error() + " (one registry per pod, or prometheus.WrapRegistererWith)"}
		}
	}
}

// addWorker has one of rebound's own kinds registered in Config.Workers
// once every feature is set up (so a New that fails before leaves the
// caller's bundle as it was), refusing a bundle that already holds the
// kind.
func addWorker[T river.JobArgs](a *assembly, w river.Worker[T]) {
	a.workers = append(a.workers, func(workers *river.Workers) error {
		if err := river.AddWorkerSafely(workers, w); err != nil {
			var args T
			return configErr("Workers", "kind %q is registered twice: rebound registers it in every pod's Workers (%v); use one Workers bundle per pod, and none of rebound's kind names (%s)",
				args.Kind(), err, strings.Join(ReservedKinds, ", "))
		}
		return nil
	})
}

// maintenanceJob returns a periodic job of rebound's that River's leader
// inserts into Config.MaintenanceQueue.
func (a *assembly) maintenanceJob(interval time.Duration, args river.JobArgs) *river.PeriodicJob {
	queue := a.config.MaintenanceQueue
	return river.NewPeriodicJob(river.PeriodicInterval(interval),
		func() (river.JobArgs, *river.InsertOpts) { return args, &river.InsertOpts{Queue: queue} },
		nil)
}

// breakerFeature is the circuit breakers' part of a pod beyond the gate:
// the admin API, the periodic cleanup of idle rows, and the breaker's own
// start (every key's state loaded before any job is fetched) and stop
// (pending counts written).
type breakerFeature struct {
	breaker *breaker.Breaker
}

func (f *breakerFeature) setup(a *assembly) error {
	addWorker(a, &breaker.CleanupWorker{Store: f.breaker.Store(), IdleTTL: a.config.BreakerIdleTTL})
	a.periodicJobs = append(a.periodicJobs, a.maintenanceJob(breaker.DefaultCleanupInterval, breaker.CleanupArgs{}))
	return nil
}

func (f *breakerFeature) mount(p *Pod, _ *assembly) error {
	api := adminauth.Require(p.config.AdminToken, breaker.NewAdminHandler(f.breaker.Store(), &breaker.AdminOpts{RedactError: redact.Text}), nil)
	p.http.Handle(breaker.AdminPrefix, api)
	p.http.Handle(breaker.AdminPrefix+"/", api)
	return nil
}

func (f *breakerFeature) start(ctx context.Context) error { return f.breaker.Start(ctx) }

func (f *breakerFeature) stop(ctx context.Context) { _ = f.breaker.Stop(ctx) }

// breakerConfigError names a setting breaker.New refused as a Config field.
func breakerConfigError(err error) error {
	return &ConfigError{Field: "Breaker", Problem: strings.TrimPrefix(err.Error(), "breaker: ")}
}

// kindTimeouts is the worker middleware that bounds the attempts of kinds
// with a KindConfig.Timeout.
type kindTimeouts struct {
	river.MiddlewareDefaults
	timeouts map[string]time.Duration
}

// newKindTimeouts returns the middleware, or nil when no kind has a timeout.
func newKindTimeouts(kinds map[string]KindConfig) *kindTimeouts {
	t := map[string]time.Duration{}
	for kind, kc := range kinds {
		if kc.Timeout > 0 {
			t[kind] = kc.Timeout
		}
	}
	if len(t) == 0 {
		return nil
	}
	return &kindTimeouts{timeouts: t}
}

// Work implements rivertype.WorkerMiddleware.
func (m *kindTimeouts) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	d, ok := m.timeouts[job.Kind]
	if !ok {
		return doInner(ctx)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return doInner(ctx)
}

// trackingRegisterer remembers what it registered, so a pod that fails to
// build, or stops, leaves the caller's registry as it found it.
type trackingRegisterer struct {
	prometheus.Registerer
	mu   sync.Mutex
	done []prometheus.Collector
}

func (r *trackingRegisterer) Register(c prometheus.Collector) error {
	if err := r.Registerer.Register(c); err != nil {
		return err
	}
	r.mu.Lock()
	r.done = append(r.done, c)
	r.mu.Unlock()
	return nil
}

func (r *trackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// unregisterAll unregisters everything registered through r.
func (r *trackingRegisterer) unregisterAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.done {
		r.Registerer.Unregister(c)
	}
	r.done = nil
}
