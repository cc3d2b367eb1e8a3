package notify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/monitor/notify"
)

// mailbox is a real SMTP server (github.com/emersion/go-smtp) that keeps
// what it receives.
type mailbox struct {
	mu    sync.Mutex
	from  string
	to    []string
	data  string
	auths []string
}

type backend struct{ box *mailbox }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{box: b.box}, nil }

type session struct{ box *mailbox }

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.to = append(s.box.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.box.mu.Lock()
	defer s.box.mu.Unlock()
	s.box.data = string(b)
	return err
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

func startSMTP(t *testing.T) (*mailbox, string, int) {
	t.Helper()
	box := &mailbox{}
	srv := smtp.NewServer(backend{box: box})
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := l.Addr().(*net.TCPAddr)
	return box, "127.0.0.1", addr.Port
}

var sample = notify.Message{Status: "firing", Event: "firing", Rule: "failure-rate-error", Subject: "mail", Severity: "error",
	Value: 62.5, Threshold: 50, Summary: "mail: 62.5% of 16 jobs finished dead-lettered in the last 15m0s (threshold 50%)",
	StartsAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Link: "https://ops.example.com/api/admin/job-health"}

func TestEmailThroughRealSMTPServer(t *testing.T) {
	t.Parallel()
	box, host, port := startSMTP(t)
	ch := notify.Channel{Type: notify.TypeEmail, SMTP: notify.SMTP{Host: host, Port: port, TLS: "none",
		From: "rebound@example.com", To: []string{"ops@example.com", "oncall@example.com"}}}
	require.NoError(t, ch.Validate("mail"))
	m := sample
	require.NoError(t, notify.Send(context.Background(), http.DefaultClient, "mail", &ch, &m))
	box.mu.Lock()
	defer box.mu.Unlock()
	require.Equal(t, "rebound@example.com", box.from)
	require.Equal(t, []string{"ops@example.com", "oncall@example.com"}, box.to)
	require.Contains(t, box.data, "Subject: [ERROR] failure-rate-error on mail: mail: 62.5% of 16 jobs\r\n finished dead-lettered")
	require.Contains(t, box.data, "threshold: 50\r\n")
	require.Contains(t, box.data, "job health: https://ops.example.com/api/admin/job-health")
}

func TestEmailRequiresSTARTTLSByDefault(t *testing.T) {
	t.Parallel()
	box, host, port := startSMTP(t)
	ch := notify.Channel{Type: notify.TypeEmail, SMTP: notify.SMTP{Host: host, Port: port, From: "rebound@example.com", To: []string{"ops@example.com"}}}
	m := sample
	err := notify.Send(context.Background(), http.DefaultClient, "mail", &ch, &m)
	require.Error(t, err, "a server without STARTTLS is refused when TLS is required")
	box.mu.Lock()
	defer box.mu.Unlock()
	require.Empty(t, box.data)
}

func TestWebhookSignedAlertmanagerV4(t *testing.T) {
	t.Parallel()
	var body []byte
	var sig string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ = io.ReadAll(r.Body)
		sig = r.Header.Get(notify.SignatureHeader)
	}))
	t.Cleanup(srv.Close)
	ch := notify.Channel{Type: notify.TypeWebhook, URL: srv.URL, Secret: "s3cret-key"}
	m := sample
	require.NoError(t, notify.Send(context.Background(), srv.Client(), "pager", &ch, &m))
	// HMAC-SHA256 of the body with key "s3cret-key", computed independently of Sign.
	require.Equal(t, notify.Sign([]byte("s3cret-key"), body), sig)
	require.True(t, strings.HasPrefix(sig, "sha256=") && len(sig) == 7+64)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(body, &doc))
	require.Equal(t, "4", doc["version"])
	require.Equal(t, "firing", doc["status"])
	require.Equal(t, "pager", doc["receiver"])
	alert := doc["alerts"].([]any)[0].(map[string]any)
	require.Equal(t, map[string]any{"alertname": "failure-rate-error", "subject": "mail", "severity": "error"}, alert["labels"])
	require.Equal(t, "2026-03-01T12:00:00Z", alert["startsAt"])
	require.Equal(t, "62.5", alert["annotations"].(map[string]any)["value"])
}

func TestHTTPErrorsCarryStatusAndRetryAfter(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	t.Cleanup(srv.Close)
	ch := notify.Channel{Type: notify.TypeSlack, URL: srv.URL}
	m := sample
	err := notify.Send(context.Background(), srv.Client(), "slack", &ch, &m)
	var he *notify.HTTPError
	require.True(t, errors.As(err, &he))
	require.Equal(t, 429, he.StatusCode())
	require.Equal(t, 7*time.Second, he.RetryAfter())
}

func TestParseChannels(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/X", "SMTP_PASSWORD": "pw"}
	getenv := func(k string) string { return env[k] }
	good := `
ops: {type: slack, url: "${SLACK_WEBHOOK_URL}"}
mail: {type: email, smtp: {host: smtp.example.com, password: "${SMTP_PASSWORD}", from: a@example.com, to: [b@example.com]}}
`
	chs, err := notify.ParseChannels([]byte(good), getenv)
	require.NoError(t, err)
	require.Equal(t, "https://hooks.slack.com/services/T/B/X", chs["ops"].URL)
	require.Equal(t, "hooks.slack.com", chs["ops"].Host())
	require.Equal(t, "pw", chs["mail"].SMTP.Password)

	bad := []struct{ name, yaml, wantErr string }{
		{"unset variable", `ops: {type: slack, url: "${NOPE}"}`, "channels.ops.url: environment variable NOPE is unset or empty"},
		{"unset variable in a comment", "# ${NOPE}\nops: {type: slack, url: \"https://x\"}", "channels: environment variable NOPE is unset or empty (line 1)"},
		{"unknown type", `ops: {type: sms}`, `channels.ops.type: "sms" is not slack, webhook or email`},
		{"no url", `ops: {type: webhook}`, "channels.ops.url: an http or https URL is required"},
		{"ftp url", `ops: {type: webhook, url: "ftp://x"}`, "channels.ops.url: an http or https URL is required"},
		{"unknown key", `ops: {type: slack, url: "https://x", token: y}`, "channels: yaml: unmarshal errors:\n  line 1: field token not found in type notify.Channel"},
		{"bad name", `Ops: {type: slack, url: "https://x"}`, `channels: name "Ops": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)`},
		{"name of 64 characters", `cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc: {type: slack, url: "https://x"}`, `channels: name "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)`},
		{"name starting with '-'", `-x: {type: slack, url: "https://x"}`, `channels: name "-x": use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)`},
		{"no recipient", `m: {type: email, smtp: {host: h, from: a@b}}`, "channels.m.smtp.to: at least one recipient is required"},
		{"bad recipient", `m: {type: email, smtp: {host: h, from: a@b, to: [nobody]}}`, `channels.m.smtp.to: "nobody" is not an email address`},
		{"bad tls", `m: {type: email, smtp: {host: h, tls: maybe, from: a@b, to: [c@d]}}`, `channels.m.smtp.tls: "maybe" is not starttls, opportunistic or none`},
		{"secret on slack", `ops: {type: slack, url: "https://x", secret: s}`, "channels.ops.secret: only webhook channels are signed (Slack checks its incoming webhook's URL)"},
		{"smtp on webhook", `ops: {type: webhook, url: "https://x", smtp: {host: h}}`, "channels.ops.smtp: only email channels have smtp settings"},
		{"url on email", `m: {type: email, url: "https://x", smtp: {host: h, from: a@b, to: [c@d]}}`, "channels.m.url: email channels have no url (give smtp.host)"},
		{"secret on email", `m: {type: email, secret: s, smtp: {host: h, from: a@b, to: [c@d]}}`, "channels.m.secret: only webhook channels are signed"},
		{"bad port", `m: {type: email, smtp: {host: h, port: 70000, from: a@b, to: [c@d]}}`, "channels.m.smtp.port: 70000 is not a port"},
	}
	for _, tt := range bad {
		_, err := notify.ParseChannels([]byte(tt.yaml), getenv)
		require.EqualError(t, err, tt.wantErr, tt.name)
	}
}

// An unset ${NAME} is refused with the key of the first value that holds
// it (a reference only in a comment or a key: its line), each variable
// once, in the order of first reference; set variables are expanded.
func TestExpandEnvNamesTheKey(t *testing.T) {
	t.Parallel()
	getenv := func(k string) string { return map[string]string{"SET": "https://hooks.example.com/x", "EMPTY": ""}[k] }
	tests := []struct{ name, yaml, wantErr string }{
		{"set but empty", "alerts:\n  channels:\n    ops: {type: slack, url: \"${EMPTY}\"}\n",
			"alerts.channels.ops.url: environment variable EMPTY is unset or empty"},
		{"quoted value", "alerts:\n  channels:\n    ops: {type: slack, url: \"${SLACK_URL}\"}\n",
			"alerts.channels.ops.url: environment variable SLACK_URL is unset or empty"},
		{"plain value in a flow mapping", "alerts:\n  channels:\n    ops: {type: slack, url: ${SLACK_URL}}\n",
			"alerts.channels.ops.url: environment variable SLACK_URL is unset or empty"},
		{"part of a value", "alerts:\n  link: https://${HOST}/health\n",
			"alerts.link: environment variable HOST is unset or empty"},
		{"sequence item", "alerts:\n  channels:\n    mail:\n      smtp:\n        to: [a@example.com, \"${ONCALL}\"]\n",
			"alerts.channels.mail.smtp.to[1]: environment variable ONCALL is unset or empty"},
		{"comment first, then a value", "# uses ${SLACK_URL}\nalerts:\n  channels:\n    ops: {type: slack, url: \"${SLACK_URL}\"}\n",
			"alerts.channels.ops.url: environment variable SLACK_URL is unset or empty"},
		{"comment only", "retry: {}\n# ${SLACK_URL}\n", "environment variable SLACK_URL is unset or empty (line 2)"},
		{"in a key", "breaker:\n  keys:\n    ${KEY}: {window: 1m}\n", "environment variable KEY is unset or empty (line 3)"},
		{"not YAML as written", "alerts: [\n  ${SLACK_URL}\n", "environment variable SLACK_URL is unset or empty (line 2)"},
		{"two variables, one set, one used twice", "alerts:\n  channels:\n    a: {url: \"${A}\", secret: \"${SET}\"}\n    b: {url: \"${B}\", secret: \"${A}\"}\n",
			"alerts.channels.a.url: environment variable A is unset or empty; alerts.channels.b.url: environment variable B is unset or empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := notify.ExpandEnv([]byte(tt.yaml), getenv)
			require.EqualError(t, err, tt.wantErr)
			var ue *notify.UnsetEnvError
			require.ErrorAs(t, err, &ue)
		})
	}
	out, err := notify.ExpandEnv([]byte("url: \"${SET}\"\n"), getenv)
	require.NoError(t, err)
	require.Equal(t, "url: \"https://hooks.example.com/x\"\n", string(out))
	require.Equal(t, []string{"A", "B", "SET"}, notify.EnvRefs([]byte("# ${B}\nx: ${A}${SET}\ny: ${B}\n")))
}

// FuzzExpandEnv: expansion never panics, and its output holds no ${NAME}
// reference of a set variable.
func FuzzExpandEnv(f *testing.F) {
	f.Add("url: ${A}")
	f.Add("${}${A${B}}$${A}")
	f.Fuzz(func(t *testing.T, s string) {
		out, err := notify.ExpandEnv([]byte(s), func(k string) string {
			if k == "A" {
				return "value"
			}
			return ""
		})
		if err == nil && strings.Contains(string(out), "${A}") && !strings.Contains(s, "${A}") {
			t.Fatalf("expansion created a reference: %q -> %q", s, out)
		}
	})
}

// TestCountUndefined: a failure through a channel the pod does not define
// is counted under its name with outcome failed; a name that breaks the
// channel name rule (a rule row written in SQL) under one fixed label, so
// rule rows cannot add series of any text.
func TestCountUndefined(t *testing.T) {
	t.Parallel()
	m, err := notify.NewMetrics(prometheus.NewRegistry(), "ops")
	require.NoError(t, err)
	for _, name := range []string{"pagr", "pagr", "Bad Name", strings.Repeat("c", 64), "x\x1b[2J"} {
		m.CountUndefined(name)
	}
	var got []string
	ch := make(chan prometheus.Metric, 20)
	m.Notifications.Collect(ch)
	close(ch)
	for metric := range ch {
		var d dto.Metric
		require.NoError(t, metric.Write(&d))
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		got = append(got, fmt.Sprintf("%s/%s %g", labels["channel"], labels["outcome"], d.GetCounter().GetValue()))
	}
	require.ElementsMatch(t, []string{"ops/delivered 0", "ops/retrying 0", "ops/failed 0", "ops/skipped 0", "ops/superseded 0", "pagr/failed 2", notify.InvalidChannelLabel + "/failed 3"}, got)
}
