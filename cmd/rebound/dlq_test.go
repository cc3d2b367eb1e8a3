package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/dbtest"
)

// buildRebound builds this command once per test into a temp dir.
func buildRebound(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "rebound")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "build rebound: %s", out)
	return bin
}

func runRebound(bin, dbURL string, args ...string) (stdout, stderr string, code int) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(cmd.Environ(), "DATABASE_URL="+dbURL)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// Two `rebound dlq retry --all` processes over the same 50 entries create
// 50 jobs.
func TestDLQRetryAllTwoProcesses(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason, operation_key)
		SELECT g, 1, 3, 'cli_kind', 'default', 1, 'discarded',
		       jsonb_build_object('n', g, 'headers', jsonb_build_object('Authorization', 'Bearer tkn')), 'server_error', 'HTTP 503', 'op'
		FROM generate_series(1, 50) g`)
	require.NoError(t, err)

	type result struct {
		Retried []json.RawMessage `json:"retried"`
	}
	outs := make([]string, 2)
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() {
			outs[i], _, codes[i] = runRebound(bin, db.URL, "dlq", "retry", "--all", "--kind", "cli_kind", "--json")
		})
	}
	wg.Wait()
	total := 0
	for i := range 2 {
		require.Equal(t, 0, codes[i], outs[i])
		var r result
		require.NoError(t, json.Unmarshal([]byte(outs[i]), &r), outs[i])
		total += len(r.Retried)
	}
	require.Equal(t, 50, total)
	var jobs, distinct int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job").Scan(&jobs))
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(DISTINCT retried_job_id) FROM job_dead_letter_queue").Scan(&distinct))
	require.Equal(t, 50, jobs)
	require.Equal(t, 50, distinct)

	var id int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT min(id) FROM job_dead_letter_queue").Scan(&id))
	idArg := jsonNumber(id)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"retried again without force", []string{"dlq", "retry", idArg}, 1, "use --force to retry it again"},
		{"no target", []string{"dlq", "retry"}, 1, "nothing to retry: give an entry ID, or --all"},
		{"id and all", []string{"dlq", "retry", idArg, "--all"}, 1, "not both"},
		{"bad id", []string{"dlq", "show", "x1"}, 1, `invalid entry ID "x1"`},
		{"resolve without note", []string{"dlq", "resolve", idArg}, 1, "--note is required"},
		{"resolve dry run with a blank note", []string{"dlq", "resolve", "--all", "--note", "  ", "--dry-run"}, 1, "--note is required"},
		{"purge without age", []string{"dlq", "purge"}, 1, "--older-than is required"},
		{"bad status", []string{"dlq", "list", "--status", "open"}, 1, `invalid --status "open"`},
		{"bad since", []string{"dlq", "list", "--since", "last week"}, 1, "invalid --since"},
		{"bad class on list", []string{"dlq", "list", "--class", "bogus"}, 1, `invalid --class "bogus": want one of ` + allClasses},
		{"bad class on stats", []string{"dlq", "stats", "--class", "server_error,bogus"}, 1, `invalid --class "bogus": want one of ` + allClasses},
		{"bad class on retry", []string{"dlq", "retry", "--all", "--class", "bogus"}, 1, `invalid --class "bogus": want one of ` + allClasses},
		{"bad class on resolve", []string{"dlq", "resolve", "--all", "--class", "bogus", "--note", "x", "--status", "retried"}, 1, `invalid --class "bogus": want one of ` + allClasses},
		// Filters PostgreSQL cannot compare are refused before any query.
		{"invalid UTF-8 in a kind on list", []string{"dlq", "list", "--kind", "a\xffb"}, 1, `invalid --kind "a\xffb": contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"invalid UTF-8 in a kind on stats", []string{"dlq", "stats", "--kind", "a\xff"}, 1, `invalid --kind "a\xff": contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"invalid UTF-8 in a kind on a retry dry run", []string{"dlq", "retry", "--all", "--kind", "a\xff", "--dry-run"}, 1, `invalid --kind "a\xff": contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"invalid UTF-8 in an operation key on a resolve dry run", []string{"dlq", "resolve", "--all", "--operation-key", "\xff", "--note", "x", "--dry-run"}, 1, `invalid --operation-key "\xff": contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runRebound(bin, db.URL, tt.args...)
			require.Equal(t, tt.wantCode, code)
			require.Contains(t, stderr, tt.wantErr)
			require.Equal(t, 1, bytes.Count([]byte(stderr), []byte("\n")), "one line: %q", stderr)
		})
	}
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM river_job").Scan(&jobs))
	require.Equal(t, 50, jobs, "bad input changed nothing")
	var resolved int
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'").Scan(&resolved))
	require.Equal(t, 0, resolved, "bad input changed nothing")

	// Displays redact; the table and JSON alike.
	for _, args := range [][]string{{"dlq", "show", idArg}, {"dlq", "show", idArg, "--json"}, {"dlq", "list", "--json"}, {"dlq", "list"}} {
		stdout, stderr, code := runRebound(bin, db.URL, args...)
		require.Equal(t, 0, code, stderr)
		require.NotContains(t, stdout, "Bearer tkn", args)
	}
	stdout, _, code := runRebound(bin, db.URL, "dlq", "show", idArg, "--json")
	require.Equal(t, 0, code)
	require.Contains(t, stdout, `"Authorization": "[REDACTED]"`)

	stdout, stderr, code := runRebound(bin, db.URL, "dlq", "stats")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "entries: 0 unresolved, 50 retried, 0 resolved")
}

// allClasses is how messages list the failure classes.
const allClasses = "rate_limited, server_error, timeout, network, decode, panic, lost, unknown_kind, unknown, bad_request, unauthorized, not_found, misconfigured, out_of_memory, breaker_open, cancelled"

func jsonNumber(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Error text (failure reason, every attempt's error, stats' reasons) is
// redacted in tables and JSON alike.
func TestDLQDisplaysRedactErrorText(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, history, failure_class, failure_reason, operation_key)
		VALUES (1, 2, 2, 'http_request', 'default', 1, 'cancelled', '{}',
		        '[{"attempt":1,"class":"server_error","error":"GET /?api_key=ESECRET3: 500"},{"attempt":2,"class":"bad_request","error":"Authorization: Bearer ESECRET4"}]',
		        'bad_request', 'HTTP 400: {"api_key": "ESECRET2", "auth": "Bearer ESECRET1"}', 'op')`)
	require.NoError(t, err)
	var id int64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT id FROM job_dead_letter_queue").Scan(&id))

	tests := [][]string{
		{"dlq", "list"}, {"dlq", "list", "--json"},
		{"dlq", "show", jsonNumber(id)}, {"dlq", "show", jsonNumber(id), "--json"},
		{"dlq", "stats"}, {"dlq", "stats", "--json"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := runRebound(bin, db.URL, args...)
			require.Equal(t, 0, code, stderr)
			for _, secret := range []string{"ESECRET1", "ESECRET2", "ESECRET3", "ESECRET4"} {
				require.NotContains(t, stdout, secret)
			}
			require.Contains(t, stdout, "[REDACTED]")
		})
	}
	var stored string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT failure_reason FROM job_dead_letter_queue").Scan(&stored))
	require.Equal(t, `HTTP 400: {"api_key": "ESECRET2", "auth": "Bearer ESECRET1"}`, stored)
}

// On a database that is not (fully) migrated every dlq command says to run
// `rebound migrate up`, in one line, exit 1.
func TestDLQOnUnmigratedDatabase(t *testing.T) {
	t.Parallel()
	bin := buildRebound(t)
	ctx := context.Background()
	empty := dbtest.New(t)
	_, err := empty.Pool.Exec(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	behind := dbtest.New(t)
	_, err = behind.Pool.Exec(ctx, "DELETE FROM rebound_migration WHERE version = 5")
	require.NoError(t, err)

	commands := [][]string{
		{"dlq", "list"}, {"dlq", "stats", "--json"}, {"dlq", "show", "1"},
		{"dlq", "retry", "--all"}, {"dlq", "resolve", "--all", "--note", "x"}, {"dlq", "purge", "--older-than", "30d"},
		{"breaker", "list"}, {"breaker", "show", "k"}, {"breaker", "reset", "k"}, {"breaker", "open", "k", "--for", "1m"},
	}
	for _, db := range []struct {
		name, url, want string
	}{
		{"empty", empty.URL, "rebound: database migrations are behind: "},
		{"one behind", behind.URL, "rebound: database migrations are behind: 1 migration pending (rebound 005_dead_letter_fixes); run `rebound migrate up`\n"},
	} {
		for _, args := range commands {
			t.Run(db.name+" "+strings.Join(args, " "), func(t *testing.T) {
				stdout, stderr, code := runRebound(bin, db.url, args...)
				require.Equal(t, 1, code)
				require.Empty(t, stdout)
				require.True(t, strings.HasPrefix(stderr, db.want), stderr)
				require.True(t, strings.HasSuffix(stderr, "; run `rebound migrate up`\n"), stderr)
				require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
			})
		}
	}
}

// A typo'd or missing subcommand fails (exit 1) instead of printing help
// and exiting 0.
func TestDLQSubcommandRequired(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)

	out, errOut, code := runRebound(bin, db.URL, "dlq", "bogus")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, "rebound: unknown command \"bogus\" for \"rebound dlq\" (run \"rebound dlq --help\")\n", errOut)

	out, errOut, code = runRebound(bin, db.URL, "dlq")
	require.Equal(t, 1, code)
	require.Contains(t, out, "Usage:\n  rebound dlq [flags]\n  rebound dlq [command]\n", "help on stdout")
	require.Equal(t, "rebound: missing command: rebound dlq needs one of its subcommands\n", errOut)

	out, errOut, code = runRebound(bin, db.URL, "dlq", "--help")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "Available Commands:")
}

// --note and --by follow the one rule of free text (breaker.MaxTextBytes,
// valid UTF-8, no control characters in --by), naming the flag; a refused
// command changes nothing, and a note at the cap is kept whole.
func TestDLQFreeTextRules(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	var id int64
	require.NoError(t, db.Pool.QueryRow(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason, operation_key)
		VALUES (1, 1, 1, 'cli_kind', 'default', 1, 'discarded', '{}', 'server_error', 'HTTP 503', 'op') RETURNING id`).Scan(&id))
	idArg := jsonNumber(id)

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"a note of 100 KB", []string{"dlq", "resolve", idArg, "--note", strings.Repeat("n", 100<<10)}, "rebound: --note: 102400 bytes, longer than 1024\n"},
		{"a bulk note over the cap", []string{"dlq", "resolve", "--all", "--note", strings.Repeat("n", breaker.MaxTextBytes+1)}, "rebound: --note: 1025 bytes, longer than 1024\n"},
		{"a note in invalid UTF-8", []string{"dlq", "resolve", idArg, "--note", "caf\xe9 ok"}, "rebound: --note: not valid UTF-8 (at byte 3)\n"},
		{"resolved by someone with a newline", []string{"dlq", "resolve", idArg, "--note", "x", "--by", "a\nb"}, "rebound: --by \"a\\nb\": control character U+000A at byte 1\n"},
		{"retried by someone in invalid UTF-8", []string{"dlq", "retry", idArg, "--by", "\xff"}, "rebound: --by \"\\xff\": not valid UTF-8 (at byte 0)\n"},
		{"bulk retried by someone over the cap", []string{"dlq", "retry", "--all", "--by", strings.Repeat("b", breaker.MaxTextBytes+1)}, "(1025 bytes): longer than 1024 bytes\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runRebound(bin, db.URL, tt.args...)
			require.Equal(t, 1, code, stderr)
			require.Empty(t, stdout)
			require.True(t, strings.HasSuffix(stderr, tt.wantErr), stderr)
			require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
		})
	}
	var status string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT status FROM job_dead_letter_queue WHERE id = $1", id).Scan(&status))
	require.Equal(t, "unresolved", status, "refused commands changed nothing")

	note := strings.Repeat("é", breaker.MaxTextBytes/2)
	_, stderr, code := runRebound(bin, db.URL, "dlq", "resolve", idArg, "--note", note, "--by", "dana")
	require.Equal(t, 0, code, stderr)
	var stored, by string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT resolution_note, resolved_by FROM job_dead_letter_queue WHERE id = $1", id).Scan(&stored, &by))
	require.Equal(t, note, stored)
	require.Equal(t, "dana", by)
}

// Replaying an entry whose kind is not one of rebound's own warns on stderr
// (one line per kind, naming its entries) and still retries it: the stock
// worker does not run that kind. rebound's own kinds replay silently.
func TestDLQRetryWarnsOnKindsReboundDoesNotRun(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason, operation_key)
		SELECT g, 1, 3, k, 'default', 1, 'discarded', '{}', 'unknown_kind', 'job kind is not registered', 'op'
		  FROM unnest(ARRAY[1, 2, 3, 4]::bigint[], ARRAY['h3job', 'http_request', 'h3job', 'rebound_notify']) AS x(g, k)`)
	require.NoError(t, err)
	const warn = "warning: kind h3job (entry %s) is not one of rebound's own kinds (http_request, synthetic, weekly_intelligence): " +
		"the stock worker does not run it; only a pod that registers h3job will, and pods without it retry it as unknown_kind for up to 24h, then dead-letter it again\n"
	id := func(n int64) string {
		var id int64
		require.NoError(t, db.Pool.QueryRow(ctx, "SELECT id FROM job_dead_letter_queue WHERE river_job_id = $1", n+1).Scan(&id))
		return jsonNumber(id)
	}
	tests := []struct {
		name       string
		args       []string
		wantStderr string
	}{
		{"one foreign entry", []string{"dlq", "retry", id(0)}, strings.Replace(warn, "%s", id(0), 1)},
		{"one own entry", []string{"dlq", "retry", id(1)}, ""},
		{"an internal kind", []string{"dlq", "retry", id(3)}, ""},
		{"all, dry run", []string{"dlq", "retry", "--all", "--force", "--dry-run"}, strings.Replace(warn, "%s", id(0)+", "+id(2), 1)},
		{"dry run of one", []string{"dlq", "retry", id(2), "--dry-run"}, strings.Replace(warn, "%s", id(2), 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runRebound(bin, db.URL, tt.args...)
			require.Equal(t, 0, code, stderr)
			require.Equal(t, tt.wantStderr, stderr)
			require.Contains(t, stdout, "retr")
		})
	}
}
