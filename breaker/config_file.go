package breaker

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigKey is the key under which the worker's --config file holds the
// breaker settings; configuration errors name settings from it, e.g.
// "breaker.keys.api.example.com.open_timeout".
const ConfigKey = "breaker"

// ConfigError is a refused setting of the `breaker:` block.
type ConfigError struct {
	// Key is the full YAML key of the refused setting, e.g.
	// "breaker.defaults.failure_threshold".
	Key string
	// Problem says what is wrong with it, with the line of the file that
	// holds it where the key was read from a file, e.g. "unknown setting
	// (known: default, kinds; line 2)".
	Problem string
	// unknown marks an unknown-setting problem whose key line eachKey has
	// yet to add.
	unknown bool
}

// Error returns "Key: Problem".
func (e *ConfigError) Error() string { return e.Key + ": " + e.Problem }

// Duration is a time.Duration written in YAML as a Go duration string
// ("30s", "10m", "24h"). Bare numbers are refused: their unit would be a
// guess.
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := decodeDuration(n, "")
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// FileSettings is one block of breaker settings in the worker's YAML
// config. A nil (absent) field inherits (a key from the defaults block, the
// defaults block from the package defaults); see Settings for meanings.
// Unlike Settings, an explicit zero is refused (failure_threshold: 0 is an
// error naming the default, not "the default").
type FileSettings struct {
	// FailureThreshold is failure_threshold, >= 1.
	FailureThreshold *int `yaml:"failure_threshold,omitempty"`
	// FailureRatio is failure_ratio: in (0, 1], or negative to disable.
	FailureRatio *float64 `yaml:"failure_ratio,omitempty"`
	// MinimumCalls is minimum_calls, >= 1.
	MinimumCalls *int `yaml:"minimum_calls,omitempty"`
	// Window is window, >= 1s.
	Window *Duration `yaml:"window,omitempty"`
	// OpenTimeout is open_timeout, >= 1ms.
	OpenTimeout *Duration `yaml:"open_timeout,omitempty"`
	// OpenTimeoutMultiplier is open_timeout_multiplier, >= 1.
	OpenTimeoutMultiplier *float64 `yaml:"open_timeout_multiplier,omitempty"`
	// MaxOpenTimeout is max_open_timeout, >= open_timeout.
	MaxOpenTimeout *Duration `yaml:"max_open_timeout,omitempty"`
	// HalfOpenMaxProbes is half_open_max_probes, >= 1.
	HalfOpenMaxProbes *int `yaml:"half_open_max_probes,omitempty"`
	// SuccessThreshold is success_threshold, >= 1.
	SuccessThreshold *int `yaml:"success_threshold,omitempty"`
	// ProbeTimeout is probe_timeout, >= 1ms.
	ProbeTimeout *Duration `yaml:"probe_timeout,omitempty"`
	// MaxPark is max_park, >= 1s.
	MaxPark *Duration `yaml:"max_park,omitempty"`
	// ParkSpread is park_spread, > 0.
	ParkSpread *Duration `yaml:"park_spread,omitempty"`
	// WakeSpread is wake_spread, in [1ms, 1h].
	WakeSpread *Duration `yaml:"wake_spread,omitempty"`
	// WakeWave is wake_wave, in [1ms, 1h].
	WakeWave *Duration `yaml:"wake_wave,omitempty"`
}

// fileSettingNames are FileSettings' YAML keys, in the order of the docs.
var fileSettingNames = []string{
	"failure_threshold", "failure_ratio", "minimum_calls", "window", "open_timeout",
	"open_timeout_multiplier", "max_open_timeout", "half_open_max_probes", "success_threshold",
	"probe_timeout", "max_park", "park_spread", "wake_spread", "wake_wave",
}

// fileConfigNames are FileConfig's YAML keys.
var fileConfigNames = []string{"refresh_interval", "idle_ttl", "defaults", "keys"}

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
//	    wake_spread: 10s        # a closed key's parked jobs wake over at most this
//	    wake_wave: 100ms        # ... and this per wave of the pod's workers
//	  keys:                     # per operation key; absent fields inherit defaults
//	    api.example.com:
//	      failure_threshold: 3
//	      open_timeout: 1m
//
// Every setting is optional. Unknown keys, keys set twice and values of the
// wrong type are refused when decoding, and explicit zeros (which Settings
// would read as "the default") and values out of range by Config, each
// with a *ConfigError naming the full key and, for a zero, the default:
//
//	breaker.defaults.failure_treshold: unknown setting (known: failure_threshold, failure_ratio, ...)
//	breaker.keys.api.example.com.failure_threshold: must be >= 1 (got 0; leave it out for the default, 5)
type FileConfig struct {
	// RefreshInterval is refresh_interval, in [10ms, 1s].
	RefreshInterval *Duration `yaml:"refresh_interval,omitempty"`
	// IdleTTL is idle_ttl, >= 1m.
	IdleTTL *Duration `yaml:"idle_ttl,omitempty"`
	// Defaults is defaults: the settings of every key.
	Defaults FileSettings `yaml:"defaults,omitempty"`
	// Keys is keys: settings per operation key (each key must pass
	// ValidateKey); absent fields inherit Defaults.
	Keys map[string]FileSettings `yaml:"keys,omitempty"`
}

// UnmarshalYAML decodes the `breaker:` block. Unknown keys, duplicate keys
// and values of the wrong type are refused with a *ConfigError naming the
// key (e.g. "breaker.defaults.failure_threshold"), whatever the decoder's
// KnownFields setting. Ranges are checked later by Config.
func (c *FileConfig) UnmarshalYAML(node *yaml.Node) error {
	*c = FileConfig{}
	return eachKey(node, ConfigKey, func(key string, value *yaml.Node) error {
		k := ConfigKey + "." + key
		switch key {
		case "refresh_interval", "idle_ttl":
			d, err := decodeDuration(value, k)
			if err != nil {
				return err
			}
			if key == "refresh_interval" {
				c.RefreshInterval = &d
			} else {
				c.IdleTTL = &d
			}
			return nil
		case "defaults":
			return c.Defaults.decode(value, k)
		case "keys":
			c.Keys = map[string]FileSettings{}
			return eachKey(value, k, func(name string, value *yaml.Node) error {
				var f FileSettings
				if err := f.decode(value, k+"."+name); err != nil {
					return err
				}
				c.Keys[name] = f
				return nil
			})
		}
		return unknownKey(k, fileConfigNames)
	})
}

// UnmarshalYAML decodes one block of settings; errors name keys relative to
// it. See FileConfig.UnmarshalYAML.
func (f *FileSettings) UnmarshalYAML(node *yaml.Node) error { return f.decode(node, "") }

func (f *FileSettings) decode(node *yaml.Node, path string) error {
	*f = FileSettings{}
	return eachKey(node, path, func(key string, value *yaml.Node) error {
		k := joinKey(path, key)
		switch key {
		case "failure_threshold", "minimum_calls", "half_open_max_probes", "success_threshold":
			var n int
			if value.Kind != yaml.ScalarNode || value.Tag != "!!int" || value.Decode(&n) != nil {
				return &ConfigError{Key: k, Problem: fmt.Sprintf("%q is not an integer (line %d)", value.Value, value.Line)}
			}
			switch key {
			case "failure_threshold":
				f.FailureThreshold = &n
			case "minimum_calls":
				f.MinimumCalls = &n
			case "half_open_max_probes":
				f.HalfOpenMaxProbes = &n
			default:
				f.SuccessThreshold = &n
			}
		case "failure_ratio", "open_timeout_multiplier":
			var x float64
			if value.Kind != yaml.ScalarNode || (value.Tag != "!!float" && value.Tag != "!!int") || value.Decode(&x) != nil {
				return &ConfigError{Key: k, Problem: fmt.Sprintf("%q is not a number (line %d)", value.Value, value.Line)}
			}
			if key == "failure_ratio" {
				f.FailureRatio = &x
			} else {
				f.OpenTimeoutMultiplier = &x
			}
		case "window", "open_timeout", "max_open_timeout", "probe_timeout", "max_park", "park_spread", "wake_spread", "wake_wave":
			d, err := decodeDuration(value, k)
			if err != nil {
				return err
			}
			switch key {
			case "window":
				f.Window = &d
			case "open_timeout":
				f.OpenTimeout = &d
			case "max_open_timeout":
				f.MaxOpenTimeout = &d
			case "probe_timeout":
				f.ProbeTimeout = &d
			case "max_park":
				f.MaxPark = &d
			case "park_spread":
				f.ParkSpread = &d
			case "wake_spread":
				f.WakeSpread = &d
			default:
				f.WakeWave = &d
			}
		default:
			return unknownKey(k, fileSettingNames)
		}
		return nil
	})
}

// eachKey calls fn for each key of a mapping node, in file order. null is an
// empty mapping; anything else that is not a mapping, and a key seen twice,
// is a *ConfigError at path.
func eachKey(node *yaml.Node, path string, fn func(key string, value *yaml.Node) error) error {
	if node.Kind == yaml.DocumentNode && len(node.Content) == 1 {
		node = node.Content[0]
	}
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if node.Kind == yaml.ScalarNode && node.Tag == "!!null" {
		return nil
	}
	if node.Kind != yaml.MappingNode {
		return &ConfigError{Key: cmp.Or(path, "(top level)"), Problem: fmt.Sprintf("must be a mapping (line %d)", node.Line)}
	}
	seen := make(map[string]bool, len(node.Content)/2)
	for i := 0; i+1 < len(node.Content); i += 2 {
		key := node.Content[i].Value
		if seen[key] {
			return &ConfigError{Key: joinKey(path, key), Problem: fmt.Sprintf("set twice (line %d)", node.Content[i].Line)}
		}
		seen[key] = true
		if err := fn(key, node.Content[i+1]); err != nil {
			if ce, ok := err.(*ConfigError); ok && ce.unknown {
				ce.Problem = strings.TrimSuffix(ce.Problem, ")") + fmt.Sprintf("; line %d)", node.Content[i].Line)
				ce.unknown = false
			}
			return err
		}
	}
	return nil
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// unknownKey is the error for a key not among known; eachKey, which
// calls it, adds the key's line: "unknown setting (known: a, b; line 3)".
func unknownKey(key string, known []string) error {
	return &ConfigError{Key: key, Problem: "unknown setting (known: " + strings.Join(known, ", ") + ")", unknown: true}
}

// decodeDuration reads a duration string; errors name key.
func decodeDuration(node *yaml.Node, key string) (Duration, error) {
	if node.Kind == yaml.ScalarNode && node.Tag == "!!str" {
		if v, err := time.ParseDuration(node.Value); err == nil {
			return Duration(v), nil
		}
	}
	return 0, &ConfigError{Key: cmp.Or(key, "duration"), Problem: fmt.Sprintf("%q is not a duration (line %d): write a number with a unit, e.g. 30s, 10m, 100ms", node.Value, node.Line)}
}

// ParseFileConfig decodes a `breaker:` block on its own (the mapping under
// the key, not the key) and validates it. Errors are *ConfigError naming
// the full key, as from FileConfig.UnmarshalYAML and Config.
func ParseFileConfig(data []byte) (FileConfig, error) {
	var c FileConfig
	if len(strings.TrimSpace(string(data))) > 0 {
		var node yaml.Node
		if err := yaml.Unmarshal(data, &node); err != nil {
			return FileConfig{}, fmt.Errorf("%s: invalid YAML: %s", ConfigKey, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if err := c.UnmarshalYAML(&node); err != nil {
			return FileConfig{}, err
		}
	}
	if _, err := c.Config(); err != nil {
		return FileConfig{}, err
	}
	return c, nil
}

// settings converts the block to Settings whose zero fields mean "unset",
// refusing explicit zeros; prefix is the block's key with a trailing dot.
func (f FileSettings) settings(prefix string) (Settings, error) {
	var s Settings
	zero := func(name string, got any) error {
		rule := settingRules[name]
		if name == "park_spread" {
			rule = "must be > 0"
		}
		return &ConfigError{Key: prefix + name, Problem: fmt.Sprintf("%s (got %v; leave it out for the default, %s)", rule, got, settingDefaults[name])}
	}
	ints := []struct {
		name string
		in   *int
		out  *int
	}{
		{"failure_threshold", f.FailureThreshold, &s.FailureThreshold},
		{"minimum_calls", f.MinimumCalls, &s.MinimumCalls},
		{"half_open_max_probes", f.HalfOpenMaxProbes, &s.HalfOpenMaxProbes},
		{"success_threshold", f.SuccessThreshold, &s.SuccessThreshold},
	}
	for _, x := range ints {
		if x.in == nil {
			continue
		}
		if *x.in == 0 {
			return s, zero(x.name, 0)
		}
		*x.out = *x.in
	}
	floats := []struct {
		name string
		in   *float64
		out  *float64
	}{
		{"failure_ratio", f.FailureRatio, &s.FailureRatio},
		{"open_timeout_multiplier", f.OpenTimeoutMultiplier, &s.OpenTimeoutMultiplier},
	}
	for _, x := range floats {
		if x.in == nil {
			continue
		}
		if *x.in == 0 {
			return s, zero(x.name, 0)
		}
		*x.out = *x.in
	}
	durations := []struct {
		name string
		in   *Duration
		out  *time.Duration
	}{
		{"window", f.Window, &s.Window},
		{"open_timeout", f.OpenTimeout, &s.OpenTimeout},
		{"max_open_timeout", f.MaxOpenTimeout, &s.MaxOpenTimeout},
		{"probe_timeout", f.ProbeTimeout, &s.ProbeTimeout},
		{"max_park", f.MaxPark, &s.MaxPark},
		{"park_spread", f.ParkSpread, &s.ParkSpread},
		{"wake_spread", f.WakeSpread, &s.WakeSpread},
		{"wake_wave", f.WakeWave, &s.WakeWave},
	}
	for _, x := range durations {
		if x.in == nil {
			continue
		}
		if *x.in == 0 {
			return s, zero(x.name, "0s")
		}
		*x.out = time.Duration(*x.in)
	}
	return s, nil
}

// settingDefaults are the defaults of FileSettings' keys, as a zero's error
// names them.
var settingDefaults = map[string]string{
	"failure_threshold":       strconv.Itoa(DefaultFailureThreshold),
	"failure_ratio":           strconv.FormatFloat(DefaultFailureRatio, 'g', -1, 64),
	"minimum_calls":           strconv.Itoa(DefaultMinimumCalls),
	"window":                  shortDuration(DefaultWindow),
	"open_timeout":            shortDuration(DefaultOpenTimeout),
	"open_timeout_multiplier": strconv.FormatFloat(DefaultOpenTimeoutMultiplier, 'g', -1, 64),
	"max_open_timeout":        shortDuration(DefaultMaxOpenTimeout) + ", or open_timeout when larger",
	"half_open_max_probes":    strconv.Itoa(DefaultHalfOpenMaxProbes),
	"success_threshold":       strconv.Itoa(DefaultSuccessThreshold),
	"probe_timeout":           shortDuration(DefaultProbeTimeout),
	"max_park":                shortDuration(DefaultMaxPark),
	"park_spread":             shortDuration(DefaultParkSpread),
	"wake_spread":             shortDuration(DefaultWakeSpread),
	"wake_wave":               shortDuration(DefaultWakeWave),
	"refresh_interval":        shortDuration(DefaultRefreshInterval),
	"idle_ttl":                shortDuration(DefaultIdleTTL),
}

// shortDuration writes d as time.Duration.String without trailing zero
// units: 10m, 24h, 1m30s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
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

// Config validates the block and turns it into a Config (Settings, Keys and
// RefreshInterval; the caller adds Metrics, Logger, ListenConfig). Errors
// are *ConfigError naming the full key, e.g.
// "breaker.keys.api.example.com.failure_ratio: must be in (0, 1], or
// negative to disable the ratio rule (got 1.5)". Refused: explicit zeros
// (they would read as "the default"), values out of Settings.Validate's
// ranges, refresh_interval outside [10ms, 1s], idle_ttl under 1m, and keys
// that break ValidateKey's rule.
func (c FileConfig) Config() (Config, error) {
	prefix := ConfigKey + ".defaults."
	def, err := c.Defaults.settings(prefix)
	if err != nil {
		return Config{}, err
	}
	cfg := Config{Settings: def}
	base := def.WithDefaults()
	if err := base.Validate(); err != nil {
		return Config{}, configError(prefix, err)
	}
	if c.RefreshInterval != nil {
		d := time.Duration(*c.RefreshInterval)
		if d < 10*time.Millisecond || d > time.Second {
			return Config{}, durationError("refresh_interval", "must be in [10ms, 1s]", d)
		}
		cfg.RefreshInterval = d
	}
	if c.IdleTTL != nil {
		if d := time.Duration(*c.IdleTTL); d < time.Minute {
			return Config{}, durationError("idle_ttl", "must be >= 1m", d)
		}
	}
	if len(c.Keys) > 0 {
		cfg.Keys = make(map[string]Settings, len(c.Keys))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Keys)) {
		if err := ValidateKey(k); err != nil {
			return Config{}, &ConfigError{Key: ConfigKey + ".keys", Problem: err.Error()}
		}
		prefix := ConfigKey + ".keys." + k + "."
		s, err := c.Keys[k].settings(prefix)
		if err != nil {
			return Config{}, err
		}
		if err := s.inherit(base).Validate(); err != nil {
			return Config{}, configError(prefix, err)
		}
		cfg.Keys[k] = s
	}
	return cfg, nil
}

// configError names Validate's field under prefix.
func configError(prefix string, err error) error {
	se, ok := err.(*settingError)
	if !ok {
		return err
	}
	got := se.got
	if se.note != "" {
		got += "; " + se.note
	}
	return &ConfigError{Key: prefix + se.field, Problem: fmt.Sprintf("%s (got %s)", se.rule, got)}
}

// durationError refuses a top-level duration of the block.
func durationError(name, rule string, d time.Duration) error {
	if d == 0 {
		return &ConfigError{Key: ConfigKey + "." + name, Problem: fmt.Sprintf("%s (got 0s; leave it out for the default, %s)", rule, settingDefaults[name])}
	}
	return &ConfigError{Key: ConfigKey + "." + name, Problem: fmt.Sprintf("%s (got %s)", rule, d)}
}
