package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/tidwall/gjson"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/internal/strictjson"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// KindHTTPRequest is the kind of [HTTPRequestArgs].
const KindHTTPRequest = "http_request"

// Defaults and limits of an http_request job.
const (
	// DefaultHTTPMethod is the method when args give none.
	DefaultHTTPMethod = http.MethodPost
	// DefaultHTTPTimeoutSeconds is the whole-request timeout when args give
	// none, in seconds. The job's River timeout follows it (see
	// [HTTPRequestWorker.Timeout]; River's own default would be 1 minute).
	DefaultHTTPTimeoutSeconds = 30
	// MaxHTTPTimeoutSeconds is the largest timeout_seconds accepted, in
	// seconds (1 hour).
	MaxHTTPTimeoutSeconds = 3600
	// HTTPErrorBodyLimit is how much of a non-2xx response body is kept in
	// the error (and so in the job's errors), in bytes.
	HTTPErrorBodyLimit = 512
	// IdempotencyKeyHeader carries a key that is the same on every attempt
	// of one job and differs between jobs.
	IdempotencyKeyHeader = "Idempotency-Key"
)

// HTTPRequestArgs are the args of an http_request job: one HTTP request,
// delivered at least once.
//
// JSON shape:
//
//	{"url": "https://api.example.com/hook",   // required, absolute http(s)
//	 "method": "POST",                        // default POST
//	 "headers": {"X-Token": "..."},           // optional
//	 "body": {"any": "JSON"},                 // optional, sent as JSON
//	 "timeout_seconds": 30,                   // default 30, at most 3600
//	 "operation_key": "api.example.com"}      // default: the URL's host
//
// Each field's help tag is what `enqueue http_request --help` lists.
type HTTPRequestArgs struct {
	// URL is the absolute http or https URL to call, valid UTF-8. Required.
	URL string `json:"url" help:"required: the absolute http or https URL to call"`
	// Method is the HTTP method (GET, HEAD, POST, PUT, PATCH, DELETE or
	// OPTIONS). Default POST.
	Method string `json:"method,omitempty" help:"GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS (default POST)"`
	// Headers are added to the request. An Idempotency-Key given here is
	// used as it is; otherwise rebound sets one derived from the job.
	Headers map[string]string `json:"headers,omitempty" help:"request headers, name to value; an Idempotency-Key given here is sent as it is, otherwise rebound sends one derived from the job"`
	// Body is sent as the request body, as the JSON it is (Content-Type
	// application/json unless Headers say otherwise). Absent or null sends
	// no body.
	Body json.RawMessage `json:"body,omitempty" help:"sent as the request body, as the JSON it is (Content-Type application/json unless headers say otherwise); absent or null: no body"`
	// TimeoutSeconds bounds the whole request (connect, send, response
	// body), in seconds; fractions allowed. Default 30, at most 3600.
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty" help:"bound of the whole request in seconds, fractions allowed (default 30, at most 3600)"`
	// ExplicitOperationKey (JSON operation_key) names the circuit breaker
	// this job shares with others: at most MaxOperationKeyLength characters
	// of valid UTF-8, not blank, no control characters
	// (breaker.ValidateKey). Empty means the URL's host (with its port, if
	// any), lower-cased; see [HTTPRequestArgs.OperationKey].
	ExplicitOperationKey string `json:"operation_key,omitempty" help:"the circuit breaker this job shares with others, at most 200 characters (default: the URL's host, with its port)"`
}

// OperationKey implements [OperationKeyer]: operation_key when given, else
// the URL's host (with its port, if any), lower-cased ([URLHost]).
func (a HTTPRequestArgs) OperationKey() string {
	if a.ExplicitOperationKey != "" {
		return a.ExplicitOperationKey
	}
	return URLHost(a.URL)
}

// Kind implements river.JobArgs.
func (HTTPRequestArgs) Kind() string { return KindHTTPRequest }

// InsertOpts gives http_request jobs the seed's default of 5 attempts
// (River's own default is 25). An insert's own MaxAttempts wins.
func (HTTPRequestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: retrypolicy.DefaultMaxAttempts}
}

// Timeout is the request timeout the args ask for, or the default.
func (a HTTPRequestArgs) Timeout() time.Duration {
	s := a.TimeoutSeconds
	if s <= 0 {
		s = DefaultHTTPTimeoutSeconds
	}
	return time.Duration(s * float64(time.Second))
}

// MethodOrDefault is the method the args ask for, or POST.
func (a HTTPRequestArgs) MethodOrDefault() string {
	if a.Method == "" {
		return DefaultHTTPMethod
	}
	return strings.ToUpper(a.Method)
}

var httpMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Validate reports the first problem with the args, naming the field, as an
// error wrapping [ErrInvalidArgs]; nil when they can be delivered.
func (a HTTPRequestArgs) Validate() error {
	if err := a.validateRequest(); err != nil {
		return err
	}
	if a.ExplicitOperationKey != "" {
		if n := utf8.RuneCountInString(a.ExplicitOperationKey); n > MaxOperationKeyLength {
			return fmt.Errorf("%w: operation_key must be at most %d characters (got %d)", ErrInvalidArgs, MaxOperationKeyLength, n)
		}
		// The circuit breaker's rule: not blank, no control characters.
		if err := breaker.ValidateKey(a.ExplicitOperationKey); err != nil {
			return fmt.Errorf("%w: operation_key: %v", ErrInvalidArgs, err)
		}
	}
	if math.IsNaN(a.TimeoutSeconds) || a.TimeoutSeconds < 0 || a.TimeoutSeconds > MaxHTTPTimeoutSeconds {
		return fmt.Errorf("%w: timeout_seconds must be between 0 (default %d) and %d, got %v",
			ErrInvalidArgs, DefaultHTTPTimeoutSeconds, MaxHTTPTimeoutSeconds, a.TimeoutSeconds)
	}
	return nil
}

// validateRequest is the part of Validate about the request itself: url,
// method, headers. (A job whose operation key or timeout another producer
// set out of range is still delivered: the registry shortens a long key,
// the breaker gate dead-letters an invalid one.)
func (a HTTPRequestArgs) validateRequest() error {
	if a.URL == "" {
		return fmt.Errorf("%w: url is required", ErrInvalidArgs)
	}
	if !utf8.ValidString(a.URL) {
		return fmt.Errorf("%w: url: not valid UTF-8", ErrInvalidArgs)
	}
	u, err := url.Parse(a.URL)
	if err != nil {
		return fmt.Errorf("%w: url: %v", ErrInvalidArgs, unwrapURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: url must be absolute http or https, got %q", ErrInvalidArgs, redactURL(a.URL))
	}
	if u.Host == "" {
		return fmt.Errorf("%w: url has no host", ErrInvalidArgs)
	}
	if !httpMethods[a.MethodOrDefault()] {
		return fmt.Errorf("%w: method %q is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS", ErrInvalidArgs, a.Method)
	}
	for name, value := range a.Headers {
		if !validHeaderName(name) {
			return fmt.Errorf("%w: headers: %q is not a valid header name", ErrInvalidArgs, name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return fmt.Errorf("%w: headers: the value of %q contains a line break or NUL", ErrInvalidArgs, name)
		}
	}
	return nil
}

// HTTPRequestKind is the registry entry of http_request.
func HTTPRequestKind() Kind {
	return Kind{
		Name: KindHTTPRequest,
		Parse: func(raw []byte) (river.JobArgs, error) {
			var a HTTPRequestArgs
			if err := decodeStrict(raw, &a); err != nil {
				return nil, err
			}
			// Decoding turned bytes that are not UTF-8 (and lone \ud800
			// escapes) into U+FFFD; refuse them rather than call, and key a
			// breaker by, something other than what was sent. Both need a
			// backslash or invalid UTF-8 in the line: without them there is
			// nothing to look for.
			unmarked := bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // as decodeStrict reads it
			plain := bytes.IndexByte(unmarked, '\\') < 0 && utf8.Valid(unmarked)
			for _, field := range []string{"url", "operation_key"} {
				if plain {
					break
				}
				if err := strictjson.Check([]byte(gjson.GetBytes(unmarked, field).Raw)); err != nil {
					return nil, fmt.Errorf("%w: %s: %v", ErrInvalidArgs, field, err)
				}
			}
			if err := a.Validate(); err != nil {
				return nil, err
			}
			return a, nil
		},
		OperationKey: ArgsOperationKey[HTTPRequestArgs],
		Args:         ArgsOf(HTTPRequestArgs{}),
		AddWorker: func(workers *river.Workers, deps WorkerDeps) error {
			return river.AddWorkerSafely(workers, &HTTPRequestWorker{Client: deps.HTTPClient, RescueGrace: deps.RescueGrace})
		},
	}
}

// URLHost returns the lower-cased host (with port, if any) of rawURL, or ""
// when it has none. It is the default operation key of http_request.
func URLHost(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// HTTPResult is what an http_request job records as its result (under
// "result" in the job's metadata.output), on success and on failure.
type HTTPResult struct {
	// Status is the response's status code.
	Status int `json:"status"`
	// LatencyMS is the time from sending the request to reading the
	// response headers, in milliseconds.
	LatencyMS float64 `json:"latency_ms"`
}

// HTTPStatusError is returned by an http_request job whose response was
// not 2xx. The retry policy classifies it by behaviour: StatusCode and
// RetryAfter.
type HTTPStatusError struct {
	// Method and URL of the request; the URL has no query string or user
	// info (they may hold secrets, and errors are stored on the job).
	Method, URL string
	// Status is the response's status code.
	Status int
	// RetryAfterValue is the raw Retry-After header, "" when absent.
	RetryAfterValue string
	// Wait is the Retry-After header read as a duration when the response
	// arrived (RFC 9110 section 10.2.3: delta-seconds or an HTTP-date);
	// 0 when absent or unreadable.
	Wait time.Duration
	// Body is the start of the response body, at most
	// [HTTPErrorBodyLimit] bytes, with secrets (API keys, tokens,
	// passwords, Authorization values) replaced by redact.Marker. It is
	// kept as the upstream sent it, NUL and invalid UTF-8 included: the
	// attempt recorder makes the text River stores storable (package
	// storable), and Go callers keep the original.
	Body string
}

func (e *HTTPStatusError) Error() string {
	msg := fmt.Sprintf("%s %s: HTTP %d %s", e.Method, e.URL, e.Status, http.StatusText(e.Status))
	if e.RetryAfterValue != "" {
		msg += " (Retry-After: " + e.RetryAfterValue + ")"
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// StatusCode is the response's status code.
func (e *HTTPStatusError) StatusCode() int { return e.Status }

// RetryAfter is how long the server asked to wait (0 when it did not).
func (e *HTTPStatusError) RetryAfter() time.Duration { return e.Wait }

// HTTPRequestWorker works http_request jobs.
type HTTPRequestWorker struct {
	river.WorkerDefaults[HTTPRequestArgs]

	// Client sends the requests. nil means [NewHTTPClient]'s. A client
	// without a CheckRedirect gets [CheckRedirect], so a redirect loop is a
	// [*RedirectError] whatever the client.
	Client *http.Client
	// UserAgent is sent unless the job's headers set one. Default
	// "rebound/1".
	UserAgent string
	// Now is the clock used to read Retry-After dates. nil means time.Now.
	Now func() time.Time
	// RescueGrace is added to timeout_seconds to give River the job's
	// timeout (see [HTTPRequestWorker.Timeout]). 0 means
	// [DefaultRescueGrace].
	RescueGrace time.Duration
}

// NewHTTPClient returns the client http_request workers use by default: no
// overall timeout (each job's timeout_seconds bounds its request through
// the context), keep-alive connections shared by all jobs (up to 64 idle
// per host), at most [MaxHTTPRedirects] redirects, to http and https URLs
// only ([CheckRedirect]), the proxy from the environment (HTTPS_PROXY,
// HTTP_PROXY, NO_PROXY) with a refused CONNECT reported as a
// [*ProxyConnectError].
func NewHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.OnProxyConnectResponse = proxyConnectResponse
	return &http.Client{Transport: t, CheckRedirect: CheckRedirect}
}

// Timeout is the timeout River knows the job by: the args' timeout_seconds
// plus RescueGrace (default [DefaultRescueGrace], 15 s). Work stops the
// request itself at timeout_seconds; River's deadline is a backstop, and
// River's rescuer leaves a running job alone until this much time has
// passed since its attempt started (its rule: a kind's own timeout wins
// over RescueStuckJobsAfter when longer). The grace covers a difference
// between the rescuing pod's clock and the database's (River compares the
// pod's time.Now with attempted_at, which PostgreSQL sets) and the time to
// save the job's result, so a job still within its deadline is never
// rescued and run twice.
func (w *HTTPRequestWorker) Timeout(job *river.Job[HTTPRequestArgs]) time.Duration {
	grace := w.RescueGrace
	if grace <= 0 {
		grace = DefaultRescueGrace
	}
	return job.Args.Timeout() + grace
}

// Work sends the request, bounded by timeout_seconds (connect, send,
// response body). A transport error is returned wrapped (so the retry policy
// sees the net.Error, syscall error, x509 error or context error inside), as
// a [*TransportError] when net/http gives it no type the retry policy reads,
// a [*RedirectError] or a [*ProxyConnectError]; a non-2xx response is an
// [*HTTPStatusError] (an error reading its body is ignored: the status
// decides). A url, method or headers that do not validate (a job inserted
// past enqueue's checks) end the job at once as class bad_request, without a
// request. The status and latency are recorded as the job's result when a
// response arrives.
func (w *HTTPRequestWorker) Work(ctx context.Context, job *river.Job[HTTPRequestArgs]) error {
	a := job.Args
	if err := a.validateRequest(); err != nil {
		return errInvalidArgs(err)
	}
	// The job's own deadline: River's (see Timeout) comes RescueGrace later.
	ctx, cancel := context.WithTimeout(ctx, a.Timeout())
	defer cancel()
	method := a.MethodOrDefault()
	var body io.Reader
	if len(a.Body) > 0 && !bytes.Equal(bytes.TrimSpace(a.Body), []byte("null")) {
		body = bytes.NewReader(a.Body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.URL, body)
	if err != nil {
		return retrypolicy.Permanent(fmt.Errorf("build request: %w", err))
	}
	for name, value := range a.Headers {
		req.Header.Set(name, value)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get(IdempotencyKeyHeader) == "" {
		req.Header.Set(IdempotencyKeyHeader, IdempotencyKey(job.ID, job.CreatedAt))
	}
	if req.Header.Get("User-Agent") == "" {
		ua := w.UserAgent
		if ua == "" {
			ua = "rebound/1"
		}
		req.Header.Set("User-Agent", ua)
	}

	client := w.Client
	if client == nil {
		client = defaultHTTPClient
	} else if client.CheckRedirect == nil {
		// net/http's default policy reports a redirect loop by message
		// alone; use ours, which gives it a type.
		c := *client
		c.CheckRedirect = CheckRedirect
		client = &c
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		err = unwrapURLError(err)
		if ctxErr := ctx.Err(); ctxErr != nil {
			if !errors.Is(err, ctxErr) {
				// net/http reports a context cancelled with a cause (River's
				// stop) by that cause alone; keep context.Canceled (or
				// DeadlineExceeded) in the chain so a shutdown is seen as one.
				return fmt.Errorf("%s %s: %w (%w)", method, redactURL(a.URL), err, ctxErr)
			}
			return fmt.Errorf("%s %s: %w", method, redactURL(a.URL), err)
		}
		return fmt.Errorf("%s %s: %w", method, redactURL(a.URL), classifyTransport(err))
	}
	latency := time.Since(start)
	defer resp.Body.Close()

	_ = retrypolicy.RecordResult(ctx, HTTPResult{Status: resp.StatusCode, LatencyMS: float64(latency.Microseconds()) / 1000})

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// Drain (bounded) so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, HTTPErrorBodyLimit))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	e := &HTTPStatusError{
		Method:          method,
		URL:             redactURL(a.URL),
		Status:          resp.StatusCode,
		RetryAfterValue: resp.Header.Get("Retry-After"),
		// Upstreams often echo the request: the snippet is stored in the
		// job's errors and logged, so secrets in it are hidden here.
		Body: redact.Text(strings.TrimSpace(string(snippet))),
	}
	if e.RetryAfterValue != "" {
		now := time.Now
		if w.Now != nil {
			now = w.Now
		}
		if d, ok := retrypolicy.ParseRetryAfter(e.RetryAfterValue, now()); ok {
			e.Wait = d
		}
	}
	return e
}

var defaultHTTPClient = NewHTTPClient()

// IdempotencyKey is the Idempotency-Key rebound sends for the job with
// this ID and creation time: the same on every attempt of the job,
// different for every job (IDs are unique within a database, and the
// creation time tells apart jobs of databases that were reset).
func IdempotencyKey(jobID int64, createdAt time.Time) string {
	return "rebound-" + strconv.FormatInt(jobID, 10) + "-" + strconv.FormatInt(createdAt.UnixMicro(), 36)
}

// redactURL drops user info, query and fragment from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	u.RawQuery = ""
	u.Fragment = ""
	u.RawFragment = ""
	return u.String()
}

// unwrapURLError strips *url.Error, whose message repeats the full URL
// (query string included), keeping the error it wraps.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}
