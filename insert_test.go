package rebound_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// reportArgs has no operation key of its own, and asks for 3 attempts.
type reportArgs struct {
	Account string `json:"account"`
	Note    string `json:"note,omitempty"`
}

func (reportArgs) Kind() string { return "test_report" }

func (reportArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 3} }

type reportWorker struct {
	river.WorkerDefaults[reportArgs]
}

func (reportWorker) Work(context.Context, *river.Job[reportArgs]) error { return nil }

// auditArgs has neither a key nor insert options.
type auditArgs struct{}

func (auditArgs) Kind() string { return "test_audit" }

type auditWorker struct {
	river.WorkerDefaults[auditArgs]
}

func (auditWorker) Work(context.Context, *river.Job[auditArgs]) error { return nil }

// insertPod is a pod (not started: inserting needs no running client) for
// quote, report and audit jobs: reports take their key from
// KindConfig.OperationKey and a policy of 4 attempts; audits fall back to
// DefaultOperationKey.
func insertPod(t *testing.T, defaultKey rebound.OperationKeyFunc) (*rebound.Pod, *dbtest.Database) {
	t.Helper()
	db := dbtest.New(t)
	workers := river.NewWorkers()
	river.AddWorker(workers, &quoteWorker{})
	river.AddWorker(workers, &reportWorker{})
	river.AddWorker(workers, &auditWorker{})
	pod, err := rebound.New(rebound.Config{
		Pool:    db.Pool,
		Workers: workers,
		Kinds: map[string]rebound.KindConfig{
			"test_quote": {RetryPolicy: retrypolicy.Policy{MaxAttempts: 7}},
			"test_report": {
				RetryPolicy: retrypolicy.Policy{MaxAttempts: 4},
				OperationKey: func(kind string, args []byte) string {
					var a reportArgs
					_ = json.Unmarshal(args, &a)
					return "reports:" + a.Account
				},
			},
		},
		DefaultOperationKey: defaultKey,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pod.Stop(context.Background()) })
	return pod, db
}

// Every insert through a pod follows rebound's rules: the operation key
// stamped into the metadata (args' OperationKey, else the kind's function,
// else the default, else the kind), max attempts from the kind's policy and
// never above it.
func TestInsertRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		defaultKey      rebound.OperationKeyFunc
		args            river.JobArgs
		opts            *river.InsertOpts
		wantKey         string
		wantMaxAttempts int
	}{
		{name: "the args name their key; the kind's policy gives the attempts",
			args: quoteArgs{Vendor: "acme"}, wantKey: "quotes:acme", wantMaxAttempts: 7},
		{name: "the kind's key function; the args' own insert options",
			args: reportArgs{Account: "a-1"}, wantKey: "reports:a-1", wantMaxAttempts: 3},
		{name: "fewer attempts asked: kept",
			args: quoteArgs{Vendor: "acme"}, opts: &river.InsertOpts{MaxAttempts: 2}, wantKey: "quotes:acme", wantMaxAttempts: 2},
		{name: "more attempts asked than the policy's: lowered to its ceiling",
			args: reportArgs{Account: "a-1"}, opts: &river.InsertOpts{MaxAttempts: 50}, wantKey: "reports:a-1", wantMaxAttempts: 4},
		{name: "a key in the metadata is kept",
			args: quoteArgs{Vendor: "acme"}, opts: &river.InsertOpts{Metadata: []byte(`{"operation_key": "stamped"}`)}, wantKey: "stamped", wantMaxAttempts: 7},
		{name: "no key anywhere: the kind; no policy of its own: the pod's (5)",
			args: auditArgs{}, wantKey: "test_audit", wantMaxAttempts: retrypolicy.DefaultMaxAttempts},
		{name: "the default key function",
			defaultKey: func(kind string, _ []byte) string { return "tenant-7:" + kind },
			args:       auditArgs{}, wantKey: "tenant-7:test_audit", wantMaxAttempts: 5},
		{name: "a long key is normalised",
			args: quoteArgs{Vendor: strings.Repeat("v", 300)}, wantKey: jobs.NormalizeOperationKey("quotes:" + strings.Repeat("v", 300)), wantMaxAttempts: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod, _ := insertPod(t, tt.defaultKey)
			res, err := pod.Insert(context.Background(), tt.args, tt.opts)
			require.NoError(t, err)
			var meta struct {
				Key string `json:"operation_key"`
			}
			require.NoError(t, json.Unmarshal(res.Job.Metadata, &meta))
			require.Equal(t, tt.wantKey, meta.Key)
			require.Equal(t, tt.wantMaxAttempts, res.Job.MaxAttempts)
		})
	}
}

// What PostgreSQL cannot store, or a key no breaker can hold, is refused
// with an error naming the field (wrapping jobs.ErrInvalidArgs when it is in
// the args), and nothing is inserted.
func TestInsertRefusesUnstorableJobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     river.JobArgs
		opts     *river.InsertOpts
		wantArgs bool // the error wraps jobs.ErrInvalidArgs
		wantErr  string
	}{
		{name: "NUL in the args", args: reportArgs{Account: "a-1", Note: "x\x00y"}, wantArgs: true,
			wantErr: `insert test_report job: invalid args: args.note: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{name: "invalid UTF-8 in the args", args: reportArgs{Account: "a-\xff"}, wantArgs: true,
			wantErr: `insert test_report job: invalid args: args.account: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{name: "NUL in the metadata", args: auditArgs{}, opts: &river.InsertOpts{Metadata: []byte(`{"note": "a\u0000"}`)},
			wantErr: `insert test_audit job: invalid metadata: metadata.note: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{name: "a key with a control character", args: quoteArgs{Vendor: "a\nb"}, wantArgs: true,
			wantErr: `insert test_quote job: invalid args: invalid operation key "quotes:a\nb": control character U+000A at byte 8`},
		{name: "a blank key in the metadata", args: auditArgs{}, opts: &river.InsertOpts{Metadata: []byte(`{"operation_key": " "}`)},
			wantErr: `insert test_audit job: invalid metadata: operation_key: invalid operation key " ": blank (white space only)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pod, db := insertPod(t, nil)
			_, err := pod.Insert(context.Background(), tt.args, tt.opts)
			require.EqualError(t, err, tt.wantErr)
			require.Equal(t, tt.wantArgs, errors.Is(err, jobs.ErrInvalidArgs))
			var n int
			require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
			require.Equal(t, 0, n)
		})
	}
	// Text that only looks like the escape is stored.
	pod, _ := insertPod(t, nil)
	res, err := pod.Insert(context.Background(), reportArgs{Account: `\u0000`}, nil)
	require.NoError(t, err)
	require.JSONEq(t, `{"account": "\\u0000"}`, string(res.Job.EncodedArgs))
}

// InsertTx joins the caller's transaction: the job exists exactly when the
// caller's own rows do.
func TestInsertTxFollowsTheCallersTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pod, db := insertPod(t, nil)
	_, err := db.Pool.Exec(ctx, "CREATE TABLE invoice (id bigint PRIMARY KEY)")
	require.NoError(t, err)
	for _, commit := range []bool{false, true} {
		err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "INSERT INTO invoice VALUES (1)"); err != nil {
				return err
			}
			if _, err := pod.InsertTx(ctx, tx, reportArgs{Account: "a-1"}, nil); err != nil {
				return err
			}
			if !commit {
				return errRollback
			}
			return nil
		})
		if !commit {
			require.ErrorIs(t, err, errRollback)
		} else {
			require.NoError(t, err)
		}
		var invoices, jobsN int
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM invoice), (SELECT count(*) FROM river_job)").Scan(&invoices, &jobsN))
		want := 0
		if commit {
			want = 1
		}
		require.Equal(t, want, invoices)
		require.Equal(t, want, jobsN, "commit=%v", commit)
	}
}

var errRollback = errors.New("roll back")
