package rebound_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Example functions take no *testing.T, so they cannot use dbtest.New.
// Each calls exampleDatabaseURL where a service would read DATABASE_URL: a
// fresh migrated database (cloned from dbtest's template) for that example
// alone, so examples see no one else's rows and run again under -count.
// dbtest.Main drops them when the run ends.
func exampleDatabaseURL() string { return dbtest.ForExample() }

// TestMain drops the databases the tests and examples created, and the
// shared template when no other test process uses it, once they end, and the binaries proctest built.
func TestMain(m *testing.M) { dbtest.Main(m, proctest.RemoveBinaries) }

// quoteArgs is a custom kind defined outside rebound's packages: fetch a
// price quote from a vendor's HTTP API. Its operation key is the vendor, so
// one vendor's outage opens one breaker.
type quoteArgs struct {
	URL    string `json:"url"`
	Vendor string `json:"vendor"`
}

func (quoteArgs) Kind() string { return "test_quote" }

func (a quoteArgs) OperationKey() string { return "quotes:" + a.Vendor }

// quote is what a vendor answers, and what the job records as its result.
type quote struct {
	Price float64 `json:"price"`
}

type quoteWorker struct {
	river.WorkerDefaults[quoteArgs]
}

func (w *quoteWorker) Work(ctx context.Context, job *river.Job[quoteArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.URL, nil)
	if err != nil {
		return retrypolicy.Permanent(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("quote from %s: %w", job.Args.Vendor, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &vendorError{status: resp.StatusCode}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.retryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	var q quote
	if err := json.NewDecoder(resp.Body).Decode(&q); err != nil {
		return fmt.Errorf("quote from %s: %w", job.Args.Vendor, err)
	}
	return retrypolicy.RecordResult(ctx, q)
}

// vendorError is an HTTP failure, told apart by behaviour: StatusCode and
// RetryAfter, which retrypolicy's classifier reads.
type vendorError struct {
	status     int
	retryAfter time.Duration
}

func (e *vendorError) Error() string             { return "vendor answered HTTP " + strconv.Itoa(e.status) }
func (e *vendorError) StatusCode() int           { return e.status }
func (e *vendorError) RetryAfter() time.Duration { return e.retryAfter }

// step is one scripted answer of the upstream.
type step struct {
	status     int
	body       string
	retryAfter string
}

// upstream is a real HTTP server whose paths answer a script: each request
// takes the next step, and the last step repeats.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	scripts map[string][]step
	calls   map[string]int
}

func newUpstream(t *testing.T, scripts map[string][]step) *upstream {
	t.Helper()
	u := &upstream{scripts: scripts, calls: map[string]int{}}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		script := u.scripts[r.URL.Path]
		n := u.calls[r.URL.Path]
		u.calls[r.URL.Path]++
		u.mu.Unlock()
		if len(script) == 0 {
			http.NotFound(w, r)
			return
		}
		s := script[min(n, len(script)-1)]
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		w.WriteHeader(s.status)
		_, _ = w.Write([]byte(s.body))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) callsTo(path string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.calls[path]
}

// bundle is one test's pod on a database of its own.
type bundle struct {
	db       *dbtest.Database
	registry *prometheus.Registry
	pod      *rebound.Pod
}

// fastPolicy retries within a second, without jitter, so delays are exact.
var fastPolicy = retrypolicy.Policy{MaxAttempts: 5, InitialDelay: 100 * time.Millisecond, MaxDelay: 2 * time.Second, Jitter: retrypolicy.JitterNone}

// startPod starts a pod working test_quote jobs on a fresh database with
// fastPolicy, quick polling and a registry of its own; configure may change
// the Config first. The pod stops when the test ends.
func startPod(t *testing.T, configure func(*rebound.Config)) *bundle {
	t.Helper()
	db := dbtest.New(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &quoteWorker{})
	reg := prometheus.NewPedanticRegistry()
	cfg := rebound.Config{
		Pool:              db.Pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 5}},
		FetchPollInterval: 50 * time.Millisecond,
		RetryPolicy:       fastPolicy,
		Registerer:        reg,
	}
	if configure != nil {
		configure(&cfg)
	}
	pod, err := rebound.New(cfg)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, pod.Start(ctx))
	t.Cleanup(func() { require.NoError(t, pod.Stop(ctx)) })
	return &bundle{db: db, registry: reg, pod: pod}
}

// waitFor polls cond every 50 ms until it holds, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitForState waits until job id is in one of states and returns it.
func (b *bundle) waitForState(t *testing.T, id int64, states ...rivertype.JobState) *rivertype.JobRow {
	t.Helper()
	var job *rivertype.JobRow
	waitFor(t, 30*time.Second, fmt.Sprintf("job %d to be %v", id, states), func() bool {
		var err error
		job, err = b.pod.Client().JobGet(context.Background(), id)
		require.NoError(t, err)
		for _, s := range states {
			if job.State == s {
				return true
			}
		}
		return false
	})
	return job
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, b.db.Pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

// metric returns the value of the counter or gauge name with exactly these
// labels in b's registry, and whether it exists.
func (b *bundle) metric(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	families, err := b.registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// history reads a job's attempt history.
func history(t *testing.T, job *rivertype.JobRow) []retrypolicy.Attempt {
	t.Helper()
	out, err := retrypolicy.ParseOutput(job.Metadata)
	require.NoError(t, err)
	return out.Attempts
}

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}
