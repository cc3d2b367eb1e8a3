package breaker

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

func TestSettingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		s       Settings
		wantErr string
	}{
		{"zero value is valid", Settings{}, ""},
		{"ratio disabled", Settings{FailureRatio: -1}, ""},
		{"negative threshold", Settings{FailureThreshold: -1}, "failure_threshold -1"},
		{"ratio above 1", Settings{FailureRatio: 1.5}, "failure_ratio 1.5"},
		{"window too short", Settings{Window: 10 * time.Millisecond}, "window 10ms"},
		{"multiplier below 1", Settings{OpenTimeoutMultiplier: 0.5}, "open_timeout_multiplier 0.5"},
		{"cap below timeout", Settings{OpenTimeout: time.Minute, MaxOpenTimeout: time.Second}, "max_open_timeout 1s"},
		{"negative probes", Settings{HalfOpenMaxProbes: -2}, "half_open_max_probes -2"},
		{"negative success threshold", Settings{SuccessThreshold: -1}, "success_threshold -1"},
		{"negative probe timeout", Settings{ProbeTimeout: -time.Second}, "probe_timeout -1s"},
		{"short max park", Settings{MaxPark: time.Millisecond}, "max_park 1ms"},
		{"shortest wake spread and wave", Settings{WakeSpread: time.Millisecond, WakeWave: time.Millisecond}, ""},
		{"longest wake spread and wave", Settings{WakeSpread: time.Hour, WakeWave: time.Hour}, ""},
		{"negative wake spread", Settings{WakeSpread: -time.Second}, "wake_spread -1s: must be in [1ms, 1h]"},
		{"wake spread too long", Settings{WakeSpread: 61 * time.Minute}, "wake_spread 1h1m0s: must be in [1ms, 1h]"},
		{"wake spread under 1ms", Settings{WakeSpread: time.Microsecond}, "wake_spread 1µs: must be in [1ms, 1h]"},
		{"negative wake wave", Settings{WakeWave: -time.Millisecond}, "wake_wave -1ms: must be in [1ms, 1h]"},
		{"wake wave too long", Settings{WakeWave: 2 * time.Hour}, "wake_wave 2h0m0s: must be in [1ms, 1h]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.s.WithDefaults().Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestWithDefaults(t *testing.T) {
	t.Parallel()
	s := Settings{}.WithDefaults()
	require.Equal(t, 5, s.FailureThreshold)
	require.Equal(t, 0.5, s.FailureRatio)
	require.Equal(t, 20, s.MinimumCalls)
	require.Equal(t, 60*time.Second, s.Window)
	require.Equal(t, 30*time.Second, s.OpenTimeout)
	require.Equal(t, 1.0, s.OpenTimeoutMultiplier)
	require.Equal(t, 10*time.Minute, s.MaxOpenTimeout)
	require.Equal(t, 1, s.HalfOpenMaxProbes)
	require.Equal(t, 1, s.SuccessThreshold)
	require.Equal(t, 2*time.Minute, s.ProbeTimeout)
	require.Equal(t, 24*time.Hour, s.MaxPark)
	require.Equal(t, 10*time.Minute, s.ParkSpread)
	require.Equal(t, 10*time.Second, s.WakeSpread)
	require.Equal(t, 100*time.Millisecond, s.WakeWave)
	require.NotNil(t, s.IsFailure)
}

func TestParseFileConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		yaml    string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "empty", yaml: "", check: func(t *testing.T, c Config) {
			require.Equal(t, Settings{}, c.Settings)
			require.Nil(t, c.Keys)
		}},
		{name: "defaults and a key", yaml: `
refresh_interval: 500ms
idle_ttl: 72h
defaults:
  failure_threshold: 3
  open_timeout: 1m
  max_park: 12h
keys:
  api.example.com:
    open_timeout: 10s
    half_open_max_probes: 2
`, check: func(t *testing.T, c Config) {
			require.Equal(t, 500*time.Millisecond, c.RefreshInterval)
			require.Equal(t, 3, c.Settings.FailureThreshold)
			require.Equal(t, time.Minute, c.Settings.OpenTimeout)
			require.Equal(t, Settings{OpenTimeout: 10 * time.Second, HalfOpenMaxProbes: 2}, c.Keys["api.example.com"])
			b := &Breaker{base: c.Settings.WithDefaults(), keys: map[string]Settings{"api.example.com": c.Keys["api.example.com"].inherit(c.Settings.WithDefaults())}}
			require.Equal(t, 3, b.Settings("api.example.com").FailureThreshold, "a key inherits the defaults block")
			require.Equal(t, 12*time.Hour, b.Settings("api.example.com").MaxPark)
			require.Equal(t, 10*time.Second, b.Settings("api.example.com").OpenTimeout)
			require.Equal(t, time.Minute, b.Settings("other").OpenTimeout)
		}},
		{name: "a key's open timeout above the inherited cap raises its cap", yaml: "keys:\n  slow.example.com:\n    open_timeout: 20m\n", check: func(t *testing.T, c Config) {
			require.Equal(t, 20*time.Minute, c.Keys["slow.example.com"].inherit(c.Settings.WithDefaults()).MaxOpenTimeout)
		}},
		{name: "wake spread and wave, per key", yaml: "defaults:\n  wake_spread: 30s\nkeys:\n  api.example.com:\n    wake_wave: 250ms\n", check: func(t *testing.T, c Config) {
			require.Equal(t, Settings{WakeSpread: 30 * time.Second}, c.Settings)
			require.Equal(t, Settings{WakeWave: 250 * time.Millisecond}, c.Keys["api.example.com"])
			key := c.Keys["api.example.com"].inherit(c.Settings.WithDefaults())
			require.Equal(t, 30*time.Second, key.WakeSpread, "a key inherits the defaults block")
			require.Equal(t, 250*time.Millisecond, key.WakeWave)
			require.Equal(t, 100*time.Millisecond, c.Settings.WithDefaults().WakeWave)
		}},
		{name: "null block", yaml: "null\n", check: func(t *testing.T, c Config) {
			require.Equal(t, Config{}, c)
		}},
		{name: "negative ratio disables the rule", yaml: "defaults:\n  failure_ratio: -1\n", check: func(t *testing.T, c Config) {
			require.Equal(t, -1.0, c.Settings.FailureRatio)
		}},
		{name: "bad key setting names the key", yaml: "keys:\n  api.example.com:\n    failure_ratio: 1.5\n",
			wantErr: `breaker.keys.api.example.com.failure_ratio: must be in (0, 1], or negative to disable the ratio rule (got 1.5)`},
		{name: "unknown field", yaml: "defaults:\n  open_timout: 30s\n",
			wantErr: "breaker.defaults.open_timout: unknown setting (known: failure_threshold, failure_ratio, minimum_calls, window, open_timeout, open_timeout_multiplier, max_open_timeout, half_open_max_probes, success_threshold, probe_timeout, max_park, park_spread, wake_spread, wake_wave; line 2)"},
		{name: "not YAML", yaml: "defaults: [\n", wantErr: "breaker: invalid YAML: line 1: did not find expected node content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc, err := ParseFileConfig([]byte(tt.yaml))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			c, err := fc.Config()
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestNewRefusesInvalidKeySettings(t *testing.T) {
	t.Parallel()
	_, err := New(nil, Config{})
	require.ErrorContains(t, err, "pool is nil")
	_, err = New(dbtest.Pool(t), Config{Keys: map[string]Settings{"api.example.com": {SuccessThreshold: -3}}})
	require.EqualError(t, err, `breaker: key "api.example.com": success_threshold -3: must be >= 1`)
}

// The `breaker:` block of the worker's config file refuses unknown and
// duplicate keys, wrong types, explicit zeros and values out of range, with
// a *ConfigError naming the full key (and, for a zero, the default).
func TestFileConfigErrors(t *testing.T) {
	t.Parallel()
	const known = "failure_threshold, failure_ratio, minimum_calls, window, open_timeout, open_timeout_multiplier, max_open_timeout, half_open_max_probes, success_threshold, probe_timeout, max_park, park_spread, wake_spread, wake_wave"
	tests := []struct {
		name    string
		yaml    string
		wantErr string
	}{
		{"unknown setting in defaults", "breaker:\n  defaults:\n    failure_treshold: 3\n",
			"breaker.defaults.failure_treshold: unknown setting (known: " + known + "; line 3)"},
		{"unknown setting of a key", "breaker:\n  keys:\n    api.example.com:\n      open_timout: 1s\n",
			"breaker.keys.api.example.com.open_timout: unknown setting (known: " + known + "; line 4)"},
		{"unknown top-level setting", "breaker:\n  default:\n    failure_threshold: 3\n",
			"breaker.default: unknown setting (known: refresh_interval, idle_ttl, defaults, keys; line 2)"},
		{"setting set twice", "breaker:\n  defaults:\n    failure_threshold: 3\n    failure_threshold: 4\n",
			"breaker.defaults.failure_threshold: set twice (line 4)"},
		{"key set twice", "breaker:\n  keys:\n    a: {failure_threshold: 3}\n    a: {failure_threshold: 4}\n",
			"breaker.keys.a: set twice (line 4)"},
		{"defaults not a mapping", "breaker:\n  defaults: 5\n", "breaker.defaults: must be a mapping (line 2)"},
		{"block not a mapping", "breaker: [1]\n", "breaker: must be a mapping (line 1)"},
		{"word for an integer", "breaker:\n  defaults:\n    failure_threshold: five\n",
			`breaker.defaults.failure_threshold: "five" is not an integer (line 3)`},
		{"fraction for an integer", "breaker:\n  defaults:\n    minimum_calls: 2.5\n",
			`breaker.defaults.minimum_calls: "2.5" is not an integer (line 3)`},
		{"quoted integer", "breaker:\n  defaults:\n    success_threshold: \"2\"\n",
			`breaker.defaults.success_threshold: "2" is not an integer (line 3)`},
		{"word for a number", "breaker:\n  defaults:\n    failure_ratio: half\n",
			`breaker.defaults.failure_ratio: "half" is not a number (line 3)`},
		{"bare number for a duration", "breaker:\n  defaults:\n    open_timeout: 30\n",
			`breaker.defaults.open_timeout: "30" is not a duration (line 3): write a number with a unit, e.g. 30s, 10m, 100ms`},
		{"bad top-level duration", "breaker:\n  idle_ttl: a week\n",
			`breaker.idle_ttl: "a week" is not a duration (line 2): write a number with a unit, e.g. 30s, 10m, 100ms`},
		{"zero failure threshold", "breaker:\n  defaults:\n    failure_threshold: 0\n",
			"breaker.defaults.failure_threshold: must be >= 1 (got 0; leave it out for the default, 5)"},
		{"zero open timeout", "breaker:\n  defaults:\n    open_timeout: 0s\n",
			"breaker.defaults.open_timeout: must be >= 1ms (got 0s; leave it out for the default, 30s)"},
		{"zero failure ratio", "breaker:\n  defaults:\n    failure_ratio: 0\n",
			"breaker.defaults.failure_ratio: must be in (0, 1], or negative to disable the ratio rule (got 0; leave it out for the default, 0.5)"},
		{"zero max open timeout of a key", "breaker:\n  keys:\n    api.example.com:\n      max_open_timeout: 0s\n",
			"breaker.keys.api.example.com.max_open_timeout: must be >= open_timeout (got 0s; leave it out for the default, 10m, or open_timeout when larger)"},
		{"zero park spread of a key", "breaker:\n  keys:\n    api.example.com:\n      park_spread: 0s\n",
			"breaker.keys.api.example.com.park_spread: must be > 0 (got 0s; leave it out for the default, 10m)"},
		{"zero wake spread", "breaker:\n  defaults:\n    wake_spread: 0s\n",
			"breaker.defaults.wake_spread: must be in [1ms, 1h] (got 0s; leave it out for the default, 10s)"},
		{"zero wake wave of a key", "breaker:\n  keys:\n    api.example.com:\n      wake_wave: 0ms\n",
			"breaker.keys.api.example.com.wake_wave: must be in [1ms, 1h] (got 0s; leave it out for the default, 100ms)"},
		{"wake spread too long", "breaker:\n  defaults:\n    wake_spread: 2h\n",
			"breaker.defaults.wake_spread: must be in [1ms, 1h] (got 2h0m0s)"},
		{"negative wake wave of a key", "breaker:\n  keys:\n    k:\n      wake_wave: -1s\n",
			"breaker.keys.k.wake_wave: must be in [1ms, 1h] (got -1s)"},
		{"zero max park", "breaker:\n  defaults:\n    max_park: 0h\n",
			"breaker.defaults.max_park: must be >= 1s (got 0s; leave it out for the default, 24h)"},
		{"zero multiplier", "breaker:\n  defaults:\n    open_timeout_multiplier: 0.0\n",
			"breaker.defaults.open_timeout_multiplier: must be >= 1 (got 0; leave it out for the default, 1)"},
		{"zero refresh interval", "breaker:\n  refresh_interval: 0s\n",
			"breaker.refresh_interval: must be in [10ms, 1s] (got 0s; leave it out for the default, 1s)"},
		{"zero idle ttl", "breaker:\n  idle_ttl: 0s\n",
			"breaker.idle_ttl: must be >= 1m (got 0s; leave it out for the default, 168h)"},
		{"negative probes", "breaker:\n  defaults:\n    half_open_max_probes: -1\n",
			"breaker.defaults.half_open_max_probes: must be >= 1 (got -1)"},
		{"ratio above 1 for a key", "breaker:\n  keys:\n    api.example.com:\n      failure_ratio: 1.5\n",
			"breaker.keys.api.example.com.failure_ratio: must be in (0, 1], or negative to disable the ratio rule (got 1.5)"},
		{"cap below a key's open timeout", "breaker:\n  keys:\n    k:\n      open_timeout: 1m\n      max_open_timeout: 1s\n",
			"breaker.keys.k.max_open_timeout: must be >= open_timeout (got 1s; open_timeout is 1m0s)"},
		{"refresh too slow", "breaker:\n  refresh_interval: 5s\n", "breaker.refresh_interval: must be in [10ms, 1s] (got 5s)"},
		{"idle ttl too short", "breaker:\n  idle_ttl: 30s\n", "breaker.idle_ttl: must be >= 1m (got 30s)"},
		{"blank key", "breaker:\n  keys:\n    \" \": {failure_threshold: 3}\n",
			`breaker.keys: invalid operation key " ": blank (white space only)`},
		{"key too long", "breaker:\n  keys:\n    " + strings.Repeat("k", 256) + ": {failure_threshold: 3}\n",
			`breaker.keys: invalid operation key "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"… (256 characters): longer than 255 characters`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// As the worker reads its --config file: the block under
			// `breaker:`, with KnownFields on.
			var file struct {
				Breaker FileConfig `yaml:"breaker"`
			}
			dec := yaml.NewDecoder(strings.NewReader(tt.yaml))
			dec.KnownFields(true)
			err := dec.Decode(&file)
			if err == nil {
				_, err = file.Breaker.Config()
			}
			require.EqualError(t, err, tt.wantErr)
			var ce *ConfigError
			require.ErrorAs(t, err, &ce)
		})
	}
}
