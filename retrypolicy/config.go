package retrypolicy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigKey is the key under which the worker's --config file holds retry
// policies; validation errors name settings from it, e.g.
// "retry.kinds.http_request.max_delay".
const ConfigKey = "retry"

// Config is the YAML form of a set of policies, as found under the `retry:`
// key of the worker's --config file:
//
//	retry:
//	  default:                  # every field optional; unset = package default
//	    max_attempts: 5
//	    initial_delay: 2s       # durations are Go duration strings: 100ms, 2s, 5m, 1h
//	    max_delay: 5m
//	    min_delay: 100ms
//	    jitter: proportional    # none | full | equal | proportional | decorrelated (true = proportional, false = none)
//	    retry_after_max: 1h
//	    rescue_limit: 2
//	    classes:                # overrides of the decision matrix, per class
//	      not_found: {retry: true, strategy: linear}
//	      timeout: {strategy: exponential}
//	  kinds:
//	    http_request:           # unset fields and classes come from default
//	      max_attempts: 10
//	      max_delay: 10m
//
// Unlike a Go [Policy], an explicit zero is refused (max_attempts: 0 is an
// error, not "default"). Build the policies with [Config.Policies].
type Config struct {
	// Default applies to every kind; its unset fields take the package
	// defaults.
	Default PolicyConfig `yaml:"default"`

	// Kinds overrides Default per job kind; unset fields and classes take
	// Default's.
	Kinds map[string]PolicyConfig `yaml:"kinds"`
}

// PolicyConfig is the YAML form of a [Policy]. nil fields are unset (take
// the parent's value); see [Policy] for each setting's meaning and default.
type PolicyConfig struct {
	// MaxAttempts is max_attempts: attempts including the first, >= 1.
	MaxAttempts *int `yaml:"max_attempts,omitempty"`
	// InitialDelay is initial_delay: the strategies' base, > 0, e.g. "2s".
	InitialDelay *Duration `yaml:"initial_delay,omitempty"`
	// MaxDelay is max_delay: the cap of a computed wait, >= initial_delay.
	MaxDelay *Duration `yaml:"max_delay,omitempty"`
	// MinDelay is min_delay: the floor of a computed wait, > 0.
	MinDelay *Duration `yaml:"min_delay,omitempty"`
	// Jitter is jitter: none, full, equal, proportional, decorrelated, or a
	// boolean (true = proportional, false = none).
	Jitter *Jitter `yaml:"jitter,omitempty"`
	// RetryAfterMax is retry_after_max: the cap of a server's Retry-After,
	// > 0.
	RetryAfterMax *Duration `yaml:"retry_after_max,omitempty"`
	// RescueLimit is rescue_limit: lost attempts before the job is cancelled
	// into the dead-letter queue, >= 1.
	RescueLimit *int `yaml:"rescue_limit,omitempty"`
	// Classes is classes: per-class overrides of the decision matrix, keyed
	// by class name.
	Classes map[Class]RuleConfig `yaml:"classes,omitempty"`
}

// RuleConfig is the YAML form of a [Rule]. Unset retry keeps the inherited
// decision; unset strategy keeps the inherited strategy.
type RuleConfig struct {
	// Retry is retry: true or false.
	Retry *bool `yaml:"retry,omitempty"`
	// Strategy is strategy: exponential, linear, fibonacci or aggressive.
	Strategy *Strategy `yaml:"strategy,omitempty"`
}

// Duration is a time.Duration written in YAML as a Go duration string ("2s",
// "5m", "1h30m", "100ms"). Bare numbers are refused: their unit would be a
// guess.
type Duration time.Duration

// UnmarshalYAML parses a duration string.
func (d *Duration) UnmarshalYAML(node *yaml.Node) error {
	v, err := decodeDuration(node, "")
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as a string, e.g. "2s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML accepts a jitter mode name, or a boolean as in the seed
// document's "jitter on": true is proportional, false is none. The name is
// validated by [Config.Policies], which names the key.
func (j *Jitter) UnmarshalYAML(node *yaml.Node) error {
	if node.Kind == yaml.ScalarNode && node.Tag == "!!bool" {
		var on bool
		if err := node.Decode(&on); err != nil {
			return err
		}
		*j = JitterNone
		if on {
			*j = JitterProportional
		}
		return nil
	}
	if node.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: jitter must be a mode name or a boolean", node.Line)
	}
	*j = Jitter(node.Value)
	return nil
}

// UnmarshalYAML decodes the `retry:` section. Unknown keys, duplicate keys
// and values of the wrong type are refused with a *ConfigError naming the key
// (e.g. "retry.kinds.http_request.max_delay"), whatever the decoder's
// KnownFields setting. Ranges are checked later by [Config.Policies].
func (c *Config) UnmarshalYAML(node *yaml.Node) error {
	*c = Config{}
	return eachKey(node, ConfigKey, func(key string, value *yaml.Node) error {
		switch key {
		case "default":
			return c.Default.decode(value, ConfigKey+".default")
		case "kinds":
			c.Kinds = map[string]PolicyConfig{}
			return eachKey(value, ConfigKey+".kinds", func(kind string, value *yaml.Node) error {
				var p PolicyConfig
				if err := p.decode(value, ConfigKey+".kinds."+kind); err != nil {
					return err
				}
				c.Kinds[kind] = p
				return nil
			})
		}
		return unknownKey(ConfigKey+"."+key, "default, kinds")
	})
}

// UnmarshalYAML decodes one policy; errors name keys relative to it. See
// [Config.UnmarshalYAML].
func (c *PolicyConfig) UnmarshalYAML(node *yaml.Node) error { return c.decode(node, "") }

func (c *PolicyConfig) decode(node *yaml.Node, path string) error {
	*c = PolicyConfig{}
	return eachKey(node, path, func(key string, value *yaml.Node) error {
		k := joinKey(path, key)
		switch key {
		case "max_attempts", "rescue_limit":
			var n int
			// The tag check: yaml.v3 decodes 2.5 into an int as 2, silently.
			if value.Kind != yaml.ScalarNode || value.Tag != "!!int" || value.Decode(&n) != nil {
				return &ConfigError{Key: k, Problem: fmt.Sprintf("%q is not an integer (line %d)", value.Value, value.Line)}
			}
			if key == "max_attempts" {
				c.MaxAttempts = &n
			} else {
				c.RescueLimit = &n
			}
		case "initial_delay", "max_delay", "min_delay", "retry_after_max":
			d, err := decodeDuration(value, k)
			if err != nil {
				return err
			}
			switch key {
			case "initial_delay":
				c.InitialDelay = &d
			case "max_delay":
				c.MaxDelay = &d
			case "min_delay":
				c.MinDelay = &d
			default:
				c.RetryAfterMax = &d
			}
		case "jitter":
			var j Jitter
			if err := j.UnmarshalYAML(value); err != nil {
				return &ConfigError{Key: k, Problem: fmt.Sprintf("must be a jitter mode (%s) or a boolean (line %d)", joinNames(allJitters[:]), value.Line)}
			}
			c.Jitter = &j
		case "classes":
			c.Classes = map[Class]RuleConfig{}
			return eachKey(value, k, func(class string, value *yaml.Node) error {
				var r RuleConfig
				if err := r.decode(value, joinKey(k, class)); err != nil {
					return err
				}
				c.Classes[Class(class)] = r
				return nil
			})
		default:
			return unknownKey(k, "max_attempts, initial_delay, max_delay, min_delay, jitter, retry_after_max, rescue_limit, classes")
		}
		return nil
	})
}

// UnmarshalYAML decodes one class rule; errors name keys relative to it.
func (r *RuleConfig) UnmarshalYAML(node *yaml.Node) error { return r.decode(node, "") }

func (r *RuleConfig) decode(node *yaml.Node, path string) error {
	*r = RuleConfig{}
	return eachKey(node, path, func(key string, value *yaml.Node) error {
		k := joinKey(path, key)
		switch key {
		case "retry":
			var b bool
			if value.Kind != yaml.ScalarNode || value.Tag != "!!bool" || value.Decode(&b) != nil {
				return &ConfigError{Key: k, Problem: fmt.Sprintf("%q is not a boolean (line %d): write true or false", value.Value, value.Line)}
			}
			r.Retry = &b
		case "strategy":
			if value.Kind != yaml.ScalarNode {
				return &ConfigError{Key: k, Problem: fmt.Sprintf("must be a strategy name (line %d)", value.Line)}
			}
			s := Strategy(value.Value)
			r.Strategy = &s
		default:
			return unknownKey(k, "retry, strategy")
		}
		return nil
	})
}

// eachKey calls fn for each key of a mapping node, in file order. null is an
// empty mapping; anything else that is not a mapping, and a key seen twice,
// is a *ConfigError at path.
func eachKey(node *yaml.Node, path string, fn func(key string, value *yaml.Node) error) error {
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
func unknownKey(key, known string) error {
	return &ConfigError{Key: key, Problem: "unknown setting (known: " + known + ")", unknown: true}
}

// decodeDuration reads a duration string; errors name key.
func decodeDuration(node *yaml.Node, key string) (Duration, error) {
	if node.Kind == yaml.ScalarNode && node.Tag == "!!str" {
		if v, err := time.ParseDuration(node.Value); err == nil {
			return Duration(v), nil
		}
	}
	return 0, &ConfigError{Key: cmp.Or(key, "duration"), Problem: fmt.Sprintf("%q is not a duration (line %d): write a number with a unit, e.g. 2s, 5m, 100ms", node.Value, node.Line)}
}

// Policies validates the configuration and builds the set of policies.
// Errors are *ConfigError naming the offending key, e.g.
// "retry.kinds.http_request.max_delay: must be >= initial_delay (2s)".
// Refused: max_attempts < 1, rescue_limit < 1, initial_delay, min_delay or
// retry_after_max <= 0, max_delay below initial_delay, min_delay above
// max_delay, an unknown class, strategy or jitter mode.
func (c Config) Policies() (*Policies, error) {
	def, err := c.Default.policy(ConfigKey+".default.", nil)
	if err != nil {
		return nil, err
	}
	parentRules := def.WithDefaults().Rules
	kinds := make(map[string]Policy, len(c.Kinds))
	for _, kind := range slices.Sorted(maps.Keys(c.Kinds)) {
		p, err := c.Kinds[kind].policy(ConfigKey+".kinds."+kind+".", parentRules)
		if err != nil {
			return nil, err
		}
		kinds[kind] = p
	}
	return NewPolicies(def, kinds)
}

// policy converts to a Policy whose zero fields mean "unset", after refusing
// explicit values that would read as unset (zero) or are out of range.
// parentRules are the inherited rules a partial class override completes (nil:
// the decision matrix).
func (c PolicyConfig) policy(prefix string, parentRules map[Class]Rule) (Policy, error) {
	var p Policy
	if c.MaxAttempts != nil {
		if *c.MaxAttempts < 1 {
			return p, &ConfigError{Key: prefix + "max_attempts", Problem: fmt.Sprintf("must be >= 1 (got %d)", *c.MaxAttempts)}
		}
		p.MaxAttempts = *c.MaxAttempts
	}
	if c.RescueLimit != nil {
		if *c.RescueLimit < 1 {
			return p, &ConfigError{Key: prefix + "rescue_limit", Problem: fmt.Sprintf("must be >= 1 (got %d)", *c.RescueLimit)}
		}
		p.RescueLimit = *c.RescueLimit
	}
	for _, f := range []struct {
		key string
		in  *Duration
		out *time.Duration
	}{
		{"initial_delay", c.InitialDelay, &p.InitialDelay},
		{"max_delay", c.MaxDelay, &p.MaxDelay},
		{"min_delay", c.MinDelay, &p.MinDelay},
		{"retry_after_max", c.RetryAfterMax, &p.RetryAfterMax},
	} {
		if f.in == nil {
			continue
		}
		if *f.in <= 0 {
			return p, &ConfigError{Key: prefix + f.key, Problem: fmt.Sprintf("must be > 0 (got %s)", time.Duration(*f.in))}
		}
		*f.out = time.Duration(*f.in)
	}
	if c.Jitter != nil {
		if !c.Jitter.Valid() {
			return p, &ConfigError{Key: prefix + "jitter", Problem: fmt.Sprintf("unknown jitter mode %q (known: %s)", *c.Jitter, joinNames(allJitters[:]))}
		}
		p.Jitter = *c.Jitter
	}
	return p, c.rules(prefix, parentRules, &p)
}

// rules converts the class overrides. A class with only a strategy keeps the
// inherited retry decision; with only retry, the inherited strategy.
func (c PolicyConfig) rules(prefix string, parentRules map[Class]Rule, p *Policy) error {
	if len(c.Classes) == 0 {
		return nil
	}
	p.Rules = make(map[Class]Rule, len(c.Classes))
	for _, class := range slices.Sorted(maps.Keys(c.Classes)) {
		if !class.Valid() {
			return &ConfigError{Key: prefix + "classes." + string(class), Problem: fmt.Sprintf("unknown class (known: %s)", joinNames(allClasses[:]))}
		}
		rc := c.Classes[class]
		r, ok := parentRules[class]
		if !ok {
			r = DefaultRule(class)
		}
		if rc.Retry != nil {
			r.Retry = *rc.Retry
		}
		if rc.Strategy != nil {
			if !rc.Strategy.Valid() {
				return &ConfigError{Key: prefix + "classes." + string(class) + ".strategy", Problem: fmt.Sprintf("unknown strategy %q (known: %s)", *rc.Strategy, joinNames(allStrategies[:]))}
			}
			r.Strategy = *rc.Strategy
		}
		p.Rules[class] = r
	}
	return nil
}
