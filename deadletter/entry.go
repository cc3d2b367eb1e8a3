package deadletter

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rebound-queue/rebound/retrypolicy"
	"github.com/rebound-queue/rebound/storable"
)

// Status is where an entry stands in an operator's work.
type Status string

const (
	// StatusUnresolved is an entry nobody has acted on yet.
	StatusUnresolved Status = "unresolved"
	// StatusRetried is an entry whose job was run again: by [Store.Retry] (a
	// new job, RetriedJobID) or by the River UI's Retry (the same job ID).
	StatusRetried Status = "retried"
	// StatusResolved is an entry an operator closed with a note.
	StatusResolved Status = "resolved"
)

// Statuses lists every Status, in the order displays use.
var Statuses = []Status{StatusUnresolved, StatusRetried, StatusResolved}

// Valid reports whether s is one of [Statuses].
func (s Status) Valid() bool {
	switch s {
	case StatusUnresolved, StatusRetried, StatusResolved:
		return true
	}
	return false
}

// Entry is one row of job_dead_letter_queue: one River job that ended
// discarded or cancelled (by anything but an operator) at one attempt.
type Entry struct {
	// ID is the entry's own ID (job_dead_letter_queue.id).
	ID int64 `json:"id"`
	// RiverJobID is the ID of the River job that died.
	RiverJobID int64 `json:"river_job_id"`
	// Attempt is the attempt the job died at (1-based).
	Attempt int `json:"attempt"`
	// MaxAttempts is the job's max attempts at that moment.
	MaxAttempts int `json:"max_attempts"`
	// Kind is the job's kind.
	Kind string `json:"kind"`
	// Queue is the job's queue.
	Queue string `json:"queue"`
	// Priority is the job's River priority (1-4).
	Priority int `json:"priority"`
	// FinalState is River's state: "discarded" (attempts used up, or
	// discarded by River's rescuer) or "cancelled" (a permanent error).
	FinalState string `json:"final_state"`
	// Args are the job's original args, intact. Displays show them through
	// [Redact]; [Store.Retry] replays them as they are.
	Args json.RawMessage `json:"args"`
	// Metadata is the job's metadata as River last wrote it.
	Metadata json.RawMessage `json:"metadata"`
	// Tags are the job's River tags.
	Tags []string `json:"tags"`
	// History is every attempt, River's errors merged with rebound's
	// recorded history, in attempt order.
	History []Attempt `json:"history"`
	// FailureClass is the class of the final attempt (rate_limited,
	// server_error, ..., lost, unknown).
	FailureClass string `json:"failure_class"`
	// FailureReason is the last error, without River's "JobCancelError: "
	// prefix.
	FailureReason string `json:"failure_reason"`
	// FailureFingerprint is FailureReason with what changes from one
	// occurrence to the next (numbers, IDs, quoted values, timestamps,
	// addresses, query strings) replaced by placeholders such as <n>,
	// <uuid> and "<v>": entries with the same fingerprint failed the same
	// way. Computed by PostgreSQL when the row is written
	// (rebound_failure_fingerprint, migrations/sql/012; the rules are in
	// docs/dead-letter-queue.md); at most 200 characters.
	FailureFingerprint string `json:"failure_fingerprint"`
	// FailureFingerprintID names the fingerprint in 12 hex digits (the
	// start of its SHA-256), as [Store.Stats] shows it and
	// Filter.Fingerprints accepts it.
	FailureFingerprintID string `json:"failure_fingerprint_id"`
	// OperationKey is metadata.operation_key, else args.operation_key, else
	// the kind, normalised as jobs.NormalizeOperationKey does (a key over
	// 200 characters becomes its first 183, "…" and 16 hex digits of its
	// SHA-256), so it is the key the job's circuit breaker used. The whole
	// key stays in Metadata or Args.
	OperationKey string `json:"operation_key"`
	// FirstAttemptedAt is the earliest attempt time in History (else
	// River's attempted_at).
	FirstAttemptedAt *time.Time `json:"first_attempted_at,omitempty"`
	// LastAttemptedAt is the latest attempt time in History (else River's
	// attempted_at).
	LastAttemptedAt *time.Time `json:"last_attempted_at,omitempty"`
	// DeadLetteredAt is when River finalized the job.
	DeadLetteredAt time.Time `json:"dead_lettered_at"`
	// Status is where the entry stands in an operator's work.
	Status Status `json:"status"`
	// ResolutionNote is the note it was resolved with.
	ResolutionNote string `json:"resolution_note,omitempty"`
	// ResolvedBy names who resolved it.
	ResolvedBy string `json:"resolved_by,omitempty"`
	// ResolvedAt is when it was resolved.
	ResolvedAt *time.Time `json:"resolved_at,omitempty"`
	// RetriedJobID is the job that re-ran this entry: a new job for
	// [Store.Retry], the same RiverJobID for the River UI's Retry.
	RetriedJobID *int64 `json:"retried_job_id,omitempty"`
	// RetriedBy names who retried it ("river:JobRetry" for the River UI).
	RetriedBy string `json:"retried_by,omitempty"`
	// RetriedAt is when it was retried.
	RetriedAt *time.Time `json:"retried_at,omitempty"`
}

// Attempt is one attempt in an entry's history.
type Attempt struct {
	// Attempt is the attempt number (1-based).
	Attempt int `json:"attempt"`
	// At is when the attempt started (River's error time), else when
	// rebound recorded it.
	At *time.Time `json:"at,omitempty"`
	// Error is the attempt's error, without "JobCancelError: ".
	Error string `json:"error,omitempty"`
	// Class is the failure class from rebound's history; "lost" for an
	// attempt River has an error for and the history has not (the worker
	// died or hung and River's rescuer took the job back); "unknown" for
	// an entry without a class.
	Class string `json:"class"`
	// Strategy is the backoff strategy chosen for the next attempt, if any.
	Strategy string `json:"strategy,omitempty"`
	// DelayMS is the delay chosen before the next attempt, in milliseconds.
	DelayMS *int64 `json:"delay_ms,omitempty"`
	// RetryAfterMS is the server's Retry-After, in milliseconds.
	RetryAfterMS *int64 `json:"retry_after_ms,omitempty"`
	// Trace is River's panic trace for the attempt.
	Trace string `json:"trace,omitempty"`
	// Stack is the stack rebound recorded for a panic.
	Stack string `json:"stack,omitempty"`
}

// UnmarshalJSON decodes an attempt leniently: numbers written as floats
// are truncated and a timestamp that does not parse is left out, so one odd
// history entry never hides a whole entry.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var raw struct {
		Attempt      json.Number `json:"attempt"`
		At           string      `json:"at"`
		Error        string      `json:"error"`
		Class        string      `json:"class"`
		Strategy     string      `json:"strategy"`
		DelayMS      json.Number `json:"delay_ms"`
		RetryAfterMS json.Number `json:"retry_after_ms"`
		Trace        string      `json:"trace"`
		Stack        string      `json:"stack"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("decode attempt: %w", err)
	}
	*a = Attempt{Error: raw.Error, Class: raw.Class, Strategy: raw.Strategy, Trace: raw.Trace, Stack: raw.Stack}
	if n := numberPtr(raw.Attempt); n != nil {
		a.Attempt = int(*n)
	}
	a.DelayMS = numberPtr(raw.DelayMS)
	a.RetryAfterMS = numberPtr(raw.RetryAfterMS)
	if t, err := time.Parse(time.RFC3339Nano, raw.At); err == nil {
		a.At = &t
	}
	return nil
}

func numberPtr(n json.Number) *int64 {
	if n == "" {
		return nil
	}
	if i, err := n.Int64(); err == nil {
		return &i
	}
	if f, err := n.Float64(); err == nil {
		i := int64(f)
		return &i
	}
	return nil
}

// ClassList is the failure classes a [Filter] accepts, comma-separated in
// the order of retrypolicy.Classes(), for messages.
func ClassList() string {
	classes := retrypolicy.Classes()
	names := make([]string, len(classes))
	for i, c := range classes {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// Filter selects entries. Zero fields select everything; a slice matches
// any of its values.
type Filter struct {
	// Kinds are job kinds.
	Kinds []string `json:"kinds,omitempty"`
	// Classes are failure classes: each one of retrypolicy.Classes()
	// (operations reject others with [ErrInvalid]).
	Classes []string `json:"classes,omitempty"`
	// Statuses are entry statuses. Operations document their default when
	// it is empty.
	Statuses []Status `json:"statuses,omitempty"`
	// OperationKeys are operation keys, whole or as stored (a key over 200
	// characters is stored normalised, see [Entry.OperationKey]; either
	// form matches).
	OperationKeys []string `json:"operation_keys,omitempty"`
	// Fingerprints select failure fingerprints (see
	// [Entry.FailureFingerprint]), each given as its ID (12 hex digits, the
	// fingerprint_id [Store.Stats] shows; case does not matter) or as text:
	// a fingerprint, or any failure reason, which is fingerprinted by the
	// same rule, so an entry's reason selects the entries that failed like
	// it. Values must not be empty and must be valid UTF-8 without NUL
	// (else [ErrInvalid]).
	Fingerprints []string `json:"fingerprints,omitempty"`
	// Since selects entries dead-lettered at or after it.
	Since time.Time `json:"since,omitzero"`
	// Until selects entries dead-lettered before it.
	Until time.Time `json:"until,omitzero"`
}

// FilterError is a kind or operation key of a [Filter] that PostgreSQL
// cannot compare: it holds a NUL or invalid UTF-8 (a query with it would
// fail with SQLSTATE 22021). It wraps [ErrInvalid].
type FilterError struct {
	// Field is "kind" or "operation key".
	Field string
	// Value is the value as given.
	Value string
	// Problem says what is wrong, e.g. `contains a NUL character (\u0000),
	// which PostgreSQL cannot store`.
	Problem string
}

// Error returns e.g. `invalid parameter: kind "a\x00b" contains a NUL
// character (\u0000), which PostgreSQL cannot store`.
func (e *FilterError) Error() string {
	return fmt.Sprintf("%s: %s %q %s", ErrInvalid, e.Field, e.Value, e.Problem)
}

// Unwrap returns [ErrInvalid].
func (e *FilterError) Unwrap() error { return ErrInvalid }

// Validate is the one check of a filter, made by every Store operation that
// takes one, by the admin API and by the CLI before it connects: every class
// and status is a known one, every kind and operation key is text PostgreSQL
// can compare (a [*FilterError] otherwise), and the time range is not empty.
// Errors wrap [ErrInvalid] and name the field.
func (f Filter) Validate() error {
	for _, l := range []struct {
		name   string
		values []string
	}{{"kind", f.Kinds}, {"operation key", f.OperationKeys}} {
		for _, v := range l.values {
			if err := storable.CheckValue(v, l.name); err != nil {
				problem := err.Error()
				if je, ok := errors.AsType[*storable.JSONError](err); ok {
					problem = je.Problem + ", which PostgreSQL cannot store"
				}
				return &FilterError{Field: l.name, Value: v, Problem: problem}
			}
		}
	}
	for _, c := range f.Classes {
		if !retrypolicy.Class(c).Valid() {
			return fmt.Errorf("%w: failure class %q is not one of %s", ErrInvalid, c, ClassList())
		}
	}
	for _, s := range f.Statuses {
		if !s.Valid() {
			return fmt.Errorf("%w: status %q is not one of unresolved, retried, resolved", ErrInvalid, s)
		}
	}
	for _, fp := range f.Fingerprints {
		switch {
		case strings.TrimSpace(fp) == "":
			return fmt.Errorf("%w: fingerprint is empty: give a fingerprint_id from stats, or a fingerprint or reason", ErrInvalid)
		case strings.ContainsRune(fp, 0):
			return fmt.Errorf("%w: fingerprint contains a NUL byte", ErrInvalid)
		case !utf8.ValidString(fp):
			return fmt.Errorf("%w: fingerprint is not valid UTF-8", ErrInvalid)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return fmt.Errorf("%w: until (%s) must be after since (%s)", ErrInvalid, f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	return nil
}

// where renders the filter as SQL conditions on job_dead_letter_queue,
// appending its arguments to args.
func (f Filter) where(args []any) (string, []any) {
	cond := "TRUE"
	add := func(c string, v any) {
		args = append(args, v)
		cond += fmt.Sprintf(" AND "+c, len(args))
	}
	if len(f.Kinds) > 0 {
		add("kind = ANY($%d)", f.Kinds)
	}
	if len(f.Classes) > 0 {
		add("failure_class = ANY($%d)", f.Classes)
	}
	if len(f.Statuses) > 0 {
		s := make([]string, len(f.Statuses))
		for i, st := range f.Statuses {
			s[i] = string(st)
		}
		if len(s) == 1 {
			// Equality lets PostgreSQL read min() and max() off an index.
			add("status = $%d", s[0])
		} else {
			add("status = ANY($%d)", s)
		}
	}
	if len(f.OperationKeys) > 0 {
		// Through the capture's own rule: the whole key finds its rows.
		add("operation_key IN (SELECT rebound_operation_key(k) FROM unnest($%d::text[]) k)", f.OperationKeys)
	}
	if len(f.Fingerprints) > 0 {
		var ids, texts []string
		for _, fp := range f.Fingerprints {
			if isFingerprintID(fp) {
				ids = append(ids, strings.ToLower(fp))
			} else {
				texts = append(texts, fp)
			}
		}
		var or []string
		if len(texts) > 0 {
			args = append(args, texts)
			or = append(or, fmt.Sprintf("failure_fingerprint IN (SELECT rebound_failure_fingerprint(t) FROM unnest($%d::text[]) t)", len(args)))
		}
		if len(ids) > 0 {
			// The ID of each fingerprint in the group counts (every
			// fingerprint an entry has is there), not of each row; OFFSET 0
			// keeps the planner from computing it row by row.
			args = append(args, ids)
			or = append(or, fmt.Sprintf(`failure_fingerprint IN (SELECT fp FROM (SELECT DISTINCT failure_fingerprint AS fp FROM `+groupCountsTable+
				` OFFSET 0) d WHERE rebound_failure_fingerprint_id(fp) = ANY($%d))`, len(args)))
		}
		cond += " AND (" + strings.Join(or, " OR ") + ")"
	}
	if !f.Since.IsZero() {
		add("dead_lettered_at >= $%d", f.Since)
	}
	if !f.Until.IsZero() {
		add("dead_lettered_at < $%d", f.Until)
	}
	return cond, args
}

// isFingerprintID reports whether s is a fingerprint ID: 12 hex digits.
func isFingerprintID(s string) bool {
	if len(s) != 12 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
