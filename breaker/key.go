package breaker

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxKeyLength is the longest operation key, in characters (Unicode code
// points; so at most 1020 bytes of UTF-8, far below what a PostgreSQL index
// entry may hold). A key is an identifier operators read in tables and type
// on command lines: 255 characters is plenty for a host name or a
// host:port. It is counted in characters, like the jobs package's
// normalisation of longer keys (200 characters), so every normalised key
// passes.
const MaxKeyLength = 255

// ErrInvalidKey is matched (errors.Is) by every error ValidateKey returns,
// and by the errors of the operations that refuse an invalid key (Allow,
// Execute, the Store's writes, the admin API).
var ErrInvalidKey = errors.New("invalid operation key")

// keyQuoteBytes is how much of an invalid key an error message quotes.
const keyQuoteBytes = 40

// ValidateKey reports whether key can be an operation key: not empty, valid
// UTF-8, at most MaxKeyLength characters, not blank (white space only, as
// strings.TrimSpace sees it) and without control characters (Unicode
// category Cc: U+0000-U+001F, U+007F-U+009F). It returns nil, or an error
// matching ErrInvalidKey that quotes the start of the key and names the
// problem, e.g.
//
//	invalid operation key "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"… (6000 characters): longer than 255 characters
//
// The same rule is a CHECK constraint on circuit_breaker_state.breaker_key
// (migration 010).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w \"\": empty", ErrInvalidKey)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w %s: not valid UTF-8", ErrInvalidKey, quoteKey(key))
	}
	if len(key) > MaxKeyLength {
		if n := utf8.RuneCountInString(key); n > MaxKeyLength {
			return fmt.Errorf("%w %s (%d characters): longer than %d characters", ErrInvalidKey, quoteKey(key), n, MaxKeyLength)
		}
	}
	if strings.TrimSpace(key) == "" {
		return fmt.Errorf("%w %s: blank (white space only)", ErrInvalidKey, quoteKey(key))
	}
	for i, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w %s: control character %U at byte %d", ErrInvalidKey, quoteKey(key), r, i)
		}
	}
	return nil
}

// quoteKey quotes the first keyQuoteBytes bytes of key (cut at a rune
// boundary when key is valid UTF-8), with "…" after the quote when key is
// longer.
func quoteKey(key string) string {
	if len(key) <= keyQuoteBytes {
		return strconv.Quote(key)
	}
	cut := keyQuoteBytes
	for cut > 0 && !utf8.RuneStart(key[cut]) {
		cut--
	}
	return strconv.Quote(key[:cut]) + "…"
}

// validateChange checks the who and why of a change made by hand with
// ValidateActor and ValidateText.
func validateChange(by, reason string) error {
	if err := ValidateActor("by", by); err != nil {
		return err
	}
	return ValidateText("reason", reason)
}
