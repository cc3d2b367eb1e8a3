package bench

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Upstream is the real HTTP server the failure and outage scenarios call: a
// net/http server on a loopback port of its own, in this process, that
// counts every request it answers. What it answers depends on the path's
// first segment (the rest names the job, e.g. /once/r1-river-17):
//
//   - /ok/...: 200;
//   - /once/...: 503 on the first request for that path, 200 afterwards;
//   - /bad/...: 400, always; /gone/...: 404, always;
//   - /outage/...: 503 while [Upstream.SetDown] holds it down, else 200;
//   - anything else: 404.
//
// Its CPU time is part of the process's, so both sides of a comparison pay
// for the requests they make.
type Upstream struct {
	// URL is the server's base URL, http://127.0.0.1:PORT.
	URL string

	srv   *http.Server
	calls atomic.Int64
	down  atomic.Bool
	mu    sync.Mutex
	seen  map[string]struct{}
}

// NewUpstream starts an Upstream on 127.0.0.1 (a free port) until Close.
func NewUpstream() (*Upstream, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &Upstream{URL: "http://" + ln.Addr().String(), seen: map[string]struct{}{}}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	return u, nil
}

// ServeHTTP answers one request as the type's doc says and counts it.
func (u *Upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.calls.Add(1)
	path := strings.TrimPrefix(r.URL.Path, "/")
	what, _, _ := strings.Cut(path, "/")
	status := http.StatusOK
	switch what {
	case "ok":
	case "once":
		u.mu.Lock()
		if _, ok := u.seen[path]; !ok {
			u.seen[path] = struct{}{}
			status = http.StatusServiceUnavailable
		}
		u.mu.Unlock()
	case "bad":
		status = http.StatusBadRequest
	case "gone":
		status = http.StatusNotFound
	case "outage":
		if u.down.Load() {
			status = http.StatusServiceUnavailable
		}
	default:
		status = http.StatusNotFound
	}
	w.WriteHeader(status)
}

// Calls is the number of requests answered since the start.
func (u *Upstream) Calls() int64 { return u.calls.Load() }

// SetDown makes /outage/... answer 503 (true) or 200 (false).
func (u *Upstream) SetDown(down bool) { u.down.Store(down) }

// Close stops the server, waiting up to 5 s for requests in flight.
func (u *Upstream) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
