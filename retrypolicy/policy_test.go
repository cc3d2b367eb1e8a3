package retrypolicy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/retrypolicy"
)

func TestPolicyWithDefaults(t *testing.T) {
	t.Parallel()

	p := retrypolicy.Policy{}.WithDefaults()
	require.Equal(t, 5, p.MaxAttempts)
	require.Equal(t, 2*time.Second, p.InitialDelay)
	require.Equal(t, 300*time.Second, p.MaxDelay)
	require.Equal(t, 100*time.Millisecond, p.MinDelay)
	require.Equal(t, retrypolicy.JitterProportional, p.Jitter)
	require.Equal(t, time.Hour, p.RetryAfterMax)
	require.Equal(t, 2, p.RescueLimit)
	require.Len(t, p.Rules, 16)

	// The decision matrix (README, "What happens when a job fails").
	matrix := map[retrypolicy.Class]retrypolicy.Rule{
		retrypolicy.ClassRateLimited:   {Retry: true, Strategy: retrypolicy.StrategyAggressive},
		retrypolicy.ClassServerError:   {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassTimeout:       {Retry: true, Strategy: retrypolicy.StrategyLinear},
		retrypolicy.ClassNetwork:       {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassUnknownKind:   {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassDecode:        {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassPanic:         {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassLost:          {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassUnknown:       {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassCancelled:     {Retry: true, Strategy: retrypolicy.StrategyExponential},
		retrypolicy.ClassBadRequest:    {Retry: false},
		retrypolicy.ClassUnauthorized:  {Retry: false},
		retrypolicy.ClassNotFound:      {Retry: false},
		retrypolicy.ClassMisconfigured: {Retry: false},
		retrypolicy.ClassOutOfMemory:   {Retry: false},
		retrypolicy.ClassBreakerOpen:   {Retry: false},
	}
	require.Equal(t, matrix, p.Rules)
	for c, r := range matrix {
		require.Equal(t, r, retrypolicy.DefaultRule(c))
	}
	require.Equal(t, retrypolicy.DefaultRule(retrypolicy.ClassUnknown), retrypolicy.DefaultRule("teapot"))

	// Rule fills a missing strategy: the class's, else exponential.
	q := retrypolicy.Policy{Rules: map[retrypolicy.Class]retrypolicy.Rule{
		retrypolicy.ClassNotFound: {Retry: true},
		retrypolicy.ClassTimeout:  {Retry: true},
	}}
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyExponential}, q.Rule(retrypolicy.ClassNotFound))
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyLinear}, q.Rule(retrypolicy.ClassTimeout))
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyAggressive}, q.Rule(retrypolicy.ClassRateLimited))

	// WithDefaults copies: changing the copy's rules leaves the original alone.
	qd := q.WithDefaults()
	qd.Rules[retrypolicy.ClassNotFound] = retrypolicy.Rule{}
	require.Equal(t, retrypolicy.Rule{Retry: true}, q.Rules[retrypolicy.ClassNotFound])
}

func TestNewPolicies(t *testing.T) {
	t.Parallel()

	set, err := retrypolicy.NewPolicies(
		retrypolicy.Policy{MaxAttempts: 7, InitialDelay: time.Second, Rules: map[retrypolicy.Class]retrypolicy.Rule{
			retrypolicy.ClassNotFound: {Retry: true, Strategy: retrypolicy.StrategyLinear},
		}},
		map[string]retrypolicy.Policy{
			"http_request": {MaxDelay: 10 * time.Minute, Rules: map[retrypolicy.Class]retrypolicy.Rule{
				retrypolicy.ClassTimeout: {Retry: false},
			}},
		})
	require.NoError(t, err)
	require.Equal(t, []string{"http_request"}, set.Kinds())

	def := set.Lookup("weekly_intelligence")
	require.Equal(t, 7, def.MaxAttempts)
	require.Equal(t, time.Second, def.InitialDelay)
	require.Equal(t, 300*time.Second, def.MaxDelay)
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyLinear}, def.Rule(retrypolicy.ClassNotFound))
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyLinear}, def.Rule(retrypolicy.ClassTimeout))
	require.Equal(t, def, set.Default())

	http := set.Lookup("http_request")
	require.Equal(t, 7, http.MaxAttempts)            // from the set's default
	require.Equal(t, time.Second, http.InitialDelay) // from the set's default
	require.Equal(t, 10*time.Minute, http.MaxDelay)  // its own
	require.Equal(t, retrypolicy.Rule{Retry: true, Strategy: retrypolicy.StrategyLinear}, http.Rule(retrypolicy.ClassNotFound))
	require.False(t, http.Rule(retrypolicy.ClassTimeout).Retry)

	// A nil set is the package defaults.
	var none *retrypolicy.Policies
	require.Equal(t, retrypolicy.Policy{}.WithDefaults(), none.Lookup("anything"))
	require.Equal(t, retrypolicy.Policy{}.WithDefaults(), none.Default())
	require.Nil(t, none.Kinds())
}

func TestNewPoliciesRefusesInvalid(t *testing.T) {
	t.Parallel()

	cases := []struct {
		name  string
		def   retrypolicy.Policy
		kinds map[string]retrypolicy.Policy
		err   string
	}{
		{"negative max attempts", retrypolicy.Policy{MaxAttempts: -1}, nil, "retry.default.max_attempts: must be >= 1 (got -1)"},
		{"negative base", retrypolicy.Policy{InitialDelay: -time.Second}, nil, "retry.default.initial_delay: must be > 0 (got -1s)"},
		{"max below base", retrypolicy.Policy{}, map[string]retrypolicy.Policy{"http_request": {MaxDelay: time.Second}}, "retry.kinds.http_request.max_delay: must be >= initial_delay (2s)"},
		{"min above max", retrypolicy.Policy{MinDelay: 10 * time.Minute}, nil, "retry.default.min_delay: must be <= max_delay (5m0s)"},
		{"negative min", retrypolicy.Policy{MinDelay: -1}, nil, "retry.default.min_delay: must be > 0 (got -1ns)"},
		{"unknown jitter", retrypolicy.Policy{Jitter: "lots"}, nil, `retry.default.jitter: unknown jitter mode "lots" (known: none, full, equal, proportional, decorrelated)`},
		{"negative retry after max", retrypolicy.Policy{RetryAfterMax: -time.Hour}, nil, "retry.default.retry_after_max: must be > 0 (got -1h0m0s)"},
		{"negative rescue limit", retrypolicy.Policy{RescueLimit: -2}, nil, "retry.default.rescue_limit: must be >= 1 (got -2)"},
		{"unknown class", retrypolicy.Policy{Rules: map[retrypolicy.Class]retrypolicy.Rule{"teapot": {Retry: true}}}, nil, "retry.default.classes.teapot: unknown class (known: rate_limited, server_error, timeout, network, decode, panic, lost, unknown_kind, unknown, bad_request, unauthorized, not_found, misconfigured, out_of_memory, breaker_open, cancelled)"},
		{"unknown strategy", retrypolicy.Policy{}, map[string]retrypolicy.Policy{"k1": {Rules: map[retrypolicy.Class]retrypolicy.Rule{retrypolicy.ClassTimeout: {Retry: true, Strategy: "quadratic"}}}}, `retry.kinds.k1.classes.timeout.strategy: unknown strategy "quadratic" (known: exponential, linear, fibonacci, aggressive)`},
		{"empty kind", retrypolicy.Policy{}, map[string]retrypolicy.Policy{"": {}}, "retry.kinds: empty job kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			set, err := retrypolicy.NewPolicies(tc.def, tc.kinds)
			require.Nil(t, set)
			require.EqualError(t, err, tc.err)
			cfgErr, ok := err.(*retrypolicy.ConfigError)
			require.True(t, ok)
			require.Equal(t, tc.err, cfgErr.Key+": "+cfgErr.Problem)
		})
	}
}
