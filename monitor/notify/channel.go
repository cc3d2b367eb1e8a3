// Package notify delivers alert notifications: Slack incoming webhooks, a
// generic webhook (Alertmanager's version "4" JSON, signed with
// HMAC-SHA256) and email over SMTP (github.com/wneessen/go-mail).
//
// Delivery is a River job of rebound's own kind ([Args], kind
// "rebound_notify"), so it gets rebound's failure classes, backoff (its
// own policy, [RetryPolicy]: about 12 hours of retries), a circuit breaker
// per host (the job's operation key is "notify:" and the channel's host)
// and the dead-letter queue: no notification is lost while a channel is
// down. Its args hold the history row's ID and the channel's
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

// ChannelNameRule says what a channel name must be, as the errors about
// one say it (the configuration file's alerts.channels keys and the
// channels of an alert rule).
const ChannelNameRule = "use lower-case letters, digits, '-' and '_' (at most 63 characters, starting with a letter or digit)"

// ValidChannelName reports whether name follows [ChannelNameRule].
func ValidChannelName(name string) bool { return channelNameRE.MatchString(name) }

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
	if !ValidChannelName(name) {
		return fmt.Errorf("channels: name %q: %s", name, ChannelNameRule)
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
// naming it and the key that holds it (a [*UnsetEnvError]), so a missing
// secret never becomes an empty URL.
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
		return nil, unsetEnvError(data, missing)
	}
	return out, nil
}

// EnvRefs returns the names of the variables data's ${NAME} references
// read, sorted, each once.
func EnvRefs(data []byte) []string {
	var names []string
	for _, m := range envRE.FindAllSubmatch(data, -1) {
		names = append(names, string(m[1]))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// UnsetEnvError is [ExpandEnv]'s error: ${NAME} references to environment
// variables that are unset or empty. Its message says, for each, the key
// that holds it: "alerts.channels.ops.url: environment variable SLACK_URL
// is unset or empty", several joined by "; ".
type UnsetEnvError struct {
	// Vars are the variables, in the order of their first reference.
	Vars []UnsetVar
	// Prefix is put before every Key ("channels."); without its final dot,
	// it begins the message about a reference that has no key.
	Prefix string
}

// UnsetVar is one variable of an [UnsetEnvError].
type UnsetVar struct {
	// Name is the variable's name.
	Name string
	// Key is the dotted path of the first YAML value that references it
	// ("alerts.channels.ops.url", "alerts.channels.mail.smtp.to[1]"); ""
	// when no value does as written (the reference is in a comment or a
	// key, or the text is YAML only once expanded).
	Key string
	// Line is the line of its first reference, from 1.
	Line int
}

// Error returns one clause per variable: "KEY: environment variable NAME
// is unset or empty", or "environment variable NAME is unset or empty (line N)" for a
// reference that has no key.
func (e *UnsetEnvError) Error() string {
	msgs := make([]string, len(e.Vars))
	for i, v := range e.Vars {
		if v.Key != "" {
			msgs[i] = fmt.Sprintf("%s%s: environment variable %s is unset or empty", e.Prefix, v.Key, v.Name)
			continue
		}
		msgs[i] = fmt.Sprintf("environment variable %s is unset or empty (line %d)", v.Name, v.Line)
		if p := strings.TrimSuffix(e.Prefix, "."); p != "" {
			msgs[i] = p + ": " + msgs[i]
		}
	}
	return strings.Join(msgs, "; ")
}

// unsetEnvError finds where in data each variable of missing is
// referenced: the key of the first YAML value that holds ${NAME}, and the
// line of its first reference. Every ${NAME} is read as a plain word
// ("env-ref-NAME-end"), so a reference YAML would not take as written
// (url: ${URL} in a {...} mapping) is found as the expanded file has it.
func unsetEnvError(data []byte, missing []string) *UnsetEnvError {
	e := &UnsetEnvError{Vars: make([]UnsetVar, len(missing))}
	for i, name := range missing {
		ref := "${" + name + "}"
		e.Vars[i] = UnsetVar{Name: name, Line: 1 + bytes.Count(data[:bytes.Index(data, []byte(ref))], []byte("\n"))}
	}
	token := func(name string) string { return "env-ref-" + name + "-end" } // no NAME holds '-'
	words := envRE.ReplaceAllFunc(data, func(m []byte) []byte { return []byte(token(string(envRE.FindSubmatch(m)[1]))) })
	var doc yaml.Node
	if yaml.Unmarshal(words, &doc) != nil || len(doc.Content) == 0 {
		return e
	}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for j := 0; j+1 < len(n.Content); j += 2 {
				key := n.Content[j].Value
				if path != "" {
					key = path + "." + key
				}
				walk(n.Content[j+1], key)
			}
		case yaml.SequenceNode:
			for j, item := range n.Content {
				walk(item, fmt.Sprintf("%s[%d]", path, j))
			}
		case yaml.ScalarNode:
			for i := range e.Vars {
				if v := &e.Vars[i]; v.Key == "" && path != "" && strings.Contains(n.Value, token(v.Name)) {
					v.Key, v.Line = path, n.Line
				}
			}
		}
	}
	walk(doc.Content[0], "")
	return e
}

// ParseChannels reads a YAML map of channel name to Channel, after
// ExpandEnv. An unset variable, an unknown key or a wrong setting is an
// error naming it.
func ParseChannels(data []byte, getenv func(string) string) (map[string]Channel, error) {
	expanded, err := ExpandEnv(data, getenv)
	if ue, ok := errors.AsType[*UnsetEnvError](err); ok {
		ue.Prefix = "channels."
		return nil, ue
	}
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
