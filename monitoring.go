package rebound

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/notify"

	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/monitor/health"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// MonitoringConfig configures job monitoring (Config.Monitoring): the
// counts in job_retry_metrics behind job health and alerts. Zero fields
// mean the defaults named.
type MonitoringConfig struct {
	// FlushInterval is how often the pod adds its counts to
	// job_retry_metrics (one statement per flush); 0 means
	// metricstore.DefaultFlushInterval (10 s), at least 100 ms. A SIGKILL
	// loses at most this long of one pod's counts; a graceful stop flushes.
	FlushInterval time.Duration

	// Retention is how long job_retry_metrics rows are kept; 0 means
	// metricstore.DefaultRetention (30 days), at least 2 days (minute rows
	// become hour rows after one).
	Retention time.Duration

	// HealthWindow is the window of success_rate in GET
	// /api/admin/job-health; 0 means health.DefaultWindow (15 minutes),
	// 1 minute to 30 days.
	HealthWindow time.Duration

	// AlertInterval is how often River's leader inserts the evaluation of
	// the alert rules (job_alert_config); 0 means alert.DefaultInterval
	// (1 minute), from 1 s to 1 hour (the seed's 15 minutes is 15m). A
	// circuit breaker opening inserts one at once.
	AlertInterval time.Duration

	// AlertsDisabled stops this pod's River client from scheduling the
	// evaluation (give every pod the same value; the leader's counts).
	// Job health still evaluates the rules at each request.
	AlertsDisabled bool

	// Channels are the notification channels alert rules name, by name:
	// Slack incoming webhooks, generic webhooks, SMTP (see notify.Channel;
	// a configuration file gives them with notify.ParseChannels, secrets as
	// ${ENV} references). Secrets stay in the process: the database holds
	// channel names only. An enabled rule naming a channel not here does
	// not stop the pod: Start logs a warning per (rule, channel), and each
	// notification of the rule through it is recorded as failed.
	Channels map[string]notify.Channel

	// Link is put in every notification (for example the URL of
	// /api/admin/job-health or the console); "" for none.
	Link string
}

// validate returns a *ConfigError naming the first field that is wrong.
func (m *MonitoringConfig) validate() error {
	switch {
	case m.FlushInterval != 0 && m.FlushInterval < 100*time.Millisecond:
		return configErr("Monitoring.FlushInterval", "%s is under 100ms (0 means %s)", m.FlushInterval, metricstore.DefaultFlushInterval)
	case m.Retention != 0 && m.Retention < 48*time.Hour:
		return configErr("Monitoring.Retention", "%s is under 48h (0 means %s)", m.Retention, metricstore.DefaultRetention)
	case m.AlertInterval != 0 && (m.AlertInterval < time.Second || m.AlertInterval > time.Hour):
		return configErr("Monitoring.AlertInterval", "%s is not between 1s and 1h (0 means %s)", m.AlertInterval, alert.DefaultInterval)
	case m.HealthWindow != 0 && (m.HealthWindow < time.Minute || m.HealthWindow > 30*24*time.Hour):
		return configErr("Monitoring.HealthWindow", "%s is not between 1m and 720h (0 means %s)", m.HealthWindow, health.DefaultWindow)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Channels)) {
		ch := m.Channels[name]
		if err := ch.Validate(name); err != nil {
			return configErr(fmt.Sprintf("Monitoring.Channels[%q]", name), "%v", err)
		}
	}
	return nil
}

// monitoringFeature counts every attempt into job_retry_metrics, runs its
// hourly rollup, and serves GET /api/admin/job-health.
type monitoringFeature struct {
	recorder  *metricstore.Recorder
	evaluator *alert.Evaluator
	pod       atomic.Pointer[Pod]
}

func (f *monitoringFeature) setup(a *assembly) error {
	c := a.config
	store := metricstore.New(c.Pool)
	rec, err := metricstore.NewRecorder(store, &metricstore.RecorderConfig{FlushInterval: c.Monitoring.FlushInterval, Logger: c.Logger})
	if err != nil {
		return configErr("Monitoring.FlushInterval", "%v", err)
	}
	f.recorder = rec
	a.counts = rec
	a.onAttempt = append(a.onAttempt, func(job *rivertype.JobRow, at retrypolicy.Attempt) {
		rec.ObserveFailedAttempt(job.Kind, string(at.Class), !at.Final)
	})
	addWorker(a, &metricstore.RollupWorker{Store: store, Retention: c.Monitoring.Retention})
	a.periodicJobs = append(a.periodicJobs, a.maintenanceJob(metricstore.DefaultRollupInterval, metricstore.RollupArgs{}))

	// Alerts: the evaluation (periodic, and at once when a breaker opens)
	// and the deliveries, both jobs of rebound's own kinds. The delivery
	// kind is left out of the failure-rate and dead-letter rules, so a
	// failing channel never raises alerts sent through itself (its final
	// failures are logged).
	history := alert.NewHistory(c.Pool)
	nm, err := notify.NewMetrics(a.registerer, slices.Sorted(maps.Keys(c.Monitoring.Channels))...)
	if err != nil {
		return &ConfigError{Field: "Registerer", Problem: err.Error()}
	}
	f.evaluator = &alert.Evaluator{DB: c.Pool, Queue: c.MaintenanceQueue, Channels: c.Monitoring.Channels,
		ExcludeKinds: []string{notify.Kind}, Link: c.Monitoring.Link, Metrics: nm, Logger: c.Logger}
	addWorker(a, &alert.EvaluateWorker{Evaluator: f.evaluator})
	addWorker(a, &notify.Worker{
		Channels: c.Monitoring.Channels,
		Load: func(ctx context.Context, id int64) (*notify.Message, error) {
			return history.Message(ctx, id, c.Monitoring.Link)
		},
		Record:  history.RecordDelivery,
		InOrder: history.InOrder,
		Redact:  redact.Text,
		Metrics: nm,
		Logger:  c.Logger,
	})
	a.collect(alert.NewFiringCollector(c.Pool))
	interval := c.Monitoring.AlertInterval
	if interval == 0 {
		interval = alert.DefaultInterval
	}
	if !c.Monitoring.AlertsDisabled {
		queue := c.MaintenanceQueue
		a.periodicJobs = append(a.periodicJobs, river.NewPeriodicJob(river.PeriodicInterval(interval),
			func() (river.JobArgs, *river.InsertOpts) {
				return alert.EvaluateArgs{Reason: "periodic"}, alert.EvaluateOpts(queue, interval)
			}, nil))
		a.onBreakerChange = append(a.onBreakerChange, func(_ string, _, to breaker.State) {
			if to == breaker.StateOpen {
				f.evaluateSoon()
			}
		})
	}
	return nil
}

// evaluateSoon inserts an evaluation now (unique per 10 s across pods),
// off the caller's goroutine: breaker observers must not block.
func (f *monitoringFeature) evaluateSoon() {
	p := f.pod.Load()
	if p == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := p.client.Insert(ctx, alert.EvaluateArgs{Reason: "breaker_open"}, alert.EvaluateOpts(p.config.MaintenanceQueue, 10*time.Second)); err != nil {
			p.config.Logger.Warn("alerts: could not insert the evaluation after a breaker opened; the next periodic one covers it", "error", err.Error())
		}
	}()
}

func (f *monitoringFeature) mount(p *Pod, _ *assembly) error {
	c := &p.config
	checker := &health.Checker{DB: c.Pool, Window: c.Monitoring.HealthWindow, ExcludeKinds: []string{notify.Kind}}
	p.http.Handle(health.Path, adminauth.Require(c.AdminToken, health.NewHandler(checker, c.Logger), nil))
	f.evaluator.Inserter = p
	f.pod.Store(p)
	return nil
}

func (f *monitoringFeature) start(ctx context.Context) error {
	f.recorder.Start(ctx)
	return nil
}

// stop flushes what the pod counted; it runs after the River client has
// stopped, so every attempt is in.
func (f *monitoringFeature) stop(ctx context.Context) { _ = f.recorder.Stop(ctx) }
