package worker

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// After a stop the pod says whether results it owes are saved: a job it
// worked that is still marked running (the completer gave up while the
// database was down) is reported, as is a database it cannot reach.
func TestReportUnsaved(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // stops the River UI's background services New starts
	db := dbtest.New(t)
	w, err := New(ctx, Config{Pool: db.Pool, Queues: map[string]int{"default": 1}, ID: "pod-a", HTTPAddr: "127.0.0.1:0"})
	require.NoError(t, err)

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
