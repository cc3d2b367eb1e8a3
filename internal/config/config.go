// Package config reads the worker's YAML configuration file (--config):
// per-kind retry policies now, breaker settings and notifiers as they come.
//
//	retry:
//	  default: {max_attempts: 5, initial_delay: 2s, max_delay: 5m}
//	  kinds:
//	    http_request: {max_attempts: 8}
//
// Unknown keys are refused (a typo must not silently fall back to a
// default), and every invalid value is reported with the key path that
// holds it, and its line: "alerts.channels.ops.colour: unknown setting
// (known: type, url, secret, smtp; line 5)".
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/monitor/notify"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// File is the worker's configuration file. Every section is optional; the
// zero File means all defaults.
type File struct {
	// Retry holds the retry policies: a default and overrides per job kind.
	Retry retrypolicy.Config `yaml:"retry"`
	// Breaker holds the circuit breaker settings: a default block and
	// overrides per operation key (see breaker.FileConfig).
	Breaker breaker.FileConfig `yaml:"breaker"`
	// Alerts holds the alert evaluation's settings and the notification
	// channels.
	Alerts AlertsFile `yaml:"alerts"`
	// WeeklyIntelligence configures the weekly_intelligence kind: base_url
	// of the reports API (see jobs.WeeklyIntelligenceConfig).
	WeeklyIntelligence jobs.WeeklyIntelligenceConfig `yaml:"weekly_intelligence"`
}

// AlertsFile is the alerts section:
//
//	alerts:
//	  interval: 1m            # evaluation interval (1s to 1h); the seed's is 15m
//	  link: https://ops.example.com/api/admin/job-health   # absolute http(s) URL, in every notification
//	  channels:
//	    ops-slack: {type: slack, url: "${SLACK_WEBHOOK_URL}"}
//	    pager:     {type: webhook, url: "https://hooks.example.com/rebound", secret: "${WEBHOOK_SECRET}"}
//	    mail:
//	      type: email
//	      smtp: {host: smtp.example.com, port: 587, username: rebound, password: "${SMTP_PASSWORD}",
//	             from: rebound@example.com, to: [ops@example.com, oncall@example.com]}
//
// ${NAME} anywhere in the file is replaced by the environment variable NAME
// (an unset one is an error), so secrets stay out of the file and the
// database; alert rules (job_alert_config) name channels only.
// LoadWithoutAlerts (enqueue's) leaves this section out, secrets and all.
type AlertsFile struct {
	Interval time.Duration             `yaml:"interval"`
	Link     string                    `yaml:"link"`
	Channels map[string]notify.Channel `yaml:"channels"`
}

// Settings are what File becomes once validated.
type Settings struct {
	// Retry is the set of retry policies, one per kind plus the default
	// (retry.default, retry.kinds; rebound_notify is not among them).
	Retry *retrypolicy.Policies
	// NotifyRetry is the resolved retry policy of alert deliveries (kind
	// rebound_notify): retry.kinds.rebound_notify over
	// notify.RetryPolicy, never retry.default.
	NotifyRetry retrypolicy.Policy
	// Breaker is the circuit breaker configuration (settings per key).
	Breaker breaker.Config
	// BreakerIdleTTL is how long a key's row may stay idle before the
	// cleanup job removes it.
	BreakerIdleTTL time.Duration
	// Alerts is the alerts section, validated.
	Alerts AlertsFile
	// WeeklyIntelligence is the weekly_intelligence kind's configuration.
	WeeklyIntelligence jobs.WeeklyIntelligenceConfig
	// EnvRefs are the environment variables the file's ${NAME} references
	// read, sorted (none for LoadWithoutAlerts' alerts section).
	EnvRefs []string
}

// Load reads and validates the file at path; "" means no file (all
// defaults). Errors name the file and, for a bad value, its key, e.g.
// "worker.yaml: retry.kinds.http_request.max_delay: must be >= initial_delay".
func Load(path string) (*Settings, error) {
	return load(path, Parse)
}

// LoadWithoutAlerts is Load for a program that never sends alerts
// (enqueue): the alerts section is left out. Its ${NAME} references are not
// expanded, so the channels' secrets need not be set where jobs are
// enqueued, and its settings are not validated (the worker, which sends
// alerts, loads the file with Load and checks both); Settings.Alerts is
// zero. The other sections are read as strictly as Load reads them, and
// errors give the same line numbers.
func LoadWithoutAlerts(path string) (*Settings, error) {
	return load(path, func(b []byte) (*Settings, error) { return Parse(withoutTopLevelKey(b, "alerts")) })
}

// load reads the file at path, checks that it is UTF-8, and parses its
// bytes with parse, errors naming the file; "" means no file (all
// defaults).
func load(path string, parse func([]byte) (*Settings, error)) (*Settings, error) {
	if path == "" {
		return Parse(nil)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err // "open PATH: " would name the file twice
		}
		return nil, &ReadError{Path: path, Err: err}
	}
	if err := checkUTF8(b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// ReadError is Load's error for a file that cannot be read (missing, a
// directory, not readable): "PATH: no such file or directory". The
// programs name the flag or variable that gave the path before it, with
// [NameSource].
type ReadError struct {
	// Path is the file's path as given.
	Path string
	// Err is the cause, e.g. fs.ErrNotExist's syscall error.
	Err error
}

// Error returns "Path: Err".
func (e *ReadError) Error() string { return e.Path + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *ReadError) Unwrap() error { return e.Err }

// NameSource returns err, from Load or its variants, with ref (the flag
// or environment variable that gave the file's path: "--config",
// "REBOUND_CONFIG") before it when the file could not be read: "--config
// /etc/w.yaml: no such file or directory". Other errors already start
// with the file's path and are returned as they are; nil stays nil.
func NameSource(err error, ref string) error {
	if _, ok := errors.AsType[*ReadError](err); ok {
		return fmt.Errorf("%s %w", ref, err)
	}
	return err
}

// CheckKinds refuses a kind under retry.kinds that registry, the kinds
// the program's workers work, does not hold (rebound_notify, the alert
// deliveries, is configurable there too), naming the file at path as
// Load's errors do: `worker.yaml: retry.kinds.sync_stock: unknown job kind
// "sync_stock" (known kinds: ...)`. The worker refuses such a file, and so
// does a producer (enqueue) given the workers' file, so that the file one
// accepts the other accepts too.
func (s *Settings) CheckKinds(path string, registry *jobs.Registry) error {
	for _, kind := range s.Retry.Kinds() {
		if _, err := registry.Lookup(kind); err != nil {
			if uk, ok := errors.AsType[*jobs.UnknownKindError](err); ok {
				uk.Known = append(uk.Known, notify.Kind)
				slices.Sort(uk.Known)
			}
			return fmt.Errorf("%s: %s.kinds.%s: %w", path, retrypolicy.ConfigKey, kind, err)
		}
	}
	return nil
}

// LoadWithoutSecrets is Load for a program that checks the file but
// sends no notification (rebound alerts set --config): it reads and
// validates the file as Load does, with the same errors, except that a
// ${NAME} reference to a variable unset or empty here is not an error (the
// worker's environment, not this one, must set it) and stands for
// [UnsetSecret], which any text setting accepts (a URL, an address, a
// secret), and which a number setting (port: ${SMTP_PORT}) reads as 0, its
// default. A variable set here is read and checked as Load checks it, and
// so is every value written in the file.
func LoadWithoutSecrets(path string) (*Settings, error) {
	return load(path, func(b []byte) (*Settings, error) {
		return parse(b, func(name string) string {
			if v := os.Getenv(name); v != "" {
				return v
			}
			return UnsetSecret
		}, UnsetSecret)
	})
}

// UnsetSecret is what LoadWithoutSecrets reads for a ${NAME} whose
// variable is unset: an http URL that is also an email address.
const UnsetSecret = "https://unset@unset.invalid/"

// checkUTF8 refuses content that is not UTF-8 with one message saying so
// and where: a UTF-16 file (which the YAML library would decode, but in
// which neither ${NAME} nor a section could be found), or the first byte
// that is not UTF-8 (Latin-1 text, say) with its line.
func checkUTF8(content []byte) error {
	const want = "the configuration file must be UTF-8"
	// A byte order mark, or text such as "r\x00e\x00" (UTF-16 without one).
	utf16 := bytes.HasPrefix(content, []byte{0xFF, 0xFE}) || bytes.HasPrefix(content, []byte{0xFE, 0xFF}) ||
		len(content) >= 4 && (content[0] == 0) != (content[1] == 0) && (content[0] == 0) == (content[2] == 0) && (content[1] == 0) == (content[3] == 0)
	if utf16 {
		return fmt.Errorf("not UTF-8 (it looks like UTF-16): %s", want)
	}
	if utf8.Valid(content) {
		return nil
	}
	for i := 0; i < len(content); {
		r, size := utf8.DecodeRune(content[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("not UTF-8 (byte 0x%02X on line %d): %s", content[i], 1+bytes.Count(content[:i], []byte("\n")), want)
		}
		i += size
	}
	return nil
}

// withoutTopLevelKey returns content with the lines of top-level key's
// section blanked (its key line up to the next top-level key's; blank, not
// removed, so every later line keeps its number). Content that does not
// parse as a block mapping before expansion is returned as it is, for Parse
// to read whole (and report).
func withoutTopLevelKey(content []byte, key string) []byte {
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil || doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		return content
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode || m.Style&yaml.FlowStyle != 0 {
		return content
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		first, end := m.Content[i].Line, -1 // lines from 1; end is excluded, -1 the end of the file
		if i+2 < len(m.Content) {
			end = m.Content[i+2].Line
		}
		lines := bytes.SplitAfter(content, []byte("\n"))
		for n := first; n <= len(lines) && (end < 0 || n < end); n++ {
			if bytes.HasSuffix(lines[n-1], []byte("\n")) {
				lines[n-1] = []byte("\n")
			} else {
				lines[n-1] = nil
			}
		}
		return bytes.Join(lines, nil)
	}
	return content
}

// Parse validates a configuration file's content (nil or empty: all
// defaults), which must be UTF-8.
func Parse(content []byte) (*Settings, error) {
	return parse(content, nil, "")
}

// parse is Parse with ${NAME} read by getenv (nil: os.Getenv). unset,
// when not "", is what getenv returns for a variable unset here
// (LoadWithoutSecrets'): a number setting holding it reads as 0.
func parse(content []byte, getenv func(string) string, unset string) (*Settings, error) {
	var f File
	if err := checkUTF8(content); err != nil {
		return nil, err
	}
	refs := notify.EnvRefs(content)
	content, err := notify.ExpandEnv(content, getenv)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(content, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		// Every key and value is checked against File first, so that each
		// problem names its key path, in the config's terms rather than
		// Go's type names (yaml.v3's KnownFields would say "field colour
		// not found in type notify.Channel"): all of them, on one line.
		if problems := checkNode(doc.Content[0], reflect.TypeFor[File](), "", unset); len(problems) > 0 {
			return nil, errors.New(strings.Join(problems, "; "))
		}
		if err := doc.Content[0].Decode(&f); err != nil {
			var ce *retrypolicy.ConfigError
			if errors.As(err, &ce) {
				return nil, ce // already names its key
			}
			var bce *breaker.ConfigError
			if errors.As(err, &bce) {
				return nil, bce
			}
			return nil, fmt.Errorf("invalid configuration: %w", err)
		}
	}
	// retry.kinds.rebound_notify is layered over the alert deliveries' own
	// policy, not over retry.default.
	retryFile := f.Retry
	notifyFile := retryFile.Kinds[notify.Kind]
	if _, ok := retryFile.Kinds[notify.Kind]; ok {
		retryFile.Kinds = maps.Clone(retryFile.Kinds)
		delete(retryFile.Kinds, notify.Kind)
	}
	retry, err := retryFile.Policies()
	if err != nil {
		return nil, err
	}
	notifyRetry, err := notify.ResolveRetryPolicy(notifyFile)
	if err != nil {
		return nil, err
	}
	br, err := f.Breaker.Config()
	if err != nil {
		return nil, err
	}
	if f.Alerts.Interval != 0 && (f.Alerts.Interval < time.Second || f.Alerts.Interval > time.Hour) {
		return nil, fmt.Errorf("alerts.interval: %s is not between 1s and 1h", f.Alerts.Interval)
	}
	if l := f.Alerts.Link; l != "" {
		if u, err := url.Parse(l); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alerts.link: %q is not an absolute http or https URL (it is the link in every notification)", l)
		}
	}
	if err := notify.ValidateChannels(f.Alerts.Channels); err != nil {
		return nil, fmt.Errorf("alerts.%w", err)
	}
	if err := f.WeeklyIntelligence.Validate(); err != nil {
		return nil, err
	}
	return &Settings{Retry: retry, NotifyRetry: notifyRetry, Breaker: br, BreakerIdleTTL: f.Breaker.IdleTTLOrDefault(), Alerts: f.Alerts, WeeklyIntelligence: f.WeeklyIntelligence, EnvRefs: refs}, nil
}
