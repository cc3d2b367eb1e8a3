package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/httpserver"
	"github.com/rebound-queue/rebound/internal/proctest"
)

func TestReadiness(t *testing.T) {
	t.Parallel()
	var dbErr atomic.Value
	dbErr.Store("")
	var calls atomic.Int32
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "test_total", Help: "A test counter."}))
	// A short cache, so the test sees a failure appear; the caching itself is
	// checked on a server with a long one (below), so load cannot flake it.
	s := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", Gatherer: reg, ReadinessCacheTTL: 100 * time.Millisecond})
	s.AddReadinessCheck("database", func(context.Context) error {
		calls.Add(1)
		if msg := dbErr.Load().(string); msg != "" {
			return errors.New(msg)
		}
		return nil
	})
	require.NoError(t, s.Start())
	defer s.Shutdown(context.Background()) //nolint:errcheck
	base := "http://" + s.Addr()

	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		if resp.Header.Get("Content-Type") == "application/json" {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		}
		return resp.StatusCode, body
	}

	code, body := get("/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok", body["status"])

	code, body = get("/readyz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, map[string]any{"status": "ok", "checks": map[string]any{"database": "ok"}}, body)

	dbErr.Store("connection refused")
	time.Sleep(150 * time.Millisecond)
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, map[string]any{"status": "not ready", "checks": map[string]any{"database": httpserver.DefaultCheckReason}}, body,
		"an error's text is never shown on /readyz")

	code, _ = get("/metrics")
	require.Equal(t, http.StatusOK, code)

	dbErr.Store("")
	s.Drain()
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "shutting down", body["status"])
	code, _ = get("/healthz")
	require.Equal(t, http.StatusOK, code, "a draining pod is still alive")
}

func TestReadinessIsCached(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	s := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", ReadinessCacheTTL: time.Hour})
	s.AddReadinessCheck("database", func(context.Context) error { calls.Add(1); return nil })
	require.NoError(t, s.Start())
	defer s.Shutdown(context.Background()) //nolint:errcheck
	for range 3 {
		resp, err := http.Get("http://" + s.Addr() + "/readyz")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	require.Equal(t, int32(1), calls.Load(), "three probes, one check")
}

func TestStartReportsListenErrors(t *testing.T) {
	t.Parallel()
	s := httpserver.New(httpserver.Config{Addr: "127.0.0.1:99999"})
	require.ErrorContains(t, s.Start(), "listen on 127.0.0.1:99999")
}

// /readyz is open to anyone: during a database outage it says
// "unreachable", never the dial error (user, database, host, port). The
// detail is logged once per change of state, and served by
// ReadinessDetail.
func TestReadinessHidesDatabaseDetail(t *testing.T) {
	t.Parallel()
	// A real database URL on a local port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedAddr := l.Addr().String()
	require.NoError(t, l.Close())
	pool, err := pgxpool.New(context.Background(), "postgres://alice@"+closedAddr+"/billing_prod?sslmode=disable&connect_timeout=2")
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var logs proctest.SyncBuffer
	var other atomic.Pointer[error]
	setOther := func(err error) { other.Store(&err) }
	setOther(nil)
	s := httpserver.New(httpserver.Config{
		Addr:              "127.0.0.1:0",
		Logger:            slog.New(slog.NewJSONHandler(&logs, nil)),
		ReadinessCacheTTL: time.Millisecond,
	})
	s.AddReadinessCheck("database", httpserver.DatabaseCheck(pool.Ping))
	s.AddReadinessCheck("other", func(context.Context) error {
		return *other.Load()
	})
	s.Handle("/detail", s.ReadinessDetail())
	require.NoError(t, s.Start())
	defer s.Shutdown(context.Background()) //nolint:errcheck
	base := "http://" + s.Addr()

	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	for range 3 {
		code, body := get("/readyz")
		require.Equal(t, http.StatusServiceUnavailable, code)
		require.JSONEq(t, `{"status": "not ready", "checks": {"database": "unreachable", "other": "ok"}}`, body)
		time.Sleep(2 * time.Millisecond) // past the cache: the checks run again
	}
	code, body := get("/detail")
	require.Equal(t, http.StatusServiceUnavailable, code)
	var detail struct{ Checks map[string]string }
	require.NoError(t, json.Unmarshal([]byte(body), &detail))
	for _, want := range []string{"unreachable: ", "alice", "billing_prod", closedAddr} {
		require.Contains(t, detail.Checks["database"], want)
	}

	// A second check fails, then changes reason, then passes: one line each.
	setOther(errors.New("disk full on /var/lib/x"))
	get("/readyz")
	time.Sleep(2 * time.Millisecond)
	code, body = get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.JSONEq(t, `{"status": "not ready", "checks": {"database": "unreachable", "other": "failing"}}`, body)
	time.Sleep(2 * time.Millisecond)
	setOther(httpserver.Unready("behind", errors.New("2 pending")))
	get("/readyz")
	time.Sleep(2 * time.Millisecond)
	setOther(nil)
	get("/readyz")
	time.Sleep(2 * time.Millisecond)
	get("/readyz")

	type line struct {
		Level, Msg, Check, Reason, Error string
	}
	var lines []line
	for _, raw := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var l line
		require.NoError(t, json.Unmarshal([]byte(raw), &l), raw)
		lines = append(lines, l)
	}
	require.Len(t, lines, 4, logs.String())
	require.Equal(t, line{Level: "WARN", Msg: "readiness check failing", Check: "database", Reason: "unreachable", Error: lines[0].Error}, lines[0])
	require.Contains(t, lines[0].Error, closedAddr, "the log has the detail")
	require.Equal(t, []line{
		{Level: "WARN", Msg: "readiness check failing", Check: "other", Reason: "failing", Error: "disk full on /var/lib/x"},
		{Level: "WARN", Msg: "readiness check failing", Check: "other", Reason: "behind", Error: "behind: 2 pending"},
		{Level: "INFO", Msg: "readiness check passes again", Check: "other"},
	}, lines[1:])
}

// Every route of the server asked with another method: 405, Allow, JSON.
func TestWrongMethod(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	s := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", Gatherer: reg})
	require.NoError(t, s.Start())
	defer s.Shutdown(context.Background()) //nolint:errcheck
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			req, err := http.NewRequest(method, "http://"+s.Addr()+path, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
			require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
			require.JSONEq(t, `{"error": "method `+method+` not allowed on `+path+` (allowed: GET, HEAD)"}`, string(b))
		}
	}
}
