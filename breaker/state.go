package breaker

import (
	"errors"
	"fmt"
	"time"
)

// State is the state of one operation key's breaker. Its numeric value is the
// value of the rebound_breaker_state gauge: 0 closed, 1 half-open, 2 open.
type State int

const (
	// StateClosed lets every call through; failures are counted.
	StateClosed State = 0
	// StateHalfOpen lets at most Settings.HalfOpenMaxProbes calls (probes)
	// through, cluster-wide; their outcome closes or re-opens the breaker.
	StateHalfOpen State = 1
	// StateOpen refuses every call until the row's next_probe_at.
	StateOpen State = 2
)

// String returns the state as stored in circuit_breaker_state.state:
// "closed", "half_open" or "open" ("state(N)" for any other value).
func (s State) String() string {
	switch s {
	case StateClosed:
		return "closed"
	case StateHalfOpen:
		return "half_open"
	case StateOpen:
		return "open"
	default:
		return fmt.Sprintf("state(%d)", int(s))
	}
}

// MarshalText encodes the state as its String form, so JSON shows "open".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts "closed", "half_open" (or "half-open") and "open".
func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseState parses a state as stored in the database ("closed",
// "half_open", "open"; "half-open" is accepted too). It returns an error
// naming the value for anything else.
func ParseState(s string) (State, error) {
	switch s {
	case "closed":
		return StateClosed, nil
	case "half_open", "half-open":
		return StateHalfOpen, nil
	case "open":
		return StateOpen, nil
	}
	return 0, fmt.Errorf("breaker: unknown state %q (want closed, half_open or open)", s)
}

var (
	// ErrOpenState is matched (errors.Is) by every *OpenError: the breaker
	// of the call's key is open and the call was refused without running.
	ErrOpenState = errors.New("circuit breaker is open")
	// ErrTooManyProbes is matched (errors.Is) by an *OpenError returned in
	// the half-open state when every probe slot is taken (errors.Is(err,
	// ErrOpenState) holds for it too).
	ErrTooManyProbes = errors.New("circuit breaker is half-open and its probe slots are taken")
	// ErrNotFound is returned by operations on a key that has no row in
	// circuit_breaker_state.
	ErrNotFound = errors.New("no circuit breaker state for this key")
	// ErrNotStarted is returned by Allow and Execute of a Breaker whose
	// Start has not returned successfully (or that was stopped).
	ErrNotStarted = errors.New("breaker: not started")
)

// OpenError is the error a refused call gets. Callers recognise it by
// behaviour: FailureClass() returns "breaker_open" and RetryAfter() the time
// until the breaker may admit a probe. errors.Is(err, ErrOpenState) holds.
type OpenError struct {
	// Key is the operation key whose breaker refused the call.
	Key string
	// State is StateOpen or StateHalfOpen (every probe slot taken).
	State State
	// After is the time until the breaker may admit the call, as seen by
	// this pod's view (never negative).
	After time.Duration
}

// FailureClass returns "breaker_open", the class retrypolicy files it under.
func (e *OpenError) FailureClass() string { return "breaker_open" }

// RetryAfter returns the time until the breaker may admit a probe (>= 0).
func (e *OpenError) RetryAfter() time.Duration { return e.After }

// Error describes the refusal.
func (e *OpenError) Error() string {
	if e.State == StateHalfOpen {
		return fmt.Sprintf("circuit breaker %q is half-open and busy probing; retry after %s", e.Key, e.After.Round(time.Millisecond))
	}
	return fmt.Sprintf("circuit breaker %q is open; next probe in %s", e.Key, e.After.Round(time.Millisecond))
}

// Is reports whether target is ErrOpenState, or ErrTooManyProbes for a
// half-open refusal.
func (e *OpenError) Is(target error) bool {
	return target == ErrOpenState || (target == ErrTooManyProbes && e.State == StateHalfOpen)
}
