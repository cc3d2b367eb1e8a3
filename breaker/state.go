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

// ProbeDueGrace is the least time a breaker opened by failures still counts
// as open (see CountsAsOpen) after its probe came due with no call to take
// it: 1 minute. Pods wake a job parked behind a key within about a second
// of its probe time (their refresh) and River's scheduler makes snoozed
// jobs runnable every 5 seconds, so a probe due this long and untaken means
// no job for the key is waiting on a running pod.
const ProbeDueGrace = time.Minute

// CountsAsOpen reports whether a breaker in state, last opened at openedAt,
// probe-due at nextProbeAt and last changed by hand at changedAt (zero
// times: NULL columns) counts as open at now (database clock) for `rebound
// health`, the breaker_open alert rule and the rebound_breaker_open gauge:
//
//   - half-open: yes (probing; a failed probe re-opens it).
//   - open, probe not yet due (or no next_probe_at): yes, it holds the
//     key's calls and jobs off.
//   - open, probe due, the open made by hand (changedAt >= openedAt: rebound
//     breaker open, the admin API, SQL): no. The hold has expired and
//     nothing proved the downstream down; if it still is, the first job
//     probes, fails and re-opens it, and it counts again.
//   - open, probe due, opened by failures: yes while the probe has been due
//     for less than the open's own timeout (nextProbeAt - openedAt), at
//     least ProbeDueGrace; then no. While jobs wait, a failing probe
//     re-opens the breaker within milliseconds of the probe time, so an
//     outage never stops counting between re-opens; a key nobody calls
//     stops counting once the probe has gone untaken that long.
//   - closed (or any other state): no.
func CountsAsOpen(state State, openedAt, nextProbeAt, changedAt, now time.Time) bool {
	switch state {
	case StateHalfOpen:
		return true
	case StateOpen:
		if nextProbeAt.IsZero() || nextProbeAt.After(now) {
			return true
		}
		if !changedAt.IsZero() && !openedAt.IsZero() && !changedAt.Before(openedAt) {
			return false
		}
		grace := ProbeDueGrace
		if !openedAt.IsZero() {
			grace = max(grace, nextProbeAt.Sub(openedAt))
		}
		return now.Sub(nextProbeAt) < grace
	}
	return false
}

// CountsAsOpen reports whether the row's breaker counts as open at now
// (database clock); see the function CountsAsOpen.
func (r *Row) CountsAsOpen(now time.Time) bool {
	return CountsAsOpen(r.State, deref(r.OpenedAt), deref(r.NextProbeAt), deref(r.ChangedAt), now)
}

func deref(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}
