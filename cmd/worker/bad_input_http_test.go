package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

const badInputToken = "bad-input-token-0123456789"

// sqlLooking are texts that look like SQL: stored verbatim, never executed.
var sqlLooking = []string{`'); DROP TABLE river_job; --`, `' OR 1=1 --`, `"; DELETE FROM circuit_breaker_state; --`}

// badInputWorker starts a worker with an admin token on a database seeded
// with one row for each route to act on (dead-letter entry 1, breaker
// "api.example.com", closed, and batch 1 on a queue no pod works), with a
// phantom River leader holding the leadership for a day, so the worker runs
// no periodic job of its own (alert evaluations) and writes nothing while
// idle: a table that changes changed because of a request.
func badInputWorker(t *testing.T) (*dbtest.Database, string) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(ctx, `
		INSERT INTO river_leader (leader_id, elected_at, expires_at) VALUES ('phantom', now(), now() + interval '1 day');
		INSERT INTO job_dead_letter_queue (river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, metadata, errors, history, failure_class, failure_reason, operation_key)
		VALUES (77, 1, 1, 'http_request', 'default', 1, 'cancelled', '{"url": "http://127.0.0.1:9/a"}', '{}', '[]', '[]', 'unauthorized', 'HTTP 401', 'api.example.com')`)
	require.NoError(t, err)
	env := []string{"DATABASE_URL=" + db.URL}
	for _, args := range [][]string{
		{"breaker", "open", "api.example.com", "--for", "1h"},
		{"breaker", "reset", "api.example.com"},
	} {
		res := proctest.Run(t, env, "rebound", args...)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
	}
	res := proctest.RunStdin(t, env, `{"url": "http://127.0.0.1:9/a"}`+"\n", "enqueue", "batch", "--kind", "http_request", "--name", "seed", "--file", "-", "--queue", "parked")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	p := startWorkerWithToken(t, db.URL, badInputToken)
	return db, "http://" + p.HTTPAddr
}

type httpCall struct {
	method, path, body string
	header             http.Header // nil: Authorization: Bearer <badInputToken>
}

func (c httpCall) do(t *testing.T, base string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	require.NoError(t, err)
	if c.header == nil {
		req.Header.Set("Authorization", "Bearer "+badInputToken)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(b)
}

// Every admin route of a real worker, asked with bad input (credentials,
// bodies, path and query parameters): a 4xx with {"error": "..."} naming the
// problem, never a 500, and every table of the database as it was (row
// counts of every table, before and after each request).
func TestBadInputAdminRoutes(t *testing.T) {
	t.Parallel()
	db, base := badInputWorker(t)

	// The routes that change something, with a body that would succeed, the
	// text field a bad value goes into, and what the route says of a NUL.
	type postRoute struct {
		path, good, field, nulErr string
	}
	posts := []postRoute{
		{"/api/admin/dlq/1/retry", `{"by": "ops"}`, "by", `by "a\x00b": control character U+0000`},
		{"/api/admin/dlq/1/resolve", `{"note": "seen", "by": "ops"}`, "note", "note: contains a NUL byte"},
		{"/api/admin/dlq/retry", `{"all": true, "by": "ops"}`, "by", `by "a\x00b": control character U+0000`},
		{"/api/admin/dlq/resolve", `{"all": true, "note": "seen"}`, "note", "note: contains a NUL byte"},
		{"/api/admin/dlq/purge", `{"older_than": "1s"}`, "older_than", `older_than: age "a\x00b"`},
		{"/api/admin/breakers/api.example.com/reset", `{"reason": "seen"}`, "reason", "reason: contains a NUL byte"},
		{"/api/admin/breakers/api.example.com/open", `{"for": "10m", "reason": "seen"}`, "reason", "reason: contains a NUL byte"},
	}
	gets := []string{
		"/api/admin/dlq", "/api/admin/dlq/stats", "/api/admin/dlq/1",
		"/api/admin/breakers", "/api/admin/breakers/api.example.com",
		"/api/admin/batches", "/api/admin/batches/1",
		"/api/admin/job-health", "/api/admin/readyz", "/api/admin/nope",
	}
	// with replaces the route's text field in its good body.
	with := func(r postRoute, value string) string {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.good), &m))
		m[r.field] = "PLACEHOLDER"
		b, err := json.Marshal(m)
		require.NoError(t, err)
		return strings.Replace(string(b), `"PLACEHOLDER"`, value, 1)
	}
	big := `{"note": "` + strings.Repeat("x", 2<<20) + `"}`

	type tcase struct {
		name     string
		call     httpCall
		wantCode int
		wantErr  string // in the "error" message
	}
	var cases []tcase
	auths := []struct {
		name    string
		header  http.Header
		wantErr string
	}{
		{"no token", http.Header{}, "missing admin token"},
		{"wrong token", http.Header{"Authorization": {"Bearer " + badInputToken + "x"}}, "wrong admin token"},
		{"token in another case", http.Header{"Authorization": {"Bearer " + strings.ToUpper(badInputToken)}}, "wrong admin token"},
		{"bearer without a token", http.Header{"Authorization": {"Bearer"}}, "missing admin token"},
		{"token without a scheme", http.Header{"Authorization": {badInputToken}}, "missing admin token"},
		{"another scheme", http.Header{"Authorization": {"Token " + badInputToken}}, "missing admin token"},
		{"basic auth with the token", http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+badInputToken))}}, "missing admin token"},
		{"token in the query", http.Header{}, "missing admin token"},
	}
	for _, a := range auths {
		for _, r := range posts {
			path := r.path
			if a.name == "token in the query" {
				path += "?token=" + badInputToken
			}
			cases = append(cases, tcase{a.name + ": POST " + r.path, httpCall{"POST", path, r.good, a.header}, 401, a.wantErr})
		}
		for _, path := range gets {
			if a.name == "token in the query" {
				path += "?token=" + badInputToken
			}
			cases = append(cases, tcase{a.name + ": GET " + path, httpCall{"GET", path, "", a.header}, 401, a.wantErr})
		}
	}
	for _, r := range posts {
		p := r.path
		for _, c := range []struct {
			name, body, wantErr string
		}{
			{"malformed JSON", `{"` + r.field + `" "x"}`, "not JSON (at byte"},
			{"a form body", r.field + "=x", "not JSON (at byte"},
			{"truncated JSON", r.good[:len(r.good)-1], "not JSON (it ends before the object does)"},
			{"an array", `[` + r.good + `]`, "JSON object"},
			{"a string", `"` + r.field + `"`, "JSON object"},
			{"two objects", r.good + r.good, "unexpected data after the JSON object"},
			{"a body over the limit", big, "larger than"},
			{"invalid UTF-8", with(r, "\"a\xffb\""), "not valid UTF-8"},
			{"a lone surrogate", with(r, `"a\udc00b"`), `\udc00 is half of a UTF-16 surrogate pair`},
			{"NUL", with(r, `"a\u0000b"`), r.nulErr},
			{"an unknown field", strings.Replace(r.good, "{", `{"nope": 1, `, 1), `unknown field "nope"`},
			{"a member twice", strings.Replace(r.good, "{", `{"`+r.field+`": "x", `, 1), `member "` + r.field + `" appears twice`},
			{"an absurd number", with(r, "1e999"), r.field},
			{"a query parameter", "", "unknown query parameter"},
			{"a malformed query", "", "query"},
		} {
			call := httpCall{method: "POST", path: p, body: c.body}
			switch c.name {
			case "a query parameter":
				call.path, call.body = p+"?dry_run=true", r.good
			case "a malformed query":
				call.path, call.body = p+"?a;b", r.good
			}
			cases = append(cases, tcase{c.name + ": POST " + p, call, 400, c.wantErr})
		}
	}
	for _, c := range []struct {
		name, path string
		wantCode   int
		wantErr    string
	}{
		{"entry ID not a number", "/api/admin/dlq/abc", 400, `entry ID "abc" is not a positive integer`},
		{"entry ID zero", "/api/admin/dlq/0/retry", 400, `entry ID "0" is not a positive integer`},
		{"entry ID negative", "/api/admin/dlq/-1/resolve", 400, `entry ID "-1" is not a positive integer`},
		{"entry ID past int64", "/api/admin/dlq/9223372036854775808/retry", 400, `entry ID "9223372036854775808" is not a positive integer`},
		{"entry ID NUL", "/api/admin/dlq/%00", 400, `entry ID "\x00" is not a positive integer`},
		{"entry ID that does not exist", "/api/admin/dlq/9223372036854775807/retry", 404, "no entry 9223372036854775807"},
		{"breaker key NUL", "/api/admin/breakers/a%00b/reset", 400, `invalid operation key "a\x00b": control character U+0000`},
		{"breaker key invalid UTF-8", "/api/admin/breakers/a%FFb/open", 400, `invalid operation key "a\xffb": not valid UTF-8`},
		{"breaker key blank", "/api/admin/breakers/%20%20", 400, `invalid operation key "  ": blank`},
		{"breaker key too long", "/api/admin/breakers/" + strings.Repeat("k", 300), 400, "(300 characters): longer than 255 characters"},
		{"breaker key SQL-looking, unknown", "/api/admin/breakers/%27%29%3B%20DROP%20TABLE%20river_job%3B%20--/reset", 404, `no circuit breaker state for key "'); DROP TABLE river_job; --"`},
		{"batch ID not a number", "/api/admin/batches/abc", 400, `invalid batch ID "abc": want a positive integer`},
		{"batch ID past int64", "/api/admin/batches/99999999999999999999", 400, `invalid batch ID "99999999999999999999"`},
		{"batch ID that does not exist", "/api/admin/batches/999", 404, "999"},
		{"list limit zero", "/api/admin/dlq?limit=0", 400, "limit 0 is not between 1 and 1000"},
		{"list limit absurd", "/api/admin/dlq?limit=99999999999999999999", 400, `limit "99999999999999999999" is not a number`},
		{"list limit negative", "/api/admin/dlq?limit=-5", 400, "limit -5 is not between 1 and 1000"},
		{"list since negative", "/api/admin/dlq?since=-5h", 400, `since: "-5h" is neither an RFC 3339 time nor an age`},
		{"list since absurd", "/api/admin/dlq?since=99999999999d", 400, `since: "99999999999d"`},
		{"list kind NUL", "/api/admin/dlq?kind=a%00", 400, `kind "a\x00" contains a NUL character`},
		{"list kind invalid UTF-8", "/api/admin/dlq?kind=%FF", 400, `kind "\xff" contains invalid UTF-8`},
		{"list unknown parameter", "/api/admin/dlq?kinds=x", 400, `unknown query parameter "kinds"`},
		{"list semicolon", "/api/admin/dlq?kind=x;status=resolved", 400, "malformed query string: invalid semicolon separator in query"},
		{"list bad escape", "/api/admin/dlq?kind=%zz", 400, "malformed query string"},
		{"show with a query", "/api/admin/dlq/1?full=true", 400, `unknown query parameter "full" (this route takes none)`},
		{"stats top zero", "/api/admin/dlq/stats?top=0", 400, `top "0" is not a number between 1 and 1000`},
		{"stats semicolon", "/api/admin/dlq/stats?top=5;x", 400, "malformed query string"},
		{"batches limit absurd", "/api/admin/batches?limit=1e9", 400, `invalid limit "1e9"`},
		{"batches open not a bool", "/api/admin/batches?open=maybe", 400, `invalid open "maybe"`},
		{"batches repeated", "/api/admin/batches?limit=1&limit=2", 400, `query parameter "limit" given 2 times`},
		{"batches semicolon", "/api/admin/batches?limit=1;open=true", 400, "malformed query string"},
		{"batch show query", "/api/admin/batches/1?x=1", 400, `unknown query parameter "x" (this route takes none)`},
		{"breaker list query", "/api/admin/breakers?state=open", 400, `unknown query parameter "state" (breaker routes take none)`},
		{"breaker show semicolon", "/api/admin/breakers/api.example.com?a;b", 400, "query: invalid semicolon separator in query"},
		{"job-health window negative", "/api/admin/job-health?window=-1m", 400, `window "-1m": a duration from 1m to 720h`},
		{"job-health window absurd", "/api/admin/job-health?window=99999999999999999999", 400, `window "99999999999999999999"`},
		{"job-health window NaN", "/api/admin/job-health?window=NaN", 400, `window "NaN"`},
		{"job-health window NUL", "/api/admin/job-health?window=%00", 400, `window "\u0000"`},
		{"job-health repeated", "/api/admin/job-health?window=1h&window=2h", 400, "window given 2 times"},
		{"job-health semicolon", "/api/admin/job-health?window=1h;x", 400, "malformed query string"},
		{"no such admin route", "/api/admin/nope", 404, "no admin route /api/admin/nope"},
		{"no such dead-letter route", "/api/admin/dlq/1/nope", 404, "no such endpoint: GET /api/admin/dlq/1/nope"},
		{"no such breaker route", "/api/admin/breakers/api.example.com/close", 404, "no such breaker route"},
		{"no such batch route", "/api/admin/batches/1/jobs", 404, "no such endpoint: GET /api/admin/batches/1/jobs"},
	} {
		method := "GET"
		if strings.HasSuffix(c.path, "/retry") || strings.HasSuffix(c.path, "/resolve") || strings.HasSuffix(c.path, "/reset") || strings.HasSuffix(c.path, "/open") {
			method = "POST"
		}
		body := ""
		if strings.HasSuffix(c.path, "/open") {
			body = `{"for": "10m"}`
		}
		if strings.HasSuffix(c.path, "/resolve") {
			body = `{"note": "x"}`
		}
		cases = append(cases, tcase{c.name, httpCall{method: method, path: c.path, body: body}, c.wantCode, c.wantErr})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			before := db.RowCounts(t)
			code, header, body := tc.call.do(t, base)
			require.Equal(t, tc.wantCode, code, body)
			require.Equal(t, "application/json", header.Get("Content-Type"), body)
			var got map[string]string
			require.NoError(t, json.Unmarshal([]byte(body), &got), body)
			require.Len(t, got, 1, body)
			require.Contains(t, got["error"], tc.wantErr)
			require.Equal(t, before, db.RowCounts(t), "a refused request changed a table")
		})
	}
	t.Cleanup(func() {
		// The seeded rows are as they were: nothing was retried, resolved,
		// opened or reset by a refused request.
		var status, state string
		var generation int64
		require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT status FROM job_dead_letter_queue WHERE id = 1").Scan(&status))
		require.Equal(t, "unresolved", status)
		require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT state, generation FROM circuit_breaker_state WHERE breaker_key = 'api.example.com'").Scan(&state, &generation))
		require.Equal(t, "closed", state)
		require.Equal(t, int64(3), generation, "created, opened and reset by the seed only")
	})
}
