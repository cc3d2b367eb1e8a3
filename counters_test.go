package rebound_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// scrapeSeries GETs srv's /metrics and returns its sample lines ("name{labels}
// value") of the families named, that contain every one of with, sorted.
func scrapeSeries(t *testing.T, srv *httptest.Server, families []string, with ...string) []string {
	t.Helper()
	resp, err := http.Get(srv.URL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out []string
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSuffix(line, "\n")
		name, _, ok := strings.Cut(line, "{")
		if !ok || !slices.Contains(families, name) {
			continue
		}
		if !slices.ContainsFunc(with, func(w string) bool { return !strings.Contains(line, w) }) {
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}

// TestCountersExistAtZeroOnStart: a freshly started pod's /metrics already
// has, at 0, the counter series whose label values it knows (configured
// kinds × queues × outcomes, kind × failure class, the retried classes with
// their strategies, batches by kind, notifications by channel × outcome;
// the duration histogram by kind × outcome, the retry delay's by class),
// so Prometheus's increase() counts each series' first event; after one
// job, exactly its series reads 1. A breaker key's series appear at 0 with
// the key's first job.
func TestCountersExistAtZeroOnStart(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, map[string][]step{"/quote": {{status: http.StatusOK, body: `{"price": 1.5}`}}})
	b := startPod(t, func(c *rebound.Config) {
		c.Kinds = map[string]rebound.KindConfig{"test_quote": {}}
		c.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 5}, "other": {MaxWorkers: 5}}
		c.Monitoring.AlertsDisabled = true
		c.Monitoring.Channels = map[string]notify.Channel{"hook": {Type: notify.TypeWebhook, URL: "http://127.0.0.1:9/hook"}}
	})
	srv := httptest.NewServer(b.pod.Handler())
	t.Cleanup(srv.Close)

	attempts := func(completedDefault int) []string {
		var want []string
		for _, queue := range []string{"default", "other"} {
			for _, outcome := range []string{"cancelled", "completed", "discarded", "errored", "interrupted", "panicked", "snoozed"} {
				v := 0
				if queue == "default" && outcome == "completed" {
					v = completedDefault
				}
				want = append(want, fmt.Sprintf(`rebound_job_attempts_total{kind="test_quote",outcome=%q,queue=%q} %d`, outcome, queue, v))
			}
		}
		return want
	}
	errorsZero := []string{}
	for _, class := range []string{"bad_request", "breaker_open", "cancelled", "decode", "lost", "misconfigured", "network", "not_found",
		"out_of_memory", "panic", "rate_limited", "server_error", "timeout", "unauthorized", "unknown", "unknown_kind"} {
		errorsZero = append(errorsZero, fmt.Sprintf(`rebound_job_errors_total{class=%q,kind="test_quote"} 0`, class))
	}
	// The default matrix retries these classes, with these strategies.
	retriesZero := []string{
		`rebound_retries_scheduled_total{class="cancelled",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="decode",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="lost",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="network",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="panic",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="rate_limited",kind="test_quote",strategy="aggressive"} 0`,
		`rebound_retries_scheduled_total{class="server_error",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="timeout",kind="test_quote",strategy="linear"} 0`,
		`rebound_retries_scheduled_total{class="unknown",kind="test_quote",strategy="exponential"} 0`,
		`rebound_retries_scheduled_total{class="unknown_kind",kind="test_quote",strategy="exponential"} 0`,
	}
	kindFamilies := []string{"rebound_job_attempts_total", "rebound_job_errors_total", "rebound_retries_scheduled_total", "rebound_batches_completed_total"}
	wantStart := slices.Concat(attempts(0), errorsZero, retriesZero, []string{`rebound_batches_completed_total{kind="test_quote"} 0`})
	slices.Sort(wantStart)
	require.Equal(t, wantStart, scrapeSeries(t, srv, kindFamilies, `kind="test_quote"`))
	require.Equal(t, []string{
		`rebound_notifications_total{channel="hook",outcome="delivered"} 0`,
		`rebound_notifications_total{channel="hook",outcome="failed"} 0`,
		`rebound_notifications_total{channel="hook",outcome="retrying"} 0`,
		`rebound_notifications_total{channel="hook",outcome="skipped"} 0`,
		`rebound_notifications_total{channel="hook",outcome="superseded"} 0`,
	}, scrapeSeries(t, srv, []string{"rebound_notifications_total"}))
	durations := func(completed int) []string {
		var want []string
		for _, outcome := range []string{"cancelled", "completed", "discarded", "errored", "interrupted", "panicked", "snoozed"} {
			want = append(want, fmt.Sprintf(`rebound_job_duration_seconds_count{kind="test_quote",outcome=%q} %d`, outcome, map[bool]int{true: completed}[outcome == "completed"]))
		}
		return want
	}
	require.Equal(t, durations(0), scrapeSeries(t, srv, []string{"rebound_job_duration_seconds_count"}, `kind="test_quote"`))
	delays := scrapeSeries(t, srv, []string{"rebound_retry_delay_seconds_count"})
	require.Len(t, delays, 16, "one series per failure class")
	require.Contains(t, delays, `rebound_retry_delay_seconds_count{class="server_error"} 0`)
	breakerFamilies := []string{"rebound_breaker_transitions_total", "rebound_breaker_short_circuited_total", "rebound_breaker_stale_results_total"}
	require.Empty(t, scrapeSeries(t, srv, breakerFamilies, `key="quotes:acme"`), "no series for a key not seen yet")

	res, err := b.pod.Insert(context.Background(), quoteArgs{URL: up.URL + "/quote", Vendor: "acme"}, nil)
	require.NoError(t, err)
	b.waitForState(t, res.Job.ID, rivertype.JobStateCompleted)

	wantAfter := slices.Concat(attempts(1), errorsZero, retriesZero, []string{`rebound_batches_completed_total{kind="test_quote"} 0`})
	slices.Sort(wantAfter)
	require.Equal(t, wantAfter, scrapeSeries(t, srv, kindFamilies, `kind="test_quote"`))
	require.Equal(t, durations(1), scrapeSeries(t, srv, []string{"rebound_job_duration_seconds_count"}, `kind="test_quote"`))
	require.Equal(t, []string{
		`rebound_breaker_short_circuited_total{key="quotes:acme"} 0`,
		`rebound_breaker_stale_results_total{key="quotes:acme"} 0`,
		`rebound_breaker_transitions_total{from="closed",key="quotes:acme",to="open"} 0`,
		`rebound_breaker_transitions_total{from="half_open",key="quotes:acme",to="closed"} 0`,
		`rebound_breaker_transitions_total{from="half_open",key="quotes:acme",to="open"} 0`,
		`rebound_breaker_transitions_total{from="open",key="quotes:acme",to="half_open"} 0`,
	}, scrapeSeries(t, srv, breakerFamilies, `key="quotes:acme"`))
}
