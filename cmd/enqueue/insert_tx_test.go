package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// A COMMIT the server refuses (a deferred constraint trigger) is named as
// the commit and inserts nothing, on the fast path, with --json and with
// enqueue batch (no job and no job_batch row).
func TestCommitRefusalIsNamed(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	refuseURL(t, db, "http://127.0.0.1:9/late", "refused at commit", true)
	file := writeFile(t, manyLines(fastPathLines, `{"url": "http://127.0.0.1:9/late"}`))
	tests := []struct {
		name string
		args []string
	}{
		{name: "fast path", args: []string{"http_request", "--file", file}},
		{name: "--json", args: []string{"http_request", "--file", file, "--json"}},
		{name: "batch", args: []string{"batch", "--kind", "http_request", "--name", "late", "--file", file}},
	}
	for _, tt := range tests {
		res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "enqueue", tt.args...)
		require.Equal(t, 1, res.ExitCode, "%s: %s", tt.name, res.Stderr)
		require.Equal(t, "enqueue: commit: ERROR: refused at commit (SQLSTATE P0001) (nothing inserted)\n", res.Stderr, tt.name)
		require.Empty(t, res.Stdout, tt.name)
		require.Equal(t, "jobs=0 batches=0", rowCounts(t, db), tt.name)
	}
}

// Whether a COMMIT lost on the way inserted anything is unknown, and the
// message says so; a COMMIT the server answered, or one never sent (pgx
// says it is safe to retry), inserted nothing.
func TestInsertFailedTellsAnUnknownCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "connection lost during the commit", err: &commitError{err: fmt.Errorf("unexpected EOF: %w", io.ErrUnexpectedEOF)},
			want: "commit: unexpected EOF: unexpected EOF (the connection failed during the commit, so whether the jobs were inserted is unknown: look in river_job before enqueueing them again)"},
		{name: "commit refused by the server", err: &commitError{err: &pgconn.PgError{Severity: "ERROR", Message: "refused", Code: "P0001"}},
			want: "commit: ERROR: refused (SQLSTATE P0001) (nothing inserted)"},
		{name: "context cancelled during the commit", err: &commitError{err: context.Canceled},
			want: "commit: context canceled (the connection failed during the commit, so whether the jobs were inserted is unknown: look in river_job before enqueueing them again)"},
		{name: "an insert before the commit", err: errors.New("insert lines 1-3: boom"),
			want: "insert lines 1-3: boom (nothing inserted)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, insertFailed(tt.err).Error())
		})
	}
}

// A COMMIT pgx never sent (its context was cancelled before) is a
// *commitError that inserted nothing, and is told so.
func TestCommitNeverSentInsertedNothing(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	err := insertTx(ctx, db.Pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state) VALUES ('{}', 'x', 1, 'default', 'available')`)
		cancel()
		return err
	})
	_, isCommit := errors.AsType[*commitError](err)
	require.True(t, isCommit, "%v", err)
	require.Equal(t, "commit: timeout: context already done: context canceled (nothing inserted)", insertFailed(err).Error())
	require.Equal(t, 0, jobCount(t, db))
}
