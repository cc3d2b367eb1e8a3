package rebound

import (
	"context"
	"time"

	"github.com/riverqueue/river/rivertype"

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
}

// validate returns a *ConfigError naming the first field that is wrong.
func (m *MonitoringConfig) validate() error {
	switch {
	case m.FlushInterval != 0 && m.FlushInterval < 100*time.Millisecond:
		return configErr("Monitoring.FlushInterval", "%s is under 100ms (0 means %s)", m.FlushInterval, metricstore.DefaultFlushInterval)
	case m.Retention != 0 && m.Retention < 48*time.Hour:
		return configErr("Monitoring.Retention", "%s is under 48h (0 means %s)", m.Retention, metricstore.DefaultRetention)
	case m.HealthWindow != 0 && (m.HealthWindow < time.Minute || m.HealthWindow > 30*24*time.Hour):
		return configErr("Monitoring.HealthWindow", "%s is not between 1m and 720h (0 means %s)", m.HealthWindow, health.DefaultWindow)
	}
	return nil
}

// monitoringFeature counts every attempt into job_retry_metrics, runs its
// hourly rollup, and serves GET /api/admin/job-health.
type monitoringFeature struct {
	recorder *metricstore.Recorder
}

func (f *monitoringFeature) setup(a *assembly) error {
	c := a.config
	store := metricstore.New(c.Pool)
	rec, err := metricstore.NewRecorder(store, &metricstore.RecorderConfig{FlushInterval: c.Monitoring.FlushInterval, Logger: c.Logger})
	if err != nil {
		return configErr("Monitoring.FlushInterval", "%v", err)
	}
	f.recorder = rec
	a.aroundGate = [2][]rivertype.Middleware{{rec.Middleware()}, {rec.GateMarker()}}
	a.onAttempt = append(a.onAttempt, func(job *rivertype.JobRow, at retrypolicy.Attempt) {
		rec.ObserveFailedAttempt(job.Kind, string(at.Class), !at.Final)
	})
	addWorker(a, &metricstore.RollupWorker{Store: store, Retention: c.Monitoring.Retention})
	a.periodicJobs = append(a.periodicJobs, a.maintenanceJob(metricstore.DefaultRollupInterval, metricstore.RollupArgs{}))
	return nil
}

func (f *monitoringFeature) mount(p *Pod, _ *assembly) error {
	c := &p.config
	checker := &health.Checker{DB: c.Pool, Window: c.Monitoring.HealthWindow}
	p.http.Handle(health.Path, adminauth.Require(c.AdminToken, health.NewHandler(checker, c.Logger), nil))
	return nil
}

func (f *monitoringFeature) start(ctx context.Context) error {
	f.recorder.Start(ctx)
	return nil
}

// stop flushes what the pod counted; it runs after the River client has
// stopped, so every attempt is in.
func (f *monitoringFeature) stop(ctx context.Context) { _ = f.recorder.Stop(ctx) }
