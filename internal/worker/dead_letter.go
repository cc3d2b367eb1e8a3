package worker

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/adminui"
	"github.com/rebound-queue/rebound/internal/httpserver"
)

// deadLetter is the dead-letter queue's part of a pod: its admin API and
// the River UI (behind the admin token), its size collector, and the
// reconciliation that adds any row the capture trigger missed.
type deadLetter struct {
	reconciler *deadletter.Reconciler
}

// mountDeadLetter refuses admin routes on a non-loopback address without a
// token (the error says why), mounts /api/admin/dlq and /riverui/, and
// registers the DLQ metrics on reg. The River UI's background services run
// until ctx is done.
func mountDeadLetter(ctx context.Context, c Config, client *river.Client[pgx.Tx], srv *httpserver.Server, reg prometheus.Registerer) (*deadLetter, error) {
	if err := adminauth.CheckListenAddr(c.HTTPAddr, c.AdminToken); err != nil {
		return nil, err
	}
	store, err := deadletter.New(c.Pool, &deadletter.Config{Client: client})
	if err != nil {
		return nil, err
	}
	api := adminauth.Require(c.AdminToken, deadletter.NewHandler(store, &deadletter.HandlerOpts{Logger: c.Logger}), nil)
	srv.Handle(deadletter.APIPath, api)
	srv.Handle(deadletter.APIPath+"/", api)

	ui, err := adminui.New(ctx, client, c.Logger, c.AdminToken)
	if err != nil {
		return nil, err
	}
	srv.Handle(adminui.Prefix+"/", ui)

	rec := deadletter.NewReconciler(c.Pool, &deadletter.ReconcilerConfig{Logger: c.Logger})
	reg.MustRegister(deadletter.NewSizeCollector(c.Pool, &deadletter.SizeCollectorConfig{Logger: c.Logger}), rec)
	return &deadLetter{reconciler: rec}, nil
}

func (d *deadLetter) start(ctx context.Context) { d.reconciler.Start(ctx) }

func (d *deadLetter) stop() { d.reconciler.Stop() }
