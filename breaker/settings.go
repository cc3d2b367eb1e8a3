package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults of Settings. A zero field of Settings means its default.
const (
	// DefaultFailureThreshold is the number of consecutive failures that
	// trips a closed breaker.
	DefaultFailureThreshold = 5
	// DefaultFailureRatio is the share of failed calls in the rolling window
	// that trips a closed breaker once the window holds DefaultMinimumCalls.
	DefaultFailureRatio = 0.5
	// DefaultMinimumCalls is the number of calls the rolling window must
	// hold before the failure ratio may trip the breaker.
	DefaultMinimumCalls = 20
	// DefaultWindow is the length of the rolling window of the failure-ratio
	// rule.
	DefaultWindow = 60 * time.Second
	// DefaultOpenTimeout is how long a breaker stays open before it admits
	// a probe.
	DefaultOpenTimeout = 30 * time.Second
	// DefaultOpenTimeoutMultiplier is the growth of the open timeout per
	// repeated trip: 1, so the timeout does not grow unless configured.
	DefaultOpenTimeoutMultiplier = 1.0
	// DefaultMaxOpenTimeout caps a growing open timeout.
	DefaultMaxOpenTimeout = 10 * time.Minute
	// DefaultHalfOpenMaxProbes is the number of probes admitted at once,
	// cluster-wide, while half-open.
	DefaultHalfOpenMaxProbes = 1
	// DefaultSuccessThreshold is the number of successful probes that
	// close a half-open breaker.
	DefaultSuccessThreshold = 1
	// DefaultProbeTimeout is the age after which a probe that never
	// reported (its pod died) frees its slot. It should exceed the longest
	// job timeout of the key's jobs (River's default JobTimeout is 1 minute).
	DefaultProbeTimeout = 2 * time.Minute
	// DefaultMaxPark is how long a job may stay parked behind an open
	// breaker before the gate sends it to the dead-letter queue with class
	// breaker_open.
	DefaultMaxPark = 24 * time.Hour
	// DefaultParkSpread is the width of the random spread added to a
	// parked job's snooze: parked jobs wake at most this long after the
	// breaker may probe, and are woken early when it closes.
	DefaultParkSpread = 10 * time.Minute
	// DefaultWakeSpread caps the spread of the wake-up of a closed key's
	// parked jobs.
	DefaultWakeSpread = 10 * time.Second
	// DefaultWakeWave is the time the River gate gives each wave of woken
	// jobs (as many jobs as the waking pod has workers).
	DefaultWakeWave = 100 * time.Millisecond
)

// Settings configures the breaker of one operation key. It is a value type;
// every zero field means the default named in its doc. Settings are checked
// by WithDefaults().Validate().
type Settings struct {
	// FailureThreshold is the number of consecutive failures (cluster-wide,
	// approximately: pods report in batches) that trips the breaker.
	// Zero means DefaultFailureThreshold (5). Must be >= 1.
	FailureThreshold int
	// FailureRatio trips the breaker when failures / calls in the rolling
	// window reach it, once the window holds MinimumCalls calls. Zero means
	// DefaultFailureRatio (0.5); a negative value disables the rule; a
	// value above 1 is refused.
	FailureRatio float64
	// MinimumCalls is the number of calls the rolling window must hold for
	// FailureRatio to apply. Zero means DefaultMinimumCalls (20).
	MinimumCalls int
	// Window is the length of the rolling window. Pods add their call and
	// failure counts to the row when a failure happens, and their later
	// successes at most once per second per key while the window holds a
	// failure; a window without failures costs no write. Zero means
	// DefaultWindow (60 seconds). Must be >= 1 second.
	Window time.Duration
	// OpenTimeout is how long the breaker stays open after a trip before it
	// admits a probe. Zero means DefaultOpenTimeout (30 seconds).
	OpenTimeout time.Duration
	// OpenTimeoutMultiplier grows the open timeout on repeated trips
	// without a recovery in between: trip n (1-based) waits
	// OpenTimeout * OpenTimeoutMultiplier^(n-1), capped at MaxOpenTimeout.
	// Zero means DefaultOpenTimeoutMultiplier (1: no growth). Must be >= 1.
	OpenTimeoutMultiplier float64
	// MaxOpenTimeout caps the growing open timeout. Zero means
	// DefaultMaxOpenTimeout (10 minutes), or OpenTimeout when that is
	// larger; in Config.Keys, zero means Config.Settings' cap, or the key's
	// OpenTimeout when that is larger.
	MaxOpenTimeout time.Duration
	// HalfOpenMaxProbes is the number of calls admitted at once,
	// cluster-wide, while half-open. Zero means DefaultHalfOpenMaxProbes (1).
	HalfOpenMaxProbes int
	// SuccessThreshold is the number of successful probes that closes the
	// breaker. Zero means DefaultSuccessThreshold (1).
	SuccessThreshold int
	// ProbeTimeout frees the slot of a probe that has not reported after
	// this long (its pod died). Zero means DefaultProbeTimeout (2 minutes).
	ProbeTimeout time.Duration
	// MaxPark is how long the River gate keeps a job parked (snoozed)
	// behind this key before sending it to the DLQ with class
	// breaker_open. Zero means DefaultMaxPark (24 hours).
	MaxPark time.Duration
	// ParkSpread is the width of the random spread the River gate adds to
	// a parked job's snooze (the snooze is the time until the breaker may
	// probe plus a uniform draw from [0, ParkSpread)). Parked jobs are
	// woken early when the key closes and a few are woken to probe, so a
	// wide spread keeps a large backlog from churning. Zero means
	// DefaultParkSpread (10 minutes).
	ParkSpread time.Duration
	// WakeSpread caps the spread of the wake-up of the jobs parked behind
	// this key when it closes. The River gate of the pod that sees the close
	// makes the n parked jobs available at once, each due at a uniform time
	// in [now, now + spread), where spread = ceil(n / workers) * WakeWave,
	// at most WakeSpread (workers: GateConfig.Workers, the pod's; zero
	// means spread = WakeSpread). The spread keeps a large backlog from
	// hitting a recovering downstream at once. Zero means DefaultWakeSpread
	// (10 seconds). Must be in [1ms, 1h].
	WakeSpread time.Duration
	// WakeWave is the time the River gate gives each wave of woken jobs (a
	// wave: as many jobs as the waking pod has workers) when spreading the
	// wake-up; see WakeSpread (which caps the spread whatever WakeWave
	// is). Zero means DefaultWakeWave (100 ms). Must be in [1ms, 1h].
	WakeWave time.Duration

	// IsFailure reports whether a call's error means the downstream is
	// unhealthy. It is not consulted for a nil error (success) or an error
	// matching context.Canceled (neither: a cancelled probe frees its slot
	// without deciding anything). nil means DefaultIsFailure: every other
	// error is a failure. rebound's worker wires retrypolicy's classifier
	// here (server_error, timeout and network count).
	IsFailure func(err error) bool
	// ReadyToTrip, when set, replaces the built-in trip rules
	// (FailureThreshold, FailureRatio) with a decision in Go over the
	// counts the failure statement returned; the trip itself is then a
	// second compare-and-set statement. nil means the built-in rules, which
	// trip inside the failure statement.
	ReadyToTrip func(c Counts) bool
	// OnStateChange is called, on this pod, each time its view of a key's
	// state changes (through its own transition, a notification or a
	// refresh). It runs on the goroutine that saw the change and must not
	// block. nil means no call.
	OnStateChange func(key string, from, to State)
}

// Counts are the counters of one key's row, as ReadyToTrip sees them.
type Counts struct {
	// ConsecutiveFailures is failure_count.
	ConsecutiveFailures int
	// WindowCalls and WindowFailures are the rolling window's counts.
	WindowCalls, WindowFailures int64
	// Trips is trip_count: trips since the last full recovery.
	Trips int
}

// DefaultIsFailure is the failure predicate used when Settings.IsFailure is
// nil: every non-nil error that does not match context.Canceled.
func DefaultIsFailure(err error) bool {
	return err != nil && !errors.Is(err, context.Canceled)
}

// WithDefaults returns s with every zero field set to its default.
func (s Settings) WithDefaults() Settings {
	if s.FailureThreshold == 0 {
		s.FailureThreshold = DefaultFailureThreshold
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = DefaultFailureRatio
	}
	if s.MinimumCalls == 0 {
		s.MinimumCalls = DefaultMinimumCalls
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if s.OpenTimeout == 0 {
		s.OpenTimeout = DefaultOpenTimeout
	}
	if s.OpenTimeoutMultiplier == 0 {
		s.OpenTimeoutMultiplier = DefaultOpenTimeoutMultiplier
	}
	if s.MaxOpenTimeout == 0 {
		s.MaxOpenTimeout = max(DefaultMaxOpenTimeout, s.OpenTimeout)
	}
	if s.HalfOpenMaxProbes == 0 {
		s.HalfOpenMaxProbes = DefaultHalfOpenMaxProbes
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = DefaultSuccessThreshold
	}
	if s.ProbeTimeout == 0 {
		s.ProbeTimeout = DefaultProbeTimeout
	}
	if s.MaxPark == 0 {
		s.MaxPark = DefaultMaxPark
	}
	if s.ParkSpread == 0 {
		s.ParkSpread = DefaultParkSpread
	}
	if s.WakeSpread == 0 {
		s.WakeSpread = DefaultWakeSpread
	}
	if s.WakeWave == 0 {
		s.WakeWave = DefaultWakeWave
	}
	if s.IsFailure == nil {
		s.IsFailure = DefaultIsFailure
	}
	return s
}

// inherit returns s with every zero field taken from base (used for per-key
// overrides of a default block); a zero MaxOpenTimeout becomes base's or
// s's OpenTimeout, whichever is larger, as in WithDefaults.
func (s Settings) inherit(base Settings) Settings {
	if s.FailureThreshold == 0 {
		s.FailureThreshold = base.FailureThreshold
	}
	if s.FailureRatio == 0 {
		s.FailureRatio = base.FailureRatio
	}
	if s.MinimumCalls == 0 {
		s.MinimumCalls = base.MinimumCalls
	}
	if s.Window == 0 {
		s.Window = base.Window
	}
	if s.OpenTimeout == 0 {
		s.OpenTimeout = base.OpenTimeout
	}
	if s.OpenTimeoutMultiplier == 0 {
		s.OpenTimeoutMultiplier = base.OpenTimeoutMultiplier
	}
	if s.MaxOpenTimeout == 0 {
		s.MaxOpenTimeout = max(base.MaxOpenTimeout, s.OpenTimeout)
	}
	if s.HalfOpenMaxProbes == 0 {
		s.HalfOpenMaxProbes = base.HalfOpenMaxProbes
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = base.SuccessThreshold
	}
	if s.ProbeTimeout == 0 {
		s.ProbeTimeout = base.ProbeTimeout
	}
	if s.MaxPark == 0 {
		s.MaxPark = base.MaxPark
	}
	if s.ParkSpread == 0 {
		s.ParkSpread = base.ParkSpread
	}
	if s.WakeSpread == 0 {
		s.WakeSpread = base.WakeSpread
	}
	if s.WakeWave == 0 {
		s.WakeWave = base.WakeWave
	}
	if s.IsFailure == nil {
		s.IsFailure = base.IsFailure
	}
	if s.ReadyToTrip == nil {
		s.ReadyToTrip = base.ReadyToTrip
	}
	if s.OnStateChange == nil {
		s.OnStateChange = base.OnStateChange
	}
	return s
}

// Validate returns an error naming the first invalid field (with its YAML
// name) of s after defaults, e.g. "failure_threshold -1: must be >= 1".
// Call it on s.WithDefaults().
func (s Settings) Validate() error {
	bad := func(field string, got any) error {
		return &settingError{field: field, got: fmt.Sprint(got), rule: settingRules[field]}
	}
	switch {
	case s.FailureThreshold < 1:
		return bad("failure_threshold", s.FailureThreshold)
	case s.FailureRatio > 1 || math.IsNaN(s.FailureRatio):
		return bad("failure_ratio", s.FailureRatio)
	case s.MinimumCalls < 1:
		return bad("minimum_calls", s.MinimumCalls)
	case s.Window < time.Second:
		return bad("window", s.Window)
	case s.OpenTimeout < time.Millisecond:
		return bad("open_timeout", s.OpenTimeout)
	case s.OpenTimeoutMultiplier < 1 || math.IsInf(s.OpenTimeoutMultiplier, 0) || math.IsNaN(s.OpenTimeoutMultiplier):
		return bad("open_timeout_multiplier", s.OpenTimeoutMultiplier)
	case s.MaxOpenTimeout < s.OpenTimeout:
		return &settingError{field: "max_open_timeout", got: s.MaxOpenTimeout.String(),
			rule: settingRules["max_open_timeout"], note: "open_timeout is " + s.OpenTimeout.String()}
	case s.HalfOpenMaxProbes < 1:
		return bad("half_open_max_probes", s.HalfOpenMaxProbes)
	case s.SuccessThreshold < 1:
		return bad("success_threshold", s.SuccessThreshold)
	case s.ProbeTimeout < time.Millisecond:
		return bad("probe_timeout", s.ProbeTimeout)
	case s.MaxPark < time.Second:
		return bad("max_park", s.MaxPark)
	case s.ParkSpread < 0:
		return bad("park_spread", s.ParkSpread)
	case s.WakeSpread < time.Millisecond || s.WakeSpread > MaxWakeSpread:
		return bad("wake_spread", s.WakeSpread)
	case s.WakeWave < time.Millisecond || s.WakeWave > MaxWakeSpread:
		return bad("wake_wave", s.WakeWave)
	}
	return nil
}

// settingRules is the rule each field of Settings (by YAML name) must
// follow once defaults are filled in.
var settingRules = map[string]string{
	"failure_threshold":       "must be >= 1",
	"failure_ratio":           "must be in (0, 1], or negative to disable the ratio rule",
	"minimum_calls":           "must be >= 1",
	"window":                  "must be >= 1s",
	"open_timeout":            "must be >= 1ms",
	"open_timeout_multiplier": "must be >= 1",
	"max_open_timeout":        "must be >= open_timeout",
	"half_open_max_probes":    "must be >= 1",
	"success_threshold":       "must be >= 1",
	"probe_timeout":           "must be >= 1ms",
	"max_park":                "must be >= 1s",
	"park_spread":             "must be >= 0",
	"wake_spread":             "must be in [1ms, 1h]",
	"wake_wave":               "must be in [1ms, 1h]",
}

// MaxWakeSpread is the largest WakeSpread, and the largest WakeWave,
// Validate accepts: 1 hour.
const MaxWakeSpread = time.Hour

// settingError is the error of Validate: a field (YAML name), its value, the
// rule it breaks and, when the rule involves another field, a note on it.
type settingError struct {
	field, got, rule, note string
}

func (e *settingError) Error() string {
	msg := e.field + " " + e.got + ": " + e.rule
	if e.note != "" {
		msg += " (" + e.note + ")"
	}
	return msg
}

// openTimeoutMillis etc. are the statement parameters derived from s.
func (s Settings) ratioParam() float64 {
	if s.FailureRatio < 0 {
		return 0
	}
	return s.FailureRatio
}
