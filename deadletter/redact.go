package deadletter

import (
	"cmp"
	"slices"

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
	c.History = make([]Attempt, len(e.History))
	for i, h := range e.History {
		h.Error = redact.Text(h.Error)
		h.Trace = redact.Text(h.Trace)
		h.Stack = redact.Text(h.Stack)
		c.History[i] = h
	}
	return &c
}

// RedactStats returns a copy of st for display, each group's failure
// reason through redact.Text (see [Redact]). Groups whose reasons differ
// only in a secret become one group (counts added, first and last times
// widened), in the order of [Store.Stats]: largest first.
func RedactStats(st *Stats) *Stats {
	if st == nil {
		return nil
	}
	c := *st
	c.Groups = make([]StatsGroup, 0, len(st.Groups))
	index := make(map[[3]string]int, len(st.Groups))
	for _, g := range st.Groups {
		g.Reason = redact.Text(g.Reason)
		k := [3]string{g.Kind, g.Class, g.Reason}
		i, seen := index[k]
		if !seen {
			index[k] = len(c.Groups)
			c.Groups = append(c.Groups, g)
			continue
		}
		m := &c.Groups[i]
		m.Count += g.Count
		if g.First.Before(m.First) {
			m.First = g.First
		}
		if g.Last.After(m.Last) {
			m.Last = g.Last
		}
	}
	slices.SortStableFunc(c.Groups, func(a, b StatsGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Class, b.Class), cmp.Compare(a.Reason, b.Reason))
	})
	return &c
}
