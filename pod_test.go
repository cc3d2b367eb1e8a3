package rebound_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// Handler mounts on the caller's own server: health, readiness, metrics
// from the caller's registry, and the admin routes behind the token.
func TestHandlerOnTheCallersServer(t *testing.T) {
	t.Parallel()
	const token = "0123456789abcdef0123"
	b := startPod(t, func(c *rebound.Config) { c.AdminToken = token })
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "mine") })
	mux.Handle("/", b.pod.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	require.Empty(t, b.pod.HTTPAddr(), "no server of the pod's own")

	tests := []struct {
		path, token string
		wantCode    int
		wantBody    string
	}{
		{"/hello", "", 200, "mine"},
		{"/healthz", "", 200, `"status": "ok"`},
		{"/readyz", "", 200, `"migrations": "ok"`},
		{"/metrics", "", 200, "# TYPE rebound_job_attempts_total counter"},
		{"/api/admin/dlq", "", 401, "missing admin token"},
		{"/api/admin/dlq", token, 200, `"entries": []`},
		{"/api/admin/breakers", token, 200, `[]`},
		{"/api/admin/nothing", token, 404, "no admin route /api/admin/nothing"},
		{"/riverui/", "", 401, "missing admin token"},
	}
	// A job, so the metrics have a series of its kind.
	up := newUpstream(t, map[string][]step{"/q": {{status: 200, body: `{"price": 1}`}}})
	res, err := b.pod.Insert(context.Background(), quoteArgs{URL: up.URL + "/q", Vendor: "acme"}, nil)
	require.NoError(t, err)
	b.waitForState(t, res.Job.ID, rivertype.JobStateCompleted)
	for _, tt := range tests {
		code, body := get(t, srv.URL+tt.path, tt.token)
		require.Equal(t, tt.wantCode, code, "%s: %s", tt.path, body)
		require.Contains(t, body, tt.wantBody, tt.path)
	}
	_, metrics := get(t, srv.URL+"/metrics", "")
	require.Contains(t, metrics, `rebound_job_attempts_total{kind="test_quote",outcome="completed",queue="default"} 1`)
}

// With HTTPAddr the pod serves the same handler on a server of its own,
// from Start to Stop; /readyz says so when shutdown begins.
func TestOwnHTTPServer(t *testing.T) {
	t.Parallel()
	b := startPod(t, func(c *rebound.Config) { c.HTTPAddr = "127.0.0.1:0" })
	addr := b.pod.HTTPAddr()
	require.NotEmpty(t, addr)
	code, body := get(t, "http://"+addr+"/readyz", "")
	require.Equal(t, 200, code, body)
	code, _ = get(t, "http://"+addr+"/api/admin/dlq", "")
	require.Equal(t, 200, code, "loopback clients without a token on a loopback address")
	require.NoError(t, b.pod.Stop(context.Background()))
	_, err := http.Get("http://" + addr + "/healthz")
	require.Error(t, err, "the server is shut down")
}

// KindConfig.Timeout bounds a kind's attempts: one cut short is a timeout,
// retried linearly; other kinds are not bound by it.
func TestKindTimeout(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
			_, _ = io.WriteString(w, `{"price": 9}`)
		}
	}))
	t.Cleanup(slow.Close)
	b := startPod(t, func(c *rebound.Config) {
		c.Kinds = map[string]rebound.KindConfig{"test_quote": {Timeout: 300 * time.Millisecond, RetryPolicy: retrypolicy.Policy{MaxAttempts: 1}}}
	})
	res, err := b.pod.Insert(context.Background(), quoteArgs{URL: slow.URL, Vendor: "slow"}, nil)
	require.NoError(t, err)
	start := time.Now()
	job := b.waitForState(t, res.Job.ID, rivertype.JobStateDiscarded)
	require.Less(t, time.Since(start), 3*time.Second)
	h := history(t, job)
	require.Len(t, h, 1)
	require.Equal(t, retrypolicy.ClassTimeout, h[0].Class)
	require.Contains(t, h[0].Error, "context deadline exceeded")
}

// A job running when Stop is called gets ShutdownTimeout to finish; one
// that does not is cancelled and back in the queue with its attempt unused.
func TestStopReturnsUnfinishedJobs(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	// 3 s: 2 s to finish, then a 1 s hard-stop margin for the cancelled job
	// to return, enough on a loaded machine.
	b := startPod(t, func(c *rebound.Config) { c.ShutdownTimeout = 3 * time.Second })
	res, err := b.pod.Insert(context.Background(), quoteArgs{URL: slow.URL, Vendor: "slow"}, nil)
	require.NoError(t, err)
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the job never reached the upstream")
	}
	stopAt := time.Now()
	require.NoError(t, b.pod.Stop(context.Background()))
	require.Less(t, time.Since(stopAt), 10*time.Second)
	job, err := b.pod.Client().JobGet(context.Background(), res.Job.ID)
	require.NoError(t, err)
	require.Equal(t, rivertype.JobStateAvailable, job.State)
	require.Equal(t, 0, job.Attempt)
	require.Empty(t, job.Errors)
}

// http_request through the library behaves as in the worker binary: a job
// inserted by another producer, without the key stamped, is keyed by its
// URL's host (its args' OperationKey, from the args JSON), and a 404 ends
// it in the dead-letter queue under that key.
func TestHTTPRequestKindThroughTheLibrary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	up := newUpstream(t, map[string][]step{"/flaky": {{status: 503}, {status: 204}}})
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &jobs.HTTPRequestWorker{})
	})
	host := strings.TrimPrefix(up.URL, "http://")

	res, err := b.pod.Insert(ctx, jobs.HTTPRequestArgs{URL: up.URL + "/flaky"}, nil)
	require.NoError(t, err)
	require.Equal(t, retrypolicy.DefaultMaxAttempts, res.Job.MaxAttempts)
	job := b.waitForState(t, res.Job.ID, rivertype.JobStateCompleted)
	h := history(t, job)
	require.Len(t, h, 1)
	require.Equal(t, retrypolicy.ClassServerError, h[0].Class)
	require.Contains(t, string(job.Metadata), fmt.Sprintf(`"operation_key": %q`, host))

	var id int64
	require.NoError(t, b.db.Pool.QueryRow(ctx, `INSERT INTO river_job (kind, args, metadata, state, max_attempts, queue, priority)
		VALUES ('http_request', $1, '{}', 'available', 5, 'default', 1) RETURNING id`, fmt.Sprintf(`{"url": %q}`, up.URL+"/gone")).Scan(&id))
	b.waitForState(t, id, rivertype.JobStateCancelled)
	var key, class string
	require.NoError(t, b.db.Pool.QueryRow(ctx, "SELECT operation_key, failure_class FROM job_dead_letter_queue WHERE river_job_id = $1", id).Scan(&key, &class))
	require.Equal(t, host, key)
	require.Equal(t, "not_found", class)
}

// The caller's periodic jobs run on the pod's client, inserted by River's
// leader through the same insert rules: the operation key stamped, max
// attempts from the kind's policy.
func TestPeriodicJobsFollowTheInsertRules(t *testing.T) {
	t.Parallel()
	b := startPod(t, func(c *rebound.Config) {
		river.AddWorker(c.Workers, &auditWorker{})
		c.Kinds = map[string]rebound.KindConfig{"test_audit": {RetryPolicy: retrypolicy.Policy{MaxAttempts: 9}}}
		c.PeriodicJobs = []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(time.Hour),
			func() (river.JobArgs, *river.InsertOpts) { return auditArgs{}, nil },
			&river.PeriodicJobOpts{RunOnStart: true})}
	})
	waitFor(t, 30*time.Second, "the periodic job to run", func() bool {
		return b.count(t, "SELECT count(*) FROM river_job WHERE kind = 'test_audit' AND state = 'completed'") == 1
	})
	require.Equal(t, 1, b.count(t, `SELECT count(*) FROM river_job WHERE kind = 'test_audit' AND max_attempts = 9
		AND metadata->>'operation_key' = 'test_audit'`))
}
