package rebound

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// After a stop the pod says whether results it owes are saved: a job it
// worked that is still marked running (the completer gave up while the
// database was down) is reported, as is a database it cannot reach.
func TestReportUnsaved(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	w, err := New(Config{Pool: db.Pool, Workers: river.NewWorkers(), Queues: map[string]river.QueueConfig{"default": {MaxWorkers: 1}}, ID: "pod-a"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Stop(ctx) })

	logs := func() string {
		var buf bytes.Buffer
		w.reportUnsaved(slog.New(slog.NewTextHandler(&buf, nil)), "every running job finished")
		return buf.String()
	}
	require.Contains(t, logs(), `level=INFO msg="worker stopped: every running job finished"`)

	_, err = db.Pool.Exec(ctx, `INSERT INTO river_job (kind, args, state, attempt, max_attempts, attempted_at, attempted_by, queue, priority)
		VALUES ('http_request', '{}', 'running', 1, 5, now(), '{pod-b,pod-a}', 'default', 1),
		       ('http_request', '{}', 'running', 1, 5, now(), '{pod-a,pod-b}', 'default', 1)`)
	require.NoError(t, err)
	out := logs()
	require.Contains(t, out, "level=WARN")
	require.Contains(t, out, "but the results of some could not be saved")
	require.True(t, strings.HasSuffix(strings.TrimSpace(out), "jobs_left_running=1"), out)

	db.Pool.Close()
	require.Contains(t, logs(), "whether their results were saved is unknown (database unreachable)")
}
