package deadletter_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/internal/adminauth"
)

const secretArgs = `{"url":"https://u:pw@api.example.com/v1?api_key=k1&page=2","headers":{"Authorization":"Bearer live-token","X-Api-Key":"k2","Accept":"application/json"},"body":"{\"password\":\"hunter2\",\"name\":\"ann\"}","nested":{"client_secret":"cs","list":[{"name":"Cookie","value":"c=1"}]}}`

// apiServer serves the DLQ API behind the admin token, as the worker does.
func apiServer(t *testing.T, b *testBundle, token string) *httptest.Server {
	t.Helper()
	h := adminauth.Require(token, deadletter.NewHandler(b.store, nil), nil)
	mux := http.NewServeMux()
	mux.Handle(deadletter.APIPath, h)
	mux.Handle(deadletter.APIPath+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode >= 400 {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(b)
}

func TestAdminAPIAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	insertEntries(t, b.pool, 1, "kind_h", "timeout", 10)
	srv := apiServer(t, b, "s3cret-token")

	tests := []struct {
		name     string
		auth     string
		wantCode int
		wantBody string
	}{
		{name: "no token", wantCode: 401, wantBody: `{"error":"missing admin token: send Authorization: Bearer \u003cREBOUND_ADMIN_TOKEN\u003e"}`},
		{name: "wrong token", auth: "Bearer s3cret-tokeN", wantCode: 401, wantBody: `{"error":"wrong admin token"}`},
		{name: "basic auth not accepted by the API", auth: "Basic dTpzM2NyZXQtdG9rZW4=", wantCode: 401},
		{name: "right token", auth: "Bearer s3cret-token", wantCode: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, srv, "POST", deadletter.APIPath+"/retry", tt.auth, `{"all":true}`)
			require.Equal(t, tt.wantCode, code, body)
			if tt.wantBody != "" {
				require.JSONEq(t, tt.wantBody, body)
			}
		})
	}
	// Only the authorised call retried anything: one job.
	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM river_job"))
	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'retried'"))
}

func TestAdminAPIRedactsAndValidates(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	_, err := b.pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, metadata, errors, history, failure_class, failure_reason, operation_key)
		VALUES (77, 1, 1, 'http_request', 'default', 1, 'cancelled', $1, '{"token":"meta-secret"}', '[]',
		        '[{"attempt":1,"class":"unauthorized","error":"POST https://u:pw@api.example.com/v1?api_key=k1: 401"}]',
		        'unauthorized', 'POST https://u:pw@api.example.com/v1?api_key=k1: 401', 'api.example.com')`, secretArgs)
	require.NoError(t, err)
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT id FROM job_dead_letter_queue").Scan(&id))
	srv := apiServer(t, b, "tok")
	auth := "Bearer tok"

	for _, path := range []string{deadletter.APIPath, deadletter.APIPath + "/" + itoa(id)} {
		code, body := call(t, srv, "GET", path, auth, "")
		require.Equal(t, 200, code, body)
		for _, secret := range []string{"live-token", "k1", "k2", "hunter2", "meta-secret", ":pw@", "\"cs\"", "c=1"} {
			require.NotContains(t, body, secret, path)
		}
		require.Contains(t, body, "[REDACTED]")
		require.Contains(t, body, "application/json") // harmless headers stay
		require.Contains(t, body, `\"name\":\"ann\"`) // so do harmless body fields
	}
	// The stored args are intact for replay.
	e, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	require.JSONEq(t, secretArgs, string(e.Args))

	tests := []struct {
		name, method, path, body string
		wantCode                 int
		wantErr                  string
	}{
		{"bad id", "GET", "/abc", "", 400, `entry ID "abc" is not a positive integer`},
		{"unknown id", "GET", "/999999", "", 404, "no entry 999999"},
		{"bad status", "GET", "?status=open", "", 400, `status "open" is not one of`},
		{"bad since", "GET", "?since=yesterday", "", 400, `since: "yesterday" is neither`},
		{"bad class", "GET", "?class=nope", "", 400, `failure class "nope" is not one of rate_limited, server_error, timeout, network, decode, panic, lost, unknown_kind, unknown, bad_request, unauthorized, not_found, misconfigured, out_of_memory, breaker_open, cancelled`},
		{"bad class in stats", "GET", "/stats?class=timeout&class=nope", "", 400, `failure class "nope" is not one of rate_limited,`},
		{"bad class in bulk retry", "POST", "/retry", `{"all":true,"classes":["nope"]}`, 400, `failure class "nope" is not one of rate_limited,`},
		{"bad class in bulk resolve", "POST", "/resolve", `{"all":true,"classes":["nope"],"note":"x"}`, 400, `failure class "nope" is not one of rate_limited,`},
		{"unknown parameter", "GET", "?kinds=x", "", 400, `unknown query parameter "kinds"`},
		{"bad limit", "GET", "?limit=ten", "", 400, `limit "ten" is not a number`},
		{"zero limit", "GET", "?limit=0", "", 400, "limit 0 is not between 1 and 1000"},
		{"body not an object", "POST", "/1/retry", "[1]", 400, "request body: must be a JSON object, not an array"},
		{"bad cursor", "GET", "?after=5", "", 400, `cursor "5" is not one this API returned`},
		{"resolve without note", "POST", "/" + itoa(id) + "/resolve", `{}`, 400, "a note is required"},
		{"unknown body field", "POST", "/" + itoa(id) + "/resolve", `{"note":"x","nope":1}`, 400, `unknown field "nope"`},
		{"bulk retry without all", "POST", "/retry", `{"kinds":["x"]}`, 400, `needs "all": true`},
		{"purge without age", "POST", "/purge", `{}`, 400, "older_than: empty age"},
		{"purge with bad age", "POST", "/purge", `{"older_than":"30 days"}`, 400, `older_than: age "30 days"`},
		{"not json", "POST", "/" + itoa(id) + "/retry", `force`, 400, `request body: not JSON (at byte 2): want an object like {"note": "...", "by": "..."}`},
		{"a form body", "POST", "/" + itoa(id) + "/resolve", `note=x`, 400, `request body: not JSON (at byte 2): want an object like {"note": "...", "by": "..."}`},
		{"a cut body", "POST", "/resolve", `{"all":true,"note":"x"`, 400, `request body: not JSON (it ends before the object does): want an object like {"note": "...", "by": "..."}`},
		{"stray bracket after the body", "POST", "/" + itoa(id) + "/resolve", `{"note":"x"} }`, 400, "request body: unexpected data after the JSON object"},
		{"two bodies", "POST", "/" + itoa(id) + "/resolve", `{"note":"x"} {"note":"y"}`, 400, "request body: unexpected data after the JSON object"},
		{"bad since in a bulk body", "POST", "/retry", `{"all":true,"since":"yesterday"}`, 400,
			`since: "yesterday" is neither an RFC 3339 time nor an age such as 24h or 7d`},
		{"bad until in a bulk body", "POST", "/resolve", `{"all":true,"until":"2026-13-01","note":"x"}`, 400,
			`until: "2026-13-01" is neither an RFC 3339 time nor an age such as 24h or 7d`},
		{"since as a number", "POST", "/retry", `{"all":true,"since":86400}`, 400,
			`request body: "since" must be a string (RFC 3339 or an age such as 24h), not a number`},
		{"kinds as a string", "POST", "/retry", `{"all":true,"kinds":"x"}`, 400,
			`request body: "kinds" must be an array of strings, not a string`},
		{"force as a string", "POST", "/" + itoa(id) + "/retry", `{"force":"yes"}`, 400,
			`request body: "force" must be true or false, not a string`},
		// Free text: NUL, invalid UTF-8, lone surrogates, over the cap.
		{"NUL in a note", "POST", "/" + itoa(id) + "/resolve", `{"note":"a\u0000b"}`, 400, "invalid parameter: note: contains a NUL byte (at byte 1)"},
		{"NUL in by of a resolve", "POST", "/" + itoa(id) + "/resolve", `{"note":"x","by":"da\u0000na"}`, 400, `invalid parameter: by "da\x00na": control character U+0000 at byte 2`},
		{"NUL in by of a retry", "POST", "/" + itoa(id) + "/retry", `{"by":"\u0000"}`, 400, `invalid parameter: by "\x00": control character U+0000 at byte 0`},
		{"NUL in a bulk note", "POST", "/resolve", `{"all":true,"note":"\u0000"}`, 400, "invalid parameter: note: contains a NUL byte (at byte 0)"},
		{"NUL in by of a bulk resolve", "POST", "/resolve", `{"all":true,"note":"x","by":"a\u0000"}`, 400, `invalid parameter: by "a\x00": control character U+0000 at byte 1`},
		{"NUL in by of a bulk retry", "POST", "/retry", `{"all":true,"by":"a\u0000"}`, 400, `invalid parameter: by "a\x00": control character U+0000 at byte 1`},
		{"NUL in by of a bulk dry run", "POST", "/retry", `{"all":true,"dry_run":true,"by":"a\u0000"}`, 400, `invalid parameter: by "a\x00": control character U+0000 at byte 1`},
		{"newline in by", "POST", "/" + itoa(id) + "/retry", `{"by":"a\nb"}`, 400, `invalid parameter: by "a\nb": control character U+000A at byte 1`},
		{"invalid UTF-8 in a note", "POST", "/" + itoa(id) + "/resolve", "{\"note\":\"caf\xe9\"}", 400, `request body: "note": not valid UTF-8`},
		{"invalid UTF-8 in a bulk note", "POST", "/resolve", "{\"all\":true,\"note\":\"\xff\"}", 400, `request body: "note": not valid UTF-8`},
		{"invalid UTF-8 in by", "POST", "/" + itoa(id) + "/retry", "{\"by\":\"\xc3\"}", 400, `request body: "by": not valid UTF-8`},
		{"invalid UTF-8 in a bulk by", "POST", "/retry", "{\"all\":true,\"by\":\"\xc3\"}", 400, `request body: "by": not valid UTF-8`},
		{"a lone surrogate in a note", "POST", "/" + itoa(id) + "/resolve", `{"note":"x\ud800"}`, 400, `request body: "note": \ud800 is half of a UTF-16 surrogate pair, not a character`},
		{"invalid UTF-8 in a filter", "POST", "/retry", "{\"all\":true,\"kinds\":[\"k\xff\"]}", 400, `request body: "kinds": not valid UTF-8`},
		// Filters PostgreSQL cannot compare: 400 naming the field, not 500.
		{"NUL in a kind", "GET", "?kind=a%00b", "", 400, `invalid parameter: kind "a\x00b" contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in a kind", "GET", "?kind=a%FFb", "", 400, `invalid parameter: kind "a\xffb" contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"NUL in an operation key", "GET", "?operation_key=a%00b", "", 400, `invalid parameter: operation key "a\x00b" contains a NUL character (\u0000)`},
		{"NUL in a kind of stats", "GET", "/stats?kind=a%00b", "", 400, `invalid parameter: kind "a\x00b" contains a NUL character (\u0000)`},
		{"NUL in a kind of a bulk dry run", "POST", "/retry", `{"all":true,"dry_run":true,"kinds":["a\u0000b"]}`, 400, `invalid parameter: kind "a\x00b" contains a NUL character (\u0000)`},
		{"NUL in an operation key of a bulk resolve", "POST", "/resolve", `{"all":true,"note":"x","operation_keys":["\u0000"]}`, 400, `invalid parameter: operation key "\x00" contains a NUL character (\u0000)`},
		{"a note over the cap", "POST", "/" + itoa(id) + "/resolve", `{"note":"` + strings.Repeat("n", breaker.MaxTextBytes+1) + `"}`, 400, "invalid parameter: note: 1025 bytes, longer than 1024"},
		{"a bulk note over the cap", "POST", "/resolve", `{"all":true,"note":"` + strings.Repeat("n", breaker.MaxTextBytes+1) + `"}`, 400, "invalid parameter: note: 1025 bytes, longer than 1024"},
		{"by over the cap", "POST", "/" + itoa(id) + "/retry", `{"by":"` + strings.Repeat("b", breaker.MaxTextBytes+1) + `"}`, 400, "(1025 bytes): longer than 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, srv, tt.method, deadletter.APIPath+tt.path, auth, tt.body)
			require.Equal(t, tt.wantCode, code, body)
			var e struct{ Error string }
			require.NoError(t, json.Unmarshal([]byte(body), &e))
			require.Contains(t, e.Error, tt.wantErr)
		})
	}
	// Nothing changed.
	after, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, deadletter.StatusUnresolved, after.Status)
	require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job"))

	// Then the operations, through HTTP. A note at the cap, with a line
	// break and U+FFFD sent as such (escaped), is kept as it was sent.
	note := "rotated the key\n\uFFFD " + strings.Repeat("é", (breaker.MaxTextBytes-20)/2)
	reqBody, err := json.Marshal(map[string]string{"note": note, "by": "dana"})
	require.NoError(t, err)
	code, body := call(t, srv, "POST", deadletter.APIPath+"/"+itoa(id)+"/resolve", auth, string(reqBody))
	require.Equal(t, 200, code, body)
	require.Contains(t, body, `"status": "resolved"`)
	resolved, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, note, resolved.ResolutionNote)
	require.Equal(t, "dana", resolved.ResolvedBy)
	code, body = call(t, srv, "POST", deadletter.APIPath+"/"+itoa(id)+"/retry", auth, ``)
	require.Equal(t, 409, code, body)
	require.Contains(t, body, "resolved")
	code, body = call(t, srv, "POST", deadletter.APIPath+"/"+itoa(id)+"/retry", auth, `{"force":true}`)
	require.Equal(t, 200, code, body)
	require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM river_job"))
	code, body = call(t, srv, "GET", deadletter.APIPath+"/stats", auth, "")
	require.Equal(t, 200, code, body)
	require.NotContains(t, body, "k1")
	code, body = call(t, srv, "POST", deadletter.APIPath+"/purge", auth, `{"older_than":"30d","dry_run":true}`)
	require.Equal(t, 200, code, body)
	require.JSONEq(t, `{"dry_run":true,"purged":{"resolved":0,"retried":0},"total":0}`, body)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// Error text is redacted in every answer (list, show, stats, resolve); the
// stored text stays as it was.
func TestAdminAPIRedactsErrorText(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	const reason = `HTTP 400 Bad Request: {"api_key": "ESECRET2", "auth": "Bearer ESECRET1"}`
	const attempt1 = "POST https://api.example.com/v1?token=ESECRET3: 500\nAuthorization: Basic ESECRET4=="
	_, err := b.pool.Exec(ctx, `INSERT INTO job_dead_letter_queue
		(river_job_id, attempt, max_attempts, kind, queue, priority, final_state, args, metadata, errors, history, failure_class, failure_reason, operation_key)
		VALUES (78, 2, 2, 'http_request', 'default', 1, 'cancelled', '{}',
		        jsonb_build_object('output', jsonb_build_object('attempts', jsonb_build_array(jsonb_build_object('attempt', 2, 'error', $1::text)))), '[]',
		        jsonb_build_array(jsonb_build_object('attempt', 1, 'class', 'server_error', 'error', $2::text, 'stack', 'panic: Bearer ESECRET5'),
		                          jsonb_build_object('attempt', 2, 'class', 'bad_request', 'error', $1::text, 'trace', 'x-api-key: ESECRET6')),
		        'bad_request', $1, 'api.example.com')`, reason, attempt1)
	require.NoError(t, err)
	var id int64
	require.NoError(t, b.pool.QueryRow(ctx, "SELECT id FROM job_dead_letter_queue").Scan(&id))
	srv := apiServer(t, b, "tok")

	for _, tt := range []struct{ method, path, body string }{
		{"GET", deadletter.APIPath, ""},
		{"GET", deadletter.APIPath + "/" + itoa(id), ""},
		{"GET", deadletter.APIPath + "/stats", ""},
		{"POST", deadletter.APIPath + "/" + itoa(id) + "/resolve", `{"note":"key rotated"}`},
	} {
		code, body := call(t, srv, tt.method, tt.path, "Bearer tok", tt.body)
		require.Equal(t, 200, code, body)
		for _, secret := range []string{"ESECRET1", "ESECRET2", "ESECRET3", "ESECRET4", "ESECRET5", "ESECRET6"} {
			require.NotContains(t, body, secret, tt.path)
		}
		require.Contains(t, body, `HTTP 400 Bad Request: {\"api_key\": \"[REDACTED]\", \"auth\": \"[REDACTED]\"}`, tt.path)
	}
	e, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, reason, e.FailureReason)
	require.Equal(t, attempt1, e.History[0].Error)
}

// Bulk bodies take since and until in the forms the CLI and query strings
// take: RFC 3339 or an age.
func TestAdminAPIBulkTimeForms(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	insertEntries(t, b.pool, 3, "kind_t", "timeout", 300) // jobs 301..303
	_, err := b.pool.Exec(ctx, `UPDATE job_dead_letter_queue SET dead_lettered_at = now() - interval '10 days' WHERE river_job_id = 301;
		UPDATE job_dead_letter_queue SET dead_lettered_at = now() - interval '2 days' WHERE river_job_id = 302`)
	require.NoError(t, err)
	var id301, id302, id303 int64
	require.NoError(t, b.pool.QueryRow(ctx, `SELECT
		(SELECT id FROM job_dead_letter_queue WHERE river_job_id = 301),
		(SELECT id FROM job_dead_letter_queue WHERE river_job_id = 302),
		(SELECT id FROM job_dead_letter_queue WHERE river_job_id = 303)`).Scan(&id301, &id302, &id303))
	srv := apiServer(t, b, "tok")
	weekAgo := time.Now().Add(-7 * 24 * time.Hour).UTC().Format(time.RFC3339)

	tests := []struct {
		name, body string
		want       []int64
	}{
		{"age", `{"all":true,"dry_run":true,"since":"7d"}`, []int64{id302, id303}},
		{"ages both ends", `{"all":true,"dry_run":true,"since":"1w","until":"1d"}`, []int64{id302}},
		{"rfc 3339", `{"all":true,"dry_run":true,"since":"` + weekAgo + `"}`, []int64{id302, id303}},
		{"until only", `{"all":true,"dry_run":true,"until":"36h"}`, []int64{id301, id302}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := call(t, srv, "POST", deadletter.APIPath+"/resolve", "Bearer tok", tt.body)
			require.Equal(t, 200, code, body)
			var res deadletter.ResolveManyResult
			require.NoError(t, json.Unmarshal([]byte(body), &res))
			require.Equal(t, tt.want, res.IDs)
		})
	}
}

// Every route of the API asked with a method it does not take: 405, an
// Allow header naming the methods it takes, a JSON error, nothing changed;
// never ServeMux's 307 redirect nor a 404.
func TestAdminAPIWrongMethod(t *testing.T) {
	t.Parallel()
	b := setup(t)
	insertEntries(t, b.pool, 1, "kind_h", "timeout", 10)
	srv := apiServer(t, b, "tok")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	routes := []struct {
		path, allow string
	}{
		{"", "GET, HEAD"},
		{"/", "GET, HEAD"},
		{"/stats", "GET, HEAD"},
		{"/1", "GET, HEAD"},
		{"/1/retry", "POST"},
		{"/1/resolve", "POST"},
		{"/retry", "POST"},
		{"/resolve", "POST"},
		{"/purge", "POST"},
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	for _, route := range routes {
		for _, method := range methods {
			if strings.Contains(route.allow, method) {
				continue
			}
			path := deadletter.APIPath + route.path
			t.Run(method+" "+path, func(t *testing.T) {
				t.Parallel()
				req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(`{"all":true,"note":"x","older_than":"1s"}`))
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer tok")
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				got, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, string(got))
				require.Equal(t, route.allow, resp.Header.Get("Allow"))
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				if method != "HEAD" {
					require.JSONEq(t, `{"error": "method `+method+` not allowed on `+path+` (allowed: `+route.allow+`)"}`, string(got))
				}
			})
		}
	}
	t.Cleanup(func() {
		// Nothing changed: the entry is still unresolved, no job inserted.
		require.Equal(t, 1, count(t, b.pool, "SELECT count(*) FROM job_dead_letter_queue WHERE status = 'unresolved'"))
		require.Equal(t, 0, count(t, b.pool, "SELECT count(*) FROM river_job"))
	})
}
