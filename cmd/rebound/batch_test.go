package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/batch"
	"github.com/rebound-queue/rebound/internal/dbtest"
)

type noteArgs struct {
	N int `json:"n"`
}

func (noteArgs) Kind() string { return "note" }

func TestBatchCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	bin := buildRebound(t)

	out, errOut, code := runRebound(bin, db.URL, "batch", "list")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, "no batches\n", out)

	client, err := river.NewClient[pgx.Tx](riverpgxv5.New(db.Pool), &river.Config{})
	require.NoError(t, err)
	p, err := batch.New(db.Pool, client, &batch.Config{BatchSize: 2})
	require.NoError(t, err)
	res, err := p.Enqueue(ctx, batch.Batch{Name: "notes", Kind: "note", Items: []river.JobArgs{noteArgs{1}, noteArgs{2}, noteArgs{3}, noteArgs{4}}})
	require.NoError(t, err)
	// Two jobs complete (one after a failed attempt), one is discarded after
	// two attempts whose history says server_error.
	_, err = db.Pool.Exec(ctx, `UPDATE river_job SET state = 'completed', finalized_at = now(),
		errors = CASE WHEN args->>'n' = '2' THEN ARRAY['{"attempt":1,"at":"2026-01-01T00:00:00Z","error":"boom"}'::jsonb] ELSE NULL END
		WHERE args->>'n' IN ('1', '2')`)
	require.NoError(t, err)
	_, err = db.Pool.Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now(), attempt = 2,
		errors = ARRAY['{"attempt":1,"at":"2026-01-01T00:00:00Z","error":"503"}'::jsonb, '{"attempt":2,"at":"2026-01-01T00:00:01Z","error":"503"}'::jsonb],
		metadata = metadata || '{"output": {"result": null, "attempts": [{"attempt": 1, "class": "server_error"}, {"attempt": 2, "class": "server_error"}]}}'
		WHERE args->>'n' = '3'`)
	require.NoError(t, err)
	var entry int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT id FROM job_dead_letter_queue").Scan(&entry))

	out, errOut, code = runRebound(bin, db.URL, "batch", "show", fmt.Sprint(res.ID))
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, fmt.Sprintf("batch %d \"notes\" (note)\n  status:        running\n  total:         4\n  succeeded:     2\n  failed:        1 (dead-lettered)\n  cancelled:     0\n  pending:       1\n  retried:       2 (needed more than one attempt, dead-letter replays included)\n  success rate:  66.7%%\n  failures:      server_error 1\n  dead letters:  %d (rebound dlq show ID)\n  sub-batches:   2 sub-batches of 2 jobs, 0s apart, from ", res.ID, entry))

	out, errOut, code = runRebound(bin, db.URL, "batch", "show", fmt.Sprint(res.ID), "--json")
	require.Equal(t, 0, code, errOut)
	var s batch.Summary
	require.NoError(t, json.Unmarshal([]byte(out), &s))
	require.Equal(t, int64(2), s.Succeeded)
	require.Equal(t, 66.7, *s.SuccessRate)
	require.Equal(t, []int64{entry}, s.DeadLetterIDs)
	require.Equal(t, map[string]int64{"server_error": 1}, s.FailuresByClass)

	out, errOut, code = runRebound(bin, db.URL, "batch", "list")
	require.Equal(t, 0, code, errOut)
	require.Regexp(t, fmt.Sprintf(`(?m)^ID\s+NAME\s+KIND\s+TOTAL\s+SUCCEEDED\s+FAILED\s+CANCELLED\s+PENDING\s+RETRIED\s+SUCCESS\s+CREATED\s+COMPLETED\n%d\s+notes\s+note\s+4\s+2\s+1\s+0\s+1\s+2\s+66\.7%%\s+\S+ \S+\s+-\n$`, res.ID), out)
	out, errOut, code = runRebound(bin, db.URL, "batch", "list", "--json", "--open")
	require.Equal(t, 0, code, errOut)
	var list []batch.Summary
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	require.Len(t, list, 1)
	require.Equal(t, res.ID, list[0].ID)

	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{[]string{"batch", "show", "abc"}, "rebound: invalid batch ID \"abc\": want a positive integer\n"},
		{[]string{"batch", "show", "0"}, "rebound: invalid batch ID \"0\": want a positive integer\n"},
		{[]string{"batch", "show"}, "rebound: want exactly one batch ID (see `rebound batch list`)\n"},
		{[]string{"batch", "show", "999999"}, "rebound: no batch 999999 (see `rebound batch list`)\n"},
		{[]string{"batch", "list", "--limit", "0"}, "rebound: invalid --limit 0: must be from 1 to 1000\n"},
	} {
		out, errOut, code := runRebound(bin, db.URL, tt.args...)
		require.Equal(t, 1, code, tt.args)
		require.Empty(t, out)
		require.Equal(t, tt.wantErr, errOut)
	}
}
