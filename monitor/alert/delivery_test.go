package alert_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/notify"
)

func hostOf(t *testing.T, rawURL string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	return u.Host
}

// waitDeliveries waits until every rebound_notify job of f has completed.
func (f *fixture) waitDeliveries(t *testing.T, what string) {
	t.Helper()
	waitFor(t, what, func() bool {
		var open int
		require.NoError(t, f.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = $1 AND state <> 'completed'`, notify.Kind).Scan(&open))
		return open == 0
	})
}

func statuses(t *testing.T, bodies [][]byte) []string {
	t.Helper()
	out := []string{}
	for _, b := range bodies {
		var doc struct {
			Status string `json:"status"`
			Text   string `json:"text"`
		}
		require.NoError(t, json.Unmarshal(b, &doc))
		if doc.Status == "" { // Slack: the text says it
			doc.Status = "firing"
			if len(doc.Text) >= 10 && doc.Text[:10] == "[RESOLVED]" {
				doc.Status = "resolved"
			}
		}
		out = append(out, doc.Status)
	}
	return out
}

// TestOwnBreakerAlertSkipsItsChannel: the breaker-open alert (firing and
// resolved) about a channel's own breaker, notify:<its host>, is not sent
// through that channel: it is recorded skipped in the history, counted,
// and no delivery job is inserted for it; the rule's other channels get
// it. Another host's breaker goes through the channel as usual.
func TestOwnBreakerAlertSkipsItsChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		channels string
		ownHook  bool // the breaker is the hook channel's own
		// wantSlack, wantHook: the statuses each receiver gets.
		wantSlack, wantHook []string
		wantJobs            int
		wantLog             string // the warning of each event, "" for none
	}{
		{name: "own breaker, another channel left", channels: "{slack,hook}", ownHook: true,
			wantSlack: []string{"firing", "resolved"}, wantHook: []string{}, wantJobs: 2,
			wantLog: "alert not sent through the channels on the host whose breaker it is about; the other channels of the rule get it"},
		{name: "own breaker, no channel left", channels: "{hook}", ownHook: true,
			wantSlack: []string{}, wantHook: []string{}, wantJobs: 0,
			wantLog: "alert not sent: every channel of the rule is on the host whose breaker it is about (recorded in the alert history only)"},
		{name: "another host's breaker", channels: "{hook}", ownHook: false,
			wantSlack: []string{}, wantHook: []string{"firing", "resolved"}, wantJobs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := setup(t, 0)
			_, err := f.pool.Exec(ctx, `UPDATE job_alert_config SET enabled = (name = 'breaker-open'), channels = $1::text[]`, tt.channels)
			require.NoError(t, err)
			key := "notify:other.example.com:443"
			hookHost := hostOf(t, f.hook.srv.URL)
			if tt.ownHook {
				key = "notify:" + hookHost
			}
			store := breaker.NewStore(f.pool)
			_, err = store.Open(ctx, breaker.OpenParams{Key: key, For: time.Hour, By: "test"})
			require.NoError(t, err)
			var logs bytes.Buffer // the evaluations run on this goroutine
			logged := func(now *time.Time) *alert.Evaluator {
				e := f.evaluator(now)
				e.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
				return e
			}
			now := time.Now().UTC()
			res, err := logged(&now).Run(ctx)
			require.NoError(t, err)
			require.Equal(t, alert.Result{Firing: 1}, res)
			// The firing's deliveries finish before the next evaluation, as
			// they would in the interval between two: a resolved notice
			// delivered first would supersede the firing.
			f.waitDeliveries(t, "the firing's deliveries finished")
			_, err = store.Reset(ctx, breaker.ResetParams{Key: key, By: "test"})
			require.NoError(t, err)
			later := now.Add(time.Minute)
			res, err = logged(&later).Run(ctx)
			require.NoError(t, err)
			require.Equal(t, alert.Result{Resolved: 1}, res)
			var msgs []string
			for line := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
				if line == "" {
					continue
				}
				var rec struct{ Msg, Subject, Event, Channels string }
				require.NoError(t, json.Unmarshal([]byte(line), &rec))
				require.Equal(t, key, rec.Subject)
				require.Equal(t, "hook", rec.Channels)
				msgs = append(msgs, rec.Event+": "+rec.Msg)
			}
			if tt.wantLog == "" {
				require.Empty(t, msgs)
			} else {
				require.Equal(t, []string{"firing: " + tt.wantLog, "resolved: " + tt.wantLog}, msgs)
			}

			f.waitDeliveries(t, "every delivery job finished")
			var jobs int
			require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = $1`, notify.Kind).Scan(&jobs))
			require.Equal(t, tt.wantJobs, jobs)
			require.Equal(t, tt.wantSlack, statuses(t, f.slack.received()))
			require.Equal(t, tt.wantHook, statuses(t, f.hook.received()))
			if tt.ownHook {
				require.Equal(t, int32(0), f.hook.calls.Load(), "nothing sent through the hook")
			}

			events, err := f.history.List(ctx, "breaker-open", 10)
			require.NoError(t, err)
			require.Len(t, events, 2)
			for _, e := range events {
				d := e.Delivery["hook"]
				if tt.ownHook {
					require.Equal(t, notify.Delivery{Outcome: notify.OutcomeSkipped,
						Error: "not sent through hook: the event is about its own host's circuit breaker (notify:" + hookHost + ")", At: d.At}, d, e.Event)
				} else {
					require.Equal(t, notify.OutcomeDelivered, d.Outcome, e.Event)
				}
			}
			wantSkipped := 0.0
			if tt.ownHook {
				wantSkipped = 2
			}
			require.Equal(t, wantSkipped, testutil.ToFloat64(f.metrics.Notifications.WithLabelValues("hook", notify.OutcomeSkipped)))
		})
	}
}

// TestOwnBreaker: the rule OwnBreaker applies.
func TestOwnBreaker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		metric, subject, host string
		want                  bool
	}{
		{alert.MetricBreakerOpen, "notify:hooks.slack.com", "hooks.slack.com", true},
		{"", "notify:hooks.slack.com", "hooks.slack.com", true}, // the rule was removed
		{alert.MetricBreakerOpen, "notify:hooks.slack.com", "smtp.example.com", false},
		{alert.MetricBreakerOpen, "hooks.slack.com", "hooks.slack.com", false},
		{alert.MetricFailureRate, "notify:hooks.slack.com", "hooks.slack.com", false},
		{alert.MetricBreakerOpen, "notify:", "", false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, alert.OwnBreaker(tt.metric, tt.subject, tt.host), "%+v", tt)
	}
}

// TestStaleFiringIsSuperseded: a firing whose delivery runs only after its
// resolved notice was delivered (a late retry, a dead-lettered delivery
// replayed) is not sent: the receivers get the resolved notice only, and
// the firing's history says superseded, counted in
// rebound_notifications_total.
func TestStaleFiringIsSuperseded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, 0)
	now := time.Now().UTC().Truncate(time.Minute)
	f.counts(t, now, 0, 30)
	// The firing's deliveries wait in a queue no client works, as a
	// dead-lettered delivery waits for its replay.
	held := f.evaluator(&now)
	held.Queue = "held"
	res, err := held.Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Firing: 1}, res)
	later := now.Add(20 * time.Minute) // the counts are out of the 15-minute window
	res, err = f.evaluator(&later).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Resolved: 1}, res)
	waitFor(t, "the resolved notices", func() bool { return len(f.slack.received()) == 1 && len(f.hook.received()) == 1 })

	tag, err := f.pool.Exec(ctx, `UPDATE river_job SET queue = 'default' WHERE queue = 'held'`)
	require.NoError(t, err)
	require.Equal(t, int64(2), tag.RowsAffected())
	var events []alert.Event
	waitFor(t, "the firing's deliveries", func() bool {
		events, err = f.history.List(ctx, "failure-rate-error", 10)
		require.NoError(t, err)
		return events[1].Delivery["slack"].Outcome != "" && events[1].Delivery["hook"].Outcome != ""
	})
	require.Equal(t, alert.EventFiring, events[1].Event)
	for _, ch := range []string{"slack", "hook"} {
		require.Equal(t, notify.Delivery{Outcome: notify.OutcomeSuperseded, Attempts: 1,
			Error: "not sent: a newer event of this rule and subject was already settled through the channel", At: events[1].Delivery[ch].At}, events[1].Delivery[ch], ch)
		require.Equal(t, notify.OutcomeDelivered, events[0].Delivery[ch].Outcome, ch)
		require.Equal(t, 1.0, testutil.ToFloat64(f.metrics.Notifications.WithLabelValues(ch, notify.OutcomeSuperseded)), ch)
	}
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, []string{"resolved"}, statuses(t, f.slack.received()))
	require.Equal(t, []string{"resolved"}, statuses(t, f.hook.received()))
	var completed int
	require.NoError(t, f.pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = $1 AND state = 'completed'`, notify.Kind).Scan(&completed))
	require.Equal(t, 4, completed)
}

// TestDeliveriesOfOnePairDoNotOverlap: while the firing is being sent
// through the hook (the receiver holds its answer), the resolved notice
// written meanwhile waits for it: the hook gets firing, then resolved,
// never the reverse.
func TestDeliveriesOfOnePairDoNotOverlap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := setup(t, 0)
	release := make(chan struct{})
	started := make(chan struct{})
	var once, releaseOnce sync.Once
	// Registered after setup's, so it runs before the receiver closes
	// (which waits for the held request), also when the test fails.
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	f.hook.mu.Lock()
	f.hook.hold = func(body []byte) {
		if statuses(t, [][]byte{body})[0] == "firing" {
			once.Do(func() { close(started) })
			<-release
		}
	}
	f.hook.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Minute)
	f.counts(t, now, 0, 30)
	res, err := f.evaluator(&now).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Firing: 1}, res)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the firing never reached the hook")
	}
	later := now.Add(20 * time.Minute)
	res, err = f.evaluator(&later).Run(ctx)
	require.NoError(t, err)
	require.Equal(t, alert.Result{Resolved: 1}, res)
	waitFor(t, "Slack's two messages", func() bool { return len(f.slack.received()) == 2 })
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, int32(1), f.hook.calls.Load(), "the resolved notice waits for the firing's delivery")
	releaseOnce.Do(func() { close(release) })
	waitFor(t, "the hook's two messages", func() bool { return len(f.hook.received()) == 2 })
	require.Equal(t, []string{"firing", "resolved"}, statuses(t, f.hook.received()))
	require.Equal(t, []string{"firing", "resolved"}, statuses(t, f.slack.received()))
}
