package httpserver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/httpserver"
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
	require.Equal(t, map[string]any{"status": "not ready", "checks": map[string]any{"database": "connection refused"}}, body)

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
