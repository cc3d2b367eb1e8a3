// Package adminui mounts the River UI (riverqueue.com/riverui) at /riverui/
// behind the admin token.
//
// The River UI shows job args and metadata raw, without rebound's
// redaction: anyone holding the admin token sees secrets in args (README
// says so next to the token setting).
package adminui

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/rebound-queue/rebound/internal/adminauth"
)

// Prefix is the path the River UI is served under.
const Prefix = "/riverui"

// New builds the River UI for client, starts its background services (they
// stop when ctx is done), and returns it behind [adminauth.Require] with
// basic auth allowed, so a browser can log in with the token as the
// password. Mount it at Prefix+"/". Errors come from riverui.
func New(ctx context.Context, client *river.Client[pgx.Tx], logger *slog.Logger, token string) (http.Handler, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(client, nil),
		Logger:    logger,
		Prefix:    Prefix,
	})
	if err != nil {
		return nil, fmt.Errorf("river UI: %w", err)
	}
	if err := h.Start(ctx); err != nil {
		return nil, fmt.Errorf("start river UI: %w", err)
	}
	return adminauth.Require(token, h, &adminauth.Opts{AllowBasic: true}), nil
}
