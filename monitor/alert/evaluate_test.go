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
