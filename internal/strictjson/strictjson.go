// Package strictjson finds, in JSON as it was sent, the text that
// encoding/json would silently alter: it decodes a byte sequence that is not
// UTF-8, and a \u escape of half a UTF-16 surrogate pair (\ud800 alone), as
// U+FFFD, without an error. rebound refuses such input at its entry points
// (the admin APIs' bodies, an http_request job's url and operation_key)
// rather than store text that differs from what the caller sent.
//
// It imports nothing of rebound's, so any package may use it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// Check reports whether raw, a JSON value as sent (a string with its
// quotes, an object, an array...), decodes to exactly the text it carries:
// nil, or an error saying what would be replaced:
//
//	not valid UTF-8
//	\udc00 is half of a UTF-16 surrogate pair, not a character
//
// It reads escapes without checking the rest of the syntax (malformed JSON
// is the decoder's to report) and never panics.
func Check(raw []byte) error {
	if !utf8.Valid(raw) {
		return errors.New("not valid UTF-8")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		i++ // the escaped character; in valid JSON a backslash is always inside a string
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw[i+1:])
		if !ok {
			continue // malformed: the decoder says so
		}
		escape := raw[i-1 : i+5]
		i += 4
		if !utf16.IsSurrogate(r) {
			continue
		}
		// A high surrogate (D800-DBFF) followed by an escaped low one
		// (DC00-DFFF) is one character; anything else is replaced.
		if r < 0xdc00 && i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
			if r2, ok := hex4(raw[i+3:]); ok && r2 >= 0xdc00 && r2 <= 0xdfff {
				i += 6
				continue
			}
		}
		return fmt.Errorf("%s is half of a UTF-16 surrogate pair, not a character", escape)
	}
	return nil
}

// CheckFields is [Check] for each member of raw, a JSON object, in order:
// nil, or an error naming the first member whose name or value would be
// altered, such as
//
//	"note": not valid UTF-8
//
// When raw is not a well-formed object it returns nil: the decoder that
// follows reports the syntax.
func CheckFields(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	for dec.More() {
		before := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		// Between the offsets: the comma, white space and the name as sent.
		if err := Check(raw[before:dec.InputOffset()]); err != nil {
			return fmt.Errorf("member name %q: %w", name, err)
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil
		}
		if err := Check(value); err != nil {
			return fmt.Errorf("%q: %w", name, err)
		}
	}
	return nil
}

// CheckUnique reports a member name given twice in one object of raw, a
// JSON value as sent, at any depth: nil, or an error such as
//
//	member "dry_run" appears twice
//
// encoding/json keeps the last of the two without a word, so a body that
// says both {"dry_run": true} and {"dry_run": false} would act on the one
// its sender may not have meant. When raw is not well-formed JSON it returns
// nil: the decoder that follows reports the syntax.
func CheckUnique(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	// One set of names per open object; nil for an open array.
	var open []map[string]bool
	expectName := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF at the end, or malformed JSON: the decoder's to report
		}
		top := len(open) - 1
		switch t := tok.(type) {
		case json.Delim:
			switch t {
			case '{':
				open = append(open, map[string]bool{})
				expectName = true
				continue
			case '[':
				open = append(open, nil)
			default:
				open = open[:top]
			}
		case string:
			if top >= 0 && open[top] != nil && expectName {
				if open[top][t] {
					return fmt.Errorf("member %q appears twice", t)
				}
				open[top][t] = true
				expectName = false
				continue
			}
		}
		// A value ended (or an array opened): in an object the next string
		// is a member name.
		expectName = len(open) > 0 && open[len(open)-1] != nil
	}
}

// hex4 reads the four hex digits of a \u escape.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}
