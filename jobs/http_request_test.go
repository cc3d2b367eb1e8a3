package jobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestParseHTTPRequestArgs(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	tests := []struct {
		name    string
		raw     string
		want    jobs.HTTPRequestArgs
		wantErr string
	}{
		{name: "minimal", raw: `{"url": "https://api.example.com/hook"}`, want: jobs.HTTPRequestArgs{URL: "https://api.example.com/hook"}},
		{name: "full", raw: `{"url": "http://h:8080/p?q=1", "method": "put", "headers": {"X-A": "1"}, "body": [1, 2], "timeout_seconds": 2.5, "operation_key": "k"}`,
			want: jobs.HTTPRequestArgs{URL: "http://h:8080/p?q=1", Method: "put", Headers: map[string]string{"X-A": "1"}, Body: []byte(`[1, 2]`), TimeoutSeconds: 2.5, ExplicitOperationKey: "k"}},
		{name: "no url", raw: `{}`, wantErr: "invalid args: url is required"},
		{name: "ftp url", raw: `{"url": "ftp://h/x"}`, wantErr: `invalid args: url must be absolute http or https, got "ftp://h/x"`},
		{name: "no host", raw: `{"url": "http:///x"}`, wantErr: "invalid args: url has no host"},
		{name: "unparsable url", raw: `{"url": "http://[::1"}`, wantErr: "invalid args: url: missing ']' in host"},
		{name: "secret kept out of message", raw: `{"url": "ftp://user:pw@h/x?token=s"}`, wantErr: `got "ftp://h/x"`},
		{name: "bad method", raw: `{"url": "http://h", "method": "BREW"}`, wantErr: `invalid args: method "BREW" is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`},
		{name: "bad header name", raw: `{"url": "http://h", "headers": {"X A": "1"}}`, wantErr: `invalid args: headers: "X A" is not a valid header name`},
		{name: "negative timeout", raw: `{"url": "http://h", "timeout_seconds": -1}`, wantErr: "invalid args: timeout_seconds must be between 0 (default 30) and 3600, got -1"},
		{name: "timeout beyond float64", raw: `{"url": "http://h", "timeout_seconds": 1e400}`, wantErr: "invalid args: timeout_seconds 1e400 is out of range"},
		{name: "unknown field", raw: `{"url": "http://h", "retries": 3}`, wantErr: `invalid args: unknown field "retries"`},
		{name: "duplicate url", raw: `{"url": "http://a/", "url": "http://evil/"}`, wantErr: `invalid args: key "url" appears twice in the args`},
		{name: "duplicate nested key", raw: `{"url": "http://a/", "headers": {"X": "1", "X": "2"}}`, wantErr: `invalid args: key "X" appears twice in the args.headers`},
		{name: "url twice in another case", raw: `{"url": "http://127.0.0.1:1/ok", "URL": "http://x"}`, wantErr: `invalid args: keys "url" and "URL" in the args differ only in case; give one`},
		{name: "a field name in another case", raw: `{"Url": "http://x"}`, wantErr: `invalid args: unknown field "Url" in the args (field names are exact: "url")`},
		{name: "operation_key in upper case", raw: `{"url": "http://a/", "OPERATION_KEY": "k"}`, wantErr: `invalid args: unknown field "OPERATION_KEY" in the args (field names are exact: "operation_key")`},
		{name: "headers differing only in case", raw: `{"url": "http://a/", "headers": {"Idempotency-Key": "A", "idempotency-key": "B"}}`, wantErr: `invalid args: keys "Idempotency-Key" and "idempotency-key" in the args.headers differ only in case; give one`},
		{name: "a body's keys are the upstream's business", raw: `{"url": "http://a/", "body": {"a": 1, "A": 2}}`, want: jobs.HTTPRequestArgs{URL: "http://a/", Body: []byte(`{"a": 1, "A": 2}`)}},
		{name: "byte order mark", raw: "\xef\xbb\xbf" + `{"url": "https://api.example.com/hook"}`, want: jobs.HTTPRequestArgs{URL: "https://api.example.com/hook"}},
		{name: "operation key too long", raw: `{"url": "http://a/", "operation_key": "` + strings.Repeat("k", 201) + `"}`, wantErr: "invalid args: operation_key must be at most 200 characters (got 201)"},
		{name: "operation key with a newline", raw: `{"url": "http://a/", "operation_key": "a\nb"}`, wantErr: `invalid args: operation_key: invalid operation key "a\nb": control character U+000A at byte 1`},
		{name: "wrong type", raw: `{"url": "http://h", "headers": ["a"]}`, wantErr: "invalid args: headers must be an object, not an array"},
		{name: "url not a string", raw: `{"url": 5}`, wantErr: "invalid args: url must be a string, not a number"},
		{name: "args an array", raw: `[]`, wantErr: "invalid args: the args must be a JSON object, not an array"},
		{name: "args null", raw: ` null `, wantErr: "invalid args: the args must be a JSON object, not null"},
		{name: "args null after a byte order mark", raw: "\xef\xbb\xbfnull", wantErr: "invalid args: the args must be a JSON object, not null"},
		{name: "blank operation key", raw: `{"url": "http://a/", "operation_key": "  "}`, wantErr: `invalid args: operation_key: invalid operation key "  ": blank`},
		{name: "url in invalid UTF-8", raw: "{\"url\": \"http://a/caf\xe9\"}", wantErr: "invalid args: args.url: contains invalid UTF-8 (byte 0xe9), which PostgreSQL cannot store"},
		{name: "url with a lone surrogate", raw: `{"url": "http://a/\ud800"}`, wantErr: `invalid args: args.url: contains an unpaired UTF-16 surrogate (\ud800), which PostgreSQL cannot store`},
		{name: "operation key in invalid UTF-8", raw: "{\"url\": \"http://a/\", \"operation_key\": \"k\xff\"}", wantErr: "invalid args: args.operation_key: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store"},
		{name: "operation key in invalid UTF-8 after a byte order mark", raw: "\xef\xbb\xbf{\"url\": \"http://a/\", \"operation_key\": \"k\xff\"}", wantErr: "invalid args: operation_key: not valid UTF-8"},
		{name: "operation key with a lone surrogate", raw: `{"url": "http://a/", "operation_key": "\udfffk"}`, wantErr: `invalid args: args.operation_key: contains an unpaired UTF-16 surrogate (\udfff), which PostgreSQL cannot store`},
		{name: "U+FFFD sent as such is kept", raw: `{"url": "http://a/\ufffd", "operation_key": "k�"}`, want: jobs.HTTPRequestArgs{URL: "http://a/\uFFFD", ExplicitOperationKey: "k\uFFFD"}},
		{name: "a pair in the url", raw: `{"url": "http://a/\ud83d\ude00"}`, want: jobs.HTTPRequestArgs{URL: "http://a/😀"}},
		{name: "not JSON", raw: `notjson`, wantErr: `invalid args: not valid JSON: expected a JSON object {...}, got "notjson" (invalid character 'o' at byte 2)`},
		{name: "a secret in what is not JSON", raw: `Authorization: Bearer sk_live_abcdef`, wantErr: `got "Authorization: Bearer [REDACTED]" (invalid character 'A' looking for beginning of value at byte 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args, err := reg.Parse(jobs.KindHTTPRequest, []byte(tt.raw))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, jobs.ErrInvalidArgs)
				require.ErrorContains(t, err, tt.wantErr)
				require.NotContains(t, err.Error(), "pw")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, args)
		})
	}

	_, err := reg.Parse("email", []byte(`{}`))
	var unknown *jobs.UnknownKindError
	require.ErrorAs(t, err, &unknown)
	require.Equal(t, `unknown job kind "email" (known kinds: http_request, synthetic, weekly_intelligence)`, err.Error())
}

func TestOperationKey(t *testing.T) {
	t.Parallel()
	reg := jobs.Builtin()
	tests := []struct {
		name, kind, args, metadata, want string
	}{
		{"explicit key", "http_request", `{"url": "http://a.example/x", "operation_key": "billing"}`, `{}`, "billing"},
		{"host with port, lower-cased", "http_request", `{"url": "HTTPS://API.Example.com:8443/x"}`, ``, "api.example.com:8443"},
		{"metadata wins", "http_request", `{"url": "http://a.example/x"}`, `{"operation_key": "stamped"}`, "stamped"},
		{"malformed args fall back to the kind", "http_request", `{not json`, ``, "http_request"},
		{"unknown kind is its own key", "report", `{}`, ``, "report"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, reg.OperationKey(tt.kind, []byte(tt.args), []byte(tt.metadata)))
		})
	}
}

func TestNormalizeOperationKey(t *testing.T) {
	t.Parallel()
	short := strings.Repeat("é", 200)
	require.Equal(t, short, jobs.NormalizeOperationKey(short))
	long := strings.Repeat("é", 6000)
	got := jobs.NormalizeOperationKey(long)
	require.Equal(t, 200, utf8.RuneCountInString(got))
	sum := sha256.Sum256([]byte(long))
	require.Equal(t, strings.Repeat("é", 183)+"…"+hex.EncodeToString(sum[:])[:16], got)
	require.Equal(t, got, jobs.NormalizeOperationKey(long), "stable")
	require.NotEqual(t, got, jobs.NormalizeOperationKey(long+"x"))
	// Keys stamped by other producers are normalised too.
	reg := jobs.Builtin()
	require.Equal(t, got, reg.OperationKey("http_request", nil, []byte(`{"operation_key": "`+long+`"}`)))
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	require.Equal(t, "rebound-42-homyrq8e80", jobs.IdempotencyKey(42, at))
	require.Equal(t, jobs.IdempotencyKey(42, at), jobs.IdempotencyKey(42, at))
	require.NotEqual(t, jobs.IdempotencyKey(42, at), jobs.IdempotencyKey(43, at))
	require.NotEqual(t, jobs.IdempotencyKey(42, at), jobs.IdempotencyKey(42, at.Add(time.Microsecond)))
}

func job(args jobs.HTTPRequestArgs) *river.Job[jobs.HTTPRequestArgs] {
	return &river.Job[jobs.HTTPRequestArgs]{
		JobRow: &rivertype.JobRow{ID: 7, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Attempt: 1, MaxAttempts: 5},
		Args:   args,
	}
}

// The worker against a real HTTP server: what it sends, what it returns.
func TestHTTPRequestWorker(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	type seen struct {
		method, path, contentType, idemKey, userAgent, custom, body string
	}
	tests := []struct {
		name       string
		args       func(base string) jobs.HTTPRequestArgs
		respond    func(w http.ResponseWriter)
		want       seen
		wantErr    string
		wantStatus int
		wantWait   time.Duration
		wantClass  retrypolicy.Class
	}{
		{
			name: "2xx with a JSON body",
			args: func(b string) jobs.HTTPRequestArgs {
				return jobs.HTTPRequestArgs{URL: b + "/hook", Body: []byte(`{"a":1}`)}
			},
			respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) },
			want:    seen{method: "POST", path: "/hook", contentType: "application/json", idemKey: "rebound-7-hegozy2b7k", userAgent: "rebound/1", body: `{"a":1}`},
		},
		{
			name: "GET without body, own headers kept",
			args: func(b string) jobs.HTTPRequestArgs {
				return jobs.HTTPRequestArgs{URL: b + "/x", Method: "get", Headers: map[string]string{"Idempotency-Key": "mine", "User-Agent": "me", "X-Custom": "c"}}
			},
			respond: func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) },
			want:    seen{method: "GET", path: "/x", idemKey: "mine", userAgent: "me", custom: "c"},
		},
		{
			name: "429 with delta-seconds Retry-After",
			args: func(b string) jobs.HTTPRequestArgs { return jobs.HTTPRequestArgs{URL: b + "/r?token=secret"} },
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", "120")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, "slow down")
			},
			want:       seen{method: "POST", path: "/r", idemKey: "rebound-7-hegozy2b7k", userAgent: "rebound/1"},
			wantErr:    "/r: HTTP 429 Too Many Requests (Retry-After: 120): slow down",
			wantStatus: 429, wantWait: 120 * time.Second, wantClass: retrypolicy.ClassRateLimited,
		},
		{
			name: "503 with an HTTP-date Retry-After 60s ahead",
			args: func(b string) jobs.HTTPRequestArgs { return jobs.HTTPRequestArgs{URL: b + "/d"} },
			respond: func(w http.ResponseWriter) {
				w.Header().Set("Retry-After", now.Add(60*time.Second).Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
			},
			want:       seen{method: "POST", path: "/d", idemKey: "rebound-7-hegozy2b7k", userAgent: "rebound/1"},
			wantErr:    "HTTP 503 Service Unavailable",
			wantStatus: 503, wantWait: 60 * time.Second, wantClass: retrypolicy.ClassServerError,
		},
		{
			name: "an echoed secret is redacted",
			args: func(b string) jobs.HTTPRequestArgs { return jobs.HTTPRequestArgs{URL: b + "/echo"} },
			respond: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, `{"error": "bad", "api_key": "ESECRET2", "auth": "Bearer ESECRET1"}`)
			},
			want:       seen{method: "POST", path: "/echo", idemKey: "rebound-7-hegozy2b7k", userAgent: "rebound/1"},
			wantErr:    `HTTP 400 Bad Request: {"error": "bad", "api_key": "[REDACTED]", "auth": "[REDACTED]"}`,
			wantStatus: 400, wantClass: retrypolicy.ClassBadRequest,
		},
		{
			name: "an echoed signature, session and nested key are redacted",
			args: func(b string) jobs.HTTPRequestArgs { return jobs.HTTPRequestArgs{URL: b + "/sig"} },
			respond: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `denied: X-Signature: ESECRET3 does not match; session_id=ESECRET4; request {"body":{"nested":{"access_key":"ESECRET5"}}}`)
			},
			want:       seen{method: "POST", path: "/sig", idemKey: "rebound-7-hegozy2b7k", userAgent: "rebound/1"},
			wantErr:    `HTTP 401 Unauthorized: denied: X-Signature: [REDACTED] does not match; session_id=[REDACTED]; request {"body":{"nested":{"access_key":"[REDACTED]"}}}`,
			wantStatus: 401, wantClass: retrypolicy.ClassUnauthorized,
		},
		{
			name: "404 body cut at the limit",
			args: func(b string) jobs.HTTPRequestArgs { return jobs.HTTPRequestArgs{URL: b + "/gone"} },
			respond: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusNotFound)
				_, _ = io.WriteString(w, strings.Repeat("x", 2000))
			},
			want:       seen{method: "POST", path: "/gone", idemKey: "rebound-7-hegozy2b7k", userAgent: "rebound/1"},
			wantErr:    "HTTP 404 Not Found: " + strings.Repeat("x", jobs.HTTPErrorBodyLimit),
			wantStatus: 404, wantClass: retrypolicy.ClassNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got seen
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				got = seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"), r.Header.Get("User-Agent"), r.Header.Get("X-Custom"), string(b)}
				tt.respond(w)
			}))
			defer srv.Close()
			w := &jobs.HTTPRequestWorker{Now: func() time.Time { return now }}
			err := w.Work(context.Background(), job(tt.args(srv.URL)))
			require.Equal(t, tt.want, got)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), "secret")
			require.NotContains(t, err.Error(), "SECRET")
			var se *jobs.HTTPStatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, tt.wantStatus, se.StatusCode())
			require.Equal(t, tt.wantWait, se.RetryAfter())
			require.Equal(t, tt.wantClass, retrypolicy.Classify(err))
		})
	}
}

// A shutdown is seen as one: the job's error keeps context.Canceled. (The
// class of every other transport failure: TestHTTPRequestTransportErrorClasses.)
func TestHTTPRequestWorkerTransportErrors(t *testing.T) {
	t.Parallel()
	w := &jobs.HTTPRequestWorker{}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	defer slow.Close()

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := w.Work(ctx, job(jobs.HTTPRequestArgs{URL: slow.URL}))
	require.True(t, errors.Is(err, context.Canceled), "shutdown keeps context.Canceled: %v", err)

	// River stops a client by cancelling job contexts with its own cause,
	// which net/http returns instead of context.Canceled.
	stop := errors.New("stop initiated")
	cctx, ccancel := context.WithCancelCause(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); ccancel(stop) }()
	err = w.Work(cctx, job(jobs.HTTPRequestArgs{URL: slow.URL}))
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorIs(t, err, stop)
}

// River knows an http_request job by timeout_seconds + the rescue grace
// (default 15 s): its rescuer never takes back a job within that time of its
// attempt's start.
func TestHTTPRequestTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		grace   time.Duration
		seconds float64
		want    time.Duration
	}{
		{name: "defaults", want: 45 * time.Second},
		{name: "fraction", seconds: 2.5, want: 17500 * time.Millisecond},
		{name: "longest", seconds: jobs.MaxHTTPTimeoutSeconds, want: time.Hour + 15*time.Second},
		{name: "own grace", grace: time.Second, seconds: 0.5, want: 1500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := &jobs.HTTPRequestWorker{RescueGrace: tt.grace}
			require.Equal(t, tt.want, w.Timeout(job(jobs.HTTPRequestArgs{URL: "http://h", TimeoutSeconds: tt.seconds})))
		})
	}
	require.Equal(t, 15*time.Second, jobs.DefaultRescueGrace)
}

// The job stops its request itself at timeout_seconds, without waiting for
// River's later deadline: class timeout.
func TestHTTPRequestStopsAtItsOwnDeadline(t *testing.T) {
	t.Parallel()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer slow.Close()
	w := &jobs.HTTPRequestWorker{}
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		done <- w.Work(context.Background(), job(jobs.HTTPRequestArgs{URL: slow.URL, TimeoutSeconds: 0.3}))
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Equal(t, retrypolicy.ClassTimeout, retrypolicy.Classify(err))
		require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)
	case <-time.After(5 * time.Second): // the upstream would answer after 10 s
		t.Fatal("the request outlived its timeout_seconds")
	}
}

// Go callers inserting HTTPRequestArgs directly get the same refusal as
// enqueue: a url that is not UTF-8 (an operation key is covered by
// breaker.ValidateKey).
func TestValidateRefusesInvalidUTF8(t *testing.T) {
	t.Parallel()
	require.EqualError(t, jobs.HTTPRequestArgs{URL: "http://a/\xff"}.Validate(), "invalid args: url: not valid UTF-8")
	require.EqualError(t, jobs.HTTPRequestArgs{URL: "http://a/", ExplicitOperationKey: "k\xff"}.Validate(), `invalid args: operation_key: invalid operation key "k\xff": not valid UTF-8`)
	require.NoError(t, jobs.HTTPRequestArgs{URL: "http://a/é"}.Validate())
}
