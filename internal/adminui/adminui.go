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

// UI is the River UI behind the admin token. Mount it at Prefix+"/"; it
// answers once Start has run.
type UI struct {
	ui      *riverui.Handler
	guarded http.Handler
}

// New builds the River UI for client behind [adminauth.Require]: a Bearer
// token, or the console's session cookie (sessions); a browser without
// either is sent to loginPath (the console's login page). HTTP basic auth,
// which browsers replay on their own (a CSRF risk), is not accepted.
// Errors come from riverui.
func New(client *river.Client[pgx.Tx], logger *slog.Logger, token string, sessions *adminauth.Sessions, loginPath string) (*UI, error) {
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
	return &UI{ui: h, guarded: adminauth.Require(token, h, &adminauth.Opts{Sessions: sessions, LoginPath: loginPath})}, nil
}

// Start starts the UI's background services; they stop when ctx is done.
func (u *UI) Start(ctx context.Context) error {
	if err := u.ui.Start(ctx); err != nil {
		return fmt.Errorf("start river UI: %w", err)
	}
	return nil
}

// ServeHTTP serves the UI to requests that pass the admin token check.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.guarded.ServeHTTP(w, r) }
