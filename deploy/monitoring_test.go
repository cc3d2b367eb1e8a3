package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// workerConfig is the pods' --config in the end-to-end test: short retry
// delays, a breaker that opens after 3 failures of key payments and stays
// open, and alerts evaluated every second, breaker-open notifying a local
// webhook (%s).
const workerConfig = `retry:
  default:
    max_attempts: 3
    initial_delay: 200ms
    min_delay: 100ms
    max_delay: 1s
    jitter: none
breaker:
  defaults:
    failure_threshold: 1000
    failure_ratio: -1
  keys:
    payments: {failure_threshold: 3, open_timeout: 10m, max_open_timeout: 10m}
alerts:
  interval: 1s
  channels:
    hook: {type: webhook, url: "%s"}
`

// TestDashboardAndRulesAgainstPrometheus runs two real worker pods (each
// working a queue of its own) and a real Prometheus server scraping them
// every second with the shipped rules (for: shortened to 1s in the test's
// copy), works synthetic jobs that succeed, retry, dead-letter (117), open
// a breaker (payments) and complete a batch, plus a queue nobody works
// (reports, its job an hour overdue) and dead-letter entries a day old;
// then it evaluates, through Prometheus's HTTP API, every dashboard query
// (variables substituted as Grafana does: all values, then kind=synthetic
// and queue=default) and every recording and alerting expression: each
// parses, returns data, names only metrics the pods export (or the rules
// record), and each panel shows something other than 0 over the run (the
// reconciliation exactly 0). Every alert fires (ReboundBreakerOpen for
// payments), and the dead-letter queue size of the dashboard and of the
// rules equals the database's count though both pods export it.
func TestDashboardAndRulesAgainstPrometheus(t *testing.T) {
	t.Parallel()
	promBin := proctest.Tool(t, "prometheus", "prometheus")
	db := dbtest.New(t)
	ctx := context.Background()
	started := time.Now()

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(hook.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "worker.yaml")
	require.NoError(t, os.WriteFile(cfg, fmt.Appendf(nil, workerConfig, hook.URL+"/alerts"), 0o600))
	_, err := db.Pool.Exec(ctx, `UPDATE job_alert_config SET channels = '{hook}' WHERE name = 'breaker-open'`)
	require.NoError(t, err)

	// Each pod works a queue of its own, so the warm-up below reaches both.
	pods := []*proctest.Process{
		proctest.StartWorker(t, db.URL, "--config", cfg, "--queues", "default=20", "--log-level", "info"),
		proctest.StartWorker(t, db.URL, "--config", cfg, "--queues", "other=20", "--log-level", "info"),
	}
	t.Logf("pods ready after %s", time.Since(started).Round(time.Second))
	prom := startPrometheus(t, promBin, dir, pods)
	t.Logf("prometheus scraping after %s", time.Since(started).Round(time.Second))

	env := []string{"DATABASE_URL=" + db.URL}
	enqueue := func(queue string, jobs ...string) {
		t.Helper()
		res := proctest.RunStdin(t, env, strings.Join(jobs, "\n")+"\n", "enqueue", "synthetic", "--file", "-", "--queue", queue, "--config", cfg)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
	}
	times := func(n int, job string) []string { return slices.Repeat([]string{job}, n) }
	const (
		ok       = `{}`
		retry    = `{"fail_attempts": 1, "fail_status": 503, "operation_key": "flaky"}`
		discard  = `{"fail_attempts": 3, "fail_status": 500, "operation_key": "flaky"}`
		badReq   = `{"fail_attempts": 1, "fail_class": "bad_request"}`
		payments = `{"fail_attempts": 5, "fail_status": 503, "operation_key": "payments"}`
	)

	// One job of each sort in each pod's queue first, so each pod's
	// counter series exist in Prometheus before the bulk: increase()
	// counts from the first sample Prometheus has. The pods create their
	// kinds' job counters at 0 at start; the breaker key "flaky" gets its
	// series with its first job, and the expected figures below count
	// these jobs, so the warm-up stays.
	for _, q := range []string{"default", "other"} {
		enqueue(q, ok, retry, discard, badReq)
	}
	waitFor(t, 20*time.Second, "warm-up jobs finished", func() bool {
		return count(t, db, `SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND finalized_at IS NOT NULL`) == 8
	})
	// A dead-letter entry a day old, and a queue no pod works whose job is
	// an hour overdue.
	_, err = db.Pool.Exec(ctx, `UPDATE job_dead_letter_queue SET dead_lettered_at = now() - interval '25 hours'`)
	require.NoError(t, err)
	enqueue("reports", ok)
	_, err = db.Pool.Exec(ctx, `UPDATE river_job SET scheduled_at = now() - interval '1 hour' WHERE queue = 'reports'`)
	require.NoError(t, err)
	time.Sleep(3 * time.Second) // three scrapes
	t.Logf("warm-up done after %s", time.Since(started).Round(time.Second))

	enqueue("default", slices.Concat(times(30, ok), times(5, retry), times(2, discard), times(55, badReq))...)
	enqueue("other", slices.Concat(times(20, ok), times(5, retry), times(1, discard), times(55, badReq))...)
	// 10 attempts: none is dead-lettered before the breaker opens.
	res := proctest.RunStdin(t, env, strings.Join(times(5, payments), "\n")+"\n", "enqueue", "synthetic", "--file", "-", "--max-attempts", "10")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = proctest.RunStdin(t, env, "{}\n{}\n{}\n", "enqueue", "batch", "--kind", "synthetic", "--name", "dashboard", "--file", "-",
		"--delay-between-batches", "0s", "--config", cfg)
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	// Dead-lettered: 2 + 110 bad requests and 2 + 3 out of attempts;
	// completed: 2 + 50 ok, 2 + 10 retried, the batch's 3.
	const deadLettered, completed = 117, 67
	waitFor(t, 30*time.Second, "workload finished", func() bool {
		return count(t, db, `SELECT count(*) FROM job_dead_letter_queue WHERE status = 'unresolved'`) == deadLettered &&
			count(t, db, `SELECT count(*) FROM river_job WHERE kind = 'synthetic' AND state = 'completed'`) == completed &&
			count(t, db, `SELECT count(*) FROM circuit_breaker_state WHERE breaker_key = 'payments' AND state = 'open'`) == 1 &&
			count(t, db, `SELECT count(*) FROM job_batch WHERE completed_at IS NOT NULL`) == 1
	})

	t.Logf("workload done after %s", time.Since(started).Round(time.Second))
	rules := loadRules(t)
	// Every alert fires: the workload was made to fire them all, so each
	// expression returns data.
	var missing []string
	waitFor(t, 40*time.Second, "every alert firing", func() bool {
		firing := prom.firingAlerts(t)
		missing = nil
		for _, r := range rules {
			if r.Alert != "" && !firing[r.Alert] {
				missing = append(missing, r.Alert)
			}
		}
		// And the one-off events scraped.
		for title, raw := range firstEventOnly {
			if v := prom.query(t, raw.query, time.Now()); len(v) != 1 || v[0] != raw.want {
				missing = append(missing, fmt.Sprintf("%s: %s = %v", title, raw.query, v))
			}
		}
		return len(missing) == 0
	}, func() string { return fmt.Sprintf("missing: %v", missing) })
	time.Sleep(2 * time.Second) // two more scrapes, for the range queries
	t.Logf("every alert firing after %s", time.Since(started).Round(time.Second))
	alerts := prom.alerts(t)
	require.Contains(t, alerts, alertKey{"ReboundBreakerOpen", "payments", "firing"})

	exported := exportedMetrics(t, pods)
	records := map[string]bool{}
	for _, r := range rules {
		if r.Record != "" {
			records[r.Record] = true
		}
	}
	checkNames := func(t *testing.T, what, expr string) {
		t.Helper()
		for _, name := range metricNameRE.FindAllString(quotedRE.ReplaceAllString(expr, `""`), -1) {
			if strings.HasPrefix(name, "rebound:") {
				require.True(t, records[name], "%s: %s is not recorded by the rules", what, name)
			} else {
				require.True(t, exported[name], "%s: the pods do not export %s", what, name)
			}
		}
	}

	end := time.Now()
	// Grafana's variables for a dashboard range from the test's start to
	// now and the data source's scrape interval (1s here): $__interval is
	// the range over ~1000 points, at least the scrape interval;
	// $__rate_interval is max($__interval + scrape interval, 4 x scrape
	// interval).
	rangeSeconds := int(math.Ceil(end.Sub(started).Seconds()))
	interval := max(1, rangeSeconds/1000)
	builtins := map[string]string{
		"$__rate_interval": fmt.Sprintf("%ds", max(interval+1, 4)),
		"$__interval":      fmt.Sprintf("%ds", interval),
		"$__range":         fmt.Sprintf("%ds", rangeSeconds),
	}
	variants := []struct {
		name string
		vars map[string]string
	}{
		{"all", map[string]string{"$kind": ".*", "$queue": ".*"}},
		{"kind=synthetic,queue=default", map[string]string{"$kind": "synthetic", "$queue": "default"}},
	}

	d := loadDashboard(t)
	for _, v := range d.Templating.List {
		// label_values(metric, label) as Grafana asks it.
		m := regexp.MustCompile(`^label_values\((\w+), (\w+)\)$`).FindStringSubmatch(v.Definition)
		require.NotNil(t, m, v.Definition)
		require.True(t, exported[m[1]], "variable %s: the pods do not export %s", v.Name, m[1])
		values := prom.labelValues(t, m[2], m[1], started, end)
		want := map[string][]string{"kind": {"synthetic"}, "queue": {"default", "other", "reports"}}[v.Name]
		for _, w := range want {
			require.Contains(t, values, w, "variable %s", v.Name)
		}
	}
	panels := 0
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		panels++
		for _, tg := range p.Targets {
			what := fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)
			checkNames(t, what, tg.Expr)
			for _, variant := range variants {
				expr := tg.Expr
				for k, val := range builtins {
					expr = strings.ReplaceAll(expr, k, val)
				}
				for k, val := range variant.vars {
					expr = strings.ReplaceAll(expr, k, val)
				}
				require.NotContains(t, expr, "$", what)
				instant := prom.query(t, expr, end)
				require.NotEmpty(t, instant, "%s (%s) returned no data at the end: %s", what, variant.name, expr)
				if variant.name != "all" {
					continue
				}
				// Over the run, the query shows what happened: something
				// other than 0, except the reconciliation's counters.
				var values []float64
				for _, s := range prom.queryRange(t, expr, started, end, time.Duration(interval)*time.Second) {
					values = append(values, s...)
				}
				require.NotEmpty(t, values, "%s: no data over the run: %s", what, expr)
				if p.Title == "Reconciliation (should stay 0)" {
					require.Equal(t, 0.0, slices.Max(values), what)
					continue
				}
				if raw, ok := firstEventOnly[p.Title]; ok {
					require.Equal(t, raw.want, prom.scalar(t, raw.query, end), "%s: %s", what, raw.query)
					continue
				}
				require.True(t, slices.ContainsFunc(values, func(x float64) bool { return x != 0 && !math.IsNaN(x) }),
					"%s: only 0 or NaN over the run: %s", what, expr)
			}
		}
	}
	require.Equal(t, 24, panels)

	for _, r := range rules {
		name := r.Record + r.Alert
		checkNames(t, "rule "+name, r.Expr)
		require.NotEmpty(t, prom.query(t, r.Expr, end), "rule %s: no data: %s", name, r.Expr)
		if r.Record != "" {
			require.NotEmpty(t, prom.query(t, r.Record, end), "recorded %s: no data", name)
		}
	}

	// Database-derived values count once with two pods: the dashboard's
	// and the rules' dead-letter queue size equal the database's, while
	// the raw sum over pods is double.
	unresolvedPanel := "sum(rebound:dead_letter_queue_size:max{kind=~\".*\", status=\"unresolved\"})"
	require.Equal(t, float64(deadLettered), prom.scalar(t, unresolvedPanel, time.Now()))
	require.Equal(t, float64(deadLettered), prom.scalar(t, "rebound:dead_letter_queue_unresolved:sum", time.Now()))
	require.Equal(t, float64(2*deadLettered), prom.scalar(t, `sum(rebound_dead_letter_queue_size{status="unresolved"})`, time.Now()))
	require.Equal(t, 1.0, prom.scalar(t, `sum(rebound:queue_jobs:max{queue="reports", state="available"})`, time.Now()))
	require.Equal(t, 2.0, prom.scalar(t, `sum(rebound:breaker_state:max{key="payments"})`, time.Now()))
	require.Equal(t, float64(count(t, db, `SELECT count(*) FROM circuit_breaker_state WHERE state = 'open'`)),
		prom.scalar(t, "count(rebound:breaker_state:max == 2) or vector(0)", time.Now()))
	t.Logf("ran in %s", time.Since(started).Round(time.Second))
}

// firstEventOnly are the panels whose counter the run increments in one
// burst (one breaker trip, one batch, one notification, the 5 payments
// jobs parked once each when the breaker opened), with a query of the
// counter itself and its value. Prometheus counts from the first sample
// it has; the batch and notification series exist at 0 from the start, but
// a breaker key's series only from the key's first job, so increase() over
// a burst right after it may show 0: the counter's value is checked
// instead.
var firstEventOnly = map[string]struct {
	query string
	want  float64
}{
	"Transitions":                          {`sum(rebound_breaker_transitions_total{key="payments", from="closed", to="open"})`, 1},
	"Batches completed":                    {`sum(rebound_batches_completed_total{kind="synthetic"})`, 1},
	"Notifications by channel and outcome": {`sum(rebound_notifications_total{channel="hook", outcome="delivered"})`, 1},
	"Short-circuited jobs and calls":       {`sum(rebound_breaker_short_circuited_total{key="payments"})`, 5},
}

// metricNameRE finds the metric names in a PromQL expression: rebound's
// all start with rebound_ (exported) or rebound: (recorded).
// Label values (quoted) are left out first.
var (
	metricNameRE = regexp.MustCompile(`\brebound[_:][a-zA-Z0-9_:]*`)
	quotedRE     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
)

// rule is one rule of the shipped rules file.
type rule struct {
	Record string `yaml:"record"`
	Alert  string `yaml:"alert"`
	Expr   string `yaml:"expr"`
	For    string `yaml:"for"`
}

// loadRules reads every rule of the shipped rules file.
func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rulesDir, "rebound.rules.yml"))
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(b, &f))
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	require.Len(t, out, 20)
	return out
}

// exportedMetrics returns the sample names both pods' /metrics export.
func exportedMetrics(t *testing.T, pods []*proctest.Process) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, p := range pods {
		resp, err := http.Get("http://" + p.HTTPAddr + "/metrics")
		require.NoError(t, err)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			names[strings.FieldsFunc(line, func(r rune) bool { return r == '{' || r == ' ' })[0]] = true
		}
		resp.Body.Close()
		require.NoError(t, sc.Err())
	}
	return names
}

// prometheus is a Prometheus server the test started.
type prometheus struct{ base string }

// startPrometheus runs prometheus on a loopback port, storage in dir,
// scraping pods every second and evaluating a copy of the shipped rules
// (every for: shortened to 1s) every second; it waits until both pods are
// scraped.
func startPrometheus(t *testing.T, bin, dir string, pods []*proctest.Process) *prometheus {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(rulesDir, "rebound.rules.yml"))
	require.NoError(t, err)
	shortened := regexp.MustCompile(`(?m)^(\s+for: )\S+$`).ReplaceAll(b, []byte("${1}1s"))
	require.NotEqual(t, string(b), string(shortened), "the rules have a for: to shorten")
	rulesFile := filepath.Join(dir, "rebound.rules.yml")
	require.NoError(t, os.WriteFile(rulesFile, shortened, 0o600))
	var targets []string
	for _, p := range pods {
		targets = append(targets, strconv.Quote(p.HTTPAddr))
	}
	config := filepath.Join(dir, "prometheus.yml")
	require.NoError(t, os.WriteFile(config, []byte(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [`+strconv.Quote(rulesFile)+`]
scrape_configs:
  - job_name: rebound
    static_configs:
      - targets: [`+strings.Join(targets, ", ")+`]
`), 0o600))
	addr := proctest.FreeAddr(t)
	cmd := exec.Command(bin, "--config.file", config, "--storage.tsdb.path", filepath.Join(dir, "tsdb"),
		"--web.listen-address", addr, "--log.level", "warn")
	logs := &strings.Builder{}
	var logMu = make(chan struct{}, 1)
	cmd.Stdout, cmd.Stderr = lockedWriter{logs, logMu}, lockedWriter{logs, logMu}
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			logMu <- struct{}{}
			t.Logf("prometheus output:\n%s", logs.String())
			<-logMu
		}
	})
	p := &prometheus{base: "http://" + addr}
	waitFor(t, 20*time.Second, "prometheus scraping both pods", func() bool {
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", logs.String())
		default:
		}
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return false
		}
		return len(p.query(t, `up{job="rebound"} == 1`, time.Now())) == 2
	})
	return p
}

// lockedWriter serialises writes to a shared builder (the channel is a
// one-slot lock).
type lockedWriter struct {
	b  *strings.Builder
	mu chan struct{}
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu <- struct{}{}
	defer func() { <-w.mu }()
	return w.b.Write(p)
}

// apiResponse is Prometheus's HTTP API envelope.
type apiResponse struct {
	Status    string          `json:"status"`
	Error     string          `json:"error"`
	ErrorType string          `json:"errorType"`
	Data      json.RawMessage `json:"data"`
}

// get calls the API and fails the test on an error answer (a query that
// does not parse).
func (p *prometheus) get(t *testing.T, path string, params url.Values) json.RawMessage {
	t.Helper()
	// POST, as Grafana's data source does (httpMethod: POST); the alerts
	// endpoint takes GET only.
	var resp *http.Response
	var err error
	if params == nil {
		resp, err = http.Get(p.base + path)
	} else {
		resp, err = http.PostForm(p.base+path, params)
	}
	require.NoError(t, err)
	defer resp.Body.Close()
	var r apiResponse
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status, "%s %v: %s: %s", path, params, r.ErrorType, r.Error)
	return r.Data
}

// query runs an instant query and returns its vector's values (a scalar
// result as one value).
func (p *prometheus) query(t *testing.T, expr string, at time.Time) []float64 {
	t.Helper()
	var data struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	}
	require.NoError(t, json.Unmarshal(p.get(t, "/api/v1/query", url.Values{"query": {expr}, "time": {unix(at)}}), &data))
	var out []float64
	switch data.ResultType {
	case "vector":
		var v []struct {
			Value [2]any `json:"value"`
		}
		require.NoError(t, json.Unmarshal(data.Result, &v))
		for _, s := range v {
			out = append(out, parseValue(t, s.Value[1]))
		}
	case "scalar":
		var s [2]any
		require.NoError(t, json.Unmarshal(data.Result, &s))
		out = append(out, parseValue(t, s[1]))
	default:
		t.Fatalf("query %s: result type %s", expr, data.ResultType)
	}
	return out
}

// scalar runs an instant query that must return one value.
func (p *prometheus) scalar(t *testing.T, expr string, at time.Time) float64 {
	t.Helper()
	v := p.query(t, expr, at)
	require.Len(t, v, 1, expr)
	return v[0]
}

// queryRange runs a range query and returns each series' values.
func (p *prometheus) queryRange(t *testing.T, expr string, start, end time.Time, step time.Duration) [][]float64 {
	t.Helper()
	var data struct {
		ResultType string `json:"resultType"`
		Result     []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(p.get(t, "/api/v1/query_range", url.Values{"query": {expr}, "start": {unix(start)}, "end": {unix(end)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)}}), &data))
	require.Equal(t, "matrix", data.ResultType)
	var out [][]float64
	for _, s := range data.Result {
		var vals []float64
		for _, v := range s.Values {
			vals = append(vals, parseValue(t, v[1]))
		}
		out = append(out, vals)
	}
	return out
}

// labelValues returns the values of label on series of metric, as
// Grafana's label_values(metric, label) asks them.
func (p *prometheus) labelValues(t *testing.T, label, metric string, start, end time.Time) []string {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/label/" + label + "/values?" + url.Values{"match[]": {metric}, "start": {unix(start)}, "end": {unix(end)}}.Encode())
	require.NoError(t, err)
	defer resp.Body.Close()
	var r struct {
		Status string   `json:"status"`
		Data   []string `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&r))
	require.Equal(t, "success", r.Status)
	return r.Data
}

type alertKey struct{ name, key, state string }

// alerts returns Prometheus's active alerts (/api/v1/alerts).
func (p *prometheus) alerts(t *testing.T) []alertKey {
	t.Helper()
	var data struct {
		Alerts []struct {
			Labels map[string]string `json:"labels"`
			State  string            `json:"state"`
		} `json:"alerts"`
	}
	require.NoError(t, json.Unmarshal(p.get(t, "/api/v1/alerts", nil), &data))
	var out []alertKey
	for _, a := range data.Alerts {
		out = append(out, alertKey{a.Labels["alertname"], a.Labels["key"], a.State})
	}
	return out
}

// firingAlerts returns the names of the alerts firing.
func (p *prometheus) firingAlerts(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, a := range p.alerts(t) {
		if a.state == "firing" {
			out[a.name] = true
		}
	}
	return out
}

func unix(at time.Time) string {
	return strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)
}

// parseValue reads a sample value, which the API sends as a string
// ("NaN", "+Inf" included).
func parseValue(t *testing.T, v any) float64 {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "sample value %v", v)
	f, err := strconv.ParseFloat(s, 64)
	require.NoError(t, err)
	return f
}

// count runs a count query on the test's database.
func count(t *testing.T, db *dbtest.Database, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// waitFor polls cond every 200 ms until it holds, failing the test after
// timeout with what and the explanations.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for _, e := range explain {
				what += " (" + e() + ")"
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
