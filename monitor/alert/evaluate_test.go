package alert_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/alert"
)

// TestBreakerOpenFiresWhileItHoldsJobsOff: the breaker-open rule fires
// for a breaker that is half-open (probing after an outage), open with its
// probe not yet due, or opened by failures with its probe due for less than
// that open's timeout (at least a minute), so an outage's alert does not
// resolve between a probe's due time and its failure; it does not fire for
// a closed breaker, an expired hold set by hand, or a breaker whose probe
// has gone untaken longer than that. The message counts the opens of an
// outage instead of restarting at each re-open.
func TestBreakerOpenFiresWhileItHoldsJobsOff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		key                       string
		state                     string
		trips                     int
		since, opened, next, hand string // seconds relative to now as an interval, or NULL
		want                      string // "" when the rule must not hold
	}{
		{"closed", "closed", 0, "NULL", "NULL", "NULL", "NULL", ""},
		{"half-open", "half_open", 1, "-90", "-90", "-60", "NULL", `circuit breaker "half-open" is half-open (out of closed for 1m30s): probing, its other jobs are parked`},
		{"half-open-again", "half_open", 3, "-300", "-40", "-10", "NULL", `circuit breaker "half-open-again" is half-open (out of closed for 5m0s; opened 3 times, last 40s ago): probing, its other jobs are parked`},
		{"open-no-probe-time", "open", 1, "-30", "-30", "NULL", "NULL", `circuit breaker "open-no-probe-time" is open (for 30s): its jobs are parked`},
		{"open", "open", 1, "-20", "-20", "10", "NULL", `circuit breaker "open" is open (for 20s): its jobs are parked`},
		// 20 s of failed probes: the outage's length, not the last open's 0s.
		{"reopened", "open", 7, "-20", "-0.2", "30", "-3600", `circuit breaker "reopened" is open (for 20s; opened 7 times, last 0s ago): its jobs are parked`},
		{"open-since-unknown", "open", 2, "NULL", "-12", "30", "NULL", `circuit breaker "open-since-unknown" is open (for 12s; opened 2 times, last 12s ago): its jobs are parked`},
		{"probe-due-recently", "open", 2, "-100", "-40", "-10", "NULL", `circuit breaker "probe-due-recently" is open (for 1m40s; opened 2 times, last 40s ago): its probe has been due for 10s and no job has taken it yet`},
		{"probe-due-59s", "open", 1, "-89", "-89", "-59", "NULL", `circuit breaker "probe-due-59s" is open (for 1m29s): its probe has been due for 59s and no job has taken it yet`},
		{"probe-due-60s", "open", 1, "-90", "-90", "-60", "NULL", ""},
		{"probe-due-long-open", "open", 3, "-900", "-400", "-100", "NULL", `circuit breaker "probe-due-long-open" is open (for 15m0s; opened 3 times, last 6m40s ago): its probe has been due for 1m40s and no job has taken it yet`},
		{"probe-due-past-long-open", "open", 3, "-900", "-601", "-301", "NULL", ""},
		{"hold", "open", 0, "-10", "-10", "30", "-10", `circuit breaker "hold" is open (held open by hand 10s ago, for another 30s): its jobs are parked`},
		{"hold-in-an-outage", "open", 4, "-600", "-10", "30", "-10", `circuit breaker "hold-in-an-outage" is open (for 10m0s; held open by hand 10s ago, for another 30s): its jobs are parked`},
		{"hold-expired", "open", 0, "-80", "-80", "-40", "-80", ""},
		{"hold-expired-just-now", "open", 0, "-40", "-40", "-0.001", "-40", ""},
		{"reopened-after-hold", "open", 1, "-100", "-5", "25", "-100", `circuit breaker "reopened-after-hold" is open (for 1m40s): its jobs are parked`},
	}
	interval := func(v string) string {
		if v == "NULL" {
			return "NULL"
		}
		return "n.t + interval '" + v + " seconds'"
	}
	for _, tt := range tests {
		// A NULL open_since out of closed takes opened_at (the trigger of
		// migration 015), as the rule's fallback would.
		_, err := pool.Exec(ctx, `WITH n AS (SELECT $1::timestamptz AS t)
			INSERT INTO circuit_breaker_state (breaker_key, state, trip_count, open_since, opened_at, next_probe_at, changed_by, changed_at)
			SELECT $2, $3, $4, `+interval(tt.since)+`, `+interval(tt.opened)+`, `+interval(tt.next)+`, CASE WHEN `+interval(tt.hand)+` IS NULL THEN NULL ELSE 'ops' END, `+interval(tt.hand)+` FROM n`,
			now, tt.key, tt.state, tt.trips)
		require.NoError(t, err, tt.key)
	}
	rules, err := alert.NewRules(pool).List(ctx)
	require.NoError(t, err)
	var breakerRules []alert.Rule
	for _, r := range rules {
		if r.Metric == alert.MetricBreakerOpen {
			breakerRules = append(breakerRules, r)
		}
	}
	require.Len(t, breakerRules, 1)
	conds, err := alert.Evaluate(ctx, pool, breakerRules, now, nil)
	require.NoError(t, err)
	got := map[string]string{}
	for _, c := range conds {
		got[c.Subject] = c.Message
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, got[tt.key], tt.key)
	}
	require.Len(t, got, 12)
}

// TestDLQMessagesCountNouns: the dead-letter rules' messages say "1
// unresolved dead-letter queue entry" and "1 job dead-lettered", the
// plural for other counts.
func TestDLQMessagesCountNouns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	now := time.Now().UTC().Truncate(time.Second)
	rules := []alert.Rule{
		{Name: "unresolved", Metric: alert.MetricDLQUnresolved, Threshold: 0, Window: time.Hour, Severity: alert.SeverityWarning, Enabled: true},
		{Name: "growth", Metric: alert.MetricDLQGrowth, Threshold: 0, Window: time.Hour, Severity: alert.SeverityWarning, Enabled: true},
	}
	tests := []struct {
		name string
		want []string
	}{
		{"one entry", []string{"unresolved: 1 unresolved dead-letter queue entry (threshold 0)", "growth: 1 job dead-lettered in the last 1h0m0s (threshold 0)"}},
		{"two entries", []string{"unresolved: 2 unresolved dead-letter queue entries (threshold 0)", "growth: 2 jobs dead-lettered in the last 1h0m0s (threshold 0)"}},
	}
	for i, tt := range tests {
		_, err := pool.Exec(ctx, `INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason)
			VALUES ($1, 3, 3, 'mail', 'default', 1, 'discarded', '{}', 'server_error', 'HTTP 500')`, i+1)
		require.NoError(t, err, tt.name)
		conds, err := alert.Evaluate(ctx, pool, rules, now.Add(time.Minute), nil)
		require.NoError(t, err, tt.name)
		var got []string
		for _, c := range conds {
			got = append(got, c.Rule+": "+c.Message)
		}
		require.Equal(t, tt.want, got, tt.name)
	}
}

// TestDLQGrowthOutlivesPurge: dlq_growth counts jobs dead-lettered in the
// window, so purging handled entries (rebound dlq purge) does not resolve
// it: 21 jobs dead-lettered (the pods' counts) with 21 entries, 14 of them
// resolved and purged, still read 21. rebound_notify's counts are left out.
func TestDLQGrowthOutlivesPurge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	rules := []alert.Rule{{Name: "dlq-growth", Metric: alert.MetricDLQGrowth, Threshold: 20, Window: time.Hour, Severity: alert.SeverityWarning, Enabled: true}}
	opts := &alert.EvalOpts{ExcludeKinds: []string{"rebound_notify"}}
	_, err := pool.Exec(ctx, `INSERT INTO job_retry_metrics (kind, period_start, period_seconds, attempts, completed, dead_lettered) VALUES
		('mail', date_trunc('minute', now() - interval '10 minutes'), 60, 40, 0, 12),
		('sms', date_trunc('minute', now() - interval '9 minutes'), 60, 30, 0, 9),
		('rebound_notify', date_trunc('minute', now() - interval '9 minutes'), 60, 90, 0, 90),
		('mail', date_trunc('hour', now() - interval '1 day'), 3600, 500, 0, 500)`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args,
			failure_class, failure_reason, dead_lettered_at, status, resolved_at, resolution_note)
		SELECT i, 3, 3, CASE WHEN i <= 12 THEN 'mail' ELSE 'sms' END, 'default', 1, 'discarded', '{}', 'server_error', 'HTTP 500',
		       now() - interval '10 minutes',
		       CASE WHEN i <= 14 THEN 'resolved' ELSE 'unresolved' END,
		       CASE WHEN i <= 14 THEN now() - interval '5 minutes' END,
		       CASE WHEN i <= 14 THEN 'handled' END
		  FROM generate_series(1, 21) i`)
	require.NoError(t, err)
	store, err := deadletter.New(pool, nil)
	require.NoError(t, err)
	want := []string{"21 jobs dead-lettered in the last 1h0m0s (threshold 20)"}
	for _, step := range []string{"before the purge", "after the purge"} {
		conds, err := alert.Evaluate(ctx, pool, rules, time.Now(), opts)
		require.NoError(t, err, step)
		var got []string
		for _, c := range conds {
			got = append(got, c.Message)
		}
		require.Equal(t, want, got, step)
		if step == "before the purge" {
			res, err := store.Purge(ctx, deadletter.PurgeParams{OlderThan: time.Minute})
			require.NoError(t, err)
			require.Equal(t, int64(14), res.Total)
		}
	}
}
