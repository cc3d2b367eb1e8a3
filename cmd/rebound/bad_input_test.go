package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// sqlLooking are texts that look like SQL: stored verbatim, never executed.
var sqlLooking = []string{`'); DROP TABLE river_job; --`, `' OR 1=1 --`, `"; DELETE FROM circuit_breaker_state; --`}

// seedBadInput fills db with one row for each command to act on: dead-letter
// entry 1, breaker "api.example.com" (closed) and batch 1.
func seedBadInput(t *testing.T, db *dbtest.Database) {
	t.Helper()
	_, err := db.Pool.Exec(context.Background(), `
		INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, metadata, errors, history, failure_class, failure_reason, operation_key)
		VALUES (77, 1, 1, 'http_request', 'default', 1, 'cancelled', '{"url": "http://127.0.0.1:9/a"}', '{}', '[]', '[]', 'unauthorized', 'HTTP 401', 'api.example.com');
		INSERT INTO circuit_breaker_state (breaker_key) VALUES ('api.example.com')`)
	require.NoError(t, err)
	res := proctest.RunStdin(t, []string{"DATABASE_URL=" + db.URL}, `{"url": "http://127.0.0.1:9/a"}`+"\n",
		"enqueue", "batch", "--kind", "http_request", "--name", "seed", "--file", "-", "--queue", "parked")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
}

// Every rebound command given bad input: exit code 1, one line on stderr
// that starts with "rebound: " and names the problem, nothing on stdout, and
// every table as it was (row counts of every table before and after each
// command).
func TestBadInputReboundCommands(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	seedBadInput(t, db)
	badConfig := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(badConfig, []byte("alerts:\n  channels:\n    ops: {type: webhook, url: \"http://x\"\n"), 0o600))
	long := strings.Repeat("x", 2000)

	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown command", []string{"nope"}, `unknown command "nope" for "rebound"`},
		{"unknown subcommand", []string{"dlq", "nope"}, `unknown command "nope" for "rebound dlq"`},
		{"unknown flag", []string{"dlq", "list", "--nope"}, "unknown flag: --nope"},
		{"json not a bool", []string{"--json=maybe", "dlq", "list"}, `invalid --json "maybe": want true or false`},
		{"dlq show no ID", []string{"dlq", "show"}, "want an entry ID, got 0 arguments"},
		{"dlq show two IDs", []string{"dlq", "show", "1", "2"}, "want an entry ID, got 2 arguments"},
		{"dlq show ID not a number", []string{"dlq", "show", "abc"}, `invalid entry ID "abc": want a positive integer`},
		{"dlq show ID zero", []string{"dlq", "show", "0"}, `invalid entry ID "0": want a positive integer`},
		{"dlq show ID past int64", []string{"dlq", "show", "99999999999999999999"}, `invalid entry ID "99999999999999999999"`},
		{"dlq show ID SQL-looking", []string{"dlq", "show", sqlLooking[1]}, `invalid entry ID "' OR 1=1 --"`},
		{"dlq list limit zero", []string{"dlq", "list", "--limit", "0"}, "invalid --limit 0: want 1 to 1000"},
		{"dlq list limit absurd", []string{"dlq", "list", "--limit", "99999999999"}, "invalid --limit 99999999999: want 1 to 1000"},
		{"dlq list since negative", []string{"dlq", "list", "--since", "-5h"}, `invalid --since: "-5h" is neither an RFC 3339 time nor an age`},
		{"dlq list since absurd", []string{"dlq", "list", "--since", "99999999999d"}, `invalid --since: "99999999999d"`},
		{"dlq list kind invalid UTF-8", []string{"dlq", "list", "--kind", "\xff"}, `invalid --kind "\xff": contains invalid UTF-8`},
		{"dlq list status unknown", []string{"dlq", "list", "--status", "open"}, `invalid --status "open"`},
		{"dlq list class unknown", []string{"dlq", "list", "--class", "nope"}, `invalid --class "nope"`},
		{"dlq list cursor SQL-looking", []string{"dlq", "list", "--after", sqlLooking[0]}, `invalid --after "'); DROP TABLE river_job; --": want the cursor the previous page printed`},
		{"dlq retry nothing", []string{"dlq", "retry"}, "nothing to retry"},
		{"dlq retry ID and all", []string{"dlq", "retry", "1", "--all"}, "give an entry ID or --all, not both"},
		{"dlq retry by with a newline", []string{"dlq", "retry", "1", "--by", "a\nb"}, `--by "a\nb": control character U+000A`},
		{"dlq retry by invalid UTF-8", []string{"dlq", "retry", "--all", "--by", "\xfe"}, `--by "\xfe": not valid UTF-8`},
		{"dlq retry until not a time", []string{"dlq", "retry", "--all", "--until", "tomorrow"}, `invalid --until: "tomorrow"`},
		{"dlq resolve without note", []string{"dlq", "resolve", "1"}, "--note is required"},
		{"dlq resolve note over the cap", []string{"dlq", "resolve", "1", "--note", long}, "--note: 2000 bytes, longer than 1024"},
		{"dlq resolve note invalid UTF-8", []string{"dlq", "resolve", "--all", "--note", "caf\xe9"}, "--note: not valid UTF-8"},
		{"dlq purge without age", []string{"dlq", "purge"}, "--older-than is required"},
		{"dlq purge negative age", []string{"dlq", "purge", "--older-than", "-1d"}, `invalid --older-than: age "-1d": want a positive duration`},
		{"dlq purge zero age", []string{"dlq", "purge", "--older-than", "0s"}, `invalid --older-than: age "0s"`},
		{"dlq purge absurd age", []string{"dlq", "purge", "--older-than", "99999999999d"}, `invalid --older-than: age "99999999999d" is too large`},
		{"dlq purge age SQL-looking", []string{"dlq", "purge", "--older-than", sqlLooking[1]}, `invalid --older-than: age "' OR 1=1 --"`},
		{"dlq stats top zero", []string{"dlq", "stats", "--top", "0"}, "invalid --top 0: want 1 to 1000"},
		{"dlq stats top negative", []string{"dlq", "stats", "--top", "-1"}, "invalid --top -1: want 1 to 1000"},
		{"dlq stats fingerprint invalid UTF-8", []string{"dlq", "stats", "--fingerprint", "\xff"}, `invalid --fingerprint "\xff": not valid UTF-8`},
		{"breaker show no key", []string{"breaker", "show"}, "missing KEY"},
		{"breaker show empty key", []string{"breaker", "show", ""}, `invalid operation key "": empty`},
		{"breaker show key invalid UTF-8", []string{"breaker", "show", "\xff"}, `invalid operation key "\xff": not valid UTF-8`},
		{"breaker show key too long", []string{"breaker", "show", strings.Repeat("k", 300)}, "(300 characters): longer than 255 characters"},
		{"breaker show key SQL-looking", []string{"breaker", "show", sqlLooking[0]}, `no circuit breaker state for key "'); DROP TABLE river_job; --"`},
		{"breaker open without for", []string{"breaker", "open", "api.example.com"}, "--for is required"},
		{"breaker open for negative", []string{"breaker", "open", "api.example.com", "--for", "-1m"}, "--for -1m0s: must be in (0s, 720h0m0s]"},
		{"breaker open for zero", []string{"breaker", "open", "api.example.com", "--for", "0s"}, "--for 0s: must be in (0s, 720h0m0s]"},
		{"breaker open for absurd", []string{"breaker", "open", "api.example.com", "--for", "99999h"}, "--for 99999h0m0s: must be in (0s, 720h0m0s]"},
		{"breaker open for past int64", []string{"breaker", "open", "api.example.com", "--for", "9999999999h"}, `invalid --for "9999999999h"`},
		{"breaker open reason invalid UTF-8", []string{"breaker", "open", "api.example.com", "--for", "1m", "--reason", "\xff"}, "--reason: not valid UTF-8"},
		{"breaker open by empty", []string{"breaker", "open", "api.example.com", "--for", "1m", "--by", ""}, "by (who opens) is empty"},
		{"breaker reset unknown key", []string{"breaker", "reset", "nope"}, `no circuit breaker state for key "nope"`},
		{"breaker reset reason over the cap", []string{"breaker", "reset", "api.example.com", "--reason", long}, "--reason: 2000 bytes, longer than 1024"},
		{"alerts set no name", []string{"alerts", "set"}, "missing NAME"},
		{"alerts set new without metric", []string{"alerts", "set", "x"}, `rule "x" does not exist: --metric, --threshold and --severity are required to create it`},
		{"alerts set threshold negative", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "-5", "--severity", "error"}, `invalid --threshold "-5": a number from 0 up`},
		{"alerts set threshold NaN", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "NaN", "--severity", "error"}, `invalid --threshold "NaN": a number from 0 up`},
		{"alerts set threshold infinite", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "Inf", "--severity", "error"}, `invalid --threshold "+Inf": a number from 0 up`},
		{"alerts set threshold past float64", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "1e400", "--severity", "error"}, `invalid --threshold "1e400"`},
		{"alerts set window negative", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error", "--window", "-1m"}, `invalid --window "-1m": whole seconds from 1m to 720h`},
		{"alerts set window absurd", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error", "--window", "99999h"}, `invalid --window "99999h": whole seconds from 1m to 720h`},
		{"alerts set cooldown negative", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error", "--cooldown", "-1s"}, `invalid --cooldown "-1s": whole seconds from 0 to 720h`},
		{"alerts set min jobs negative", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error", "--min-jobs", "-3"}, `invalid --min-jobs "-3": from 0 to 1000000000`},
		{"alerts set min jobs absurd", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error", "--min-jobs", "99999999999999"}, `invalid --min-jobs "99999999999999": from 0 to 1000000000`},
		{"alerts set metric unknown", []string{"alerts", "set", "x", "--metric", "nope", "--threshold", "5", "--severity", "error"}, `invalid --metric "nope": one of`},
		{"alerts set severity unknown", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "loud"}, `invalid --severity "loud": warning, error or critical`},
		{"alerts set name invalid UTF-8", []string{"alerts", "set", "a\xff", "--metric", "failure_rate", "--threshold", "5", "--severity", "error"}, "use lower-case letters, digits"},
		{"alerts set name SQL-looking", []string{"alerts", "set", sqlLooking[0], "--metric", "failure_rate", "--threshold", "5", "--severity", "error"}, "use lower-case letters, digits"},
		{"alerts set channel invalid UTF-8", []string{"alerts", "set", "x", "--metric", "failure_rate", "--threshold", "5", "--severity", "error", "--channels", "\xff"}, `channel "\xff"`},
		{"alerts enable unknown rule", []string{"alerts", "enable", "nope"}, `no alert rule "nope"`},
		{"alerts disable rule SQL-looking", []string{"alerts", "disable", sqlLooking[1]}, `no alert rule "' OR 1=1 --"`},
		{"alerts history limit zero", []string{"alerts", "history", "--limit", "0"}, "--limit 0: must be from 1 to 1000"},
		{"alerts history limit absurd", []string{"alerts", "history", "--limit", "5000"}, "--limit 5000: must be from 1 to 1000"},
		{"alerts test no channel", []string{"alerts", "test"}, "missing NAME"},
		{"alerts test without config", []string{"alerts", "test", "ops"}, "--config is required"},
		{"alerts test missing config", []string{"alerts", "test", "ops", "--config", "/nonexistent.yaml"}, "--config /nonexistent.yaml: no such file or directory"},
		{"alerts test truncated config", []string{"alerts", "test", "ops", "--config", badConfig}, "invalid YAML"},
		{"batch show ID not a number", []string{"batch", "show", "x"}, `invalid batch ID "x": want a positive integer`},
		{"batch show ID zero", []string{"batch", "show", "0"}, `invalid batch ID "0"`},
		{"batch show unknown", []string{"batch", "show", "999"}, "no batch 999"},
		{"batch list limit zero", []string{"batch", "list", "--limit", "0"}, "invalid --limit 0: must be from 1 to 1000"},
		{"batch list limit negative", []string{"batch", "list", "--limit", "-4"}, "invalid --limit -4"},
		{"health window zero", []string{"health", "--window", "0s"}, "--window 0s: must be between 1m and 720h"},
		{"health window negative", []string{"health", "--window", "-1m"}, "--window -1m0s"},
		{"health window absurd", []string{"health", "--window", "9999h"}, "--window 9999h0m0s"},
		{"bench jobs negative", []string{"bench", "--jobs", "-1"}, "--jobs must be between 1 and 10000000, got -1"},
		{"bench jobs absurd", []string{"bench", "--jobs", "99999999999999"}, "--jobs must be between 1 and 10000000"},
		{"bench rounds zero", []string{"bench", "--rounds", "0"}, "--rounds must be between 1 and 1000, got 0"},
		{"bench workers negative", []string{"bench", "--workers", "-1"}, "--workers must be between 1 and 10000, got -1"},
		{"bench pool size zero", []string{"bench", "--pool-size", "0"}, "--pool-size must be between 2 and 1000, got 0"},
		{"bench fetch cooldown negative", []string{"bench", "--fetch-cooldown", "-1s"}, "--fetch-cooldown must be at least 1ms"},
		{"migrate status extra argument", []string{"migrate", "status", "extra"}, `unknown command "extra" for "rebound migrate status"`},
		{"migrate up extra argument", []string{"migrate", "up", "extra"}, `unknown command "extra" for "rebound migrate up"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stderr := refused(t, db, tt.args...)
			require.True(t, strings.HasPrefix(stderr, "rebound: "), stderr)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			require.Contains(t, stderr, tt.wantErr)
		})
	}
}

// refused runs rebound with args against db and requires a refusal: exit
// code 1, nothing on stdout, every table of db as it was. It returns what
// rebound wrote on stderr.
func refused(t *testing.T, db *dbtest.Database, args ...string) string {
	t.Helper()
	before := db.RowCounts(t)
	res := proctest.Run(t, []string{"DATABASE_URL=" + db.URL}, "rebound", args...)
	require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
	require.Empty(t, res.Stdout)
	require.Equal(t, before, db.RowCounts(t), "a refused command changed a table")
	return res.Stderr
}

// Text that looks like SQL is data: a resolution note, who resolved, a
// breaker's reason are stored exactly as given, and every table still
// exists.
func TestSQLLookingTextStoredVerbatim(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	seedBadInput(t, db)
	tables := db.RowCounts(t)
	env := []string{"DATABASE_URL=" + db.URL}

	res := proctest.Run(t, env, "rebound", "dlq", "resolve", "1", "--note", sqlLooking[0], "--by", sqlLooking[1])
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	res = proctest.Run(t, env, "rebound", "breaker", "open", "api.example.com", "--for", "1m", "--reason", sqlLooking[2], "--by", sqlLooking[1])
	require.Equal(t, 0, res.ExitCode, res.Stderr)

	var note, by, reason, openedBy string
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT resolution_note, resolved_by FROM job_dead_letter_queue WHERE id = 1").Scan(&note, &by))
	require.Equal(t, sqlLooking[0], note)
	require.Equal(t, sqlLooking[1], by)
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT change_reason, changed_by FROM circuit_breaker_state WHERE breaker_key = 'api.example.com'").Scan(&reason, &openedBy))
	require.Contains(t, reason, sqlLooking[2])
	require.Equal(t, sqlLooking[1], openedBy)

	// Every table still exists; the rows acted on were updated, not added
	// or removed (the dead-letter counts tables follow the status change).
	after := db.RowCounts(t)
	require.Len(t, after, len(tables))
	for table, n := range tables {
		require.Contains(t, after, table)
		if !strings.HasPrefix(table, "public.job_dead_letter_queue_") {
			require.Equal(t, n, after[table], table)
		}
	}
}
