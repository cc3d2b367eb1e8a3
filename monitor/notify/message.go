package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"
)

// Message is one notification: a (rule, subject) that started firing, is
// still firing after its cooldown, or resolved. It holds no job args,
// payloads or error text: the summary is built from counts.
type Message struct {
	// Status is "firing" or "resolved" (Alertmanager's words).
	Status string `json:"status"`
	// Event is firing, repeat, resolved or test.
	Event     string    `json:"event"`
	Rule      string    `json:"rule"`
	Subject   string    `json:"subject"`
	Severity  string    `json:"severity"`
	Value     float64   `json:"value"`
	Threshold float64   `json:"threshold"`
	Summary   string    `json:"summary"`
	StartsAt  time.Time `json:"starts_at"`
	// EndsAt is set when resolved.
	EndsAt time.Time `json:"ends_at"`
	// Link points at the job-health document or console ("" for none).
	Link string `json:"link"`
}

// HTTPError is a channel's HTTP answer other than 2xx. StatusCode and
// RetryAfter let rebound's retry policy classify it (429 rate_limited, 5xx
// server_error, other 4xx permanent).
type HTTPError struct {
	Status int
	After  time.Duration
}

func (e *HTTPError) Error() string             { return "channel answered HTTP " + strconv.Itoa(e.Status) }
func (e *HTTPError) StatusCode() int           { return e.Status }
func (e *HTTPError) RetryAfter() time.Duration { return e.After }

// SignatureHeader carries the webhook body's HMAC-SHA256:
// "sha256=<hex>", keyed with the channel's secret.
const SignatureHeader = "X-Rebound-Signature"

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// WebhookPayload is the generic webhook's body: Alertmanager's webhook
// format, version "4", with one alert.
type WebhookPayload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []WebhookAlert    `json:"alerts"`
}

// WebhookAlert is one alert of a WebhookPayload.
type WebhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// webhookPayload builds the Alertmanager-v4 body of m for receiver.
func webhookPayload(receiver string, m *Message) WebhookPayload {
	labels := map[string]string{"alertname": m.Rule, "subject": m.Subject, "severity": m.Severity}
	ann := map[string]string{
		"summary":   m.Summary,
		"value":     strconv.FormatFloat(m.Value, 'f', -1, 64),
		"threshold": strconv.FormatFloat(m.Threshold, 'f', -1, 64),
		"event":     m.Event,
	}
	fp := sha256.Sum256([]byte(m.Rule + "\x00" + m.Subject))
	return WebhookPayload{
		Version: "4", GroupKey: m.Rule + ":" + m.Subject, Status: m.Status, Receiver: receiver,
		GroupLabels: map[string]string{"alertname": m.Rule}, CommonLabels: labels, CommonAnnotations: ann,
		ExternalURL: m.Link,
		Alerts: []WebhookAlert{{Status: m.Status, Labels: labels, Annotations: ann, StartsAt: m.StartsAt.UTC(), EndsAt: m.EndsAt.UTC(),
			GeneratorURL: m.Link, Fingerprint: hex.EncodeToString(fp[:8])}},
	}
}

// Text is the message in one line for Slack and email subjects.
func (m *Message) Text() string {
	if m.Status == "resolved" {
		return fmt.Sprintf("[RESOLVED] %s on %s: %s", m.Rule, m.Subject, m.Summary)
	}
	return fmt.Sprintf("[%s] %s on %s: %s (value %g, threshold %g)", upper(m.Severity), m.Rule, m.Subject, m.Summary, m.Value, m.Threshold)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// Send delivers m through channel c (named name) and returns nil once the
// channel accepted it; an *HTTPError for a non-2xx answer; the transport's
// error otherwise.
func Send(ctx context.Context, client *http.Client, name string, c *Channel, m *Message) error {
	switch c.Type {
	case TypeSlack:
		text := m.Text()
		if m.Link != "" {
			text += " <" + m.Link + "|job health>"
		}
		body, _ := json.Marshal(map[string]string{"text": text})
		return post(ctx, client, c.URL, body, nil)
	case TypeWebhook:
		body, err := json.Marshal(webhookPayload(name, m))
		if err != nil {
			return err
		}
		var h map[string]string
		if c.Secret != "" {
			h = map[string]string{SignatureHeader: Sign([]byte(c.Secret), body)}
		}
		return post(ctx, client, c.URL, body, h)
	case TypeEmail:
		return sendMail(ctx, &c.SMTP, m)
	}
	return fmt.Errorf("channel %q: unknown type %q", name, c.Type)
}

func post(ctx context.Context, client *http.Client, url string, body []byte, headers map[string]string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "rebound-notify")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		var after time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return &HTTPError{Status: resp.StatusCode, After: after}
	}
	return nil
}

func sendMail(ctx context.Context, s *SMTP, m *Message) error {
	msg := mail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("email from: %w", err)
	}
	if err := msg.To(s.To...); err != nil {
		return fmt.Errorf("email to: %w", err)
	}
	msg.Subject(m.Text())
	body := m.Text() + "\n\nrule: " + m.Rule + "\nsubject: " + m.Subject + "\nseverity: " + m.Severity +
		"\nvalue: " + strconv.FormatFloat(m.Value, 'f', -1, 64) + "\nthreshold: " + strconv.FormatFloat(m.Threshold, 'f', -1, 64) +
		"\nsince: " + m.StartsAt.UTC().Format(time.RFC3339) + "\n"
	if m.Link != "" {
		body += "job health: " + m.Link + "\n"
	}
	msg.SetBodyString(mail.TypeTextPlain, body)
	port := s.Port
	if port == 0 {
		port = 587
	}
	opts := []mail.Option{mail.WithPort(port), mail.WithTimeout(30 * time.Second)}
	switch s.TLS {
	case "", "starttls":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case "opportunistic":
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.Username), mail.WithPassword(s.Password))
	}
	client, err := mail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("email client: %w", err)
	}
	return client.DialAndSendWithContext(ctx, msg)
}
