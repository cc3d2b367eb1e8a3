package rebound_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// The secrets of the job below. Each must be absent from every display
// and log line.
const (
	secretAccessKey = "AKIAIOSFODNN7EXAMPLE"
	secretSignature = "sig-abc-4f1d9e"
	secretSession   = "sess-xyz-9c2e77"
)

// echoArgs are the args of a job kind that fails the way an upstream that
// echoes the request does.
type echoArgs struct {
	Body    json.RawMessage   `json:"body"`
	Headers map[string]string `json:"headers"`
}

func (echoArgs) Kind() string { return "echo_failure" }

type echoWorker struct {
	river.WorkerDefaults[echoArgs]
}

func (echoWorker) Work(context.Context, *river.Job[echoArgs]) error {
	return retrypolicy.Retryable(fmt.Errorf("upstream rejected the call: X-Signature: %s; session_id=%s", secretSignature, secretSession),
		retrypolicy.ClassServerError)
}

// logBuffer is a pod's log output, written by many goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// End to end: a job whose args hold a nested access_key and an X-Signature
// header, and whose error echoes the signature and a session_id, lands in
// the dead-letter queue and opens nothing but counts against its breaker.
// Neither the CLI (real binary) nor the admin API nor the pod's log shows
// a secret; the names rebound needs (the operation key, the
// Idempotency-Key) stay shown, and the stored rows keep the originals.
func TestSecretsRedactedInDisplaysAndLogs(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	db := dbtest.New(t)

	workers := river.NewWorkers()
	river.AddWorker(workers, &echoWorker{})
	logs := &logBuffer{}
	addr := proctest.FreeAddr(t)
	pod, err := rebound.New(rebound.Config{
		Pool: db.Pool, Workers: workers, Queues: map[string]river.QueueConfig{"default": {MaxWorkers: 1}}, HTTPAddr: addr,
		FetchPollInterval: 200 * time.Millisecond,
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- pod.Run(ctx) }()

	args := fmt.Sprintf(`{"body": {"nested": {"access_key": %q, "region": "eu-west-1"}}, "headers": {"X-Signature": %q, "Idempotency-Key": "idem-42"}}`,
		secretAccessKey, secretSignature)
	_, err = db.Pool.Exec(ctx, `INSERT INTO river_job (kind, args, state, max_attempts, queue, priority, metadata)
		VALUES ('echo_failure', $1, 'available', 1, 'default', 1, '{"operation_key": "echo.example.com"}')`, args)
	require.NoError(t, err)

	var id int64
	var lastError string
	require.Eventually(t, func() bool {
		return db.Pool.QueryRow(ctx, `SELECT d.id, b.last_error FROM job_dead_letter_queue d, circuit_breaker_state b
			WHERE b.breaker_key = 'echo.example.com' AND b.last_error <> ''`).Scan(&id, &lastError) == nil
	}, 30*time.Second, 100*time.Millisecond, "no dead letter and breaker failure; pod log:\n%s", logs.String())

	// Stored rows keep the originals.
	var storedKey, storedReason string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT args->'body'->'nested'->>'access_key', failure_reason FROM job_dead_letter_queue WHERE id = $1`, id).
		Scan(&storedKey, &storedReason))
	require.Equal(t, secretAccessKey, storedKey)
	const reason = "upstream rejected the call: X-Signature: " + secretSignature + "; session_id=" + secretSession
	require.Equal(t, reason, storedReason)
	require.Contains(t, lastError, reason)

	const shownReason = "upstream rejected the call: X-Signature: [REDACTED]; session_id=[REDACTED]"
	idArg := strconv.FormatInt(id, 10)
	env := []string{"DATABASE_URL=" + db.URL}
	displays := []struct {
		name string
		get  func() string
		want []string // shown exactly so
	}{
		{"rebound dlq show --json", cli(t, env, "dlq", "show", idArg, "--json"),
			[]string{`"access_key": "[REDACTED]"`, `"X-Signature": "[REDACTED]"`, `"Idempotency-Key": "idem-42"`, `"region": "eu-west-1"`,
				`"failure_reason": "` + shownReason + `"`, `"operation_key": "echo.example.com"`}},
		{"rebound dlq show", cli(t, env, "dlq", "show", idArg), []string{shownReason}},
		{"rebound dlq list --json", cli(t, env, "dlq", "list", "--json"),
			[]string{`"access_key": "[REDACTED]"`, `"X-Signature": "[REDACTED]"`, `"failure_reason": "` + shownReason + `"`}},
		{"rebound dlq stats", cli(t, env, "dlq", "stats"), []string{"upstream rejected the call: X-Signature: [REDACTED]"}},
		{"rebound dlq stats --json", cli(t, env, "dlq", "stats", "--json"), []string{`"` + shownReason + `"`}},
		{"rebound breaker list", cli(t, env, "breaker", "list"), []string{"echo.example.com", "X-Signature: [REDACTED]"}},
		{"rebound breaker list --json", cli(t, env, "breaker", "list", "--json"), []string{`"last_error": "` + shownReason}},
		{"rebound breaker show", cli(t, env, "breaker", "show", "echo.example.com"), []string{"last error:      " + shownReason}},
		{"GET /api/admin/dlq", api(t, addr, "/api/admin/dlq"),
			[]string{`"access_key": "[REDACTED]"`, `"X-Signature": "[REDACTED]"`, `"Idempotency-Key": "idem-42"`, `"failure_reason": "` + shownReason + `"`}},
		{"GET /api/admin/dlq/{id}", api(t, addr, "/api/admin/dlq/"+idArg),
			[]string{`"access_key": "[REDACTED]"`, `"X-Signature": "[REDACTED]"`, `"failure_reason": "` + shownReason + `"`}},
		{"GET /api/admin/dlq/stats", api(t, addr, "/api/admin/dlq/stats"), []string{`"` + shownReason + `"`}},
		{"GET /api/admin/breakers", api(t, addr, "/api/admin/breakers"), []string{`"last_error": "` + shownReason}},
		{"GET /api/admin/breakers/{key}", api(t, addr, "/api/admin/breakers/echo.example.com"), []string{`"last_error": "` + shownReason}},
	}
	for _, d := range displays {
		out := d.get()
		for _, want := range d.want {
			require.Contains(t, out, want, d.name)
		}
		for _, secret := range []string{secretAccessKey, secretSignature, secretSession} {
			require.NotContains(t, out, secret, d.name)
		}
	}

	cancel()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the pod did not stop")
	}
	// The pod's log: River's "Job errored" line carries the error, redacted.
	out := logs.String()
	require.Contains(t, out, `"error":"`+shownReason+`"`)
	for _, secret := range []string{secretAccessKey, secretSignature, secretSession} {
		require.NotContains(t, out, secret, "pod log")
	}
}

// cli runs the real rebound binary and returns its stdout.
func cli(t *testing.T, env []string, args ...string) func() string {
	return func() string {
		t.Helper()
		res := proctest.Run(t, env, "rebound", args...)
		require.Equal(t, 0, res.ExitCode, "%v: %s", args, res.Stderr)
		return res.Stdout
	}
}

// api GETs path from the pod's admin API and returns the body.
func api(t *testing.T, addr, path string) func() string {
	return func() string {
		t.Helper()
		resp, err := http.Get("http://" + addr + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", path, body)
		return string(body)
	}
}
