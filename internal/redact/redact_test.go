package redact_test

import (
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/redact"
)

func TestText(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"nothing secret", "HTTP 503 Service Unavailable", "HTTP 503 Service Unavailable"},
		{
			"a header list echoed as name/value pairs",
			`HTTP 403 Forbidden: {"headers":[{"name":"Authorization","value":"SEKRETNINE"},{"name":"Accept","value":"*/*"}]}`,
			`HTTP 403 Forbidden: {"headers":[{"name":"Authorization","value":"[REDACTED]"},{"name":"Accept","value":"*/*"}]}`,
		},
		{
			"a cut-off name/value pair",
			`HTTP 403: [{"key": "X-Api-Key", "values": ["k1", "k2`,
			`HTTP 403: [{"key": "X-Api-Key", "values": "[REDACTED]"`,
		},
		{"empty", "", ""},
		{
			"upstream echo of the request",
			`HTTP 400 Bad Request: {"api_key": "ESECRET2", "auth": "Bearer ESECRET1"}`,
			`HTTP 400 Bad Request: {"api_key": "[REDACTED]", "auth": "[REDACTED]"}`,
		},
		{
			"bearer in a non-secret field",
			`HTTP 400: {"detail": "bad header Bearer ESECRET1", "n": 2}`,
			`HTTP 400: {"detail": "bad header Bearer [REDACTED]", "n": 2}`,
		},
		{"json number, array, object and null values", `{"pin": 1234, "tokens": ["a","b"], "credentials": {"u": "x", "p": "y"}, "password": null, "ok": true}`,
			`{"pin": 1234, "tokens": "[REDACTED]", "credentials": "[REDACTED]", "password": null, "ok": true}`},
		{"escaped json in text", `upstream said "{\"error\":\"denied\",\"client_secret\":\"ESECRET3\"}"`,
			`upstream said "{\"error\":\"denied\",\"client_secret\":\"[REDACTED]\"}"`},
		{"escaped quote inside the secret", `{"password": "a\"b\\", "next": "kept"}`, `{"password": "[REDACTED]", "next": "kept"}`},
		{"python dict", `400: {'detail': 'nope', 'access_token': 'ESECRET4'}`, `400: {'detail': 'nope', 'access_token': '[REDACTED]'}`},
		{"cut-off json string", `HTTP 400: {"token": "ESECRET5 and the rest was cut`, `HTTP 400: {"token": "[REDACTED]`},
		{"query string in order", "GET https://h.example/p?token=ESECRET6&q=1&api_key=ESECRET7: 401",
			"GET https://h.example/p?token=[REDACTED]&q=1&api_key=[REDACTED]: 401"},
		{"key and sig parameters", "GET /maps?key=ESECRET8&sig=ESECRET9&size=2", "GET /maps?key=[REDACTED]&sig=[REDACTED]&size=2"},
		{"form body", "body: grant_type=client_credentials&client_secret=ESECRET10&scope=a", "body: grant_type=client_credentials&client_secret=[REDACTED]&scope=a"},
		{"quoted parameter", `login failed: password="ESECRET 11" user=ann`, `login failed: password="[REDACTED]" user=ann`},
		{"cookie parameters", "Set-Cookie: sid=1", "Set-Cookie: [REDACTED]"},
		{"bracketed form name", "user[password]=ESECRET12&user[name]=ann", "user[password]=[REDACTED]&user[name]=ann"},
		{"url password", "dial postgres://app:ESECRET13@db:5432/x: refused", "dial postgres://app:[REDACTED]@db:5432/x: refused"},
		{"header lines", "401 Unauthorized\nAuthorization: Token ESECRET14\nX-Api-Key: ESECRET15\nAccept: */*",
			"401 Unauthorized\nAuthorization: [REDACTED]\nX-Api-Key: [REDACTED]\nAccept: */*"},
		{"authorization line keeps its scheme", "authorization: Bearer ESECRET16", "authorization: Bearer [REDACTED]"},
		{"cookie line", "  Cookie: a=ESECRET17; b=ESECRET18\r\nHost: h", "  Cookie: [REDACTED]\r\nHost: h"},
		{"header inside a line", "POST /v1 with X-Api-Key: ESECRET19 failed: 403", "POST /v1 with X-Api-Key: [REDACTED] failed: 403"},
		{"scheme header inside a line", "request (Authorization: Token ESECRET20) refused", "request (Authorization: [REDACTED]) refused"},
		{"go header map", "headers map[Authorization:[Bearer ESECRET21] X-Api-Key:[ESECRET22] Accept:[*/*]]",
			"headers map[Authorization:[Bearer [REDACTED]] X-Api-Key:[REDACTED] Accept:[*/*]]"},
		{"bearer anywhere, any case", "got BEARER ESECRET23.x-y_z~+/= back", "got BEARER [REDACTED] back"},
		{"basic credentials", "sent basic dXNlcjpwYXNz", "sent basic [REDACTED]"},
		{"basic as a word", "basic validation failed", "basic validation failed"},
		{"bearer challenge", `WWW-Authenticate: Bearer realm="api"`, `WWW-Authenticate: Bearer realm="api"`},
		{"token in prose stays", "oauth2: cannot fetch token: 400 Bad Request", "oauth2: cannot fetch token: 400 Bad Request"},
		{"harmless pairs stay", "attempt=3 status=500 author=ann", "attempt=3 status=500 author=ann"},
		{"multi-byte text", "échec: api_key=ÉSECRET24 ✓", "échec: api_key=[REDACTED] ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := redact.Text(tt.in)
			require.Equal(t, tt.want, got)
			require.Equal(t, got, redact.Text(got), "idempotent")
		})
	}
}

func TestJSON(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, want string }{
		{"headers", `{"headers":{"Authorization":"Bearer x","Cookie":"a=b","X-Api-Key":"k","Accept":"*/*"}}`,
			`{"headers":{"Authorization":"[REDACTED]","Cookie":"[REDACTED]","X-Api-Key":"[REDACTED]","Accept":"*/*"}}`},
		{"fields", `{"password":"p","access_token":"t","clientSecret":"s","api_key":"k","auth":"a","user":"ann","author":"bo","n":1}`,
			`{"password":"[REDACTED]","access_token":"[REDACTED]","clientSecret":"[REDACTED]","api_key":"[REDACTED]","auth":"[REDACTED]","user":"ann","author":"bo","n":1}`},
		{"header list", `[{"name":"Proxy-Authorization","value":"x"},{"name":"Accept","value":"y"}]`,
			`[{"name":"Proxy-Authorization","value":"[REDACTED]"},{"name":"Accept","value":"y"}]`},
		{"multi-valued header", `{"Set-Cookie":["a","b"]}`, `{"Set-Cookie":"[REDACTED]"}`},
		{"url", `{"url":"https://me:pw@h.example/p?token=t&q=1"}`, `{"url":"https://me:[REDACTED]@h.example/p?token=[REDACTED]&q=1"}`},
		{"json body in a string", `{"body":"{\"secret\":\"s\",\"a\":1}"}`, `{"body":"{\"a\":1,\"secret\":\"[REDACTED]\"}"}`},
		{"error text in metadata", `{"output":{"attempts":[{"error":"HTTP 400: {\"api_key\": \"k\"}"}]}}`,
			`{"output":{"attempts":[{"error":"HTTP 400: {\"api_key\": \"[REDACTED]\"}"}]}}`},
		{"null secret stays null", `{"token":null}`, `{"token":null}`},
		{"big numbers kept", `{"id":12345678901234567890}`, `{"id":12345678901234567890}`},
		{"not json", `{oops`, `"[unreadable JSON hidden]"`},
		{"two values", `{} {}`, `"[unreadable JSON hidden]"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := redact.JSON(json.RawMessage(tt.in))
			require.JSONEq(t, tt.want, string(got))
			require.JSONEq(t, string(got), string(redact.JSON(got)), "idempotent")
		})
	}
	require.Empty(t, redact.JSON(nil))
}

func TestIsSensitiveName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		{"Authorization", true}, {"Proxy-Authorization", true}, {"Set-Cookie", true}, {"X-Api-Key", true},
		{"api_key", true}, {"apiKey", true}, {"client_secret", true}, {"access_token", true}, {"PASSWORD", true},
		{"passphrase", true}, {"private_key", true}, {"credentials", true}, {"auth", true}, {"pwd", true}, {"JWT", true},
		{"author", false}, {"passenger", false}, {"key", false}, {"operation_key", false}, {"url", false}, {"name", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, redact.IsSensitiveName(tt.name))
		})
	}
}

// Text never panics, is idempotent, keeps valid UTF-8 valid and never
// leaves a secret it was shown in a known place.
func FuzzText(f *testing.F) {
	for _, s := range []string{
		`HTTP 400 Bad Request: {"api_key": "ESECRET2", "auth": "Bearer ESECRET1"}`,
		`{"password": "a\"b\\", "n": [1, {"token": 2}]}`,
		`\"token\": \"x\" \\\"secret\\\": \\\"y\\\"`,
		"Authorization: Basic dXNlcjpwYXNz\nCookie: a=1; b=2",
		"map[Authorization:[Bearer x] X-Api-Key:[k [REDACTED]]]",
		"https://u:p@h/?token=[REDACTED]]&key=a'b\"c",
		`'token': "x', 'pass': ['a', "b"]`,
		"password=\"unterminated",
		"token: [REDACTED] [REDACTED]] Bearer [REDACTED",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		once := redact.Text(s)
		twice := redact.Text(once)
		if once != twice {
			t.Fatalf("not idempotent:\n in:    %q\n once:  %q\n twice: %q", s, once, twice)
		}
		if utf8.ValidString(s) && !utf8.ValidString(once) {
			t.Fatalf("invalid UTF-8 out of valid input %q: %q", s, once)
		}
		// A secret in a known place never survives.
		for _, wrapped := range []string{
			s + ` {"api_key": "FUZZSECRET"}`,
			s + " Bearer FUZZSECRET ",
			s + "\nX-Api-Key: FUZZSECRET\n",
			s + " ?token=FUZZSECRET ",
		} {
			if out := redact.Text(wrapped); containsSecret(out) && !containsSecret(s) {
				t.Fatalf("secret kept: %q -> %q", wrapped, out)
			}
		}
	})
}

func containsSecret(s string) bool {
	for i := 0; i+len("FUZZSECRET") <= len(s); i++ {
		if s[i:i+len("FUZZSECRET")] == "FUZZSECRET" {
			return true
		}
	}
	return false
}

// JSON never panics, always returns valid JSON and is idempotent.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{
		`{"headers":{"Authorization":"Bearer x"},"body":"{\"secret\":\"s\"}","n":1.5e300}`,
		`[{"name":"Cookie","value":["a"]},null,"token=x"]`,
		`"plain"`, `{`, ``, `{"a":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		once := redact.JSON(raw)
		if len(raw) == 0 {
			return
		}
		if !json.Valid(once) {
			t.Fatalf("invalid JSON out: %q -> %q", raw, once)
		}
		if twice := redact.JSON(once); string(twice) != string(once) {
			t.Fatalf("not idempotent:\n in:    %q\n once:  %q\n twice: %q", raw, once, twice)
		}
	})
}
