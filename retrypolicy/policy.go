package retrypolicy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Defaults of a [Policy], from the seed document.
const (
	// DefaultMaxAttempts is the default number of attempts of a job,
	// including the first.
	DefaultMaxAttempts = 5

	// MaxMaxAttempts is the largest max attempts accepted: River stores a
	// job's max attempts in a smallint.
	MaxMaxAttempts = 32767

	// DefaultInitialDelay is the default base of every strategy.
	DefaultInitialDelay = 2 * time.Second

	// DefaultMaxDelay is the default cap of a computed wait (a server's
	// Retry-After may exceed it, up to RetryAfterMax).
	DefaultMaxDelay = 300 * time.Second

	// DefaultMinDelay is the default floor of a computed wait.
	DefaultMinDelay = 100 * time.Millisecond

	// DefaultJitter is the default jitter mode ("jitter on").
	DefaultJitter = JitterProportional

	// DefaultRetryAfterMax is the default cap of a server's Retry-After.
	DefaultRetryAfterMax = time.Hour

	// DefaultRescueLimit is the default number of lost attempts (rescued by
	// River after the worker died or hung) after which a job is cancelled
	// into the dead-letter queue instead of being run again.
	DefaultRescueLimit = 2
)

// Rule is what a policy does with one class of failure.
type Rule struct {
	// Retry says whether a failure of the class is retried (while attempts
	// remain). false cancels the job at once (river.JobCancel).
	Retry bool

	// Strategy computes the wait when Retry is true. "" takes the class's
	// strategy from [DefaultRule], else exponential.
	Strategy Strategy
}

// defaultRules is the default decision matrix (docs/architecture.md).
var defaultRules = map[Class]Rule{
	ClassRateLimited:   {Retry: true, Strategy: StrategyAggressive},
	ClassServerError:   {Retry: true, Strategy: StrategyExponential},
	ClassTimeout:       {Retry: true, Strategy: StrategyLinear},
	ClassNetwork:       {Retry: true, Strategy: StrategyExponential},
	ClassDecode:        {Retry: true, Strategy: StrategyExponential},
	ClassPanic:         {Retry: true, Strategy: StrategyExponential},
	ClassLost:          {Retry: true, Strategy: StrategyExponential},
	ClassUnknownKind:   {Retry: true, Strategy: StrategyExponential},
	ClassUnknown:       {Retry: true, Strategy: StrategyExponential},
	ClassCancelled:     {Retry: true, Strategy: StrategyExponential},
	ClassBadRequest:    {Retry: false},
	ClassUnauthorized:  {Retry: false},
	ClassNotFound:      {Retry: false},
	ClassMisconfigured: {Retry: false},
	ClassOutOfMemory:   {Retry: false},
	ClassBreakerOpen:   {Retry: false},
}

// DefaultRule returns the seed's decision matrix entry for c
// (docs/architecture.md, "The default decision matrix"):
// rate_limited aggressive; server_error exponential; timeout linear; network,
// decode, panic, lost, unknown exponential; unknown_kind retried on its own
// schedule (see [UnknownKindDelay]); cancelled exponential (a
// context.Canceled outside a shutdown; shutdowns are never failures);
// bad_request, unauthorized, not_found, misconfigured, out_of_memory,
// breaker_open not retried. An unknown class gets unknown's rule.
func DefaultRule(c Class) Rule {
	if r, ok := defaultRules[c]; ok {
		return r
	}
	return defaultRules[ClassUnknown]
}

// Policy is the retry policy of one job kind. It is a value: copy it freely.
// Every zero field means "the default" (the Default* constants, or the
// set's default policy for a kind in [NewPolicies]); invalid values are
// refused by [NewPolicies] and [Do].
type Policy struct {
	// MaxAttempts is the number of attempts, including the first; >= 1.
	// When the job's own max attempts (River's, set at insert) are lower,
	// River discards the job at those; when the policy's are lower, the
	// attempt recorder cancels the job at MaxAttempts. Default 5.
	MaxAttempts int

	// InitialDelay is the base of every strategy (see [Strategy.Delay]);
	// > 0. Default 2s.
	InitialDelay time.Duration

	// MaxDelay caps a computed wait; >= InitialDelay. Default 300s.
	MaxDelay time.Duration

	// MinDelay floors a computed wait; > 0 and <= MaxDelay. Default 100ms.
	MinDelay time.Duration

	// Jitter randomises waits; one of the Jitter* constants. Default
	// proportional (±20%).
	Jitter Jitter

	// RetryAfterMax caps a server's Retry-After; > 0. Default 1h.
	RetryAfterMax time.Duration

	// RescueLimit is the number of lost attempts (see [ClassLost]) after
	// which the job is cancelled into the dead-letter queue at the start of
	// its next attempt, without running the worker; >= 1. Default 2. A rule
	// for lost with Retry false makes it 1.
	RescueLimit int

	// Rules overrides the decision matrix ([DefaultRule]) per class; classes
	// absent keep their default rule. nil keeps the whole matrix.
	Rules map[Class]Rule
}

// WithDefaults returns a copy of p with every zero field set to its default
// and Rules completed from the decision matrix (a fresh map holding every
// class, so the copy shares nothing with p). It does not validate.
func (p Policy) WithDefaults() Policy {
	return p.inherit(Policy{
		MaxAttempts:   DefaultMaxAttempts,
		InitialDelay:  DefaultInitialDelay,
		MaxDelay:      DefaultMaxDelay,
		MinDelay:      DefaultMinDelay,
		Jitter:        DefaultJitter,
		RetryAfterMax: DefaultRetryAfterMax,
		RescueLimit:   DefaultRescueLimit,
		Rules:         defaultRules,
	})
}

// inherit returns p with its zero fields taken from parent and its rules
// layered over parent's (then over the matrix). The result's Rules is a new
// map holding every class.
func (p Policy) inherit(parent Policy) Policy {
	out := p
	if out.MaxAttempts == 0 {
		out.MaxAttempts = parent.MaxAttempts
	}
	if out.InitialDelay == 0 {
		out.InitialDelay = parent.InitialDelay
	}
	if out.MaxDelay == 0 {
		out.MaxDelay = parent.MaxDelay
	}
	if out.MinDelay == 0 {
		out.MinDelay = parent.MinDelay
	}
	if out.Jitter == "" {
		out.Jitter = parent.Jitter
	}
	if out.RetryAfterMax == 0 {
		out.RetryAfterMax = parent.RetryAfterMax
	}
	if out.RescueLimit == 0 {
		out.RescueLimit = parent.RescueLimit
	}
	rules := make(map[Class]Rule, len(allClasses)+len(p.Rules))
	for _, c := range allClasses {
		rules[c] = DefaultRule(c)
	}
	maps.Copy(rules, parent.Rules)
	maps.Copy(rules, p.Rules)
	out.Rules = rules
	return out
}

// Rule returns the policy's rule for class c: its override in Rules, else
// [DefaultRule]. The returned Strategy is never "" when Retry is true (the
// matrix's strategy for c, else exponential).
func (p Policy) Rule(c Class) Rule {
	r, ok := p.Rules[c]
	if !ok {
		r = DefaultRule(c)
	}
	if r.Strategy == "" {
		r.Strategy = DefaultRule(c).Strategy
		if r.Strategy == "" {
			r.Strategy = StrategyExponential
		}
	}
	return r
}

// validate checks a policy after WithDefaults/inherit. Errors are
// *ConfigError whose Key is prefix + the YAML key, e.g.
// "retry.kinds.http_request.max_delay".
func (p Policy) validate(prefix string) error {
	switch {
	case p.MaxAttempts < 1:
		return &ConfigError{Key: prefix + "max_attempts", Problem: fmt.Sprintf("must be >= 1 (got %d)", p.MaxAttempts)}
	case p.MaxAttempts > MaxMaxAttempts:
		return &ConfigError{Key: prefix + "max_attempts", Problem: fmt.Sprintf("must be <= %d, the most River's max_attempts column holds (got %d)", MaxMaxAttempts, p.MaxAttempts)}
	case p.InitialDelay <= 0:
		return &ConfigError{Key: prefix + "initial_delay", Problem: fmt.Sprintf("must be > 0 (got %s)", p.InitialDelay)}
	case p.MaxDelay < p.InitialDelay:
		return &ConfigError{Key: prefix + "max_delay", Problem: fmt.Sprintf("must be >= initial_delay (%s)", p.InitialDelay)}
	case p.MinDelay <= 0:
		return &ConfigError{Key: prefix + "min_delay", Problem: fmt.Sprintf("must be > 0 (got %s)", p.MinDelay)}
	case p.MinDelay > p.MaxDelay:
		return &ConfigError{Key: prefix + "min_delay", Problem: fmt.Sprintf("must be <= max_delay (%s)", p.MaxDelay)}
	case !p.Jitter.Valid():
		return &ConfigError{Key: prefix + "jitter", Problem: fmt.Sprintf("unknown jitter mode %q (known: %s)", p.Jitter, joinNames(allJitters[:]))}
	case p.RetryAfterMax <= 0:
		return &ConfigError{Key: prefix + "retry_after_max", Problem: fmt.Sprintf("must be > 0 (got %s)", p.RetryAfterMax)}
	case p.RescueLimit < 1:
		return &ConfigError{Key: prefix + "rescue_limit", Problem: fmt.Sprintf("must be >= 1 (got %d)", p.RescueLimit)}
	}
	for _, c := range slices.Sorted(maps.Keys(p.Rules)) {
		if !c.Valid() {
			return &ConfigError{Key: prefix + "classes." + string(c), Problem: fmt.Sprintf("unknown class (known: %s)", joinNames(allClasses[:]))}
		}
		if s := p.Rules[c].Strategy; s != "" && !s.Valid() {
			return &ConfigError{Key: prefix + "classes." + string(c) + ".strategy", Problem: fmt.Sprintf("unknown strategy %q (known: %s)", s, joinNames(allStrategies[:]))}
		}
	}
	return nil
}

func joinNames[S ~string](names []S) string {
	var b strings.Builder
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(n))
	}
	return b.String()
}

// ConfigError is a refused policy setting. Key is the setting's full YAML
// key, e.g. "retry.kinds.http_request.max_delay"; Problem says what is wrong,
// e.g. "must be >= initial_delay (2s)".
type ConfigError struct {
	// Key is the full YAML key of the refused setting.
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

// Policies is a set of policies: a default and overrides by job kind. Build
// it with [NewPolicies] or [Config.Policies]; a nil *Policies behaves as the
// package defaults for every kind. It is immutable and safe for concurrent
// use.
type Policies struct {
	def   Policy
	kinds map[string]Policy
}

// defaultPolicies backs a nil *Policies.
var defaultPolicies = &Policies{def: Policy{}.WithDefaults()}

// NewPolicies validates and resolves a set of policies. def's zero fields
// take the package defaults; each kind's zero fields and missing rules take
// def's. Errors are *ConfigError naming the key in YAML terms
// ("retry.default.max_delay", "retry.kinds.<kind>.classes.<class>.strategy").
func NewPolicies(def Policy, kinds map[string]Policy) (*Policies, error) {
	resolved := &Policies{def: def.WithDefaults(), kinds: make(map[string]Policy, len(kinds))}
	if err := resolved.def.validate(ConfigKey + ".default."); err != nil {
		return nil, err
	}
	for _, kind := range slices.Sorted(maps.Keys(kinds)) {
		if kind == "" {
			return nil, &ConfigError{Key: ConfigKey + ".kinds", Problem: "empty job kind"}
		}
		p := kinds[kind].inherit(resolved.def)
		if err := p.validate(ConfigKey + ".kinds." + kind + "."); err != nil {
			return nil, err
		}
		resolved.kinds[kind] = p
	}
	return resolved, nil
}

// Lookup returns the resolved policy of a job kind: its own when configured,
// else the default. Every field is set and Rules holds every class. It
// allocates nothing; do not modify the returned Rules map.
func (s *Policies) Lookup(kind string) Policy {
	if s == nil {
		s = defaultPolicies
	}
	if p, ok := s.kinds[kind]; ok {
		return p
	}
	return s.def
}

// Default returns the resolved default policy (see Lookup).
func (s *Policies) Default() Policy {
	if s == nil {
		s = defaultPolicies
	}
	return s.def
}

// Kinds returns the kinds with their own policy, sorted.
func (s *Policies) Kinds() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.kinds))
}
