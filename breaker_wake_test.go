package rebound_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
)

// When a key closes, the pod wakes the jobs parked behind it spread over
// one wake_wave per wave of its workers — the sum of its queues'
// MaxWorkers — at most wake_spread: 200 parked jobs and 3 + 2 workers make
// 40 waves of 15 s, 10 minutes (3 workers would make 16m45s, 2 workers
// 25m). Each woken job is available at once, due within the 10 minutes;
// the latest of 200 uniform draws falls in the last minute but for a
// chance of 0.9^200 (below 1e-9).
func TestPodWakesParkedJobsOverWavesOfItsWorkers(t *testing.T) {
	t.Parallel()
	const key = "wake.example.com"
	b := startPod(t, func(c *rebound.Config) {
		c.Queues = map[string]river.QueueConfig{"a": {MaxWorkers: 3}, "b": {MaxWorkers: 2}}
		c.Breaker.Keys = map[string]breaker.Settings{key: {WakeSpread: time.Hour, WakeWave: 15 * time.Second}}
	})
	ctx := context.Background()
	store := b.pod.Breaker().Store()
	_, err := store.Open(ctx, breaker.OpenParams{Key: key, For: time.Hour, By: "test"})
	require.NoError(t, err)
	waitFor(t, 10*time.Second, "the pod sees the key open", func() bool { return b.pod.Breaker().State(key) == breaker.StateOpen })
	// 200 jobs parked behind the key, in a queue no pod works.
	_, err = b.db.Pool.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, metadata, priority, queue, state, scheduled_at)
		SELECT '{}', 'parked_elsewhere', 25, jsonb_build_object($1::text, $2::text, $3::text, now()), 1, 'elsewhere', 'scheduled',
			now() + interval '1 hour'
		FROM generate_series(1, 200)`, breaker.MetadataParkedKey, key, breaker.MetadataParkedAt)
	require.NoError(t, err)

	_, err = store.Reset(ctx, breaker.ResetParams{Key: key, By: "test"})
	require.NoError(t, err)
	var closedAt time.Time
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&closedAt))
	var available int
	waitFor(t, 10*time.Second, "the parked jobs woken", func() bool {
		require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'parked_elsewhere' AND state = 'available'`).Scan(&available))
		return available == 200
	})
	var wokenAt time.Time
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT now()`).Scan(&wokenAt))
	var first, last time.Time
	require.NoError(t, b.db.Pool.QueryRow(ctx, `SELECT min(scheduled_at), max(scheduled_at) FROM river_job WHERE kind = 'parked_elsewhere'`).Scan(&first, &last))
	require.False(t, first.Before(closedAt.Add(-time.Second)), "due from the wake-up on: first %s, closed %s", first, closedAt)
	require.True(t, last.Before(wokenAt.Add(10*time.Minute)), "due within 10 minutes: last %s, woken by %s", last, wokenAt)
	require.True(t, last.After(closedAt.Add(9*time.Minute)), "spread over 10 minutes: last %s, closed %s", last, closedAt)
}
