package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// `rebound dlq stats` groups reasons that differ only in an ID (it printed
// one line per entry), shows the top N with how many were left out, and a
// fingerprint ID selects a group for list, retry --all and resolve --all.
func TestDLQStatsTopAndFingerprint(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	bin := buildRebound(t)
	ctx := context.Background()
	_, err := db.Pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, failure_class, failure_reason, dead_lettered_at)
		SELECT g, 1, 3, 'http_request', 'default', 1, 'discarded', '{}',
		       CASE WHEN g <= 200 THEN 'server_error' WHEN g <= 230 THEN 'network' ELSE 'unknown' END,
		       CASE WHEN g <= 200 THEN 'HTTP 503 from upstream ' || (10000 + g)
		            WHEN g <= 230 THEN 'dial tcp 10.0.' || g || '.1:443: connect: connection refused'
		            ELSE 'failure ' || chr(64 + g - 230) END,
		       timestamptz '2026-11-30 08:00:00Z' + g * interval '1 second'
		FROM generate_series(1, 233) g`)
	require.NoError(t, err)

	stdout, stderr, code := runRebound(bin, db.URL, "dlq", "stats", "--top", "2")
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 11, stdout)
	require.Equal(t, "entries: 233 unresolved, 0 retried, 0 resolved", lines[0])
	require.True(t, strings.HasPrefix(lines[1], "oldest unresolved: "), lines[1])
	require.Equal(t, "by class: server_error 200, network 30, unknown 3", lines[2])
	require.Equal(t, "by kind: http_request 233", lines[3])
	require.Regexp(t, `^COUNT +KIND +CLASS +FINGERPRINT +LATEST +REASON$`, lines[4])
	require.Regexp(t, `^200 +http_request +server_error +[0-9a-f]{12} +2026-11-30 \d\d:03 +HTTP 503 from upstream <n>$`, lines[5])
	require.Regexp(t, `^ +e\.g\. entry \d+: HTTP 503 from upstream 10200$`, lines[6])
	require.Regexp(t, `^30 +http_request +network +[0-9a-f]{12} +2026-11-30 \d\d:03 +dial tcp <ip>:<n>: connect: connection refused$`, lines[7])
	require.Regexp(t, `^ +e\.g\. entry \d+: dial tcp 10\.0\.230\.1:443: connect: connection refused$`, lines[8])
	require.Equal(t, "and 3 more groups (3 entries): --top N shows up to 1000", lines[9])
	require.Equal(t, "select a group: --fingerprint ID with list, retry --all or resolve --all", lines[10])

	stdout, stderr, code = runRebound(bin, db.URL, "dlq", "stats", "--json")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"fingerprint": "HTTP 503 from upstream <n>"`, "placeholders as they are, not \\u003cn\\u003e")
	var st struct {
		Groups []struct {
			FingerprintID string `json:"fingerprint_id"`
			Fingerprint   string `json:"fingerprint"`
			Count         int    `json:"count"`
			ExampleReason string `json:"example_reason"`
		} `json:"groups"`
		TotalGroups int            `json:"total_groups"`
		MoreGroups  int            `json:"more_groups"`
		ByClass     map[string]int `json:"by_class"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &st))
	require.Len(t, st.Groups, 5)
	require.Equal(t, 5, st.TotalGroups)
	require.Zero(t, st.MoreGroups)
	require.Equal(t, map[string]int{"server_error": 200, "network": 30, "unknown": 3}, st.ByClass)
	require.Equal(t, "failure A", st.Groups[2].Fingerprint)
	http503, dial := st.Groups[0].FingerprintID, st.Groups[1].FingerprintID

	stdout, stderr, code = runRebound(bin, db.URL, "dlq", "list", "--fingerprint", dial, "--json", "--limit", "1000")
	require.Equal(t, 0, code, stderr)
	var list struct {
		Entries []struct {
			FailureFingerprint   string `json:"failure_fingerprint"`
			FailureFingerprintID string `json:"failure_fingerprint_id"`
		} `json:"entries"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &list))
	require.Len(t, list.Entries, 30)
	require.Equal(t, "dial tcp <ip>:<n>: connect: connection refused", list.Entries[0].FailureFingerprint)
	require.Equal(t, dial, list.Entries[0].FailureFingerprintID)

	// A reason (commas and all: --fingerprint does not split) selects its group.
	stdout, stderr, code = runRebound(bin, db.URL, "dlq", "retry", "--all", "--dry-run",
		"--fingerprint", "dial tcp 10.9.9.9:80: connect: connection refused", "--fingerprint", "failure B, C")
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.HasSuffix(stdout, "would retry (dry run) 30 entries\n"), stdout)

	stdout, stderr, code = runRebound(bin, db.URL, "dlq", "resolve", "--all", "--fingerprint", http503, "--note", "upstream fixed")
	require.Equal(t, 0, code, stderr)
	require.True(t, strings.HasPrefix(stdout, "resolved 200 entries: "), stdout)
	require.Equal(t, 200, count(t, db, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved' AND failure_reason LIKE 'HTTP 503 from upstream %'"))
	require.Equal(t, 200, count(t, db, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'"))

	stdout, stderr, code = runRebound(bin, db.URL, "dlq", "show", "231")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "  fingerprint:    failure A (")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "stats", "--top", "0"}, "rebound: invalid --top 0: want 1 to 1000\n"},
		{[]string{"dlq", "stats", "--top", "1001"}, "rebound: invalid --top 1001: want 1 to 1000\n"},
		{[]string{"dlq", "list", "--fingerprint", ""}, "rebound: invalid --fingerprint \"\": empty: give an ID from `rebound dlq stats`, or a fingerprint or reason text\n"},
		{[]string{"dlq", "resolve", "--all", "--fingerprint", "\xff", "--note", "x"}, "rebound: invalid --fingerprint \"\\xff\": not valid UTF-8\n"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			stdout, stderr, code := runRebound(bin, db.URL, tt.args...)
			require.Equal(t, 1, code)
			require.Empty(t, stdout)
			require.Equal(t, tt.want, stderr)
		})
	}
	require.Equal(t, 200, count(t, db, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'resolved'"), "refused commands change nothing")
}

func count(t *testing.T, db *dbtest.Database, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}
