package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// KindWeeklyIntelligence is the kind name of [WeeklyIntelligenceArgs] jobs.
const KindWeeklyIntelligence = "weekly_intelligence"

// MaxWeeklyReportBytes is the largest report a weekly_intelligence job
// accepts from the upstream (4 MiB); a larger one fails as server_error.
const MaxWeeklyReportBytes = 4 << 20

// WeeklyIntelligenceArgs are the args of a weekly_intelligence job: build
// one user's report for one ISO 8601 week. Enqueue one per user as a batch
// (enqueue batch --kind weekly_intelligence --file users.csv).
type WeeklyIntelligenceArgs struct {
	// UserID is the user's ID upstream, a positive integer.
	UserID int64 `json:"user_id" help:"required: the user's ID upstream, a positive integer"`
	// Week is the ISO 8601 week, "YYYY-Www" (e.g. "2026-W49"): a week that
	// exists in that ISO year (W53 only in years that have one).
	Week string `json:"week" help:"required: the ISO 8601 week, YYYY-Www (e.g. 2026-W49)"`
}

// Kind implements river.JobArgs.
func (WeeklyIntelligenceArgs) Kind() string { return KindWeeklyIntelligence }

var isoWeekPattern = regexp.MustCompile(`^([0-9]{4})-W([0-9]{2})$`)

// ParseISOWeek returns the Monday (00:00 UTC) that starts ISO week s
// ("2026-W49"); an error for any other form or a week the year lacks.
func ParseISOWeek(s string) (time.Time, error) {
	m := isoWeekPattern.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, fmt.Errorf("week %q: want an ISO week such as 2026-W49", s)
	}
	year, _ := strconv.Atoi(m[1])
	week, _ := strconv.Atoi(m[2])
	// 4 January is always in week 1.
	jan4 := time.Date(year, time.January, 4, 0, 0, 0, 0, time.UTC)
	monday := jan4.AddDate(0, 0, -((int(jan4.Weekday())+6)%7)+(week-1)*7)
	if y, w := monday.ISOWeek(); week < 1 || y != year || w != week {
		return time.Time{}, fmt.Errorf("week %q: %d has no week %d", s, year, week)
	}
	return monday, nil
}

// ISOWeek returns the ISO week of t as "YYYY-Www", the form
// WeeklyIntelligenceArgs.Week takes.
func ISOWeek(t time.Time) string {
	y, w := t.ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// Validate checks the args: a positive user_id and an ISO week.
func (a WeeklyIntelligenceArgs) Validate() error {
	if a.UserID <= 0 {
		return fmt.Errorf("%w: user_id must be a positive integer, got %d", ErrInvalidArgs, a.UserID)
	}
	if _, err := ParseISOWeek(a.Week); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidArgs, err)
	}
	return nil
}

// WeeklyIntelligenceConfig configures the weekly_intelligence kind (the
// weekly_intelligence section of the workers' config file).
type WeeklyIntelligenceConfig struct {
	// BaseURL is the reports API, absolute http or https, e.g.
	// "https://reports.internal/api". A job fetches
	// GET {BaseURL}/users/{user_id}/weekly-report?week={week}. Its host
	// (with port) is the jobs' operation key, so one circuit breaker
	// protects the API. Empty: jobs of the kind fail as misconfigured.
	BaseURL string `yaml:"base_url"`
}

// Validate refuses a base URL that is not absolute http(s) or has a query
// or fragment.
func (c WeeklyIntelligenceConfig) Validate() error {
	if c.BaseURL == "" {
		return nil
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("weekly_intelligence.base_url: %q is not an absolute http or https URL without query or fragment", c.BaseURL)
	}
	return nil
}

// OperationKey is the operation key of the kind's jobs: the base URL's host
// (with its port, if any), lower-cased; "" without a base URL.
func (c WeeklyIntelligenceConfig) OperationKey() string {
	if c.BaseURL == "" {
		return ""
	}
	return URLHost(c.BaseURL)
}

// WeeklyIntelligenceKind returns the weekly_intelligence kind for config
// (a zero config validates args; its worker fails every job as
// misconfigured).
func WeeklyIntelligenceKind(config WeeklyIntelligenceConfig) Kind {
	return Kind{
		Name: KindWeeklyIntelligence,
		Parse: func(raw []byte) (river.JobArgs, error) {
			var a WeeklyIntelligenceArgs
			if err := decodeStrict(raw, &a); err != nil {
				return nil, err
			}
			if err := a.Validate(); err != nil {
				return nil, err
			}
			return a, nil
		},
		OperationKey: func([]byte) string { return config.OperationKey() },
		Args:         ArgsOf(WeeklyIntelligenceArgs{}),
		AddWorker: func(workers *river.Workers, deps WorkerDeps) error {
			return river.AddWorkerSafely(workers, &WeeklyIntelligenceWorker{Config: config, Client: deps.HTTPClient})
		},
	}
}

// WeeklyReport is what a weekly_intelligence job records as its result
// (metadata.output.result).
type WeeklyReport struct {
	// UserID and Week are the job's args.
	UserID int64  `json:"user_id"`
	Week   string `json:"week"`
	// Report is the upstream's JSON answer, as it came.
	Report json.RawMessage `json:"report"`
}

// WeeklyIntelligenceWorker works weekly_intelligence jobs: it fetches the
// user's report and records it with retrypolicy.RecordResult. A non-2xx
// answer is an *HTTPStatusError (classified by status), an answer that is
// not JSON fails as decode, invalid args as bad_request, a missing base URL
// as misconfigured.
type WeeklyIntelligenceWorker struct {
	river.WorkerDefaults[WeeklyIntelligenceArgs]
	// Config holds the base URL.
	Config WeeklyIntelligenceConfig
	// Client sends the requests; nil means NewHTTPClient's.
	Client *http.Client
}

// reportError is a report the job cannot store: class decode.
type reportError struct{ msg string }

func (e *reportError) Error() string        { return e.msg }
func (e *reportError) FailureClass() string { return string(retrypolicy.ClassDecode) }

// errNoBaseURL is the failure of a job on a pod without a base URL.
type errNoBaseURL struct{}

func (errNoBaseURL) Error() string {
	return "weekly_intelligence: no base URL configured (weekly_intelligence.base_url in the workers' --config)"
}
func (errNoBaseURL) FailureClass() string { return string(retrypolicy.ClassMisconfigured) }

// Work implements river.Worker.
func (w *WeeklyIntelligenceWorker) Work(ctx context.Context, job *river.Job[WeeklyIntelligenceArgs]) error {
	a := job.Args
	if err := a.Validate(); err != nil {
		return errInvalidArgs(err)
	}
	if w.Config.BaseURL == "" {
		return retrypolicy.Permanent(errNoBaseURL{})
	}
	u := strings.TrimSuffix(w.Config.BaseURL, "/") + "/users/" + strconv.FormatInt(a.UserID, 10) + "/weekly-report?week=" + url.QueryEscape(a.Week)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return retrypolicy.Permanent(fmt.Errorf("build request: %w", err))
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "rebound/1")
	client := w.Client
	if client == nil {
		client = defaultHTTPClient
	}
	resp, err := client.Do(req)
	if err != nil {
		err = unwrapURLError(err)
		if ctx.Err() != nil {
			return fmt.Errorf("GET %s: %w", redactURL(u), err)
		}
		return fmt.Errorf("GET %s: %w", redactURL(u), classifyTransport(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, HTTPErrorBodyLimit))
		e := &HTTPStatusError{Method: http.MethodGet, URL: redactURL(u), Status: resp.StatusCode,
			RetryAfterValue: resp.Header.Get("Retry-After"), Body: redact.Text(strings.TrimSpace(string(snippet)))}
		if d, ok := retrypolicy.ParseRetryAfter(e.RetryAfterValue, time.Now()); ok {
			e.Wait = d
		}
		return e
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxWeeklyReportBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: read report: %w", redactURL(u), classifyTransport(err))
	}
	if len(body) > MaxWeeklyReportBytes {
		return &HTTPStatusError{Method: http.MethodGet, URL: redactURL(u), Status: http.StatusBadGateway,
			Body: fmt.Sprintf("report larger than %d bytes", MaxWeeklyReportBytes)}
	}
	var report json.RawMessage
	if err := json.Unmarshal(body, &report); err != nil {
		return fmt.Errorf("GET %s: report is not JSON: %w", redactURL(u), err)
	}
	if bytes.Contains(body, []byte(`\u0000`)) {
		return &reportError{msg: fmt.Sprintf("GET %s: report holds a NUL character (\\u0000), which PostgreSQL cannot store", redactURL(u))}
	}
	if err := retrypolicy.RecordResult(ctx, WeeklyReport{UserID: a.UserID, Week: a.Week, Report: report}); err != nil {
		return retrypolicy.Permanent(err)
	}
	return nil
}
