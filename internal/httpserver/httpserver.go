// Package httpserver is the worker's HTTP server: liveness (/healthz),
// readiness (/readyz), Prometheus metrics (/metrics) and the admin routes
// that feature packages mount.
package httpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultReadinessCacheTTL is how long a readiness result is reused, so a
// probe every second costs the database at most one check per 5 seconds.
const DefaultReadinessCacheTTL = 5 * time.Second

// CheckFunc is one readiness check; a non-nil error makes /readyz answer
// 503 with the error's message under the check's name.
type CheckFunc func(ctx context.Context) error

// Config configures a [Server].
type Config struct {
	// Addr is the address to listen on, e.g. "127.0.0.1:8080". Required.
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
	cached   *readiness
	cachedAt time.Time

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
	if s.draining.Load() {
		WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "shutting down", Checks: map[string]string{}})
		return
	}
	res := s.readiness(r.Context())
	code := http.StatusOK
	if res.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	WriteJSON(w, code, res)
}

func (s *Server) readiness(ctx context.Context) *readiness {
	s.checksMu.Lock()
	defer s.checksMu.Unlock()
	if s.cached != nil && time.Since(s.cachedAt) < s.config.ReadinessCacheTTL {
		return s.cached
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res := &readiness{Status: "ok", Checks: map[string]string{}}
	for _, c := range s.checks {
		if err := c.check(ctx); err != nil {
			res.Status = "not ready"
			res.Checks[c.name] = err.Error()
		} else {
			res.Checks[c.name] = "ok"
		}
	}
	s.cached, s.cachedAt = res, time.Now()
	return res
}

// WriteJSON writes v as the JSON body of a response with status code.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is the JSON body of every error response: {"error": "..."}.
type ErrorBody struct {
	// Error says what went wrong, in one line.
	Error string `json:"error"`
}

// WriteError writes {"error": msg} with status code.
func WriteError(w http.ResponseWriter, code int, msg string) {
	WriteJSON(w, code, ErrorBody{Error: msg})
}

// Methods serves one path with a handler per method. GET also serves HEAD,
// as net/http's ServeMux does; any other method is answered 405 with an
// Allow header listing the methods it takes and a JSON error naming them.
// Mount it on a pattern without a method (mux.Handle("/api/x/{id}",
// Methods{http.MethodGet: show})): a known path asked with another method
// is then a 405, where method patterns next to a catch-all give a 404 or a
// redirect.
type Methods map[string]http.HandlerFunc

func (m Methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := m[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = m[http.MethodGet]
	}
	if ok {
		h(w, r)
		return
	}
	allowed := make([]string, 0, len(m)+1)
	for method := range m {
		allowed = append(allowed, method)
		if method == http.MethodGet {
			allowed = append(allowed, http.MethodHead)
		}
	}
	slices.Sort(allowed)
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")))
}
