package breaker

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxTextBytes is the longest free text rebound records from an operator,
// in bytes of UTF-8: the reason and the by of a breaker change (rebound
// breaker reset/open, the breakers' admin API) and the note and the by of a
// dead-letter entry's resolve or retry (rebound dlq, the dead-letter admin
// API). A paragraph: a longer write-up belongs in the ticket the text points
// to. Every entry point refuses a longer text and changes nothing; it is the
// one cap for all of them.
const MaxTextBytes = 1024

// ValidateText reports whether text can be recorded as an operator's free
// text (a reason, a note): at most [MaxTextBytes] bytes of valid UTF-8
// without NUL (a PostgreSQL text column holds neither invalid UTF-8 nor
// NUL). Line breaks and tabs are allowed. field names the text in the error
// ("reason", "note", "--note"), e.g.
//
//	note: 2000 bytes, longer than 1024
//	note: not valid UTF-8 (at byte 3)
//	note: contains a NUL byte (at byte 1)
func ValidateText(field, text string) error {
	if len(text) > MaxTextBytes {
		return fmt.Errorf("%s: %d bytes, longer than %d", field, len(text), MaxTextBytes)
	}
	if !utf8.ValidString(text) {
		return fmt.Errorf("%s: not valid UTF-8 (at byte %d)", field, invalidUTF8At(text))
	}
	if i := strings.IndexByte(text, 0); i >= 0 {
		return fmt.Errorf("%s: contains a NUL byte (at byte %d)", field, i)
	}
	return nil
}

// ValidateActor reports whether by can be recorded as who made a change
// (changed_by, resolved_by, retried_by): [ValidateText]'s rule, and no
// control characters at all (Unicode category Cc, line breaks and tabs
// included), since it is shown on one line. field names it in the error
// ("by", "--by"), e.g.
//
//	by "a\nb": control character U+000A at byte 1
func ValidateActor(field, by string) error {
	if len(by) > MaxTextBytes {
		return fmt.Errorf("%s %s (%d bytes): longer than %d bytes", field, quoteKey(by), len(by), MaxTextBytes)
	}
	if !utf8.ValidString(by) {
		return fmt.Errorf("%s %s: not valid UTF-8 (at byte %d)", field, quoteKey(by), invalidUTF8At(by))
	}
	for i, r := range by {
		if unicode.IsControl(r) {
			return fmt.Errorf("%s %s: control character %U at byte %d", field, quoteKey(by), r, i)
		}
	}
	return nil
}

// invalidUTF8At is the offset of the first byte of s that does not start a
// valid UTF-8 sequence, or -1.
func invalidUTF8At(s string) int {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return i
			}
		}
	}
	return -1
}
