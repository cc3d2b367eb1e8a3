package breaker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// The tests in this file run pods as separate OS processes (testdata/pod),
// because their point is several pods sharing one breaker.

var (
	podOnce sync.Once
	podPath string
	podErr  error
	podDir  string
)

// TestMain removes the pod binary and drops the test databases, and the
// shared template when no other test process uses it, once the tests end.
func TestMain(m *testing.M) {
	dbtest.Main(m, func() {
		if podDir != "" {
			_ = os.RemoveAll(podDir)
		}
	})
}

func podBinary(t *testing.T) string {
	t.Helper()
	podOnce.Do(func() {
		podDir, podErr = os.MkdirTemp("", "breaker-pod-")
		if podErr != nil {
			return
		}
		podPath = filepath.Join(podDir, "pod")
		out, err := exec.Command("go", "build", "-o", podPath, "./testdata/pod").CombinedOutput()
		if err != nil {
			podErr = fmt.Errorf("build testdata/pod: %v\n%s", err, out)
		}
	})
	require.NoError(t, podErr)
	return podPath
}

type pod struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *bytes.Buffer
	done   chan error
}

func startPod(t *testing.T, name string, env []string, args ...string) *pod {
	t.Helper()
	cmd := exec.Command(podBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "POD_NAME="+name)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &pod{name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 100), stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	})
	return p
}

// expect waits for the pod's next line, which must start with prefix.
func (p *pod) expect(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		require.True(t, ok, "pod %s exited before printing %q; stderr:\n%s", p.name, prefix, p.stderr)
		require.True(t, strings.HasPrefix(l, prefix), "pod %s printed %q, want %q…; stderr:\n%s", p.name, l, prefix, p.stderr)
		return l
	case <-time.After(timeout):
		t.Fatalf("pod %s printed nothing for %s (waiting for %q); stderr:\n%s", p.name, timeout, prefix, p.stderr)
		return ""
	}
}

func (p *pod) signal(t *testing.T) {
	t.Helper()
	_, err := io.WriteString(p.stdin, "\n")
	require.NoError(t, err)
}

// stop closes stdin (the pod's cue to stop) and waits for it to exit.
func (p *pod) stop(t *testing.T) []string {
	t.Helper()
	_ = p.stdin.Close()
	var rest []string
	for l := range p.lines {
		rest = append(rest, l)
	}
	select {
	case err := <-p.done:
		require.NoError(t, err, "pod %s; stderr:\n%s", p.name, p.stderr)
	case <-time.After(30 * time.Second):
		t.Fatalf("pod %s did not stop", p.name)
	}
	return rest
}

// upstream is a real HTTP server that records every request.
type upstream struct {
	srv     *httptest.Server
	failing atomic.Bool
	failFor func(r *http.Request) bool
	mu      sync.Mutex
	reqs    []request
}

type request struct {
	at      time.Time
	pod     string
	jobID   int64
	attempt int
}

func newUpstream(t *testing.T, failFor func(r *http.Request) bool) *upstream {
	u := &upstream{failFor: failFor}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.Header.Get("X-Job-ID"), 10, 64)
		attempt, _ := strconv.Atoi(r.Header.Get("X-Attempt"))
		u.mu.Lock()
		u.reqs = append(u.reqs, request{at: time.Now(), pod: r.Header.Get("X-Pod"), jobID: id, attempt: attempt})
		u.mu.Unlock()
		if u.failing.Load() || (u.failFor != nil && u.failFor(r)) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]request(nil), u.reqs...)
}

func waitOpen(t *testing.T, store *Store, key string, timeout time.Duration) *Row {
	t.Helper()
	var row *Row
	require.Eventually(t, func() bool {
		r, err := store.Get(context.Background(), key)
		if err != nil || r.State != StateOpen {
			return false
		}
		row = r
		return true
	}, timeout, 5*time.Millisecond, "breaker %q never opened", key)
	return row
}

func TestPodsHalfOpenAdmitsExactlyOneProbe(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	openRowProbeDue(t, db, "k")
	env := []string{"DATABASE_URL=" + db.URL}
	var pods []*pod
	for i := range 3 {
		p := startPod(t, fmt.Sprintf("p%d", i), env, "probe-race", "k", "20")
		pods = append(pods, p)
	}
	for _, p := range pods {
		p.expect(t, "ready", 30*time.Second)
	}
	for _, p := range pods {
		p.signal(t)
	}
	total := 0
	for _, p := range pods {
		var n int
		_, err := fmt.Sscanf(p.expect(t, "admitted", 30*time.Second), "admitted %d", &n)
		require.NoError(t, err)
		total += n
		p.stop(t)
	}
	require.Equal(t, 1, total, "3 processes x 20 goroutines: exactly one probe admitted")
	row, err := NewStore(db.Pool).Get(context.Background(), "k")
	require.NoError(t, err)
	require.Equal(t, StateHalfOpen, row.State)
	require.Len(t, row.Probes, 1)
}

func TestPodsPropagateOpenWithinOneSecond(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	u := newUpstream(t, func(r *http.Request) bool { return r.Header.Get("X-Pod") == "A" })
	env := []string{"DATABASE_URL=" + db.URL, "BREAKER_FAILURE_THRESHOLD=3", "BREAKER_OPEN_TIMEOUT=1h"}
	b := startPod(t, "B", env, "caller", "k", u.srv.URL, "5ms")
	b.expect(t, "ready", 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	a := startPod(t, "A", env, "caller", "k", u.srv.URL, "5ms")
	a.expect(t, "ready", 30*time.Second)
	row := waitOpen(t, NewStore(db.Pool), "k", 10*time.Second)
	b.expect(t, "open", 2*time.Second)
	time.Sleep(1500 * time.Millisecond)
	a.stop(t)
	b.stop(t)

	opened := *row.OpenedAt
	var bBefore, bLate, aLate int
	for _, r := range u.requests() {
		switch {
		case r.pod == "B" && r.at.Before(opened):
			bBefore++
		case r.pod == "B" && r.at.After(opened.Add(time.Second)):
			bLate++
		case r.pod == "A" && r.at.After(opened.Add(time.Second)):
			aLate++
		}
	}
	t.Logf("pod B called the upstream %d times before the trip", bBefore)
	require.Positive(t, bBefore, "pod B was calling before the trip")
	require.Zero(t, bLate, "pod B made no call more than 1s after pod A opened the breaker")
	require.Zero(t, aLate)
}

func TestPodsRestartedPodStillTreatsKeyAsOpen(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	u := newUpstream(t, nil)
	u.failing.Store(true)
	env := []string{"DATABASE_URL=" + db.URL, "BREAKER_FAILURE_THRESHOLD=2", "BREAKER_OPEN_TIMEOUT=1h"}
	first := startPod(t, "first", env, "caller", "k", u.srv.URL, "5ms")
	first.expect(t, "ready", 30*time.Second)
	waitOpen(t, NewStore(db.Pool), "k", 10*time.Second)
	first.stop(t)

	second := startPod(t, "second", env, "caller", "k", u.srv.URL, "5ms")
	second.expect(t, "ready", 30*time.Second)
	second.expect(t, "open", 5*time.Second)
	time.Sleep(500 * time.Millisecond)
	out := second.stop(t)
	require.Len(t, out, 1)
	var refused, calls int
	_, err := fmt.Sscanf(out[0], "refused %d calls %d", &refused, &calls)
	require.NoError(t, err)
	require.Positive(t, refused)
	require.Zero(t, calls, "the restarted pod never called the upstream")
	for _, r := range u.requests() {
		require.Equal(t, "first", r.pod)
	}
}

// TestPodsWorkersOnlyProbeAnOpenUpstream runs three worker processes (River
// clients with the gate) against an upstream that fails every call, then
// recovers.
func TestPodsWorkersOnlyProbeAnOpenUpstream(t *testing.T) {
	t.Parallel()
	const (
		numJobs     = 60
		maxAttempts = 10
		outage      = 6 * time.Second
		openTimeout = time.Second
	)
	db := dbtest.New(t)
	ctx := context.Background()
	u := newUpstream(t, nil)
	u.failing.Store(true)

	insert, err := river.NewClient(riverpgxv5.New(db.Pool), &river.Config{})
	require.NoError(t, err)
	params := make([]river.InsertManyParams, numJobs)
	for i := range params {
		params[i] = river.InsertManyParams{Args: upstreamArgs{URL: u.srv.URL}, InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts}}
	}
	_, err = insert.InsertMany(ctx, params)
	require.NoError(t, err)

	env := []string{"DATABASE_URL=" + db.URL, "BREAKER_FAILURE_THRESHOLD=3",
		"BREAKER_OPEN_TIMEOUT=" + openTimeout.String(), "BREAKER_PARK_SPREAD=2s"}
	var pods []*pod
	for i := range 3 {
		p := startPod(t, fmt.Sprintf("w%d", i), env, "worker", "10")
		pods = append(pods, p)
	}
	for _, p := range pods {
		p.expect(t, "ready", 30*time.Second)
	}
	store := NewStore(db.Pool)
	row := waitOpen(t, store, "upstream_call", 30*time.Second)
	opened := *row.OpenedAt
	time.Sleep(time.Until(opened.Add(outage)))
	recovered := time.Now()
	u.failing.Store(false)

	require.Eventually(t, func() bool {
		var done int
		require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state = 'completed'`).Scan(&done))
		return done == numJobs
	}, 90*time.Second, 100*time.Millisecond, "every job completes once the upstream recovers")
	for _, p := range pods {
		p.stop(t)
	}

	reqs := u.requests()
	perJob := map[int64]int{}
	var during int
	for _, r := range reqs {
		perJob[r.jobID]++
		if r.at.After(opened.Add(time.Second)) && r.at.Before(recovered) {
			during++
		}
	}
	var beforeTrip, justAfter int
	for _, r := range reqs {
		switch {
		case !r.at.After(opened):
			beforeTrip++
		case !r.at.After(opened.Add(time.Second)):
			justAfter++
		}
	}
	// The overshoot docs/circuit-breakers.md quotes: calls that reached the
	// failing upstream until the trip (threshold 3), and in the second after
	// it (calls already in flight, pods not yet aware).
	t.Logf("overshoot: %d calls before the trip (failure_threshold 3, 3 pods x 10 workers), %d in the second after it", beforeTrip, justAfter)
	maxProbes := int((outage-time.Second)/openTimeout) + 1
	t.Logf("%d upstream calls in all; %d while open (after the 1s propagation window), at most %d probes possible; %d jobs",
		len(reqs), during, maxProbes, numJobs)
	require.LessOrEqual(t, during, maxProbes, "while open the upstream sees only probes")

	rows, err := db.Pool.Query(ctx, `SELECT id, state, attempt, coalesce((metadata->>'snoozes')::int, 0) FROM river_job`)
	require.NoError(t, err)
	type job struct {
		id      int64
		state   string
		attempt int
		snoozes int
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (job, error) {
		var j job
		return j, r.Scan(&j.id, &j.state, &j.attempt, &j.snoozes)
	})
	require.NoError(t, err)
	require.Len(t, jobs, numJobs)
	snoozed := 0
	for _, j := range jobs {
		require.Equal(t, "completed", j.state, "job %d", j.id)
		require.Equal(t, perJob[j.id], j.attempt, "job %d: attempts used = calls the upstream really received (snoozes use none)", j.id)
		require.Less(t, j.attempt, maxAttempts)
		snoozed += j.snoozes
	}
	require.Positive(t, snoozed, "jobs were parked")
	t.Logf("%d snoozes in all", snoozed)
}

// upstreamArgs mirrors testdata/pod's UpstreamArgs for inserting.
type upstreamArgs struct {
	URL string `json:"url"`
}

func (upstreamArgs) Kind() string { return "upstream_call" }
