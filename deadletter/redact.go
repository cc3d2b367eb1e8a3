package deadletter

import (
	"github.com/rebound-queue/rebound/internal/redact"
)

// Redact returns a copy of e for display, with secrets replaced by
// redact.Marker ("[REDACTED]"): args and metadata through redact.JSON (keys
// named like secrets at any depth, redact.IsSensitiveName: headers such as
// Authorization, Cookie, X-Api-Key and X-Signature, fields such as
// password, access_token, client_secret, session_id and access_key; URL
// passwords and secret query parameters in strings), and the failure reason and every
// attempt's error, trace and stack through redact.Text (JSON-style pairs,
// name=value pairs, header lines, Bearer and Basic credentials, URL
// passwords; see package internal/redact). e itself is not changed: the
// stored rows keep the originals as evidence, and [Store.Retry] replays the
// stored args intact. Every display (CLI tables and --json, the admin HTTP
// API) goes through Redact and [RedactStats].
func Redact(e *Entry) *Entry {
	if e == nil {
		return nil
	}
	c := *e
	c.Args = redact.JSON(e.Args)
	c.Metadata = redact.JSON(e.Metadata)
	c.FailureReason = redact.Text(e.FailureReason)
	c.FailureFingerprint = redact.Text(e.FailureFingerprint)
	c.History = make([]Attempt, len(e.History))
	for i, h := range e.History {
		h.Error = redact.Text(h.Error)
		h.Trace = redact.Text(h.Trace)
		h.Stack = redact.Text(h.Stack)
		c.History[i] = h
	}
	return &c
}

// RedactStats returns a copy of st for display, each group's fingerprint
// and example reason through redact.Text (see [Redact]). Groups stay as
// [Store.Stats] counted them: each keeps its fingerprint ID, which selects
// its entries even when redaction makes two fingerprints look alike.
func RedactStats(st *Stats) *Stats {
	if st == nil {
		return nil
	}
	c := *st
	c.Groups = make([]StatsGroup, len(st.Groups))
	for i, g := range st.Groups {
		g.Fingerprint = redact.Text(g.Fingerprint)
		g.ExampleReason = redact.Text(g.ExampleReason)
		c.Groups[i] = g
	}
	return &c
}
