package rebound_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/migrations"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// cleanupWorker is a worker of the caller's that takes one of rebound's
// own kind names.
type cleanupWorker struct {
	river.WorkerDefaults[breaker.CleanupArgs]
}

func (cleanupWorker) Work(context.Context, *river.Job[breaker.CleanupArgs]) error { return nil }

// Misconfiguration through the Go API is an error naming the field, never a
// panic, and New touches no database to say so.
func TestNewRefusesMisconfiguration(t *testing.T) {
	t.Parallel()
	// New does not connect: a pool on a closed port is enough.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	quoteWorkers := func() *river.Workers {
		w := river.NewWorkers()
		river.AddWorker(w, &quoteWorker{})
		return w
	}
	shared := quoteWorkers()
	_, err = rebound.New(rebound.Config{Pool: pool, Workers: shared})
	require.NoError(t, err)
	taken := prometheus.NewRegistry()
	_, err = rebound.New(rebound.Config{Pool: pool, Workers: quoteWorkers(), Registerer: taken})
	require.NoError(t, err)

	tests := []struct {
		name      string
		configure func(c *rebound.Config)
		wantErr   string
	}{
		{"nil pool", func(c *rebound.Config) { c.Pool = nil },
			"rebound: Config.Pool: required: a *pgxpool.Pool on the database rebound's migrations were applied to"},
		{"no workers", func(c *rebound.Config) { c.Workers = nil },
			"rebound: Config.Workers: required: river.NewWorkers() with your kinds added by river.AddWorker"},
		{"a kind registered twice: one of rebound's names", func(c *rebound.Config) { river.AddWorker(c.Workers, &cleanupWorker{}) },
			`rebound: Config.Workers: kind "rebound_breaker_cleanup" is registered twice: rebound registers it in every pod's Workers (worker for kind "rebound_breaker_cleanup" is already registered); use one Workers bundle per pod, and none of rebound's kind names (rebound_breaker_cleanup, rebound_job_metrics_rollup, rebound_alert_evaluate, rebound_notify)`},
		{"a kind registered twice: one Workers bundle for two pods", func(c *rebound.Config) { c.Workers = shared },
			`rebound: Config.Workers: kind "rebound_breaker_cleanup" is registered twice: rebound registers it in every pod's Workers (worker for kind "rebound_breaker_cleanup" is already registered); use one Workers bundle per pod, and none of rebound's kind names (rebound_breaker_cleanup, rebound_job_metrics_rollup, rebound_alert_evaluate, rebound_notify)`},
		{"bad policy: max delay under initial delay", func(c *rebound.Config) {
			c.RetryPolicy = retrypolicy.Policy{InitialDelay: 5 * time.Second, MaxDelay: time.Second}
		}, "rebound: Config.RetryPolicy.MaxDelay: must be >= initial_delay (5s)"},
		{"bad policy of a kind: unknown jitter", func(c *rebound.Config) {
			c.Kinds = map[string]rebound.KindConfig{"test_quote": {RetryPolicy: retrypolicy.Policy{Jitter: "wobbly"}}}
		}, `rebound: Config.Kinds["test_quote"].RetryPolicy.Jitter: unknown jitter mode "wobbly" (known: none, full, equal, proportional, decorrelated)`},
		{"bad policy of a kind: unknown strategy for a class", func(c *rebound.Config) {
			c.Kinds = map[string]rebound.KindConfig{"test_quote": {RetryPolicy: retrypolicy.Policy{Rules: map[retrypolicy.Class]retrypolicy.Rule{
				retrypolicy.ClassTimeout: {Retry: true, Strategy: "sideways"},
			}}}}
		}, `rebound: Config.Kinds["test_quote"].RetryPolicy.Rules["timeout"].Strategy: unknown strategy "sideways" (known: exponential, linear, fibonacci, aggressive)`},
		{"bad policy of alert deliveries: checked against their own policy", func(c *rebound.Config) {
			c.RetryPolicy = retrypolicy.Policy{InitialDelay: time.Second}
			c.Kinds = map[string]rebound.KindConfig{"rebound_notify": {RetryPolicy: retrypolicy.Policy{MaxDelay: 2 * time.Second}}}
		}, `rebound: Config.Kinds["rebound_notify"].RetryPolicy.MaxDelay: must be >= initial_delay (5s)`},
		{"bad policy: max attempts over River's column", func(c *rebound.Config) { c.RetryPolicy.MaxAttempts = 40000 },
			"rebound: Config.RetryPolicy.MaxAttempts: must be <= 32767, the most River's max_attempts column holds (got 40000)"},
		{"negative kind timeout", func(c *rebound.Config) {
			c.Kinds = map[string]rebound.KindConfig{"test_quote": {Timeout: -time.Second}}
		},
			`rebound: Config.Kinds["test_quote"].Timeout: -1s is negative (0 means no bound of rebound's)`},
		{"bad queue: name", func(c *rebound.Config) { c.Queues = map[string]river.QueueConfig{"Mail Out": {MaxWorkers: 1}} },
			`rebound: Config.Queues["Mail Out"]: River refuses the name: use lower-case letters and digits separated by '_' or '-', at most 64 characters`},
		{"bad queue: no workers", func(c *rebound.Config) { c.Queues = map[string]river.QueueConfig{"default": {}} },
			`rebound: Config.Queues["default"].MaxWorkers: 0 is not between 1 and 10000`},
		{"bad queue: poll faster than cooldown", func(c *rebound.Config) {
			c.Queues = map[string]river.QueueConfig{"default": {MaxWorkers: 2, FetchCooldown: time.Second, FetchPollInterval: 100 * time.Millisecond}}
		}, `rebound: Config.Queues["default"].FetchPollInterval: 100ms is shorter than the queue's fetch cooldown (1s)`},
		{"no queue", func(c *rebound.Config) { c.Queues = map[string]river.QueueConfig{} },
			`rebound: Config.Queues: empty: a pod works at least one queue (nil means {"default": {MaxWorkers: 50}})`},
		{"maintenance queue not worked", func(c *rebound.Config) { c.MaintenanceQueue = "ops" },
			`rebound: Config.MaintenanceQueue: "ops" is not one of Queues (default): rebound's periodic jobs would never run`},
		{"fetch cooldown under River's minimum", func(c *rebound.Config) { c.FetchCooldown = time.Microsecond },
			"rebound: Config.FetchCooldown: 1µs is below River's minimum of 1ms"},
		{"rescue before the job timeout", func(c *rebound.Config) { c.RescueStuckJobsAfter = 10 * time.Second },
			"rebound: Config.RescueStuckJobsAfter: 10s is shorter than JobTimeout + RescueGrace (1m0s + 15s = 1m15s): a job still within its timeout would count as lost; lower JobTimeout too"},
		{"short admin token", func(c *rebound.Config) { c.AdminToken = "secret" },
			"rebound: Config.AdminToken: AdminToken is too short (6 characters): use at least 16 random characters, e.g. `openssl rand -hex 32`"},
		{"public address without a token", func(c *rebound.Config) { c.HTTPAddr = "0.0.0.0:8080" },
			`rebound: Config.AdminToken: empty while HTTPAddr "0.0.0.0:8080" is not a loopback address: admin routes (/api/admin/..., /console/, /riverui/) would be open to anyone who can reach it; set a token, or listen on 127.0.0.1`},
		{"bad HTTP address", func(c *rebound.Config) { c.HTTPAddr = "nonsense" },
			`rebound: Config.HTTPAddr: "nonsense" is not host:port: address nonsense: missing port in address`},
		{"bad breaker setting", func(c *rebound.Config) { c.Breaker.Keys = map[string]breaker.Settings{"api": {FailureRatio: 2}} },
			`rebound: Config.Breaker: key "api": failure_ratio 2: must be in (0, 1], or negative to disable the ratio rule`},
		{"breaker idle TTL too short", func(c *rebound.Config) { c.BreakerIdleTTL = time.Second },
			"rebound: Config.BreakerIdleTTL: 1s is under 1m (0 means 168h0m0s)"},
		{"a kind River refuses: one character", func(c *rebound.Config) { river.AddWorker(c.Workers, &shortKindWorker{}) },
			`rebound: Config.Workers: River refuses job kind "a" should match regex \A[\w][\w\-\[\]<>\/.·:+]+\z (rename the kind: its Kind method)`},
		{"metrics registered already", func(c *rebound.Config) { c.Registerer = taken },
			"rebound: Config.Registerer: register rebound's job metrics: duplicate metrics collector registration attempted (one registry per pod, or prometheus.WrapRegistererWith)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := rebound.Config{Pool: pool, Workers: quoteWorkers()}
			tt.configure(&cfg)
			var (
				pod *rebound.Pod
				err error
			)
			require.NotPanics(t, func() { pod, err = rebound.New(cfg) })
			require.Nil(t, pod)
			var ce *rebound.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tt.wantErr, err.Error())
		})
	}
}

// Start refuses what needs the database to see: a kind in Config.Kinds
// without a worker (its settings would apply to nothing), migrations
// behind. Nothing is left running, and the registry can take a pod again.
func TestStartRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	behind := dbtest.New(t)
	_, err := behind.Pool.Exec(ctx, "DROP TABLE rebound_metric_snapshot; DELETE FROM rebound_migration WHERE version = 4")
	require.NoError(t, err)
	tests := []struct {
		name      string
		pool      *pgxpool.Pool
		configure func(c *rebound.Config)
		wantIs    error
		wantErr   string
	}{
		{name: "a kind without a worker", pool: dbtest.Pool(t), configure: func(c *rebound.Config) {
			c.Kinds = map[string]rebound.KindConfig{"test_quote": {}, "test_quote_typo": {Timeout: time.Second}}
		}, wantErr: `rebound: Config.Kinds["test_quote_typo"]: no worker for this kind in Workers (add one with river.AddWorker): its settings would apply to nothing`},
		{name: "migrations behind", pool: behind.Pool, wantIs: migrations.ErrBehind,
			wantErr: "database migrations are behind: 1 migration pending (rebound 004_metric_snapshot); run `rebound migrate up`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			workers := river.NewWorkers()
			river.AddWorker(workers, &quoteWorker{})
			reg := prometheus.NewRegistry()
			cfg := rebound.Config{Pool: tt.pool, Workers: workers, Registerer: reg, HTTPAddr: "127.0.0.1:0"}
			if tt.configure != nil {
				tt.configure(&cfg)
			}
			pod, err := rebound.New(cfg)
			require.NoError(t, err)
			err = pod.Start(ctx)
			require.EqualError(t, err, tt.wantErr)
			if tt.wantIs != nil {
				require.ErrorIs(t, err, tt.wantIs)
			}
			require.Empty(t, pod.HTTPAddr(), "no server left listening")
			require.NoError(t, pod.Stop(ctx))
			// Stop released the pod's metrics: the registry takes a new pod.
			_, err = rebound.New(rebound.Config{Pool: tt.pool, Workers: river.NewWorkers(), Registerer: reg})
			require.NoError(t, err)
			require.EqualError(t, pod.Start(ctx), "rebound: pod stopped; build a new one with New")
		})
	}
}

// shortKindArgs is a kind River's rule refuses: one character.
type shortKindArgs struct{}

func (shortKindArgs) Kind() string { return "a" }

type shortKindWorker struct {
	river.WorkerDefaults[shortKindArgs]
}

func (shortKindWorker) Work(context.Context, *river.Job[shortKindArgs]) error { return nil }
