package rebound

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/adminauth"
)

// batchFeature is the batches' part of a pod: the completer that folds the
// counting triggers' deltas and completes batches (inserting their
// callback jobs through the pod's client), the completion metric, and the
// admin API at /api/admin/batches.
type batchFeature struct {
	completer *batch.Completer
	completed *prometheus.CounterVec
}

// setup registers rebound_batches_completed_total{kind}, at 0 for every
// kind of Config.Kinds.
func (f *batchFeature) setup(a *assembly) error {
	f.completed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "rebound_batches_completed_total",
		Help: "Batches this pod completed (every job finished), by the kind of their jobs; each batch is counted by one pod only.",
	}, []string{"kind"})
	// At 0 for every configured kind, so a pod's first completed batch of
	// a kind is seen by increase(): len(Config.Kinds) series.
	for kind := range a.config.Kinds {
		f.completed.WithLabelValues(kind)
	}
	a.collect(f.completed)
	return nil
}

func (f *batchFeature) mount(p *Pod, _ *assembly) error {
	c := &p.config
	f.completer = batch.NewCompleter(c.Pool, &batch.CompleterConfig{
		Inserter:   p,
		Logger:     c.Logger,
		OnComplete: func(s *batch.Summary) { f.completed.WithLabelValues(s.Kind).Inc() },
	})
	api := adminauth.Require(c.AdminToken, batch.NewHandler(c.Pool, c.Logger), nil)
	p.http.Handle(batch.APIPath, api)
	p.http.Handle(batch.APIPath+"/", api)
	return nil
}

func (f *batchFeature) start(ctx context.Context) error {
	f.completer.Start(ctx)
	return nil
}

func (f *batchFeature) stop(context.Context) { f.completer.Stop() }
