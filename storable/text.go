package storable

import (
	"strings"
	"unicode/utf8"
)

// MaxErrorBytes bounds every error text rebound hands to River (an attempt's
// error in river_job.errors, a cancel reason, a panic value) or writes in a
// job's history: 4 KiB (4096 bytes) of UTF-8, "…" included. It keeps a job
// that fails 25 times with a megabyte of upstream response each far from
// River's and PostgreSQL's limits, and a dead-letter entry readable.
const MaxErrorBytes = 4 << 10

// Replacement is what every byte PostgreSQL cannot store becomes: U+FFFD,
// the Unicode replacement character (3 bytes of UTF-8).
const Replacement = "\uFFFD"

// Ellipsis ends a text that [Text] cut to its bound (3 bytes of UTF-8).
const Ellipsis = "…"

// Valid reports whether PostgreSQL stores s as it is, in a text column and
// as a jsonb string: s is valid UTF-8 and holds no NUL byte. Length is not
// considered.
func Valid(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// Text returns s as PostgreSQL can store it, in at most limit bytes:
//
//  1. every NUL byte and every byte that is not part of a valid UTF-8
//     sequence becomes [Replacement] (U+FFFD), one per byte, as
//     encoding/json and a for-range loop over a string read them
//     ("a\x00b\xff\xfe" becomes "a\uFFFDb\uFFFD\uFFFD");
//  2. a result longer than limit bytes is cut at a character boundary and
//     ends in [Ellipsis] ("…"), the whole taking at most limit bytes (a
//     limit under 3 bytes gets no ellipsis).
//
// limit <= 0 means no bound. Text is idempotent (Text(Text(s, n), n) ==
// Text(s, n)) and returns s itself, without allocating, when s is Valid and
// fits. Its work is bounded by limit, not by the length of s.
func Text(s string, limit int) string {
	if Valid(s) {
		return cut(s, limit)
	}
	var b strings.Builder
	n := len(s)
	if limit > 0 {
		n = min(n, limit+utf8.UTFMax)
	}
	b.Grow(n + 2*len(Replacement))
	for i := 0; i < len(s); {
		if limit > 0 && b.Len() > limit {
			break // cut below anyway
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if c == 0 {
				b.WriteString(Replacement)
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(Replacement)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return cut(b.String(), limit)
}

// cut shortens valid UTF-8 s to at most limit bytes at a character boundary,
// ending in Ellipsis when there is room for it.
func cut(s string, limit int) string {
	if limit <= 0 || len(s) <= limit {
		return s
	}
	if limit < len(Ellipsis) {
		n := limit
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n]
	}
	n := limit - len(Ellipsis)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + Ellipsis
}
