package rebound

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// River's fixed intervals the rescue promise rests on (v0.51.2,
// internal/maintenance): the rescuer runs every 30 s on the leader, the
// scheduler that makes a retryable job available every 5 s.
const (
	riverRescuerInterval   = 30 * time.Second
	riverSchedulerInterval = 5 * time.Second
)

// maxRand draws the largest value, so a delay is its upper bound.
type maxRand struct{}

func (maxRand) Int64N(n int64) int64 { return n - 1 }

// The defaults keep the promise: a job whose pod died is available again
// within 2 minutes of its attempt's start (http_request at its default
// timeout), and no job is rescued while it may still be running.
func TestRescueDefaultsKeepThePromise(t *testing.T) {
	t.Parallel()
	c := (&Config{}).withDefaults()
	require.Equal(t, time.Minute, c.JobTimeout)
	require.Equal(t, 15*time.Second, c.RescueGrace)
	require.Equal(t, 75*time.Second, c.RescueStuckJobsAfter)

	// River's rescuer takes a job once both RescueStuckJobsAfter and its
	// kind's own timeout have passed since the attempt started.
	httpTimeout := (&jobs.HTTPRequestWorker{RescueGrace: c.RescueGrace}).Timeout(&river.Job[jobs.HTTPRequestArgs]{})
	require.Equal(t, 45*time.Second, httpTimeout)
	takenAfter := max(c.RescueStuckJobsAfter, httpTimeout)
	require.Equal(t, 75*time.Second, takenAfter)

	// Then the retry waits the delay of a first loss (class lost).
	policies, err := retrypolicy.NewPolicies(retrypolicy.Policy{}, nil)
	require.NoError(t, err)
	p := policies.Lookup(jobs.KindHTTPRequest)
	lostDelay := p.Delay(retrypolicy.DelayParams{Attempt: 1, Strategy: p.Rule(retrypolicy.ClassLost).Strategy}, maxRand{})
	require.Equal(t, 2400*time.Millisecond, lostDelay)

	worst := takenAfter + riverRescuerInterval + lostDelay + riverSchedulerInterval
	require.Equal(t, 112400*time.Millisecond, worst)
	require.Less(t, worst, 2*time.Minute)

	// A job of a kind without a timeout of its own runs at most JobTimeout:
	// the rescue comes RescueGrace after that at the earliest.
	require.Equal(t, c.RescueGrace, c.RescueStuckJobsAfter-c.JobTimeout)

	// River accepts the values (its rule: RescueStuckJobsAfter >=
	// JobTimeout) and refuses the opposite.
	_, err = river.NewClient(riverpgxv5.New(nil), &river.Config{JobTimeout: c.JobTimeout, RescueStuckJobsAfter: c.RescueStuckJobsAfter})
	require.NoError(t, err)
	_, err = river.NewClient(riverpgxv5.New(nil), &river.Config{JobTimeout: c.JobTimeout, RescueStuckJobsAfter: c.JobTimeout - time.Second})
	require.EqualError(t, err, "RescueStuckJobsAfter cannot be less than JobTimeout")
}

func TestRescueSettings(t *testing.T) {
	t.Parallel()
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none") // connects lazily: never here
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	tests := []struct {
		name    string
		config  Config
		want    [3]time.Duration // job timeout, grace, rescue after
		wantErr string
	}{
		{name: "defaults", want: [3]time.Duration{time.Minute, 15 * time.Second, 75 * time.Second}},
		{name: "rescue follows a longer job timeout", config: Config{JobTimeout: 10 * time.Minute},
			want: [3]time.Duration{10 * time.Minute, 15 * time.Second, 10*time.Minute + 15*time.Second}},
		{name: "fast", config: Config{JobTimeout: time.Second, RescueGrace: time.Second},
			want: [3]time.Duration{time.Second, time.Second, 2 * time.Second}},
		{name: "explicit rescue", config: Config{RescueStuckJobsAfter: 10 * time.Minute},
			want: [3]time.Duration{time.Minute, 15 * time.Second, 10 * time.Minute}},
		{name: "no job timeout: River's rescue default", config: Config{JobTimeout: -1},
			want: [3]time.Duration{-1, 15 * time.Second, 0}},
		{name: "rescue inside the grace", config: Config{RescueStuckJobsAfter: 70 * time.Second},
			wantErr: "rebound: Config.RescueStuckJobsAfter: 1m10s is shorter than JobTimeout + RescueGrace (1m0s + 15s = 1m15s): a job still within its timeout would count as lost; lower JobTimeout too"},
		{name: "negative grace", config: Config{RescueGrace: -time.Second},
			wantErr: "rebound: Config.RescueGrace: -1s is negative (0 means 15s)"},
		{name: "negative job timeout", config: Config{JobTimeout: -time.Second},
			wantErr: "rebound: Config.JobTimeout: -1s is negative (-1 means no timeout, 0 the default)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := tt.config
			in.Pool = pool // validate only checks it is set
			in.Workers = river.NewWorkers()
			c := in.withDefaults()
			_, err := c.validate()
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, [3]time.Duration{c.JobTimeout, c.RescueGrace, c.RescueStuckJobsAfter})
		})
	}
}
