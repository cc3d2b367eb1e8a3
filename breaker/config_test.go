package breaker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
		{name: "bad key setting names the key", yaml: "keys:\n  api.example.com:\n    failure_ratio: 1.5\n",
			wantErr: `breaker: key "api.example.com": failure_ratio 1.5`},
		{name: "bad default", yaml: "defaults:\n  half_open_max_probes: -1\n", wantErr: "breaker: defaults: half_open_max_probes -1"},
		{name: "number without unit", yaml: "defaults:\n  open_timeout: 30\n", wantErr: `duration "30"`},
		{name: "unknown field", yaml: "defaults:\n  open_timout: 30s\n", wantErr: "field open_timout not found"},
		{name: "refresh too slow", yaml: "refresh_interval: 5s\n", wantErr: "refresh_interval 5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fc, err := ParseFileConfig([]byte(tt.yaml))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
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
