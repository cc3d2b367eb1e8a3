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
		// The families of IsSensitiveName in each place text puts a name.
		{"signature header and session in an echoed error", "upstream rejected the call: X-Signature: ESECRET25; session_id=ESECRET26",
			"upstream rejected the call: X-Signature: [REDACTED]; session_id=[REDACTED]"},
		{"signature header lines", "403\nX-Signature: ESECRET27\nX-Hub-Signature-256: sha256=ESECRET28\nIdempotency-Key: 7f3a\nContent-Type: text/plain",
			"403\nX-Signature: [REDACTED]\nX-Hub-Signature-256: [REDACTED]\nIdempotency-Key: 7f3a\nContent-Type: text/plain"},
		{"nested json echo", `HTTP 400: {"body":{"nested":{"access_key":"AKIAESECRET29"}},"headers":{"X-Signature":"ESECRET30"},"operation_key":"api"}`,
			`HTTP 400: {"body":{"nested":{"access_key":"[REDACTED]"}},"headers":{"X-Signature":"[REDACTED]"},"operation_key":"api"}`},
		{"camelCase and session json pairs", `{"accessKey": "ESECRET31", "sessionId": "ESECRET32", "idempotencyKey": "k-1", "max_tokens": 512}`,
			`{"accessKey": "[REDACTED]", "sessionId": "[REDACTED]", "idempotencyKey": "k-1", "max_tokens": 512}`},
		{"signed url query", "GET https://b.example/o?X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=ESECRET33&X-Amz-Expires=60&sig=ESECRET34&access_token=ESECRET35&page=2",
			"GET https://b.example/o?X-Amz-Credential=[REDACTED]&X-Amz-Signature=[REDACTED]&X-Amz-Expires=60&sig=[REDACTED]&access_token=[REDACTED]&page=2"},
		{"session cookies", "Cookie sent: JSESSIONID=ESECRET36; PHPSESSID=ESECRET37; theme=dark",
			"Cookie sent: JSESSIONID=[REDACTED]; PHPSESSID=[REDACTED]; theme=dark"},
		{"matrix parameter in a path", "POST https://h.example/app;jsessionid=ESECRET38: dial tcp: connection refused",
			"POST https://h.example/app;jsessionid=[REDACTED]: dial tcp: connection refused"},
		{"go header map with signature", "map[Idempotency-Key:[k-1] X-Signature:[ESECRET39]]", "map[Idempotency-Key:[k-1] X-Signature:[REDACTED]]"},
		{"password families", "login db_pwd=ESECRET40 db_pass=ESECRET41 passwd=ESECRET42 user=ann",
			"login db_pwd=[REDACTED] db_pass=[REDACTED] passwd=[REDACTED] user=ann"},
		{"auth family", "401 for X-Auth-User: ESECRET43 with auth_header=ESECRET44 author=ann", "401 for X-Auth-User: [REDACTED] with auth_header=[REDACTED] author=ann"},
		{"private key json", `{"private_key": "-----BEGIN KEY-----\nESECRET45\n-----END KEY-----", "client_email": "a@b.example"}`,
			`{"private_key": "[REDACTED]", "client_email": "a@b.example"}`},
		{"rebound's own names stay", "Idempotency-Key: 1c2d operation_key=api.example.com idempotency_key=1c2d key_id=k7 primary_key=9",
			"Idempotency-Key: 1c2d operation_key=api.example.com idempotency_key=1c2d key_id=k7 primary_key=9"},
		{"key alone: secret as a parameter, not as a json field", `GET /maps?key=ESECRET46 failed: {"key": "user-9", "value": 3}`,
			`GET /maps?key=[REDACTED] failed: {"key": "user-9", "value": 3}`},
		{"token counts stay", "x-ratelimit-remaining-tokens: 1200 max_tokens=4096", "x-ratelimit-remaining-tokens: 1200 max_tokens=4096"},
		{"challenge stays", "WWW-Authenticate: Basic realm=\"api\"", "WWW-Authenticate: Basic realm=\"api\""},
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
		{"the args of the report", `{"body":{"nested":{"access_key":"AKIAEXAMPLE"}},"headers":{"X-Signature":"abc","Idempotency-Key":"k-1"},"session_id":"xyz","operation_key":"api"}`,
			`{"body":{"nested":{"access_key":"[REDACTED]"}},"headers":{"X-Signature":"[REDACTED]","Idempotency-Key":"k-1"},"session_id":"[REDACTED]","operation_key":"api"}`},
		{"any depth, through arrays", `{"a":[{"b":{"c":[{"d":{"secretKey":"s","x-hub-signature-256":"h","ok":"v"}}]}}]}`,
			`{"a":[{"b":{"c":[{"d":{"secretKey":"[REDACTED]","x-hub-signature-256":"[REDACTED]","ok":"v"}}]}}]}`},
		{"families in one object", `{"accessKey":"1","sessionId":"2","auth_header":"3","db_pwd":"4","jwt":"5","sig":"6","Set-Cookie":"7","credentials":{"u":"8"},"PHPSESSID":"9"}`,
			`{"accessKey":"[REDACTED]","sessionId":"[REDACTED]","auth_header":"[REDACTED]","db_pwd":"[REDACTED]","jwt":"[REDACTED]","sig":"[REDACTED]","Set-Cookie":"[REDACTED]","credentials":"[REDACTED]","PHPSESSID":"[REDACTED]"}`},
		{"shown: own names and look-alikes", `{"operation_key":"api","idempotency_key":"k","key":"user-9","primary_key":7,"public_key":"ssh-ed25519 AAAA","max_tokens":100,"author":"ann","WWW-Authenticate":"Bearer realm=\"x\""}`,
			`{"operation_key":"api","idempotency_key":"k","key":"user-9","primary_key":7,"public_key":"ssh-ed25519 AAAA","max_tokens":100,"author":"ann","WWW-Authenticate":"Bearer realm=\"x\""}`},
		{"signature in a header list", `{"headers":[{"name":"X-Signature","value":"abc"},{"name":"Idempotency-Key","value":"k"}]}`,
			`{"headers":[{"name":"X-Signature","value":"[REDACTED]"},{"name":"Idempotency-Key","value":"k"}]}`},
		{"error text echoed in metadata", `{"output":{"attempts":[{"error":"rejected: X-Signature: abc; session_id=xyz"}]}}`,
			`{"output":{"attempts":[{"error":"rejected: X-Signature: [REDACTED]; session_id=[REDACTED]"}]}}`},
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

// The name rule, both sides: each family caught, and the names that look
// alike but hold no secret (rebound's own operation_key and
// Idempotency-Key first) shown.
func TestIsSensitiveName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want bool
	}{
		// Rule 1: the joined words contain a secret part.
		{"password", true}, {"PASSWORD", true}, {"db_passwd", true}, {"passphrase", true},
		{"client_secret", true}, {"clientSecret", true}, {"AWS_SECRET_ACCESS_KEY", true},
		{"access_token", true}, {"refreshToken", true}, {"X-Auth-Token", true}, {"tokens", true},
		{"credentials", true}, {"X-Amz-Credential", true},
		{"Cookie", true}, {"Set-Cookie", true},
		{"session_id", true}, {"sessionId", true}, {"SESSION", true}, {"JSESSIONID", true}, {"PHPSESSID", true},
		{"X-Signature", true}, {"x-hub-signature-256", true}, {"X-Hub-Signature", true}, {"webhookSignature", true},
		{"Authorization", true}, {"Proxy-Authorization", true}, {"authorisation", true},
		{"api_key", true}, {"apiKey", true}, {"APIKey", true}, {"apikey", true}, {"X-API-KEY", true}, {"x-api-key", true},
		{"api-keys", true}, {"api_key_id", true},
		{"private_key", true}, {"privateKey", true}, {"privatekey", true},
		{"accesskey", true}, {"AWSAccessKeyId", true}, {"access_key_id", true},
		{"csrf_token", true}, {"_csrf", true}, {"X-XSRF-TOKEN", true},
		// Rule 2: a word starting with auth (not author, authenticate).
		{"auth", true}, {"Auth", true}, {"authn", true}, {"authz", true}, {"auth_header", true}, {"authHeader", true},
		{"X-Auth-User", true}, {"authentication", true}, {"authkey", true},
		// Rule 3: a word pwd, pass, jwt or sig.
		{"pwd", true}, {"db_pwd", true}, {"userPwd", true}, {"pass", true}, {"db_pass", true}, {"JWT", true},
		{"id_jwt", true}, {"sig", true}, {"url_sig", true},
		// Rule 4: ends with key or keys after a word that is no public key's.
		{"access_key", true}, {"accessKey", true}, {"AccessKey", true}, {"access-key", true}, {"secret_key", true},
		{"encryption_key", true}, {"signingKey", true}, {"ssh_keys", true}, {"license-key", true}, {"X-Key", true},
		{"body.nested.access_key", true}, {"hmac_key", true},

		// Shown: rebound's own names and look-alikes.
		{"operation_key", false}, {"operationKey", false}, {"OperationKey", false},
		{"idempotency_key", false}, {"Idempotency-Key", false}, {"idempotencyKey", false}, {"X-Idempotency-Key", false},
		{"key", false}, {"Key", false}, {"keys", false}, {"key_id", false}, {"kms_key_id", false}, {"keyboard", false},
		{"monkey", false}, {"hotkey", false},
		{"primary_key", false}, {"foreign-key", false}, {"partitionKey", false}, {"sort_key", false},
		{"shard_key", false}, {"routing_key", false}, {"cache_key", false}, {"dedup_key", false},
		{"deduplication_key", false}, {"unique_key", false}, {"public_key", false}, {"publicKey", false},
		{"author", false}, {"Authority", false}, {"authored_at", false}, {"WWW-Authenticate", false},
		{"Proxy-Authenticate", false}, {"authenticated", false}, {"oauth_provider", false},
		{"passenger", false}, {"passport", false}, {"bypass", false}, {"compass", false},
		{"max_tokens", false}, {"maxTokens", false}, {"prompt_tokens", false}, {"completion_tokens", false},
		{"total_tokens", false}, {"x-ratelimit-remaining-tokens", false}, {"x-ratelimit-limit-tokens", false},
		{"signal", false}, {"design", false}, {"assignee", false}, {"sign_in_url", false},
		{"url", false}, {"name", false}, {"user", false}, {"username", false}, {"email", false}, {"id", false},
		{"kind", false}, {"queue", false}, {"", false}, {"---", false}, {"Ünïcode_naïve", false},
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
		"upstream rejected the call: X-Signature: abc; session_id=xyz",
		"X-Hub-Signature-256: sha256=abc\nIdempotency-Key: k\nmap[X-Signature:[abc]]",
		`{"body":{"nested":{"access_key":"AKIA"}},"accessKey":"x","max_tokens":2}`,
		"?X-Amz-Signature=a&sig=b;jsessionid=c&key=d&operation_key=e",
		"ÀccessKéy=1 sessionÏD=2 aUTH_x=3 _=4 -key=5 key_=6",
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
		`{"body":{"nested":{"access_key":"AKIAEXAMPLE"}},"headers":{"X-Signature":"abc"},"session_id":"xyz"}`,
		`{"operation_key":"api","Idempotency-Key":"k","max_tokens":1,"a":[{"b":[{"sessionId":null}]}]}`,
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
