package rebound_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/monitor/alert"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// A kind of the caller's gets rebound's classification and per-class
// backoff: its failures are classified by behaviour, each class's strategy
// picks the delay (a server's Retry-After raising it), River holds the job
// that long, and every failed attempt is in the job's history; its metrics
// carry its kind.
func TestCustomKindClassificationAndBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		script      []step
		wantState   rivertype.JobState
		wantHistory []retrypolicy.Attempt // Attempt, Class, Strategy, DelayMS, RetryAfterMS, Final
		wantResult  string
	}{
		{
			name:      "rate limited with Retry-After, then a server error, then a quote",
			script:    []step{{status: 429, retryAfter: "1"}, {status: 503}, {status: 200, body: `{"price": 12.5}`}},
			wantState: rivertype.JobStateCompleted,
			wantHistory: []retrypolicy.Attempt{
				// aggressive: 100ms x 3^0, raised to the server's 1 s.
				{Attempt: 1, Class: retrypolicy.ClassRateLimited, Strategy: retrypolicy.StrategyAggressive, DelayMS: 1000, RetryAfterMS: 1000},
				// exponential: 100ms x 2^1.
				{Attempt: 2, Class: retrypolicy.ClassServerError, Strategy: retrypolicy.StrategyExponential, DelayMS: 200},
			},
			wantResult: `{"price": 12.5}`,
		},
		{
			name:      "a malformed answer is decode, a timeout-like 408 linear",
			script:    []step{{status: 200, body: `{"price": twelve}`}, {status: 408}, {status: 200, body: `{"price": 1}`}},
			wantState: rivertype.JobStateCompleted,
			wantHistory: []retrypolicy.Attempt{
				{Attempt: 1, Class: retrypolicy.ClassDecode, Strategy: retrypolicy.StrategyExponential, DelayMS: 100},
				// linear: 100ms x 2.
				{Attempt: 2, Class: retrypolicy.ClassTimeout, Strategy: retrypolicy.StrategyLinear, DelayMS: 200},
			},
			wantResult: `{"price": 1}`,
		},
		{
			name:      "not found is not retried",
			script:    []step{{status: 404}},
			wantState: rivertype.JobStateCancelled,
			wantHistory: []retrypolicy.Attempt{
				{Attempt: 1, Class: retrypolicy.ClassNotFound, Final: true},
			},
			wantResult: "", // nothing recorded
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := newUpstream(t, map[string][]step{"/quote": tt.script})
			b := startPod(t, nil)
			res, err := b.pod.Insert(context.Background(), quoteArgs{URL: up.URL + "/quote", Vendor: "acme"}, nil)
			require.NoError(t, err)
			job := b.waitForState(t, res.Job.ID, tt.wantState)

			got := history(t, job)
			require.Len(t, got, len(tt.wantHistory))
			for i, want := range tt.wantHistory {
				a := got[i]
				require.Equal(t, want, retrypolicy.Attempt{Attempt: a.Attempt, Class: a.Class, Strategy: a.Strategy, DelayMS: a.DelayMS, RetryAfterMS: a.RetryAfterMS, Final: a.Final}, "attempt %d", i+1)
				if i > 0 {
					// River held the job for the delay chosen before.
					gap := a.At.Sub(got[i-1].At)
					require.GreaterOrEqual(t, gap, time.Duration(got[i-1].DelayMS)*time.Millisecond, "gap before attempt %d", a.Attempt)
				}
			}
			out, err := retrypolicy.ParseOutput(job.Metadata)
			require.NoError(t, err)
			if tt.wantResult == "" {
				require.Contains(t, []string{"", "null"}, string(out.Result))
			} else {
				require.JSONEq(t, tt.wantResult, string(out.Result))
			}
			require.Equal(t, len(tt.script), up.callsTo("/quote"))

			// Its metrics carry its kind.
			for _, a := range tt.wantHistory {
				n, ok := b.metric(t, "rebound_job_errors_total", labels("kind", "test_quote", "class", string(a.Class)))
				require.True(t, ok, "rebound_job_errors_total for class %s", a.Class)
				require.Equal(t, 1.0, n)
			}
			final := "completed"
			if tt.wantState == rivertype.JobStateCancelled {
				final = "cancelled"
			}
			n, ok := b.metric(t, "rebound_job_attempts_total", labels("kind", "test_quote", "queue", "default", "outcome", final))
			require.True(t, ok)
			require.Equal(t, 1.0, n)
			if retried := len(tt.wantHistory) - 1; tt.wantState == rivertype.JobStateCompleted {
				n, _ := b.metric(t, "rebound_job_attempts_total", labels("kind", "test_quote", "queue", "default", "outcome", "errored"))
				require.Equal(t, float64(retried+1), n)
			}
		})
	}
}

// A job of the caller's kind that cannot succeed lands in the dead-letter
// queue exactly once, with its args, its whole history and its own
// operation key, whether it failed for good (404) or used up its attempts
// (503 twice); a reconciliation pass after it finds nothing to add.
func TestCustomKindDeadLetteredOnce(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, map[string][]step{"/gone": {{status: 404}}, "/down": {{status: 503}}})
	b := startPod(t, func(c *rebound.Config) {
		c.Kinds = map[string]rebound.KindConfig{"test_quote": {RetryPolicy: retrypolicy.Policy{MaxAttempts: 2}}}
		c.Breaker.Settings.FailureThreshold = 100
	})
	ctx := context.Background()
	gone := quoteArgs{URL: up.URL + "/gone", Vendor: "acme"}
	down := quoteArgs{URL: up.URL + "/down", Vendor: "zeta"}
	goneJob, err := b.pod.Insert(ctx, gone, nil)
	require.NoError(t, err)
	downJob, err := b.pod.Insert(ctx, down, nil)
	require.NoError(t, err)
	require.Equal(t, 2, downJob.Job.MaxAttempts, "the kind's policy gives the max attempts")
	b.waitForState(t, goneJob.Job.ID, rivertype.JobStateCancelled)
	b.waitForState(t, downJob.Job.ID, rivertype.JobStateDiscarded)

	res, err := deadletter.NewReconciler(b.db.Pool, nil).RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, res.Added)

	page, err := b.pod.DeadLetterQueue().List(ctx, deadletter.ListParams{Filter: deadletter.Filter{Kinds: []string{"test_quote"}}})
	require.NoError(t, err)
	require.Len(t, page.Entries, 2)
	byJob := map[int64]*deadletter.Entry{}
	for _, e := range page.Entries {
		byJob[e.RiverJobID] = e
	}
	tests := []struct {
		id       int64
		args     quoteArgs
		class    string
		key      string
		attempts int
	}{
		{goneJob.Job.ID, gone, "not_found", "quotes:acme", 1},
		{downJob.Job.ID, down, "server_error", "quotes:zeta", 2},
	}
	for _, tt := range tests {
		e := byJob[tt.id]
		require.NotNil(t, e, "job %d", tt.id)
		var args quoteArgs
		require.NoError(t, json.Unmarshal(e.Args, &args))
		require.Equal(t, tt.args, args)
		require.Equal(t, "test_quote", e.Kind)
		require.Equal(t, tt.class, e.FailureClass)
		require.Equal(t, tt.key, e.OperationKey)
		require.Len(t, e.History, tt.attempts)
		require.Equal(t, 1, b.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", tt.id))
	}
}

// Failures of one vendor open the breaker of its own operation key (from
// its args' OperationKey method): that vendor's next job is parked — snoozed
// without an attempt, the vendor not called — while another vendor's jobs
// run.
func TestCustomKindBreakerParksByItsOperationKey(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, map[string][]step{
		"/acme/down": {{status: 503}},
		"/acme/ok":   {{status: 200, body: `{"price": 3}`}},
		"/zeta/ok":   {{status: 200, body: `{"price": 4}`}},
	})
	b := startPod(t, func(c *rebound.Config) {
		c.Breaker.Settings = breaker.Settings{FailureThreshold: 2, OpenTimeout: time.Hour}
	})
	ctx := context.Background()
	for range 2 {
		_, err := b.pod.Insert(ctx, quoteArgs{URL: up.URL + "/acme/down", Vendor: "acme"}, nil)
		require.NoError(t, err)
	}
	waitFor(t, 30*time.Second, "the breaker of quotes:acme to open", func() bool {
		return b.count(t, "SELECT count(*) FROM circuit_breaker_state WHERE breaker_key = 'quotes:acme' AND state = 'open'") == 1
	})
	waitFor(t, 10*time.Second, "this pod to see it open", func() bool { return b.pod.Breaker().State("quotes:acme") == breaker.StateOpen })

	parked, err := b.pod.Insert(ctx, quoteArgs{URL: up.URL + "/acme/ok", Vendor: "acme"}, nil)
	require.NoError(t, err)
	other, err := b.pod.Insert(ctx, quoteArgs{URL: up.URL + "/zeta/ok", Vendor: "zeta"}, nil)
	require.NoError(t, err)
	b.waitForState(t, other.Job.ID, rivertype.JobStateCompleted)
	job := b.waitForState(t, parked.Job.ID, rivertype.JobStateScheduled)
	var meta map[string]any
	require.NoError(t, json.Unmarshal(job.Metadata, &meta))
	require.Equal(t, "quotes:acme", meta[breaker.MetadataParkedKey])
	require.Equal(t, "quotes:acme", meta["operation_key"])
	require.Equal(t, 0, job.Attempt, "parking uses no attempt")
	require.Empty(t, job.Errors)
	require.Equal(t, 0, up.callsTo("/acme/ok"), "the vendor is not called while its breaker is open")
	require.Equal(t, 1, up.callsTo("/zeta/ok"))

	n, ok := b.metric(t, "rebound_breaker_short_circuited_total", labels("key", "quotes:acme"))
	require.True(t, ok)
	require.GreaterOrEqual(t, n, 1.0)
	state, ok := b.metric(t, "rebound_breaker_state", labels("key", "quotes:acme"))
	require.True(t, ok)
	require.Equal(t, 2.0, state, "2 is open")
	snoozed, _ := b.metric(t, "rebound_job_attempts_total", labels("kind", "test_quote", "queue", "default", "outcome", "snoozed"))
	require.GreaterOrEqual(t, snoozed, 1.0)
}

// A job inserted by another producer (here, SQL) has no operation key
// stamped: the gate names it by KindConfig.OperationKey — with
// OperationKeyFromArgs, the args' own method — else by the kind, and the
// dead-letter entry carries the key its breaker used.
func TestForeignJobKeyedByItsArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		kinds   map[string]rebound.KindConfig
		wantKey string
	}{
		{"OperationKeyFromArgs", map[string]rebound.KindConfig{"test_quote": {OperationKey: rebound.OperationKeyFromArgs[quoteArgs]}}, "quotes:omega"},
		{"no key rule for the kind", nil, "test_quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			up := newUpstream(t, map[string][]step{"/gone": {{status: 404}}})
			b := startPod(t, func(c *rebound.Config) { c.Kinds = tt.kinds })
			args, err := json.Marshal(quoteArgs{URL: up.URL + "/gone", Vendor: "omega"})
			require.NoError(t, err)
			var id int64
			require.NoError(t, b.db.Pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, metadata, state, max_attempts, queue, priority)
				VALUES ('test_quote', $1, '{}', 'available', 3, 'default', 1) RETURNING id`, args).Scan(&id))
			b.waitForState(t, id, rivertype.JobStateCancelled)
			var key string
			require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT operation_key FROM job_dead_letter_queue WHERE river_job_id = $1", id).Scan(&key))
			require.Equal(t, tt.wantKey, key)
		})
	}
}

// A KindConfig.OperationKey that panics does not fail the job: the rule
// goes on to its next step (here the kind's name), at insert and for a job
// another producer inserted without a key, and the pod warns once per kind.
func TestPanickingKeyRuleFallsBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := newUpstream(t, map[string][]step{"/gone": {{status: 404}}})
	logs := &logBuffer{}
	b := startPod(t, func(c *rebound.Config) {
		c.Kinds = map[string]rebound.KindConfig{"test_quote": {OperationKey: func(string, []byte) string { panic("key rule bug") }}}
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	args, err := json.Marshal(quoteArgs{URL: up.URL + "/gone", Vendor: "omega"})
	require.NoError(t, err)
	var ids []int64
	for range 2 {
		var id int64
		require.NoError(t, b.db.Pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, metadata, state, max_attempts, queue, priority)
			VALUES ('test_quote', $1, '{}', 'available', 3, 'default', 1) RETURNING id`, args).Scan(&id))
		ids = append(ids, id)
	}
	for _, id := range ids {
		b.waitForState(t, id, rivertype.JobStateCancelled)
		var key, class string
		require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT operation_key, failure_class FROM job_dead_letter_queue WHERE river_job_id = $1", id).Scan(&key, &class))
		require.Equal(t, []string{"test_quote", "not_found"}, []string{key, class})
	}
	require.Equal(t, 1, strings.Count(logs.String(), "operation key rule panicked"), logs.String())
	require.Contains(t, logs.String(), "setting=KindConfig.OperationKey kind=test_quote")
}

// keylessArgs has no OperationKey method, so the pod's key rule names its
// key from the kind's settings.
type keylessArgs struct {
	N int `json:"n"`
}

func (keylessArgs) Kind() string { return "test_keyless" }

type keylessWorker struct {
	river.WorkerDefaults[keylessArgs]
}

func (keylessWorker) Work(context.Context, *river.Job[keylessArgs]) error { return nil }

// A key rule that panics, inserted through the pod (the insert rules call
// it, then the gate reads the key they stamped): the inserts succeed with
// the rule's next step as the key (the kind's name), the jobs complete,
// and the pod warns once for the kind naming the setting that panicked.
func TestPanickingKeyRuleAtInsert(t *testing.T) {
	t.Parallel()
	panics := func(string, []byte) string { panic("key rule bug\x00") }
	tests := []struct {
		name    string
		setting string
		config  func(*rebound.Config)
	}{
		{"KindConfig.OperationKey", "KindConfig.OperationKey", func(c *rebound.Config) {
			c.Kinds = map[string]rebound.KindConfig{"test_keyless": {OperationKey: panics}}
		}},
		{"Config.DefaultOperationKey", "Config.DefaultOperationKey", func(c *rebound.Config) { c.DefaultOperationKey = panics }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			logs := &logBuffer{}
			b := startPod(t, func(c *rebound.Config) {
				river.AddWorker(c.Workers, &keylessWorker{})
				c.Logger = slog.New(slog.NewTextHandler(logs, nil))
				tt.config(c)
			})
			var ids []int64
			for n := range 3 {
				res, err := b.pod.Insert(ctx, keylessArgs{N: n}, nil)
				require.NoError(t, err)
				ids = append(ids, res.Job.ID)
			}
			for _, id := range ids {
				job := b.waitForState(t, id, rivertype.JobStateCompleted)
				var md struct {
					Key string `json:"operation_key"`
				}
				require.NoError(t, json.Unmarshal(job.Metadata, &md))
				require.Equal(t, "test_keyless", md.Key)
			}
			require.Equal(t, 1, strings.Count(logs.String(), "operation key rule panicked"), logs.String())
			require.Contains(t, logs.String(), "setting="+tt.setting+" kind=test_keyless")
			require.NotContains(t, logs.String(), "\x00")
		})
	}
}

// TestOwnKindsKeepTheirKeyUnderADefaultKeyRule: rebound's own periodic kinds
// name their breaker themselves, so a service's Config.DefaultOperationKey
// (here every job on "user-api") never puts them behind the user's breaker:
// with "user-api" open, the alert evaluation still runs.
func TestOwnKindsKeepTheirKeyUnderADefaultKeyRule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := startPod(t, func(c *rebound.Config) {
		c.DefaultOperationKey = func(string, []byte) string { return "user-api" }
	})
	_, err := b.pod.Breaker().Store().Open(ctx, breaker.OpenParams{Key: "user-api", For: time.Hour, By: "test"})
	require.NoError(t, err)
	// A job of the user's, keyed "user-api", is parked: the pod sees the
	// breaker open (so the checks below are not won by a stale view).
	// (Inserted without its key stamped, as by another producer, so the
	// key rule gives it "user-api".)
	var probeID int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, metadata, state, max_attempts, queue, priority)
		VALUES ('test_quote', '{"url": "http://127.0.0.1:1/", "vendor": "omega"}', '{}', 'available', 3, 'default', 1) RETURNING id`).Scan(&probeID))
	probe := b.waitForState(t, probeID, rivertype.JobStateScheduled, rivertype.JobStateCompleted, rivertype.JobStateRetryable, rivertype.JobStateCancelled)
	require.Equal(t, rivertype.JobStateScheduled, probe.State, "%s", probe.Metadata)
	tests := []struct {
		args    river.JobArgs
		wantKey string
	}{
		{args: alert.EvaluateArgs{Reason: "breaker_open"}, wantKey: "rebound_alert_evaluate"},
		{args: breaker.CleanupArgs{}, wantKey: "rebound_breaker_cleanup"},
		{args: metricstore.RollupArgs{}, wantKey: "rebound_job_metrics_rollup"},
	}
	for _, tt := range tests {
		t.Run(tt.args.Kind(), func(t *testing.T) {
			t.Parallel()
			res, err := b.pod.Insert(ctx, tt.args, &river.InsertOpts{Queue: river.QueueDefault})
			require.NoError(t, err)
			var meta struct {
				OperationKey string `json:"operation_key"`
			}
			require.NoError(t, json.Unmarshal(res.Job.Metadata, &meta))
			require.Equal(t, tt.wantKey, meta.OperationKey)
			job := b.waitForState(t, res.Job.ID, rivertype.JobStateCompleted, rivertype.JobStateScheduled)
			require.Equal(t, rivertype.JobStateCompleted, job.State, "parked behind the user's breaker: %s", job.Metadata)
		})
	}
}

// panickyKeyArgs name their operation key with a method that panics.
type panickyKeyArgs struct{}

func (panickyKeyArgs) Kind() string { return "test_panickey" }

func (panickyKeyArgs) OperationKey() string { panic("OperationKey bug") }

type panickyKeyWorker struct {
	river.WorkerDefaults[panickyKeyArgs]
}

func (panickyKeyWorker) Work(context.Context, *river.Job[panickyKeyArgs]) error { return nil }

// An args type whose OperationKey method panics is inserted under the key
// rule's next step (the kind's name), and the pod warns once: the insert
// does not panic in its caller (for periodic jobs, River's leader).
func TestPanickingArgsKeyMethodAtInsert(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logs := &logBuffer{}
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &panickyKeyWorker{})
		c.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	for range 2 {
		var res *rivertype.JobInsertResult
		require.NotPanics(t, func() {
			var err error
			res, err = b.pod.Insert(ctx, panickyKeyArgs{}, nil)
			require.NoError(t, err)
		})
		job := b.waitForState(t, res.Job.ID, rivertype.JobStateCompleted)
		var md struct {
			Key string `json:"operation_key"`
		}
		require.NoError(t, json.Unmarshal(job.Metadata, &md))
		require.Equal(t, "test_panickey", md.Key)
	}
	require.Equal(t, 1, strings.Count(logs.String(), "operation key rule panicked"), logs.String())
	require.Contains(t, logs.String(), `setting="the args' OperationKey method" kind=test_panickey`)
}
