// Package notify delivers alert notifications: Slack incoming webhooks, a
// generic webhook (Alertmanager's version "4" JSON, signed with
// HMAC-SHA256) and email over SMTP (github.com/wneessen/go-mail).
//
// Delivery is a River job of rebound's own kind ([Args], kind
// "rebound_notify"), so it gets rebound's failure classes, backoff, a
// circuit breaker per host (the job's operation key is "notify:" and the
// channel's host) and the dead-letter queue: no notification is lost while
// a channel is down. Its args hold the history row's ID and the channel's
// name only; the worker reads the message from job_alert_history and the
// channel's URL and secrets from the configuration, never from the
// database.
//
// Channels come from the configuration file, with ${NAME} replaced by the
// environment variable NAME ([ParseChannels]).
package notify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// Channel types.
const (
	TypeSlack   = "slack"
	TypeWebhook = "webhook"
	TypeEmail   = "email"
)

// Channel is one notification channel.
type Channel struct {
	// Type is slack, webhook or email.
	Type string `yaml:"type"`
	// URL is the Slack incoming webhook's or the webhook's URL (http or
	// https).
	URL string `yaml:"url"`
	// Secret signs webhook bodies: header X-Rebound-Signature is
	// "sha256=" and the hex HMAC-SHA256 of the body with this key. Empty:
	// no signature. Webhook channels only ([Channel.Validate] refuses it on
	// the others, as it refuses SMTP off email and URL on email).
	Secret string `yaml:"secret"`
	// SMTP configures email.
	SMTP SMTP `yaml:"smtp"`
}

// SMTP is an email channel's server and addresses.
type SMTP struct {
	// Host and Port of the SMTP server (Port 0 means 587).
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
	// Username and Password for SMTP AUTH (PLAIN); empty means none.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// TLS is "starttls" (the default: required), "opportunistic" or
	// "none" (for a local relay).
	TLS string `yaml:"tls"`
	// From is the sender address; To the recipients (at least one).
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
}

var channelNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// Host is the host the channel delivers to, its circuit breaker's key
// after "notify:".
func (c Channel) Host() string {
	if c.Type == TypeEmail {
		return c.SMTP.Host
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// Validate returns an error naming the first setting of the channel that
// is wrong (name is its key in the channels map).
func (c *Channel) Validate(name string) error {
	if !channelNameRE.MatchString(name) {
		return fmt.Errorf("channels: name %q: use lower-case letters, digits, '-' and '_'", name)
	}
	switch c.Type {
	case TypeSlack, TypeWebhook:
		u, err := url.Parse(c.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("channels.%s.url: an http or https URL is required", name)
		}
		// A setting the type ignores would only mislead (a "signed" Slack
		// channel that is not).
		if c.Type == TypeSlack && c.Secret != "" {
			return fmt.Errorf("channels.%s.secret: only webhook channels are signed (Slack checks its incoming webhook's URL)", name)
		}
		if !reflect.ValueOf(c.SMTP).IsZero() {
			return fmt.Errorf("channels.%s.smtp: only email channels have smtp settings", name)
		}
	case TypeEmail:
		s := c.SMTP
		switch {
		case c.URL != "":
			return fmt.Errorf("channels.%s.url: email channels have no url (give smtp.host)", name)
		case c.Secret != "":
			return fmt.Errorf("channels.%s.secret: only webhook channels are signed", name)
		case s.Host == "":
			return fmt.Errorf("channels.%s.smtp.host: required", name)
		case s.Port < 0 || s.Port > 65535:
			return fmt.Errorf("channels.%s.smtp.port: %d is not a port", name, s.Port)
		case !slices.Contains([]string{"", "starttls", "opportunistic", "none"}, s.TLS):
			return fmt.Errorf("channels.%s.smtp.tls: %q is not starttls, opportunistic or none", name, s.TLS)
		case !strings.Contains(s.From, "@"):
			return fmt.Errorf("channels.%s.smtp.from: an email address is required", name)
		case len(s.To) == 0:
			return fmt.Errorf("channels.%s.smtp.to: at least one recipient is required", name)
		}
		for _, to := range s.To {
			if !strings.Contains(to, "@") {
				return fmt.Errorf("channels.%s.smtp.to: %q is not an email address", name, to)
			}
		}
	default:
		return fmt.Errorf("channels.%s.type: %q is not slack, webhook or email", name, c.Type)
	}
	return nil
}

// envRE matches ${NAME}.
var envRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// ExpandEnv replaces every ${NAME} in data with the environment variable
// NAME (getenv nil means os.Getenv). An unset or empty variable is an error
// naming it, so a missing secret never becomes an empty URL.
func ExpandEnv(data []byte, getenv func(string) string) ([]byte, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var missing []string
	out := envRE.ReplaceAllFunc(data, func(m []byte) []byte {
		name := string(envRE.FindSubmatch(m)[1])
		v := getenv(name)
		if v == "" && !slices.Contains(missing, name) {
			missing = append(missing, name)
		}
		return []byte(v)
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variable %s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// ParseChannels reads a YAML map of channel name to Channel, after
// ExpandEnv. An unset variable, an unknown key or a wrong setting is an
// error naming it.
func ParseChannels(data []byte, getenv func(string) string) (map[string]Channel, error) {
	expanded, err := ExpandEnv(data, getenv)
	if err != nil {
		return nil, fmt.Errorf("channels: %w", err)
	}
	var out map[string]Channel
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&out); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("channels: %w", err)
	}
	return out, ValidateChannels(out)
}

// ValidateChannels validates every channel, in name order.
func ValidateChannels(channels map[string]Channel) error {
	for _, name := range slices.Sorted(maps.Keys(channels)) {
		c := channels[name]
		if err := c.Validate(name); err != nil {
			return err
		}
	}
	return nil
}
