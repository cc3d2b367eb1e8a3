package rebound

import (
	"context"

	"github.com/rebound-queue/rebound/console"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/adminui"
)

// deadLetterFeature is the dead-letter queue's part of a pod: its admin API
// and the River UI (behind the admin token), its size collector, and the
// reconciliation that adds any row the capture trigger missed.
type deadLetterFeature struct {
	reconciler *deadletter.Reconciler
	ui         *adminui.UI
}

// setup registers the DLQ metrics.
func (d *deadLetterFeature) setup(a *assembly) error {
	c := a.config
	d.reconciler = deadletter.NewReconciler(c.Pool, &deadletter.ReconcilerConfig{Logger: c.Logger})
	a.collect(deadletter.NewSizeCollector(c.Pool, &deadletter.SizeCollectorConfig{Logger: c.Logger}), d.reconciler)
	return nil
}

// mount builds the store (its retries insert through the pod's client, so
// the insert rules apply) and mounts /api/admin/dlq and /riverui/.
func (d *deadLetterFeature) mount(p *Pod, _ *assembly) error {
	c := &p.config
	store, err := deadletter.New(c.Pool, &deadletter.Config{Client: p.client})
	if err != nil {
		return err
	}
	p.dlq = store
	api := adminauth.Require(c.AdminToken, deadletter.NewHandler(store, &deadletter.HandlerOpts{Logger: c.Logger}), nil)
	p.http.Handle(deadletter.APIPath, api)
	p.http.Handle(deadletter.APIPath+"/", api)

	ui, err := adminui.New(p.client, c.Logger, c.AdminToken, p.sessions, console.LoginPath)
	if err != nil {
		return err
	}
	d.ui = ui
	p.http.Handle(adminui.Prefix+"/", ui)
	return nil
}

// start starts the River UI's background services and the reconciliation;
// both run until ctx is done or stop.
func (d *deadLetterFeature) start(ctx context.Context) error {
	if err := d.ui.Start(ctx); err != nil {
		return err
	}
	d.reconciler.Start(ctx)
	return nil
}

func (d *deadLetterFeature) stop(context.Context) { d.reconciler.Stop() }
