package rebound_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/monitor/health"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// A job of a kind no worker of the pod registers (another service's kind, a
// new kind during a rolling deploy) is not "lost": it is recorded as
// unknown_kind, waits about a minute (not the kind's short schedule), does
// not use up an attempt, and is counted with its class. It is dead-lettered
// as unknown_kind only when a day has passed since its first such attempt,
// or on its last attempt.
func TestUnknownKindWaitsForAPodThatRegistersIt(t *testing.T) {
	t.Parallel()
	const riverMsg = "job kind is not registered in the client's Workers bundle: h3job"
	tests := []struct {
		name        string
		maxAttempts int
		// earlier is the unknown_kind entry already in the history, its At
		// this long ago; 0 for none.
		earlier       time.Duration
		wantState     rivertype.JobState
		wantAttempt   int
		wantEntries   int
		wantFinal     bool
		wantErrorHas  string
		wantDLQ       bool
		wantDelayNear time.Duration // 0 when final
	}{
		{name: "first fetch: retried in about a minute, attempt given back", maxAttempts: 5,
			wantState: rivertype.JobStateRetryable, wantAttempt: 0, wantEntries: 1, wantErrorHas: riverMsg, wantDelayNear: time.Minute},
		{name: "second fetch: the wait doubles", maxAttempts: 5, earlier: 3 * time.Minute,
			wantState: rivertype.JobStateRetryable, wantAttempt: 0, wantEntries: 2, wantErrorHas: riverMsg, wantDelayNear: 2 * time.Minute},
		{name: "a day after the first: dead-lettered", maxAttempts: 5, earlier: 25 * time.Hour,
			wantState: rivertype.JobStateCancelled, wantAttempt: 1, wantEntries: 2, wantFinal: true, wantDLQ: true,
			wantErrorHas: riverMsg + "; no pod registered the kind in 24h0m0s"},
		{name: "its last attempt: dead-lettered", maxAttempts: 1,
			wantState: rivertype.JobStateCancelled, wantAttempt: 1, wantEntries: 1, wantFinal: true, wantDLQ: true,
			wantErrorHas: riverMsg + "; it was the job's last attempt (max attempts 1), so it is dead-lettered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startPod(t, nil)
			ctx := context.Background()
			metadata := `{}`
			if tt.earlier > 0 {
				at := time.Now().Add(-tt.earlier).UTC()
				out := retrypolicy.Output{Attempts: []retrypolicy.Attempt{{Attempt: 1, At: at, Class: retrypolicy.ClassUnknownKind,
					Strategy: retrypolicy.StrategyExponential, DelayMS: 60000, Error: riverMsg}}}
				raw, err := json.Marshal(map[string]any{"output": out})
				require.NoError(t, err)
				metadata = string(raw)
			}
			var id int64
			require.NoError(t, b.db.Pool.QueryRow(ctx, `
INSERT INTO river_job (kind, args, queue, max_attempts, priority, state, metadata)
VALUES ('h3job', '{}', 'default', $1, 1, 'available', $2::jsonb) RETURNING id`, tt.maxAttempts, metadata).Scan(&id))

			job := b.waitForState(t, id, tt.wantState)
			require.Equal(t, tt.wantAttempt, job.Attempt)
			require.Len(t, job.Errors, 1)
			require.Equal(t, riverMsg, job.Errors[0].Error)
			got := history(t, job)
			require.Len(t, got, tt.wantEntries)
			last := got[len(got)-1]
			require.Equal(t, 1, last.Attempt)
			require.Equal(t, retrypolicy.ClassUnknownKind, last.Class)
			require.Equal(t, tt.wantFinal, last.Final)
			require.True(t, strings.HasPrefix(last.Error, tt.wantErrorHas), last.Error)
			if tt.wantDelayNear > 0 {
				d := time.Duration(last.DelayMS) * time.Millisecond
				require.InDelta(t, tt.wantDelayNear.Seconds(), d.Seconds(), tt.wantDelayNear.Seconds()/5+0.001, "delay %s", d)
				require.WithinDuration(t, last.At.Add(d), job.ScheduledAt, time.Second)
				require.Equal(t, retrypolicy.StrategyExponential, last.Strategy)
			} else {
				require.Zero(t, last.DelayMS)
			}
			n, ok := b.metric(t, "rebound_job_errors_total", labels("kind", "h3job", "class", "unknown_kind"))
			require.True(t, ok)
			require.Equal(t, 1.0, n)
			outcome := "errored"
			if tt.wantFinal {
				outcome = "cancelled"
			}
			n, ok = b.metric(t, "rebound_job_attempts_total", labels("kind", "h3job", "queue", "default", "outcome", outcome))
			require.True(t, ok)
			require.Equal(t, 1.0, n)
			_, ok = b.metric(t, "rebound_job_errors_total", labels("kind", "h3job", "class", "lost"))
			require.False(t, ok, "never lost")

			wantRows := 0
			if tt.wantDLQ {
				wantRows = 1
				waitFor(t, 10*time.Second, "the dead letter", func() bool {
					return b.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", id) == 1
				})
				var class string
				require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT failure_class FROM job_dead_letter_queue WHERE river_job_id = $1", id).Scan(&class))
				require.Equal(t, "unknown_kind", class)
			}
			require.Equal(t, wantRows, b.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", id))
		})
	}
}

type h3Args struct{}

func (h3Args) Kind() string { return "h3job" }

type h3Worker struct {
	river.WorkerDefaults[h3Args]
	attempts chan int
}

func (w *h3Worker) Work(_ context.Context, job *river.Job[h3Args]) error {
	w.attempts <- job.Attempt
	return nil
}

// The rolling deploy: a pod of the old build (no h3job worker) fetches the
// job first; a pod of the new build then runs it, on the job's first
// attempt, because the old pod gave its attempt back.
func TestUnknownKindRunsOnAPodThatRegistersIt(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	newPod := func(workers *river.Workers) *rebound.Pod {
		pod, err := rebound.New(rebound.Config{
			Pool: db.Pool, Workers: workers, Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 2}},
			FetchPollInterval: 50 * time.Millisecond, RetryPolicy: fastPolicy, Registerer: prometheus.NewPedanticRegistry(),
		})
		require.NoError(t, err)
		require.NoError(t, pod.Start(ctx))
		return pod
	}
	old := river.NewWorkers()
	river.AddWorker(old, &quoteWorker{})
	oldPod := newPod(old)
	var id int64
	require.NoError(t, db.Pool.QueryRow(ctx, `
INSERT INTO river_job (kind, args, queue, max_attempts, priority, state) VALUES ('h3job', '{}', 'default', 3, 1, 'available') RETURNING id`).Scan(&id))
	waitFor(t, 10*time.Second, "the old pod's unknown_kind attempt", func() bool {
		var state string
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT state::text FROM river_job WHERE id = $1", id).Scan(&state))
		return state == "retryable"
	})
	require.NoError(t, oldPod.Stop(ctx))

	w := &h3Worker{attempts: make(chan int, 1)}
	workers := river.NewWorkers()
	river.AddWorker(workers, w)
	newBuild := newPod(workers)
	t.Cleanup(func() { require.NoError(t, newBuild.Stop(ctx)) })
	_, err := db.Pool.Exec(ctx, "UPDATE river_job SET state = 'available', scheduled_at = now() WHERE id = $1", id) // skip the minute
	require.NoError(t, err)
	select {
	case attempt := <-w.attempts:
		require.Equal(t, 1, attempt)
	case <-time.After(10 * time.Second):
		t.Fatal("the new build's pod did not run the job")
	}
	job := (&bundle{db: db, pod: newBuild}).waitForState(t, id, rivertype.JobStateCompleted)
	require.Equal(t, 1, job.Attempt)
	got := history(t, job)
	require.Len(t, got, 1)
	require.Equal(t, retrypolicy.ClassUnknownKind, got[0].Class)
	require.Zero(t, (&bundle{db: db}).count(t, "SELECT count(*) FROM job_dead_letter_queue"))
}

// A job dead-lettered as unknown_kind a day after its first such attempt
// keeps every such attempt in its dead-letter entry, though all of them have
// attempt number 1 (each attempt is given back): the history has one row
// per attempt, first_attempted_at is the first one's time, and the reason
// is the final entry's, ending with why the job was dead-lettered.
func TestUnknownKindDeadLetterKeepsEveryAttempt(t *testing.T) {
	t.Parallel()
	const riverMsg = "job kind is not registered in the client's Workers bundle: h3job"
	tests := []struct {
		name    string
		earlier int // unknown_kind attempts before the final one
	}{
		{name: "one earlier attempt", earlier: 1},
		{name: "five earlier attempts", earlier: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startPod(t, nil)
			ctx := context.Background()
			first := time.Now().Add(-25 * time.Hour).UTC().Truncate(time.Millisecond)
			var out retrypolicy.Output
			var errs []map[string]any
			for i := range tt.earlier {
				at := first.Add(time.Duration(i) * time.Minute)
				out.Attempts = append(out.Attempts, retrypolicy.Attempt{Attempt: 1, At: at, Class: retrypolicy.ClassUnknownKind,
					Strategy: retrypolicy.StrategyExponential, DelayMS: 60000, Error: riverMsg})
				errs = append(errs, map[string]any{"at": at.Add(time.Millisecond), "attempt": 1, "error": riverMsg, "trace": ""})
			}
			meta, err := json.Marshal(map[string]any{"output": out})
			require.NoError(t, err)
			errors, err := json.Marshal(errs)
			require.NoError(t, err)
			var id int64
			require.NoError(t, b.db.Pool.QueryRow(ctx, `
INSERT INTO river_job (kind, args, queue, max_attempts, priority, state, metadata, errors)
VALUES ('h3job', '{}', 'default', 5, 1, 'available', $1::jsonb, ARRAY(SELECT jsonb_array_elements($2::jsonb))) RETURNING id`,
				string(meta), string(errors)).Scan(&id))

			b.waitForState(t, id, rivertype.JobStateCancelled)
			waitFor(t, 10*time.Second, "the dead letter", func() bool {
				return b.count(t, "SELECT count(*) FROM job_dead_letter_queue WHERE river_job_id = $1", id) == 1
			})
			var (
				class, reason string
				firstAt       time.Time
				lastAt        time.Time
				hist          []byte
			)
			require.NoError(t, b.db.Pool.QueryRow(ctx, `
SELECT failure_class, failure_reason, first_attempted_at, last_attempted_at, history
  FROM job_dead_letter_queue WHERE river_job_id = $1`, id).Scan(&class, &reason, &firstAt, &lastAt, &hist))
			require.Equal(t, "unknown_kind", class)
			require.Equal(t, riverMsg+"; no pod registered the kind in 24h0m0s (since "+first.Format(time.RFC3339)+"), so it is dead-lettered", reason)
			require.True(t, firstAt.Equal(first.Add(time.Millisecond)), "first attempt %s, want %s", firstAt, first.Add(time.Millisecond))
			require.WithinDuration(t, time.Now(), lastAt, time.Minute)

			var rows []struct {
				Attempt int       `json:"attempt"`
				At      time.Time `json:"at"`
				Class   string    `json:"class"`
				Error   string    `json:"error"`
			}
			require.NoError(t, json.Unmarshal(hist, &rows))
			require.Len(t, rows, tt.earlier+1)
			for i, r := range rows {
				require.Equal(t, 1, r.Attempt, "row %d", i)
				require.Equal(t, "unknown_kind", r.Class, "row %d", i)
				if i < tt.earlier {
					require.True(t, r.At.Equal(first.Add(time.Duration(i)*time.Minute+time.Millisecond)), "row %d at %s", i, r.At)
					require.Equal(t, riverMsg, r.Error, "row %d", i)
				}
			}
			require.Equal(t, reason, rows[tt.earlier].Error)
		})
	}
}

// While jobs wait for a pod that registers their kind, `rebound health`
// (health.Checker) names the kind and how many wait; a job already
// dead-lettered does not wait.
func TestUnknownKindWaitsShowInHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		maxAttempts []int // one job each; 1 is dead-lettered at once
		wantIssues  []string
	}{
		{name: "one job waits", maxAttempts: []int{5},
			wantIssues: []string{"1 job waits for a pod that registers kind h3job (unknown_kind)"}},
		{name: "two jobs wait", maxAttempts: []int{5, 5},
			wantIssues: []string{"2 jobs wait for a pod that registers kind h3job (unknown_kind)"}},
		{name: "a dead-lettered job does not wait", maxAttempts: []int{1},
			wantIssues: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startPod(t, nil)
			ctx := context.Background()
			for _, ma := range tt.maxAttempts {
				var id int64
				require.NoError(t, b.db.Pool.QueryRow(ctx, `
INSERT INTO river_job (kind, args, queue, max_attempts, priority, state)
VALUES ('h3job', '{}', 'default', $1, 1, 'available') RETURNING id`, ma).Scan(&id))
				want := rivertype.JobStateRetryable
				if ma == 1 {
					want = rivertype.JobStateCancelled
				}
				b.waitForState(t, id, want)
			}
			rep, err := (&health.Checker{DB: b.db.Pool}).Check(ctx)
			require.NoError(t, err)
			require.Equal(t, health.Healthy, rep.OverallHealth)
			k, ok := rep.Jobs["h3job"]
			if len(tt.wantIssues) > 0 {
				require.True(t, ok, "h3job in %v", rep.Jobs)
			}
			if ok {
				require.Equal(t, tt.wantIssues, k.Issues)
			}
		})
	}
}

// The unknown_kind schedule is its own (exponential, 1 min doubled, at most
// 15 min) whatever strategy a rule names: the retry is counted, and its
// series created at start, with strategy exponential.
func TestUnknownKindRetriesAreLabelledExponential(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		strategy retrypolicy.Strategy // of the rule for unknown_kind; "" for none
	}{
		{name: "the default rule"},
		{name: "a rule naming linear", strategy: retrypolicy.StrategyLinear},
		{name: "a rule naming aggressive", strategy: retrypolicy.StrategyAggressive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := startPod(t, func(c *rebound.Config) {
				c.Kinds = map[string]rebound.KindConfig{"test_quote": {}}
				if tt.strategy != "" {
					c.RetryPolicy.Rules = map[retrypolicy.Class]retrypolicy.Rule{
						retrypolicy.ClassUnknownKind: {Retry: true, Strategy: tt.strategy}}
				}
			})
			ctx := context.Background()
			// Created at start, for a kind of Config.Kinds.
			n, ok := b.metric(t, "rebound_retries_scheduled_total", labels("kind", "test_quote", "class", "unknown_kind", "strategy", "exponential"))
			require.True(t, ok)
			require.Zero(t, n)
			if tt.strategy != "" {
				_, ok = b.metric(t, "rebound_retries_scheduled_total", labels("kind", "test_quote", "class", "unknown_kind", "strategy", string(tt.strategy)))
				require.False(t, ok, "no series for the rule's strategy")
			}

			var id int64
			require.NoError(t, b.db.Pool.QueryRow(ctx, `
INSERT INTO river_job (kind, args, queue, max_attempts, priority, state)
VALUES ('h3job', '{}', 'default', 5, 1, 'available') RETURNING id`).Scan(&id))
			job := b.waitForState(t, id, rivertype.JobStateRetryable)
			got := history(t, job)
			require.Len(t, got, 1)
			require.Equal(t, retrypolicy.StrategyExponential, got[0].Strategy)
			waitFor(t, 5*time.Second, "the retry counted", func() bool {
				n, ok := b.metric(t, "rebound_retries_scheduled_total", labels("kind", "h3job", "class", "unknown_kind", "strategy", "exponential"))
				return ok && n == 1
			})
		})
	}
}
