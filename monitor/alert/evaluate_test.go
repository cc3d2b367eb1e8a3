package alert_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/alert"
)

// TestBreakerOpenFiresUntilClosed: the breaker-open rule fires for a
// breaker that is open or half-open (probing after an outage) and not for
// a closed one, so the alert does not resolve at every probe.
func TestBreakerOpenFiresUntilClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.Pool(t)
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	_, err := pool.Exec(ctx, `INSERT INTO circuit_breaker_state (breaker_key, state, opened_at) VALUES
		('api-closed', 'closed', NULL),
		('api-half-open', 'half_open', $1::timestamptz - interval '90 seconds'),
		('api-open', 'open', $1::timestamptz - interval '30 seconds')`, now)
	require.NoError(t, err)
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
	var got []string
	for _, c := range conds {
		got = append(got, c.Subject+": "+c.Message)
	}
	require.Equal(t, []string{
		`api-half-open: circuit breaker "api-half-open" is half-open (opened 1m30s ago): probing, its other jobs are parked`,
		`api-open: circuit breaker "api-open" is open (for 30s): its jobs are parked`,
	}, got)
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
