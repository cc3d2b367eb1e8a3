package retrypolicy_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// workerConfig is how the worker's --config file embeds the retry policies.
type workerConfig struct {
	Retry retrypolicy.Config `yaml:"retry"`
}

func loadPolicies(t *testing.T, doc string) (*retrypolicy.Policies, error) {
	t.Helper()
	var cfg workerConfig
	dec := yaml.NewDecoder(bytes.NewReader([]byte(doc)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return nil, err
	}
	return cfg.Retry.Policies()
}

func TestConfigYAML(t *testing.T) {
	t.Parallel()

	set, err := loadPolicies(t, `
retry:
  default:
    max_attempts: 6
    initial_delay: 1s
    max_delay: 5m
    min_delay: 250ms
    jitter: equal
    retry_after_max: 30m
    rescue_limit: 3
    classes:
      not_found: {retry: true, strategy: linear}
      timeout: {retry: false}
  kinds:
    http_request:
      max_attempts: 10
      max_delay: 10m
      jitter: false
      classes:
        not_found: {strategy: fibonacci}
        misconfigured: {retry: true, strategy: linear}
    weekly_intelligence:
      jitter: true
      classes:
        timeout: {strategy: aggressive}
`)
	require.NoError(t, err)
	require.Equal(t, []string{"http_request", "weekly_intelligence"}, set.Kinds())

	def := set.Default()
	require.Equal(t, 6, def.MaxAttempts)
	require.Equal(t, time.Second, def.InitialDelay)
	require.Equal(t, 5*time.Minute, def.MaxDelay)
	require.Equal(t, 250*time.Millisecond, def.MinDelay)
	require.Equal(t, retrypolicy.JitterEqual, def.Jitter)
	require.Equal(t, 30*time.Minute, def.RetryAfterMax)
	require.Equal(t, 3, def.RescueLimit)
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyLinear}, def.Rule(retrypolicy.ClassNotFound))
	require.False(t, def.Rule(retrypolicy.ClassTimeout).Retry)
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyAggressive}, def.Rule(retrypolicy.ClassRateLimited))

	http := set.Lookup("http_request")
	require.Equal(t, 10, http.MaxAttempts)
	require.Equal(t, time.Second, http.InitialDelay)
	require.Equal(t, 10*time.Minute, http.MaxDelay)
	require.Equal(t, 250*time.Millisecond, http.MinDelay)
	require.Equal(t, retrypolicy.JitterNone, http.Jitter)
	require.Equal(t, 3, http.RescueLimit)
	// A partial class override keeps the inherited retry decision.
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyFibonacci}, http.Rule(retrypolicy.ClassNotFound))
	require.False(t, http.Rule(retrypolicy.ClassTimeout).Retry)
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyLinear}, http.Rule(retrypolicy.ClassMisconfigured))
	require.False(t, def.Rule(retrypolicy.ClassMisconfigured).Retry, "not retried by default")

	weekly := set.Lookup("weekly_intelligence")
	require.Equal(t, retrypolicy.JitterProportional, weekly.Jitter)
	require.Equal(t, retrypolicy.Rule{Retry: false, Strategy: retrypolicy.StrategyAggressive}, weekly.Rules[retrypolicy.ClassTimeout])
	require.False(t, weekly.Rule(retrypolicy.ClassTimeout).Retry)

	// An empty retry section is the package defaults.
	empty, err := loadPolicies(t, "retry: {}\n")
	require.NoError(t, err)
	require.Equal(t, retrypolicy.Policy{}.WithDefaults(), empty.Lookup("http_request"))
}

func TestConfigYAMLRefusesInvalid(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name string
		doc  string
		err  string
	}{
		{"max below base", `
retry:
  kinds:
    http_request: {max_delay: 1s}`, "retry.kinds.http_request.max_delay: must be >= initial_delay (2s)"},
		{"max below an inherited base", `
retry:
  default: {initial_delay: 1m}
  kinds:
    http_request: {max_delay: 30s}`, "retry.kinds.http_request.max_delay: must be >= initial_delay (1m0s)"},
		{"zero base", `
retry:
  default: {initial_delay: 0s}`, "retry.default.initial_delay: must be > 0 (got 0s)"},
		{"zero max attempts", `
retry:
  kinds:
    http_request: {max_attempts: 0}`, "retry.kinds.http_request.max_attempts: must be >= 1 (got 0)"},
		{"zero rescue limit", `
retry:
  default: {rescue_limit: 0}`, "retry.default.rescue_limit: must be >= 1 (got 0)"},
		{"zero min delay", `
retry:
  default: {min_delay: 0ms}`, "retry.default.min_delay: must be > 0 (got 0s)"},
		{"negative retry after max", `
retry:
  default: {retry_after_max: -1h}`, "retry.default.retry_after_max: must be > 0 (got -1h0m0s)"},
		{"unknown jitter", `
retry:
  kinds:
    k2: {jitter: wobbly}`, `retry.kinds.k2.jitter: unknown jitter mode "wobbly" (known: none, full, equal, proportional, decorrelated)`},
		{"unknown class", `
retry:
  default:
    classes:
      teapot: {retry: true}`, "retry.default.classes.teapot: unknown class (known: rate_limited, server_error, timeout, network, decode, panic, lost, unknown_kind, unknown, bad_request, unauthorized, not_found, misconfigured, out_of_memory, breaker_open, cancelled)"},
		{"unknown strategy", `
retry:
  kinds:
    http_request:
      classes:
        timeout: {strategy: quadratic}`, `retry.kinds.http_request.classes.timeout.strategy: unknown strategy "quadratic" (known: exponential, linear, fibonacci, aggressive)`},
		{"duration without unit", `
retry:
  default: {max_delay: 300}`, `retry.default.max_delay: "300" is not a duration (line 3): write a number with a unit, e.g. 2s, 5m, 100ms`},
		{"malformed duration", `
retry:
  default: {max_delay: 5 minutes}`, `retry.default.max_delay: "5 minutes" is not a duration (line 3): write a number with a unit, e.g. 2s, 5m, 100ms`},
		{"unknown key", `
retry:
  default: {max_delay: 5m, max_retries: 3}`, "retry.default.max_retries: unknown setting (known: max_attempts, initial_delay, max_delay, min_delay, jitter, retry_after_max, rescue_limit, classes; line 3)"},
		{"unknown rule key", `
retry:
  kinds:
    http_request:
      classes:
        timeout: {retries: 3}`, "retry.kinds.http_request.classes.timeout.retries: unknown setting (known: retry, strategy; line 6)"},
		{"unknown section key", `
retry:
  defaults: {max_attempts: 3}`, "retry.defaults: unknown setting (known: default, kinds; line 3)"},
		{"retry not a boolean", `
retry:
  default:
    classes:
      not_found: {retry: sometimes}`, `retry.default.classes.not_found.retry: "sometimes" is not a boolean (line 5): write true or false`},
		{"max attempts not an integer", `
retry:
  kinds:
    http_request: {max_attempts: many}`, `retry.kinds.http_request.max_attempts: "many" is not an integer (line 4)`},
		{"max attempts a fraction", `
retry:
  default: {max_attempts: 2.5}`, `retry.default.max_attempts: "2.5" is not an integer (line 3)`},
		{"rescue limit a quoted number", `
retry:
  default: {rescue_limit: "3"}`, `retry.default.rescue_limit: "3" is not an integer (line 3)`},
		{"set twice", `
retry:
  default:
    max_delay: 5m
    max_delay: 6m`, "retry.default.max_delay: set twice (line 5)"},
		{"kinds not a mapping", `
retry:
  kinds: [http_request]`, "retry.kinds: must be a mapping (line 3)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := loadPolicies(t, tc.doc)
			require.Nil(t, set)
			require.EqualError(t, err, tc.err)
		})
	}
}

func TestConfigYAMLRoundTrip(t *testing.T) {
	t.Parallel()

	attempts, limit := 4, 1
	base, maxDelay := retrypolicy.Duration(500*time.Millisecond), retrypolicy.Duration(90*time.Second)
	jitter := retrypolicy.JitterDecorrelated
	retry, strategy := true, retrypolicy.StrategyFibonacci
	in := retrypolicy.Config{
		Default: retrypolicy.PolicyConfig{MaxAttempts: &attempts, InitialDelay: &base, Jitter: &jitter},
		Kinds: map[string]retrypolicy.PolicyConfig{
			"http_request": {MaxDelay: &maxDelay, RescueLimit: &limit, Classes: map[retrypolicy.Class]retrypolicy.RuleConfig{
				retrypolicy.ClassDecode: {Retry: &retry, Strategy: &strategy},
			}},
		},
	}
	out, err := yaml.Marshal(in)
	require.NoError(t, err)
	require.Equal(t, `default:
    max_attempts: 4
    initial_delay: 500ms
    jitter: decorrelated
kinds:
    http_request:
        max_delay: 1m30s
        rescue_limit: 1
        classes:
            decode:
                retry: true
                strategy: fibonacci
`, string(out))

	var back retrypolicy.Config
	require.NoError(t, yaml.Unmarshal(out, &back))
	require.Equal(t, in, back)
}
