package breaker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/redact"
)

func TestAdminHTTP(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	store := NewStore(db.Pool)
	require.NoError(t, store.ensureRow(ctx, "api.example.com"))
	mux := http.NewServeMux()
	h := NewAdminHandler(store, nil)
	mux.Handle(AdminPrefix, h)
	mux.Handle(AdminPrefix+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	do := func(method, path, body string) (int, string) {
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}

	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantCode   int
		wantInBody string
	}{
		{"unknown key", "GET", "/api/admin/breakers/nope", "", 404, `"error": "no circuit breaker state for key \"nope\""`},
		{"open without for", "POST", "/api/admin/breakers/api.example.com/open", `{}`, 400, `\"for\" is required`},
		{"open with a bad duration", "POST", "/api/admin/breakers/api.example.com/open", `{"for": "ten minutes"}`, 400, `\"for\" \"ten minutes\": want a duration`},
		{"open for too long", "POST", "/api/admin/breakers/api.example.com/open", `{"for": "1000h"}`, 400, `want a duration in (0s, 720h0m0s]`},
		{"open with a negative duration", "POST", "/api/admin/breakers/api.example.com/open", `{"for": "-1m"}`, 400, `"error"`},
		{"not JSON", "POST", "/api/admin/breakers/api.example.com/open", `for=10m`, 400, `"body: not JSON (at byte 2): want an object like {\"for\": \"10m\", \"by\": \"...\", \"reason\": \"...\"}"`},
		{"unknown field", "POST", "/api/admin/breakers/api.example.com/open", `{"fr": "10m"}`, 400, `unknown field \"fr\"`},
		{"reset with for", "POST", "/api/admin/breakers/api.example.com/reset", `{"for": "10m"}`, 400, `applies to open`},
		{"reset an unknown key", "POST", "/api/admin/breakers/nope/reset", `{}`, 404, `no circuit breaker state`},
		{"no such route", "GET", "/api/admin/breakers/api.example.com/close", ``, 404, `no such breaker route: GET /api/admin/breakers/api.example.com/close`},
		{"reset with a reason of invalid UTF-8", "POST", "/api/admin/breakers/api.example.com/reset", "{\"reason\": \"caf\xe9\"}", 400, `"error": "body: not valid UTF-8"`},
		{"reset with a lone surrogate in the reason", "POST", "/api/admin/breakers/api.example.com/reset", `{"reason": "a\udc00"}`, 400, `"error": "body: \\udc00 is half of a UTF-16 surrogate pair, not a character"`},
		{"open by someone in invalid UTF-8", "POST", "/api/admin/breakers/api.example.com/open", "{\"for\": \"1m\", \"by\": \"\xff\"}", 400, `"error": "body: not valid UTF-8"`},
		{"reset with a reason over the cap", "POST", "/api/admin/breakers/api.example.com/reset", `{"reason": "` + strings.Repeat("r", MaxTextBytes+1) + `"}`, 400, `"error": "reason: 1025 bytes, longer than 1024"`},
		{"open by someone over the cap", "POST", "/api/admin/breakers/api.example.com/open", `{"for": "1m", "by": "` + strings.Repeat("b", MaxTextBytes+1) + `"}`, 400, `(1025 bytes): longer than 1024 bytes"`},
		{"open a blank key", "POST", "/api/admin/breakers/%20/open", `{"for": "1m"}`, 400, `"error": "invalid operation key \" \": blank (white space only)"`},
		{"open a 100,000-character key", "POST", "/api/admin/breakers/" + strings.Repeat("a", 100_000) + "/open", `{"for": "1m"}`, 400,
			`"error": "invalid operation key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"… (100000 characters): longer than 255 characters"`},
		{"reset a key with a newline", "POST", "/api/admin/breakers/a%0Ab/reset", `{}`, 400, `"error": "invalid operation key \"a\\nb\": control character U+000A at byte 1"`},
		{"get a blank key", "GET", "/api/admin/breakers/%09", ``, 400, `"error": "invalid operation key \"\\t\": blank (white space only)"`},
		{"open by someone with a control character", "POST", "/api/admin/breakers/api.example.com/open", `{"for": "1m", "by": "a\u001bb"}`, 400, `"error": "by \"a\\x1bb\": control character U+001B at byte 1"`},
		{"garbage after the body", "POST", "/api/admin/breakers/api.example.com/open", `{"for":"1m"} garbage`, 400, `"error": "body: unexpected data after the JSON object: \"garbage\""`},
		{"a second object", "POST", "/api/admin/breakers/api.example.com/open", `{"for":"1m"}{"for":"2m"}`, 400, `"error": "body: unexpected data after the JSON object: \"{\\\"for\\\":\\\"2m\\\"}\""`},
		{"a stray brace", "POST", "/api/admin/breakers/api.example.com/open", "{\"for\":\"1m\"}\n}", 400, `"error": "body: unexpected data after the JSON object: \"}\""`},
		{"garbage after a reset body", "POST", "/api/admin/breakers/api.example.com/reset", `{} x`, 400, `"error": "body: unexpected data after the JSON object: \"x\""`},
		{"unknown field in reset", "POST", "/api/admin/breakers/api.example.com/reset", `{"by": "a", "note": "x"}`, 400, `unknown field \"note\"`},
		{"an array", "POST", "/api/admin/breakers/api.example.com/open", `[{"for":"1m"}]`, 400, `"body: not a JSON object: want an object like {\"for\": \"10m\", \"by\": \"...\", \"reason\": \"...\"}"`},
		{"reset with a NUL in the reason", "POST", "/api/admin/breakers/api.example.com/reset", `{"reason": "a\u0000"}`, 400, `"error": "reason: contains a NUL byte (at byte 1)"`},
	}
	for _, tt := range tests {
		code, body := do(tt.method, tt.path, tt.body)
		require.Equal(t, tt.wantCode, code, "%s: %s", tt.name, body)
		require.Contains(t, body, tt.wantInBody, tt.name)
	}
	row, err := store.Get(ctx, "api.example.com")
	require.NoError(t, err)
	require.Equal(t, StateClosed, row.State, "refused requests changed nothing")
	require.Equal(t, int64(1), row.Generation)
	rows, err := store.List(ctx)
	require.NoError(t, err)
	require.Len(t, rows, 1, "no row for a refused key")

	code, body := do("POST", "/api/admin/breakers/api.example.com/open", `{"for": "10m", "by": "alice", "reason": "maintenance"}`)
	require.Equal(t, 200, code, body)
	var got Row
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Equal(t, StateOpen, got.State)
	require.Equal(t, "alice", got.ChangedBy)
	require.Equal(t, 10*time.Minute, got.NextProbeAt.Sub(*got.OpenedAt))
	require.Contains(t, body, `"state": "open"`)

	require.Contains(t, body, `"probe_due": false`)

	code, body = do("GET", "/api/admin/breakers", "")
	require.Equal(t, 200, code)
	var list []Row
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list, 1)
	require.Equal(t, StateOpen, list[0].State)
	require.False(t, list[0].ProbeDue)

	// The hold expires: still open until a call comes, but due for a probe.
	_, err = db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET next_probe_at = now() - interval '1 second'`)
	require.NoError(t, err)
	code, body = do("GET", "/api/admin/breakers/api.example.com", "")
	require.Equal(t, 200, code)
	require.Contains(t, body, `"state": "open"`)
	require.Contains(t, body, `"probe_due": true`)
	code, body = do("GET", "/api/admin/breakers", "")
	require.Equal(t, 200, code)
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.True(t, list[0].ProbeDue)

	code, body = do("POST", "/api/admin/breakers/api.example.com/reset", ``)
	require.Equal(t, 200, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Equal(t, StateClosed, got.State)
	require.Equal(t, "admin-api", got.ChangedBy)
	require.Equal(t, int64(3), got.Generation)
}

// Every route asked with a method it does not take: 405, an Allow header
// naming the methods it takes, a JSON error, nothing changed (no 404, no
// redirect).
func TestAdminHTTPWrongMethod(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	store := NewStore(db.Pool)
	require.NoError(t, store.ensureRow(ctx, "api.example.com"))
	mux := http.NewServeMux()
	h := NewAdminHandler(store, nil)
	mux.Handle(AdminPrefix, h)
	mux.Handle(AdminPrefix+"/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	routes := []struct {
		path, allow string
	}{
		{"/api/admin/breakers", "GET, HEAD"},
		{"/api/admin/breakers/api.example.com", "GET, HEAD"},
		{"/api/admin/breakers/api.example.com/reset", "POST"},
		{"/api/admin/breakers/api.example.com/open", "POST"},
	}
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
	for _, route := range routes {
		for _, method := range methods {
			if strings.Contains(route.allow, method) {
				continue
			}
			t.Run(method+" "+route.path, func(t *testing.T) {
				req, err := http.NewRequest(method, srv.URL+route.path, strings.NewReader(`{"for": "1m"}`))
				require.NoError(t, err)
				resp, err := client.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, string(b))
				require.Equal(t, route.allow, resp.Header.Get("Allow"))
				require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
				if method != "HEAD" {
					require.JSONEq(t, fmt.Sprintf(`{"error": "method %s not allowed on %s (allowed: %s)"}`, method, route.path, route.allow), string(b))
				}
			})
		}
	}
	row, err := store.Get(ctx, "api.example.com")
	require.NoError(t, err)
	require.Equal(t, StateClosed, row.State)
	require.Equal(t, int64(1), row.Generation, "nothing changed")
}

// Every row the admin API answers (list, get, reset, open) shows its last
// error through AdminOpts.RedactError; the stored row keeps the original,
// and without the option the stored text is answered.
func TestAdminHTTPRedactsLastError(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	ctx := context.Background()
	store := NewStore(db.Pool)
	const stored = "POST https://api.example.com/hook: HTTP 503: rejected X-Signature: SIGSECRET; session_id=SESSSECRET"
	const shown = "POST https://api.example.com/hook: HTTP 503: rejected X-Signature: [REDACTED]; session_id=[REDACTED]"
	require.NoError(t, store.ensureRow(ctx, "api.example.com"))
	_, err := db.Pool.Exec(ctx, `UPDATE circuit_breaker_state SET last_error = $1, last_failure_at = now()`, stored)
	require.NoError(t, err)

	tests := []struct {
		name string
		opts *AdminOpts
		want string
	}{
		{"with the worker's redaction", &AdminOpts{RedactError: redact.Text}, shown},
		{"without", nil, stored},
	}
	for _, tt := range tests {
		// One after the other: both open and reset the same row.
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(NewAdminHandler(store, tt.opts))
			t.Cleanup(srv.Close)
			for _, call := range []struct{ method, path, body string }{
				{"GET", "/api/admin/breakers/api.example.com", ""},
				{"POST", "/api/admin/breakers/api.example.com/open", `{"for": "1m"}`},
				{"POST", "/api/admin/breakers/api.example.com/reset", `{}`},
			} {
				req, err := http.NewRequest(call.method, srv.URL+call.path, strings.NewReader(call.body))
				require.NoError(t, err)
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				var row Row
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&row))
				resp.Body.Close()
				require.Equal(t, http.StatusOK, resp.StatusCode)
				require.Equal(t, tt.want, row.LastError, call.path)
			}
			resp, err := http.Get(srv.URL + "/api/admin/breakers")
			require.NoError(t, err)
			var rows []Row
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&rows))
			resp.Body.Close()
			require.Len(t, rows, 1)
			require.Equal(t, tt.want, rows[0].LastError)
		})
	}
	row, err := store.Get(ctx, "api.example.com")
	require.NoError(t, err)
	require.Equal(t, stored, row.LastError, "the stored row keeps the original")
}
