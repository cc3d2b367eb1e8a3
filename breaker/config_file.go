package breaker

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("30s", "10m", "24h").
type Duration time.Duration

// UnmarshalYAML parses a duration string; a bare number is refused (its
// unit would be a guess).
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as \"30s\"", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: duration %q: want a number with a unit, such as \"30s\" or \"10m\"", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// FileSettings is one block of breaker settings in the worker's YAML
// config. An absent field inherits (a key from the defaults block, the
// defaults block from the package defaults); see Settings for meanings.
type FileSettings struct {
	FailureThreshold      *int      `yaml:"failure_threshold,omitempty"`
	FailureRatio          *float64  `yaml:"failure_ratio,omitempty"`
	MinimumCalls          *int      `yaml:"minimum_calls,omitempty"`
	Window                *Duration `yaml:"window,omitempty"`
	OpenTimeout           *Duration `yaml:"open_timeout,omitempty"`
	OpenTimeoutMultiplier *float64  `yaml:"open_timeout_multiplier,omitempty"`
	MaxOpenTimeout        *Duration `yaml:"max_open_timeout,omitempty"`
	HalfOpenMaxProbes     *int      `yaml:"half_open_max_probes,omitempty"`
	SuccessThreshold      *int      `yaml:"success_threshold,omitempty"`
	ProbeTimeout          *Duration `yaml:"probe_timeout,omitempty"`
	MaxPark               *Duration `yaml:"max_park,omitempty"`
	ParkSpread            *Duration `yaml:"park_spread,omitempty"`
}

// FileConfig is the `breaker:` block of the worker's YAML config:
//
//	breaker:
//	  refresh_interval: 1s      # fallback refresh of the local view (<= 1s)
//	  idle_ttl: 168h            # rows idle this long are removed by the cleanup job
//	  defaults:                 # every key
//	    failure_threshold: 5
//	    failure_ratio: 0.5      # negative disables the ratio rule
//	    minimum_calls: 20
//	    window: 60s
//	    open_timeout: 30s
//	    open_timeout_multiplier: 1
//	    max_open_timeout: 10m
//	    half_open_max_probes: 1
//	    success_threshold: 1
//	    probe_timeout: 2m
//	    max_park: 24h
//	    park_spread: 10m
//	  keys:                     # per operation key; absent fields inherit defaults
//	    api.example.com:
//	      failure_threshold: 3
//	      open_timeout: 1m
//
// Explicit zeros mean "the default" as in Settings.
type FileConfig struct {
	RefreshInterval *Duration               `yaml:"refresh_interval,omitempty"`
	IdleTTL         *Duration               `yaml:"idle_ttl,omitempty"`
	Defaults        FileSettings            `yaml:"defaults,omitempty"`
	Keys            map[string]FileSettings `yaml:"keys,omitempty"`
}

// ParseFileConfig decodes a `breaker:` block on its own (strict: unknown
// fields are errors naming the line) and validates it.
func ParseFileConfig(data []byte) (FileConfig, error) {
	var c FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return FileConfig{}, fmt.Errorf("breaker config: %w", err)
	}
	if _, err := c.Config(); err != nil {
		return FileConfig{}, err
	}
	return c, nil
}

func (f FileSettings) settings() Settings {
	var s Settings
	if f.FailureThreshold != nil {
		s.FailureThreshold = *f.FailureThreshold
	}
	if f.FailureRatio != nil {
		s.FailureRatio = *f.FailureRatio
	}
	if f.MinimumCalls != nil {
		s.MinimumCalls = *f.MinimumCalls
	}
	if f.Window != nil {
		s.Window = time.Duration(*f.Window)
	}
	if f.OpenTimeout != nil {
		s.OpenTimeout = time.Duration(*f.OpenTimeout)
	}
	if f.OpenTimeoutMultiplier != nil {
		s.OpenTimeoutMultiplier = *f.OpenTimeoutMultiplier
	}
	if f.MaxOpenTimeout != nil {
		s.MaxOpenTimeout = time.Duration(*f.MaxOpenTimeout)
	}
	if f.HalfOpenMaxProbes != nil {
		s.HalfOpenMaxProbes = *f.HalfOpenMaxProbes
	}
	if f.SuccessThreshold != nil {
		s.SuccessThreshold = *f.SuccessThreshold
	}
	if f.ProbeTimeout != nil {
		s.ProbeTimeout = time.Duration(*f.ProbeTimeout)
	}
	if f.MaxPark != nil {
		s.MaxPark = time.Duration(*f.MaxPark)
	}
	if f.ParkSpread != nil {
		s.ParkSpread = time.Duration(*f.ParkSpread)
	}
	return s
}

// IdleTTLOrDefault returns idle_ttl, or DefaultIdleTTL when absent.
func (c FileConfig) IdleTTLOrDefault() time.Duration {
	if c.IdleTTL != nil && *c.IdleTTL > 0 {
		return time.Duration(*c.IdleTTL)
	}
	return DefaultIdleTTL
}

// Config turns the file's block into a Config (Settings, Keys and
// RefreshInterval; the caller adds Metrics, Logger, ListenConfig). Errors
// name the key and the field ("breaker: key \"api.example.com\":
// failure_ratio 1.5: ...").
func (c FileConfig) Config() (Config, error) {
	cfg := Config{Settings: c.Defaults.settings()}
	base := cfg.Settings.WithDefaults()
	if err := base.Validate(); err != nil {
		return Config{}, fmt.Errorf("breaker: defaults: %w", err)
	}
	if c.RefreshInterval != nil {
		cfg.RefreshInterval = time.Duration(*c.RefreshInterval)
		if cfg.RefreshInterval < 10*time.Millisecond || cfg.RefreshInterval > time.Second {
			return Config{}, fmt.Errorf("breaker: refresh_interval %s: must be in [10ms, 1s]", cfg.RefreshInterval)
		}
	}
	if c.IdleTTL != nil && *c.IdleTTL < Duration(time.Minute) {
		return Config{}, fmt.Errorf("breaker: idle_ttl %s: must be >= 1m", time.Duration(*c.IdleTTL))
	}
	names := make([]string, 0, len(c.Keys))
	for k := range c.Keys {
		names = append(names, k)
	}
	sort.Strings(names)
	if len(names) > 0 {
		cfg.Keys = make(map[string]Settings, len(names))
	}
	for _, k := range names {
		if k == "" {
			return Config{}, errors.New("breaker: keys: an empty key")
		}
		s := c.Keys[k].settings()
		if err := s.inherit(base).Validate(); err != nil {
			return Config{}, fmt.Errorf("breaker: key %q: %w", k, err)
		}
		cfg.Keys[k] = s
	}
	return cfg, nil
}
