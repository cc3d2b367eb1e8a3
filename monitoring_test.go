package rebound_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
	"github.com/rebound-queue/rebound/monitor/health"
	"github.com/rebound-queue/rebound/monitor/notify"
	"github.com/rebound-queue/rebound/retrypolicy"
)

type healthArgs struct {
	Fail bool `json:"fail"`
}

func (healthArgs) Kind() string { return "test_health" }

type healthWorker struct {
	river.WorkerDefaults[healthArgs]
}

func (healthWorker) Work(_ context.Context, job *river.Job[healthArgs]) error {
	if job.Args.Fail {
		return errors.New("upstream refused")
	}
	return nil
}

const healthToken = "0123456789abcdef-health"

// startHealthPod starts a pod working test_health jobs that flushes its
// counts every 100 ms, and serves its handler.
func startHealthPod(t *testing.T) (*bundle, *httptest.Server) {
	t.Helper()
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &healthWorker{})
		c.AdminToken = healthToken
		c.Monitoring.FlushInterval = 100 * time.Millisecond
	})
	srv := httptest.NewServer(b.pod.Handler())
	t.Cleanup(srv.Close)
	return b, srv
}

func getHealth(t *testing.T, srv *httptest.Server) *health.Report {
	t.Helper()
	code, body := get(t, srv.URL+health.Path, healthToken)
	require.Equal(t, http.StatusOK, code, body)
	var rep health.Report
	require.NoError(t, json.Unmarshal([]byte(body), &rep))
	return &rep
}

// TestJobHealthFromRealJobs reaches each overall_health value by working
// jobs (a failing job has max attempts 1, so it is dead-lettered at its
// first failure) and checks the document exactly.
func TestJobHealthFromRealJobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		ok, fail    int
		wantOverall string
		wantStatus  string
		wantRate    float64
		wantRules   []string
	}{
		{"healthy", 10, 0, health.Healthy, health.Healthy, 100, nil},
		{"degraded", 23, 7, health.Degraded, health.Degraded, 76.7, []string{"failure-rate-warning"}},
		{"unhealthy", 4, 7, health.Unhealthy, health.Unhealthy, 36.4, []string{"failure-rate-error", "failure-rate-warning"}},
		{"critical", 0, 101, health.Critical, health.Unhealthy, 0, []string{"dlq-growth", "dlq-unresolved-critical", "dlq-unresolved-error", "failure-rate-error", "failure-rate-warning"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, srv := startHealthPod(t)
			ctx := context.Background()
			var params []river.InsertManyParams
			for range tt.ok {
				params = append(params, river.InsertManyParams{Args: healthArgs{}})
			}
			for range tt.fail {
				params = append(params, river.InsertManyParams{Args: healthArgs{Fail: true}, InsertOpts: &river.InsertOpts{MaxAttempts: 1}})
			}
			_, err := b.pod.InsertMany(ctx, params)
			require.NoError(t, err)

			var rep *health.Report
			waitFor(t, 30*time.Second, "every job counted in job health", func() bool {
				rep = getHealth(t, srv)
				k, ok := rep.Jobs["test_health"]
				if !ok || k.SuccessRate == nil {
					return false
				}
				var finished int64
				require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT coalesce(sum(completed + dead_lettered), 0) FROM job_retry_metrics WHERE kind = 'test_health'").Scan(&finished))
				return finished == int64(tt.ok+tt.fail) &&
					b.count(t, "SELECT count(*) FROM river_job WHERE finalized_at IS NOT NULL") == tt.ok+tt.fail &&
					b.count(t, "SELECT count(*) FROM job_dead_letter_queue") == tt.fail
			})
			rep = getHealth(t, srv)
			require.Equal(t, tt.wantOverall, rep.OverallHealth)
			k := rep.Jobs["test_health"]
			require.Equal(t, tt.wantStatus, k.Status)
			require.NotNil(t, k.SuccessRate)
			require.Equal(t, tt.wantRate, *k.SuccessRate)
			require.NotNil(t, k.LastRunAgo)
			require.LessOrEqual(t, *k.LastRunAgo, int64(60))
			var rules []string
			for _, a := range rep.Alerts {
				rules = append(rules, a.Rule)
			}
			if tt.wantRules == nil {
				require.Empty(t, rules)
				require.Equal(t, []string{}, k.Issues)
			} else {
				require.ElementsMatch(t, tt.wantRules, rules)
				require.NotEmpty(t, k.Issues)
			}
		})
	}
}

// TestJobHealthDocumentShape checks the exact JSON of a kind with no
// finished job in the window (success_rate null) and one never run.
func TestJobHealthDocumentShape(t *testing.T) {
	t.Parallel()
	b, srv := startHealthPod(t)
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO job_retry_metrics (kind, period_start, period_seconds, attempts, completed, last_attempt_at)
		VALUES ('old_kind', date_trunc('minute', now() - interval '2 hours'), 60, 3, 3, now() - interval '2 hours'),
		       ('never_ran', date_trunc('minute', now()), 60, 0, 0, NULL)`)
	require.NoError(t, err)
	code, body := get(t, srv.URL+health.Path, healthToken)
	require.Equal(t, http.StatusOK, code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &doc))
	jobs := doc["jobs"].(map[string]any)
	old := jobs["old_kind"].(map[string]any)
	require.Nil(t, old["success_rate"])
	require.InDelta(t, 7200, old["last_run_ago"], 5)
	require.Equal(t, map[string]any{"status": "healthy", "success_rate": nil, "last_run_ago": nil, "issues": []any{}}, jobs["never_ran"])
	require.Equal(t, "healthy", doc["overall_health"])
	require.Equal(t, []any{}, doc["alerts"])
}

func TestJobHealthRefusesBadRequests(t *testing.T) {
	t.Parallel()
	_, srv := startHealthPod(t)
	tests := []struct {
		name, method, query, token string
		wantCode                   int
		wantBody                   string
	}{
		{"no token", "GET", "", "", 401, "missing admin token"},
		{"bad window", "GET", "?window=abc", healthToken, 400, `"error": "window \"abc\": a duration from 1m to 720h (e.g. 15m, or 900 seconds)"`},
		{"window too short", "GET", "?window=10s", healthToken, 400, `window \"10s\"`},
		{"window too long", "GET", "?window=9999h", healthToken, 400, `window \"9999h\"`},
		{"empty window", "GET", "?window=", healthToken, 400, `window \"\"`},
		{"unknown parameter", "GET", "?kind=x", healthToken, 400, `unknown query parameter \"kind\" (only window)`},
		{"window twice", "GET", "?window=1h&window=2h", healthToken, 400, `"error": "window given 2 times (give it once)"`},
		{"POST", "POST", "", healthToken, 405, "POST is not allowed on /api/admin/job-health: use GET"},
		{"a good window", "GET", "?window=1h", healthToken, 200, `"overall_health":"healthy"`},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, srv.URL+health.Path+tt.query, nil)
		require.NoError(t, err)
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err, tt.name)
		var body [4096]byte
		n, _ := resp.Body.Read(body[:])
		resp.Body.Close()
		require.Equal(t, tt.wantCode, resp.StatusCode, tt.name)
		require.Contains(t, string(body[:n]), tt.wantBody, tt.name)
	}
}

// TestBreakerOpeningNotifiesPromptly: with the periodic evaluation an hour
// away, a breaker opening inserts an evaluation at once, and the webhook
// gets the critical notification within seconds (the target is 60 s).
func TestBreakerOpeningNotifiesPromptly(t *testing.T) {
	t.Parallel()
	got := make(chan map[string]any, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var doc map[string]any
		_ = json.NewDecoder(r.Body).Decode(&doc)
		got <- doc
	}))
	t.Cleanup(hook.Close)
	b := startPod(t, func(c *rebound.Config) {
		c.Monitoring.AlertInterval = time.Hour
		c.Monitoring.Channels = map[string]notify.Channel{"hook": {Type: notify.TypeWebhook, URL: hook.URL}}
	})
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `UPDATE job_alert_config SET channels = '{hook}' WHERE name = 'breaker-open'`)
	require.NoError(t, err)
	opened := time.Now()
	_, err = b.pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: "payments.example.com", For: 10 * time.Minute, By: "test"})
	require.NoError(t, err)
	select {
	case doc := <-got:
		require.Equal(t, "firing", doc["status"])
		labels := doc["alerts"].([]any)[0].(map[string]any)["labels"]
		require.Equal(t, map[string]any{"alertname": "breaker-open", "subject": "payments.example.com", "severity": "critical"}, labels)
		t.Logf("notified %s after the breaker opened", time.Since(opened).Round(time.Millisecond))
	case <-time.After(60 * time.Second):
		t.Fatal("no notification within 60 s of the breaker opening")
	}
	waitFor(t, 10*time.Second, "the delivery counted", func() bool {
		v, _ := b.metric(t, "rebound_notifications_total", labels("channel", "hook", "outcome", "delivered"))
		return v == 1
	})
}

// TestMonitoringMetrics: rebound_alerts_firing has one series per enabled
// rule; rebound_notifications_total counts deliveries by channel and
// outcome.
func TestMonitoringMetrics(t *testing.T) {
	t.Parallel()
	b := startPod(t, nil)
	v, ok := b.metric(t, "rebound_alerts_firing", labels("rule", "breaker-open", "severity", "critical"))
	require.True(t, ok)
	require.Equal(t, 0.0, v)
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `INSERT INTO job_alert_state (rule, subject, severity, value, threshold, message, firing_since)
		VALUES ('breaker-open', 'a', 'critical', 1, 0, 'm', now()), ('breaker-open', 'b', 'critical', 1, 0, 'm', now()), ('breaker-open', 'c', 'critical', 1, 0, 'm', NULL)`)
	require.NoError(t, err)
	v, _ = b.metric(t, "rebound_alerts_firing", labels("rule", "breaker-open", "severity", "critical"))
	require.Equal(t, 2.0, v)
	n, err := testutil.GatherAndCount(b.registry, "rebound_alerts_firing")
	require.NoError(t, err)
	require.Equal(t, 7, n, "one series per enabled rule")
}

func TestMonitoringConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		m       rebound.MonitoringConfig
		wantErr string
	}{
		{"flush too often", rebound.MonitoringConfig{FlushInterval: time.Millisecond}, "rebound: Config.Monitoring.FlushInterval: 1ms is under 100ms (0 means 10s)"},
		{"short retention", rebound.MonitoringConfig{Retention: time.Hour}, "rebound: Config.Monitoring.Retention: 1h0m0s is under 48h (0 means 720h0m0s)"},
		{"alert interval", rebound.MonitoringConfig{AlertInterval: 2 * time.Hour}, "rebound: Config.Monitoring.AlertInterval: 2h0m0s is not between 1s and 1h (0 means 1m0s)"},
		{"health window", rebound.MonitoringConfig{HealthWindow: time.Second}, "rebound: Config.Monitoring.HealthWindow: 1s is not between 1m and 720h (0 means 15m0s)"},
		{"bad channel", rebound.MonitoringConfig{Channels: map[string]notify.Channel{"ops": {Type: notify.TypeSlack, URL: "not a url"}}},
			`rebound: Config.Monitoring.Channels["ops"]: channels.ops.url: an http or https URL is required`},
	}
	// New touches no database: a pool on a closed port will do.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	for _, tt := range tests {
		_, err := rebound.New(rebound.Config{Pool: pool, Workers: river.NewWorkers(), Monitoring: tt.m})
		require.EqualError(t, err, tt.wantErr, tt.name)
	}
}

// A pod whose Monitoring.Channels lacks a channel that enabled alert rules
// name still starts and works jobs: Start logs one warning per (rule,
// channel) naming the configured channels and the ways out (none for a
// disabled rule), and a firing rule records its delivery through the
// missing channel as failed, counted in rebound_notifications_total, while
// the configured one delivers.
func TestStartWarnsOfAlertRuleWithUnknownChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	for _, sql := range []string{
		`UPDATE job_alert_config SET channels = '{hook,pager,mail}' WHERE name = 'breaker-open'`,
		`UPDATE job_alert_config SET channels = '{nope}' WHERE name = 'failure-rate-error'`,
		`UPDATE job_alert_config SET channels = '{pager}', enabled = false WHERE name = 'dlq-growth'`,
	} {
		_, err := db.Pool.Exec(ctx, sql)
		require.NoError(t, err)
	}
	delivered := make(chan struct{}, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { delivered <- struct{}{} }))
	t.Cleanup(hook.Close)
	logs := &proctest.SyncBuffer{}
	workers := river.NewWorkers()
	river.AddWorker(workers, &healthWorker{})
	reg := prometheus.NewPedanticRegistry()
	pod, err := rebound.New(rebound.Config{Pool: db.Pool, Workers: workers, Registerer: reg,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
		FetchPollInterval: 50 * time.Millisecond,
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Monitoring: rebound.MonitoringConfig{AlertInterval: time.Hour,
			Channels: map[string]notify.Channel{"hook": {Type: notify.TypeWebhook, URL: hook.URL}}}})
	require.NoError(t, err)
	require.NoError(t, pod.Start(ctx))
	t.Cleanup(func() { require.NoError(t, pod.Stop(ctx)) })

	type warning struct{ Msg, Rule, Channel, Configured string }
	var warnings []warning
	for line := range strings.Lines(logs.String()) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &rec), line)
		if rec["level"] == "WARN" {
			str := func(k string) string { s, _ := rec[k].(string); return s }
			warnings = append(warnings, warning{str("msg"), str("rule"), str("channel"), str("configured_channels")})
		}
	}
	const fix = `: its notifications through it will fail; define it (the worker's alerts.channels, Config.Monitoring.Channels), or change the rule (rebound alerts set %[1]s --channels ...) or disable it (rebound alerts disable %[1]s)`
	want := func(rule, channel string) warning {
		return warning{fmt.Sprintf(`alert rule %q names channel %q, which is not configured (configured channels: hook)`+fix, rule, channel), rule, channel, "hook"}
	}
	require.Equal(t, []warning{want("breaker-open", "pager"), want("breaker-open", "mail"), want("failure-rate-error", "nope")}, warnings)

	// It works jobs.
	res, err := pod.Client().Insert(ctx, healthArgs{}, nil)
	require.NoError(t, err)
	b := &bundle{db: db, pod: pod}
	b.waitForState(t, res.Job.ID, rivertype.JobStateCompleted)

	// A firing rule: its configured channel delivers, the others fail.
	_, err = pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: "payments.example.com", For: 10 * time.Minute, By: "test"})
	require.NoError(t, err)
	select {
	case <-delivered:
	case <-time.After(60 * time.Second):
		t.Fatal("no notification within 60 s of the breaker opening")
	}
	type delivery struct{ Channel, Outcome, Error string }
	var got []delivery
	waitFor(t, 10*time.Second, "the hook delivery recorded", func() bool {
		rows, err := db.Pool.Query(ctx, `SELECT d.key, d.value->>'outcome', coalesce(d.value->>'error', '')
			FROM job_alert_history h, jsonb_each(h.delivery) d WHERE h.rule = 'breaker-open' AND h.event = 'firing' ORDER BY d.key`)
		require.NoError(t, err)
		got, err = pgx.CollectRows(rows, pgx.RowToStructByPos[delivery])
		require.NoError(t, err)
		return len(got) == 3 && got[0].Outcome == "delivered"
	})
	require.Equal(t, []delivery{
		{"hook", "delivered", ""},
		{"mail", "failed", "channel mail is not configured in this pod"},
		{"pager", "failed", "channel pager is not configured in this pod"},
	}, got)
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM job_alert_history`))
	// The failures through the channels the pod does not define are
	// counted too (Grafana's "Notifications by channel and outcome").
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rebound_notifications_total Alert notification delivery attempts and skipped or superseded deliveries, by channel and outcome (delivered, retrying, failed, skipped, superseded).
# TYPE rebound_notifications_total counter
rebound_notifications_total{channel="hook",outcome="delivered"} 1
rebound_notifications_total{channel="hook",outcome="failed"} 0
rebound_notifications_total{channel="hook",outcome="retrying"} 0
rebound_notifications_total{channel="hook",outcome="skipped"} 0
rebound_notifications_total{channel="hook",outcome="superseded"} 0
rebound_notifications_total{channel="mail",outcome="failed"} 1
rebound_notifications_total{channel="pager",outcome="failed"} 1
`), "rebound_notifications_total"))
}

// TestAlertDeliveryOutlastsReceiverOutage: with the pod-wide policy at 5
// attempts, an alert delivery to a webhook that answers 503 eight times
// is not dead-lettered: rebound_notify has its own policy (150 attempts;
// here its delays shortened through Config.Kinds, which inherits the rest
// from it, not from Config.RetryPolicy). The channel's breaker opens
// after 3 failures, parks the delivery, probes, and closes on the
// delivery that gets through.
func TestAlertDeliveryOutlastsReceiverOutage(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 8 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(hook.Close)
	key := "notify:" + strings.TrimPrefix(hook.URL, "http://")
	b := startPod(t, func(c *rebound.Config) {
		c.Monitoring.AlertInterval = time.Hour
		c.Monitoring.Channels = map[string]notify.Channel{"hook": {Type: notify.TypeWebhook, URL: hook.URL}}
		c.Kinds = map[string]rebound.KindConfig{notify.Kind: {RetryPolicy: retrypolicy.Policy{
			InitialDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond, Jitter: retrypolicy.JitterNone}}}
		c.Breaker.Keys = map[string]breaker.Settings{key: {FailureThreshold: 3, OpenTimeout: 300 * time.Millisecond, ParkSpread: 100 * time.Millisecond}}
	})
	ctx := context.Background()
	_, err := b.db.Pool.Exec(ctx, `UPDATE job_alert_config SET channels = '{hook}' WHERE name = 'breaker-open'`)
	require.NoError(t, err)
	_, err = b.pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: "payments.example.com", For: 10 * time.Minute, By: "test"})
	require.NoError(t, err)

	var delivery notify.Delivery
	waitFor(t, 60*time.Second, "the delivery after the outage", func() bool {
		var raw []byte
		err := b.db.Pool.QueryRow(ctx, `SELECT delivery -> 'hook' FROM job_alert_history WHERE rule = 'breaker-open' AND subject = 'payments.example.com'`).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) || raw == nil {
			return false
		}
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(raw, &delivery))
		return delivery.Outcome == notify.OutcomeDelivered || delivery.Outcome == notify.OutcomeFailed
	})
	require.Equal(t, notify.OutcomeDelivered, delivery.Outcome, delivery.Error)
	require.Equal(t, int32(9), calls.Load(), "8 failures, then the delivery")
	require.Equal(t, 150, b.count(t, `SELECT max_attempts FROM river_job WHERE kind = $1`, notify.Kind), "rebound_notify's own max attempts, not Config.RetryPolicy's 5")
	require.Zero(t, b.count(t, `SELECT count(*) FROM job_dead_letter_queue`))

	// The breaker held the delivery while the receiver was down, and
	// closed on the delivery that got through.
	parked, _ := b.metric(t, "rebound_breaker_short_circuited_total", labels("key", key))
	require.Positive(t, parked, "the open breaker parked the delivery")
	closed, _ := b.metric(t, "rebound_breaker_transitions_total", labels("key", key, "from", "half_open", "to", "closed"))
	require.Equal(t, 1.0, closed)
	row, err := b.pod.Breaker().Store().Get(ctx, key)
	require.NoError(t, err)
	require.Equal(t, breaker.StateClosed, row.State)
}
