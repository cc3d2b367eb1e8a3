package alert_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/monitor/notify"
)

// receiver is a Slack or webhook endpoint that records what it got and
// answers failWith for its first failFirst requests.
type receiver struct {
	srv        *httptest.Server
	mu         sync.Mutex
	bodies     [][]byte
	sigs       []string
	failFirst  int32
	failStatus int
	calls      atomic.Int32
	// hold, when set (under mu), is called with each body it accepts
	// before recording it, and may block the answer.
	hold func(body []byte)
}

func newReceiver(t *testing.T, failFirst int32) *receiver {
	r := &receiver{failFirst: failFirst}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := r.calls.Add(1)
		if n <= r.failFirst {
			status := r.failStatus
			if status == 0 {
				status = http.StatusInternalServerError
			}
			w.WriteHeader(status)
			return
		}
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		hold := r.hold
		r.mu.Unlock()
		if hold != nil {
			hold(b)
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.sigs = append(r.sigs, req.Header.Get(notify.SignatureHeader))
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...)
}

type fixture struct {
	pool    *pgxpool.Pool
	client  *river.Client[pgx.Tx]
	slack   *receiver
	hook    *receiver
	history *alert.History
	// metrics are the evaluators' (every evaluator of the fixture shares
	// them), counting the deliveries they record failed.
	metrics *notify.Metrics
}

const hookSecret = "whsec-0123456789"

// setup starts a River client working deliveries (retried every 100 ms)
// to a Slack and a webhook receiver, and leaves one rule enabled:
// failure-rate-error with both channels and cooldown 1h.
func setup(t *testing.T, slackFailFirst int32) *fixture {
	t.Helper()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	f := &fixture{pool: pool, slack: newReceiver(t, slackFailFirst), hook: newReceiver(t, 0), history: alert.NewHistory(pool)}
	var err error
	f.metrics, err = notify.NewMetrics(prometheus.NewRegistry(), "slack", "hook")
	require.NoError(t, err)
	channels := map[string]notify.Channel{
		"slack": {Type: notify.TypeSlack, URL: f.slack.srv.URL + "/services/T000/B000/XXXX"},
		"hook":  {Type: notify.TypeWebhook, URL: f.hook.srv.URL + "/alerts", Secret: hookSecret},
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &notify.Worker{
		Channels: channels,
		Load: func(ctx context.Context, id int64) (*notify.Message, error) {
			return f.history.Message(ctx, id, "http://console/job-health")
		},
		Record:  f.history.RecordDelivery,
		InOrder: f.history.InOrder,
		Metrics: f.metrics,
	})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
		Workers:           workers,
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       fixedRetry{},
	})
	require.NoError(t, err)
	require.NoError(t, client.Start(ctx))
	t.Cleanup(func() { _ = client.Stop(context.Background()) })
	f.client = client
	// The rules were saved an hour ago, before any evaluation of the test.
	_, err = pool.Exec(ctx, `UPDATE job_alert_config SET enabled = (name = 'failure-rate-error'), channels = '{slack,hook}', updated_at = now() - interval '1 hour'`)
	require.NoError(t, err)
	return f
}

// fixedRetry retries after 100 ms.
type fixedRetry struct{}

func (fixedRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(100 * time.Millisecond)
}

func (f *fixture) evaluator(now *time.Time) *alert.Evaluator {
	return &alert.Evaluator{DB: f.pool, Inserter: f.client, Channels: map[string]notify.Channel{
		"slack": {Type: notify.TypeSlack, URL: f.slack.srv.URL}, "hook": {Type: notify.TypeWebhook, URL: f.hook.srv.URL},
	}, ExcludeKinds: []string{notify.Kind}, Metrics: f.metrics, Now: func() time.Time { return *now }}
}

// runTwoAtOnce runs two evaluators at the same time, both at now, as two
// pods would, and returns their results.
func (f *fixture) runTwoAtOnce(t *testing.T, now time.Time) [2]alert.Result {
	t.Helper()
	var (
		wg      sync.WaitGroup
		results [2]alert.Result
		errs    [2]error
	)
	for j := range 2 {
		wg.Go(func() { results[j], errs[j] = f.evaluator(&now).Run(context.Background()) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs[:]...))
	return results
}

// failing adds counts of kind "mail" at minute at: completed and dead-lettered.
func (f *fixture) counts(t *testing.T, at time.Time, completed, dead int64) {
	t.Helper()
	require.NoError(t, metricstore.New(f.pool).Add(context.Background(), []metricstore.Row{{Kind: "mail", PeriodStart: at, Completed: completed, DeadLettered: dead, Attempts: completed + dead}}))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type webhookBody struct {
	Version string `json:"version"`
	Status  string `json:"status"`
	Alerts  []struct {
		Status      string            `json:"status"`
		Labels      map[string]string `json:"labels"`
		Annotations map[string]string `json:"annotations"`
	} `json:"alerts"`
}

// TestResolvedReason: a firing rule whose condition clears (also after its
// channels changed), whose rule is changed so that it no longer holds
// (threshold raised, also by SQL without updated_at; min jobs, window or
// metric switched), whose rule is disabled, or whose rule is removed from
// job_alert_config resolves once between two evaluators, through the
// channels it fired through (hook, delivered; pager, not configured in
// this pod, failed and counted in rebound_notifications_total), with a
// message saying why: after a change, the rule as it is now and the
// figures of the last evaluation at which it held.
func TestResolvedReason(t *testing.T) {
	t.Parallel()
	// change saves failure-rate-error changed by edit, as alerts set does.
	change := func(t *testing.T, f *fixture, edit func(r *alert.Rule)) {
		t.Helper()
		rules := alert.NewRules(f.pool)
		r, err := rules.Get(context.Background(), "failure-rate-error")
		require.NoError(t, err)
		edit(&r)
		require.NoError(t, rules.Put(context.Background(), r))
	}
	tests := []struct {
		name string
		// end ends the firing; the evaluation is at t0+20m. Jobs of t0
		// (60 % failed) are out of the 15m window by then: the cases that
		// change the rule add the same again at t0+16m, so that the rule
		// as it was would still hold.
		end     func(t *testing.T, f *fixture, t0 time.Time)
		message string
	}{
		{"condition cleared", func(t *testing.T, f *fixture, t0 time.Time) {
			f.counts(t, t0.Add(16*time.Minute), 50, 0)
		}, "failure-rate-error on mail no longer holds (last value 60, threshold 50)"},
		// The rule now names slack only: the resolved notice still goes
		// where the firing went (slack never heard of it).
		{"channels changed, then cleared", func(t *testing.T, f *fixture, t0 time.Time) {
			_, err := f.pool.Exec(context.Background(), `UPDATE job_alert_config SET channels = '{slack}' WHERE name = 'failure-rate-error'`)
			require.NoError(t, err)
			f.counts(t, t0.Add(16*time.Minute), 50, 0)
		}, "failure-rate-error on mail no longer holds (last value 60, threshold 50)"},
		{"threshold raised", func(t *testing.T, f *fixture, t0 time.Time) {
			f.counts(t, t0.Add(16*time.Minute), 20, 30)
			change(t, f, func(r *alert.Rule) { r.Threshold = 70 })
		}, "failure-rate-error on mail resolved after the rule was changed (now failure_rate > 70 over 15m0s with at least 10 finished jobs; it last held with value 60, threshold 50)"},
		{"threshold raised by SQL, updated_at kept", func(t *testing.T, f *fixture, t0 time.Time) {
			f.counts(t, t0.Add(16*time.Minute), 20, 30)
			_, err := f.pool.Exec(context.Background(), `UPDATE job_alert_config SET threshold = 70 WHERE name = 'failure-rate-error'`)
			require.NoError(t, err)
		}, "failure-rate-error on mail resolved after the rule was changed (now failure_rate > 70 over 15m0s with at least 10 finished jobs; it last held with value 60, threshold 50)"},
		{"min jobs raised", func(t *testing.T, f *fixture, t0 time.Time) {
			f.counts(t, t0.Add(16*time.Minute), 20, 30)
			change(t, f, func(r *alert.Rule) { r.MinJobs = 100 })
		}, "failure-rate-error on mail resolved after the rule was changed (now failure_rate > 50 over 15m0s with at least 100 finished jobs; it last held with value 60, threshold 50)"},
		{"window switched", func(t *testing.T, f *fixture, t0 time.Time) {
			f.counts(t, t0.Add(16*time.Minute), 20, 30)
			change(t, f, func(r *alert.Rule) { r.Window = time.Minute })
		}, "failure-rate-error on mail resolved after the rule was changed (now failure_rate > 50 over 1m0s with at least 10 finished jobs; it last held with value 60, threshold 50)"},
		{"metric switched", func(t *testing.T, f *fixture, t0 time.Time) {
			f.counts(t, t0.Add(16*time.Minute), 20, 30)
			change(t, f, func(r *alert.Rule) { r.Metric, r.Threshold = alert.MetricDLQUnresolved, 10 })
		}, "failure-rate-error on mail resolved after the rule was changed (now dlq_unresolved > 10; it last held with value 60, threshold 50)"},
		{"rule disabled", func(t *testing.T, f *fixture, _ time.Time) {
			require.NoError(t, alert.NewRules(f.pool).SetEnabled(context.Background(), "failure-rate-error", false))
		}, "failure-rate-error on mail resolved: the rule was disabled (last value 60, threshold 50)"},
		{"rule removed", func(t *testing.T, f *fixture, _ time.Time) {
			_, err := f.pool.Exec(context.Background(), `DELETE FROM job_alert_config WHERE name = 'failure-rate-error'`)
			require.NoError(t, err)
		}, "failure-rate-error on mail resolved: the rule was removed (last value 60, threshold 50)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := setup(t, 0)
			_, err := f.pool.Exec(ctx, `UPDATE job_alert_config SET channels = '{hook,pager}' WHERE name = 'failure-rate-error'`)
			require.NoError(t, err)
			t0 := time.Now().UTC().Truncate(time.Minute)
			f.counts(t, t0, 20, 30)
			res, err := f.evaluator(&t0).Run(ctx)
			require.NoError(t, err)
			require.Equal(t, alert.Result{Firing: 1}, res)
			// Evaluations are a minute apart: the firing is out before the
			// resolution (a resolved notice settled first would supersede
			// it).
			waitFor(t, "the firing POST", func() bool { return len(f.hook.received()) == 1 })

			tt.end(t, f, t0)
			end := t0.Add(20 * time.Minute)
			results := f.runTwoAtOnce(t, end)
			require.Equal(t, 1, results[0].Resolved+results[1].Resolved, "one resolution between two evaluators")
			require.Zero(t, results[0].Firing+results[1].Firing+results[0].Repeat+results[1].Repeat)

			waitFor(t, "the firing and resolved POSTs", func() bool { return len(f.hook.received()) == 2 })
			time.Sleep(300 * time.Millisecond) // nothing more arrives
			bodies := f.hook.received()
			require.Len(t, bodies, 2)
			var statuses []string
			var resolved webhookBody
			for _, body := range bodies {
				var wb webhookBody
				require.NoError(t, json.Unmarshal(body, &wb))
				statuses = append(statuses, wb.Status)
				if wb.Status == "resolved" {
					resolved = wb
				}
			}
			require.ElementsMatch(t, []string{"firing", "resolved"}, statuses)
			require.Equal(t, "resolved", resolved.Alerts[0].Status)
			require.Equal(t, map[string]string{"alertname": "failure-rate-error", "subject": "mail", "severity": "error"}, resolved.Alerts[0].Labels)
			require.Equal(t, map[string]string{"summary": tt.message, "value": "60", "threshold": "50", "event": "resolved"}, resolved.Alerts[0].Annotations)
			require.Empty(t, f.slack.received())

			var events []alert.Event
			waitFor(t, "the resolved delivery recorded", func() bool {
				events, err = f.history.List(ctx, "failure-rate-error", 10)
				require.NoError(t, err)
				return len(events) == 2 && events[0].Delivery["hook"].Outcome == notify.OutcomeDelivered
			})
			got := events[0]
			require.Equal(t, "resolved", got.Event)
			require.Equal(t, tt.message, got.Message)
			require.Equal(t, []string{"hook", "pager"}, got.Channels)
			require.Equal(t, 60.0, got.Value)
			require.Equal(t, 50.0, got.Threshold)
			require.True(t, got.Since.Equal(t0), "firing since %s", got.Since)
			require.True(t, got.CreatedAt.Equal(end), "created at %s", got.CreatedAt)
			require.Equal(t, []string{"hook", "pager"}, mapsKeys(got.Delivery))
			require.Equal(t, 1, got.Delivery["hook"].Attempts)
			pager := got.Delivery["pager"]
			require.True(t, pager.At.Equal(end), "pager recorded at %s", pager.At)
			require.Equal(t, notify.Delivery{Outcome: notify.OutcomeFailed, Error: "channel pager is not configured in this pod", At: pager.At}, pager)
			// The firing's and the resolved notice's failures through pager,
			// counted once each between the two evaluators; hook's
			// deliveries are the delivery worker's to count.
			require.Equal(t, 2.0, testutil.ToFloat64(f.metrics.Notifications.WithLabelValues("pager", notify.OutcomeFailed)))
			require.Equal(t, 0.0, testutil.ToFloat64(f.metrics.Notifications.WithLabelValues("hook", notify.OutcomeFailed)))
			require.Equal(t, 11, testutil.CollectAndCount(f.metrics.Notifications), "hook and slack × 5 outcomes, pager failed")
		})
	}
}

func mapsKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// TestCooldownOneNotificationPerChannel: 300 failing jobs evaluated every
// minute for 10 minutes by two evaluators at once give one notification
// per channel; after the cooldown one more while still failing; recovery
// gives one resolved notice.
func TestCooldownOneNotificationPerChannel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, 0)
	t0 := time.Now().UTC().Truncate(time.Minute)
	f.counts(t, t0, 0, 300)

	for i := range 10 {
		results := f.runTwoAtOnce(t, t0.Add(time.Duration(i)*time.Minute))
		fired := results[0].Firing + results[1].Firing
		if i == 0 {
			require.Equal(t, 1, fired, "the first evaluation fires once between two evaluators")
		} else {
			require.Zero(t, fired+results[0].Repeat+results[1].Repeat, "within the cooldown nothing is sent (minute %d)", i)
		}
	}
	waitFor(t, "one firing per channel", func() bool { return len(f.slack.received()) == 1 && len(f.hook.received()) == 1 })

	// After the cooldown, still failing: one repeat.
	f.counts(t, t0.Add(55*time.Minute), 0, 20)
	later := t0.Add(61 * time.Minute)
	res, err := f.evaluator(&later).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Repeat: 1}, res)
	// Evaluations are a minute apart: the repeat is out before the
	// resolution (a resolved notice settled first would supersede it).
	waitFor(t, "the repeat", func() bool { return len(f.slack.received()) == 2 && len(f.hook.received()) == 2 })
	// Recovered: the window after t0+55m holds only successes.
	f.counts(t, t0.Add(70*time.Minute), 50, 0)
	recovered := t0.Add(75 * time.Minute)
	res, err = f.evaluator(&recovered).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Resolved: 1}, res)
	again := t0.Add(76 * time.Minute)
	res, err = f.evaluator(&again).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{}, res)

	waitFor(t, "three notifications per channel", func() bool { return len(f.slack.received()) == 3 && len(f.hook.received()) == 3 })
	time.Sleep(300 * time.Millisecond) // nothing more arrives
	require.Len(t, f.slack.received(), 3)
	require.Len(t, f.hook.received(), 3)

	var texts []string
	for _, body := range f.slack.received() {
		var slack struct{ Text string }
		require.NoError(t, json.Unmarshal(body, &slack))
		texts = append(texts, slack.Text)
	}
	require.Equal(t, "[ERROR] failure-rate-error on mail: mail: 100.0% of 300 jobs finished dead-lettered in the last 15m0s (threshold 50%) (value 100, threshold 50) <http://console/job-health|job health>", texts[0])
	require.Equal(t, "[RESOLVED] failure-rate-error on mail: failure-rate-error on mail no longer holds (last value 100, threshold 50) <http://console/job-health|job health>", texts[2])

	var statuses []string
	for i, body := range f.hook.received() {
		require.Equal(t, notify.Sign([]byte(hookSecret), body), f.hook.sigs[i], "signature over the exact body")
		var wb webhookBody
		require.NoError(t, json.Unmarshal(body, &wb))
		require.Equal(t, "4", wb.Version)
		statuses = append(statuses, wb.Status)
		require.Equal(t, map[string]string{"alertname": "failure-rate-error", "subject": "mail", "severity": "error"}, wb.Alerts[0].Labels)
	}
	require.Equal(t, []string{"firing", "firing", "resolved"}, statuses)

	events, err := f.history.List(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, events, 3)
	for i, want := range []string{"resolved", "repeat", "firing"} {
		require.Equal(t, want, events[i].Event)
		require.Equal(t, []string{"slack", "hook"}, events[i].Channels)
		require.Equal(t, notify.OutcomeDelivered, events[i].Delivery["slack"].Outcome)
		require.Equal(t, notify.OutcomeDelivered, events[i].Delivery["hook"].Outcome)
	}
}

// TestSlackDownThenDelivered: Slack answers 500 three times; the delivery
// job retries and the history shows it delivered at attempt 4.
func TestSlackDownThenDelivered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, 3)
	now := time.Now().UTC()
	f.counts(t, now, 0, 30)
	res, err := f.evaluator(&now).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Firing: 1}, res)
	waitFor(t, "the Slack message after the outage", func() bool { return len(f.slack.received()) == 1 })
	require.Equal(t, int32(4), f.slack.calls.Load())
	var events []alert.Event
	waitFor(t, "delivery recorded", func() bool {
		events, err = f.history.List(ctx, "failure-rate-error", 10)
		require.NoError(t, err)
		return events[0].Delivery["slack"].Outcome == notify.OutcomeDelivered
	})
	require.Equal(t, 4, events[0].Delivery["slack"].Attempts)
	require.Equal(t, 1, events[0].Delivery["hook"].Attempts)
}

// TestNotifierKindIsExcluded: dead-lettered deliveries raise no
// failure-rate or dead-letter growth alert.
func TestNotifierKindIsExcluded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	now := time.Now().UTC()
	require.NoError(t, metricstore.New(pool).Add(ctx, []metricstore.Row{{Kind: notify.Kind, PeriodStart: now, DeadLettered: 100}}))
	rules, err := alert.NewRules(pool).List(ctx)
	require.NoError(t, err)
	conds, err := alert.Evaluate(ctx, pool, rules, now, &alert.EvalOpts{ExcludeKinds: []string{notify.Kind}})
	require.NoError(t, err)
	require.Empty(t, conds)
	conds, err = alert.Evaluate(ctx, pool, rules, now, nil)
	require.NoError(t, err)
	var fired []string
	for _, c := range conds {
		fired = append(fired, c.Rule)
	}
	require.Equal(t, []string{"dlq-growth", "failure-rate-error", "failure-rate-warning"}, fired,
		"without the exclusion both failure-rate rules fire, and dlq-growth counts the 100 dead-lettered jobs")
}

// TestSlackHookGoneFailsAtOnce: a 404 from Slack (a removed hook) will not
// heal: the delivery is failed at its first attempt, not retried.
func TestSlackHookGoneFailsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, 1000)
	f.slack.failStatus = http.StatusNotFound
	now := time.Now().UTC()
	f.counts(t, now, 0, 30)
	_, err := f.evaluator(&now).Run(ctx)
	require.NoError(t, err)
	var events []alert.Event
	waitFor(t, "the failed delivery recorded", func() bool {
		events, err = f.history.List(ctx, "", 10)
		require.NoError(t, err)
		return events[0].Delivery["slack"].Outcome == notify.OutcomeFailed && events[0].Delivery["hook"].Outcome == notify.OutcomeDelivered
	})
	require.Equal(t, notify.Delivery{Outcome: notify.OutcomeFailed, Attempts: 1, Error: "channel answered HTTP 404", At: events[0].Delivery["slack"].At}, events[0].Delivery["slack"])
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, int32(1), f.slack.calls.Load(), "not retried")
}
