// Package httpserver is the worker's HTTP server: liveness (/healthz),
// readiness (/readyz), Prometheus metrics (/metrics) and the admin routes
// that feature packages mount.
package httpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rebound-queue/rebound/internal/httpjson"
)

// DefaultReadinessCacheTTL is how long a readiness result is reused, so a
// probe every second costs the database at most one check per 5 seconds.
const DefaultReadinessCacheTTL = 5 * time.Second

// CheckFunc is one readiness check: nil when ready; an error makes /readyz
// answer 503. /readyz is served without authentication, so it never shows
// an error's text, which may name a host, a port, a user or a database: it
// shows under the check's name the error's public reason, the Reason of a
// [*CheckError] in its chain ([Unready]), else "failing". The whole text is
// logged once each time the check's state changes (at warn when it starts
// failing or fails for another reason, at info when it passes again), and
// [Server.ReadinessDetail] serves it to authenticated callers.
type CheckFunc func(ctx context.Context) error

// DefaultCheckReason is what /readyz shows for a failed check whose error
// carries no [CheckError] reason.
const DefaultCheckReason = "failing"

// CheckError is a failed readiness check with a reason that anyone may read.
type CheckError struct {
	// Reason is what /readyz shows under the check's name, a few words such
	// as "unreachable": never a host, a user, a database or a secret.
	Reason string
	// Err is the failure in full: logged, and served to authenticated
	// callers by [Server.ReadinessDetail].
	Err error
}

func (e *CheckError) Error() string { return e.Reason + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *CheckError) Unwrap() error { return e.Err }

// Unready returns err as a [*CheckError] whose public reason is reason; nil
// when err is nil.
func Unready(reason string, err error) error {
	if err == nil {
		return nil
	}
	return &CheckError{Reason: reason, Err: err}
}

// Reasons a [DatabaseCheck] shows.
const (
	// ReasonUnreachable: no connection (refused, no route, DNS, TLS...).
	ReasonUnreachable = "unreachable"
	// ReasonTimeout: the check ran out of time.
	ReasonTimeout = "timeout"
	// ReasonRejected: the server answered with an error (authentication,
	// too many connections, no such database...).
	ReasonRejected = "rejected"
)

// DatabaseCheck is a readiness check that pings a database (pgxpool.Pool's
// Ping) and names a failure [ReasonTimeout] when the check's time ran out,
// [ReasonRejected] when the server answered with an error (one with an
// SQLSTATE, as pgconn.PgError), else [ReasonUnreachable].
func DatabaseCheck(ping func(context.Context) error) CheckFunc {
	return func(ctx context.Context) error {
		err := ping(ctx)
		var pgErr interface{ SQLState() string }
		switch {
		case err == nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			return Unready(ReasonTimeout, err)
		case errors.As(err, &pgErr):
			return Unready(ReasonRejected, err)
		}
		return Unready(ReasonUnreachable, err)
	}
}

// Config configures a [Server].
type Config struct {
	// Addr is the address to listen on, e.g. "127.0.0.1:8080". Required by
	// Start; a server whose routes are only mounted elsewhere ([Server.Handler])
	// needs none.
	Addr string
	// Logger receives request errors. nil discards.
	Logger *slog.Logger
	// Gatherer is what /metrics serves. nil serves no /metrics route.
	Gatherer prometheus.Gatherer
	// ReadinessCacheTTL is how long a readiness result is reused. 0 means
	// [DefaultReadinessCacheTTL].
	ReadinessCacheTTL time.Duration
}

// Server serves the worker's HTTP endpoints. Build with [New], mount routes,
// then [Server.Start] and finally [Server.Shutdown].
type Server struct {
	config   Config
	logger   *slog.Logger
	mux      *http.ServeMux
	srv      *http.Server
	listener net.Listener

	checksMu sync.Mutex
	checks   []namedCheck
	cached   *readiness // public: reasons only
	detail   *readiness // the same result with the errors' text
	cachedAt time.Time
	// lastReason is each failing check's last public reason (absent: ok),
	// so a state change is logged once.
	lastReason map[string]string

	draining atomic.Bool
}

type namedCheck struct {
	name  string
	check CheckFunc
}

type readiness struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

// New returns a server with /healthz, /readyz and (when config.Gatherer is
// set) /metrics mounted.
func New(config Config) *Server {
	if config.ReadinessCacheTTL <= 0 {
		config.ReadinessCacheTTL = DefaultReadinessCacheTTL
	}
	logger := config.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{config: config, logger: logger, mux: http.NewServeMux()}
	s.mux.Handle("/healthz", Methods{http.MethodGet: s.healthz})
	s.mux.Handle("/readyz", Methods{http.MethodGet: s.readyz})
	if config.Gatherer != nil {
		s.mux.Handle("/metrics", Methods{http.MethodGet: promhttp.HandlerFor(config.Gatherer, promhttp.HandlerOpts{
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		}).ServeHTTP})
	}
	s.srv = &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s
}

// Handle mounts handler at pattern (net/http.ServeMux syntax, e.g.
// "GET /api/admin/dlq/{id}"). Call before Start.
func (s *Server) Handle(pattern string, handler http.Handler) {
	s.mux.Handle(pattern, handler)
}

// Handler returns the server's routes (/healthz, /readyz, /metrics and
// what was mounted with Handle), to be served by another HTTP server.
func (s *Server) Handler() http.Handler { return s.mux }

// AddReadinessCheck adds a check /readyz runs (all of them, in order of
// addition). Call before Start.
func (s *Server) AddReadinessCheck(name string, check CheckFunc) {
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	s.checks = append(s.checks, namedCheck{name, check})
}

// Start listens on the configured address and serves in the background. A
// listen error (address in use, bad address) is returned at once.
func (s *Server) Start() error {
	l, err := net.Listen("tcp", s.config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.config.Addr, err)
	}
	s.listener = l
	go func() {
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped", "error", err)
		}
	}()
	return nil
}

// Addr is the address the server listens on (useful with port 0), "" before
// Start.
func (s *Server) Addr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Drain makes /readyz answer 503 from now on (the pod is shutting down)
// while everything else keeps being served.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting connections and waits for requests in flight
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	s.serveReadiness(w, r, false)
}

// ReadinessDetail serves what /readyz serves, with each failed check's whole
// error text instead of its public reason (same JSON shape, same cache, same
// status codes). Mount it behind authentication: the text may name hosts,
// ports, users and databases.
func (s *Server) ReadinessDetail() http.Handler {
	return Methods{http.MethodGet: func(w http.ResponseWriter, r *http.Request) { s.serveReadiness(w, r, true) }}
}

func (s *Server) serveReadiness(w http.ResponseWriter, r *http.Request, detail bool) {
	if s.draining.Load() {
		WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "shutting down", Checks: map[string]string{}})
		return
	}
	res, full := s.readiness(r.Context())
	if detail {
		res = full
	}
	code := http.StatusOK
	if res.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	WriteJSON(w, code, res)
}

// readiness runs the checks (or reuses their result for ReadinessCacheTTL)
// and returns it twice: with public reasons, and with the errors' text.
func (s *Server) readiness(ctx context.Context) (public, detail *readiness) {
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	if s.cached != nil && time.Since(s.cachedAt) < s.config.ReadinessCacheTTL {
		return s.cached, s.detail
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	public = &readiness{Status: "ok", Checks: map[string]string{}}
	detail = &readiness{Status: "ok", Checks: map[string]string{}}
	if s.lastReason == nil {
		s.lastReason = map[string]string{}
	}
	for _, c := range s.checks {
		err := c.check(ctx)
		if err == nil {
			public.Checks[c.name], detail.Checks[c.name] = "ok", "ok"
			if _, failing := s.lastReason[c.name]; failing {
				delete(s.lastReason, c.name)
				s.logger.Info("readiness check passes again", slog.String("check", c.name))
			}
			continue
		}
		reason := DefaultCheckReason
		var ce *CheckError
		if errors.As(err, &ce) {
			reason = ce.Reason
		}
		public.Status, detail.Status = "not ready", "not ready"
		public.Checks[c.name], detail.Checks[c.name] = reason, err.Error()
		if last, failing := s.lastReason[c.name]; !failing || last != reason {
			s.lastReason[c.name] = reason
			s.logger.Warn("readiness check failing", slog.String("check", c.name), slog.String("reason", reason), slog.String("error", err.Error()))
		}
	}
	s.cached, s.detail, s.cachedAt = public, detail, time.Now()
	return public, detail
}

// WriteJSON writes v as the JSON body of a response with status code: see
// [httpjson.WriteJSON], which it is.
func WriteJSON(w http.ResponseWriter, code int, v any) { httpjson.WriteJSON(w, code, v) }

// ErrorBody is the JSON body of every error response: {"error": "..."}
// ([httpjson.ErrorBody]).
type ErrorBody = httpjson.ErrorBody

// WriteError writes {"error": msg} with status code ([httpjson.WriteError]).
func WriteError(w http.ResponseWriter, code int, msg string) { httpjson.WriteError(w, code, msg) }

// Methods serves one path with a handler per method, GET also serving HEAD,
// any other method answered 405 with Allow: see [httpjson.Methods], which
// it is.
type Methods = httpjson.Methods
