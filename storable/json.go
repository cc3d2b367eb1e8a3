package storable

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxJSONDepth is the nesting CheckJSON follows, as encoding/json's limit;
// deeper documents are left to the decoder, which refuses them.
const maxJSONDepth = 10000

// JSONError names a string in a JSON document that PostgreSQL's jsonb
// cannot store; see [CheckJSON].
type JSONError struct {
	// Path locates the string from the root the caller named: ".name" for
	// an object member (`["name"]` when the name is not a plain
	// identifier), "[i]" for an array element (0-based); e.g.
	// args.body.name, args.tags[2], args.headers["Content-Type"]. When the
	// problem is in an object member's name (InKey), Path is the object.
	Path string
	// InKey is true when the string is an object member's name, given in
	// Key; false when it is a value.
	InKey bool
	// Key is the member name at fault (decoded; invalid UTF-8 in it shows
	// as U+FFFD) when InKey.
	Key string
	// Problem says what PostgreSQL refuses: `contains a NUL character
	// (\u0000)`, `contains invalid UTF-8 (byte 0xff)` or `contains an
	// unpaired UTF-16 surrogate (\ud800)`.
	Problem string
}

// Error returns e.g. `args.body.name: contains a NUL character (\u0000),
// which PostgreSQL cannot store`, or for a member name `args.body: the key
// "a\x00b" contains a NUL character (\u0000), which PostgreSQL cannot
// store`.
func (e *JSONError) Error() string {
	if e.InKey {
		return e.Path + ": the key " + strconv.Quote(e.Key) + " " + e.Problem + ", which PostgreSQL cannot store"
	}
	return e.Path + ": " + e.Problem + ", which PostgreSQL cannot store"
}

// CheckJSON returns a [*JSONError] for the first string — value or object
// member name, at any depth — of the JSON document data that PostgreSQL's
// jsonb refuses: one holding a NUL (the escape \u0000, or a raw NUL byte),
// invalid UTF-8, or an unpaired UTF-16 surrogate escape (\ud800 without a
// low surrogate after it, or a lone \udc00). root names the document in the
// error's path ("args"). It returns nil when every string is storable, and
// also for malformed JSON (a syntax error, nesting deeper than 10,000): the
// JSON decoder reports those in its own words. A document without a
// backslash, a NUL byte or invalid UTF-8 has no such string (each problem
// needs one of them): it is passed after a byte search and a UTF-8 check,
// without allocating. Any other is read in one pass, allocating once when
// it is storable.
func CheckJSON(data []byte, root string) error {
	if bytes.IndexByte(data, '\\') < 0 && bytes.IndexByte(data, 0) < 0 && utf8.Valid(data) {
		return nil
	}
	return scanJSON(data, root)
}

// scanJSON is CheckJSON without its shortcut: it walks every string.
func scanJSON(data []byte, root string) error {
	var segments [16]pathSegment
	s := jsonScanner{data: data, path: segments[:0]}
	s.value(0)
	if s.problem == "" {
		return nil
	}
	e := &JSONError{Path: s.renderPath(root), Problem: s.problem}
	if s.badKey != nil {
		e.InKey = true
		e.Key = decodeJSONString(s.badKey)
	}
	return e
}

// jsonScanner walks a JSON document, stopping at the first unstorable
// string (problem set) or syntax error (problem empty).
type jsonScanner struct {
	data    []byte
	pos     int
	path    []pathSegment
	problem string
	badKey  []byte // the quoted member name at fault, when the problem is in one
}

// pathSegment is an object member's quoted name (key != nil) or an array
// index.
type pathSegment struct {
	key   []byte
	index int
}

func (s *jsonScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value scans one value; false means stop (a problem or a syntax error).
func (s *jsonScanner) value(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false
	}
	switch s.data[s.pos] {
	case '{':
		return s.object(depth)
	case '[':
		return s.array(depth)
	case '"':
		_, ok := s.str()
		return ok
	}
	// A number, true, false or null: the decoder checks its spelling.
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ',', ']', '}', ' ', '\t', '\n', '\r':
			return true
		}
		s.pos++
	}
	return true
}

func (s *jsonScanner) object(depth int) bool {
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return true
	}
	for {
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		key, ok := s.str()
		if !ok {
			if s.problem != "" {
				s.badKey = key
			}
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		if more, ok := s.member(pathSegment{key: key}, depth, '}'); !more {
			return ok
		}
	}
}

func (s *jsonScanner) array(depth int) bool {
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return true
	}
	for i := 0; ; i++ {
		if more, ok := s.member(pathSegment{index: i}, depth, ']'); !more {
			return ok
		}
	}
}

// member scans the value of an object member or array element (seg on the
// path while it is scanned; depth is its container's) and the byte after
// it: after a ',' more is true; after closer ('}' or ']') more is false and
// ok true; else both are false.
func (s *jsonScanner) member(seg pathSegment, depth int, closer byte) (more, ok bool) {
	s.path = append(s.path, seg)
	if !s.value(depth + 1) {
		return false, false
	}
	s.path = s.path[:len(s.path)-1]
	s.skipSpace()
	if s.pos >= len(s.data) {
		return false, false
	}
	switch s.data[s.pos] {
	case ',':
		s.pos++
		return true, true
	case closer:
		s.pos++
		return false, true
	default:
		return false, false
	}
}

// str scans a string starting at its opening quote and returns it quoted.
// false means stop: s.problem says why, or is empty for a syntax error.
func (s *jsonScanner) str() ([]byte, bool) {
	start := s.pos
	s.pos++ // '"'
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return s.data[start:s.pos], true
		case c == '\\':
			if s.pos+1 >= len(s.data) {
				return nil, false
			}
			if s.data[s.pos+1] != 'u' {
				s.pos += 2
				continue
			}
			r, ok := hex4(s.data, s.pos+2)
			if !ok {
				return nil, false
			}
			switch {
			case r == 0:
				s.problem = `contains a NUL character (\u0000)`
			case r >= 0xDC00 && r <= 0xDFFF:
				s.problem = fmt.Sprintf(`contains an unpaired UTF-16 surrogate (\u%04x)`, r)
			case r >= 0xD800 && r <= 0xDBFF:
				low, ok := rune(0), false
				if s.pos+7 < len(s.data) && s.data[s.pos+6] == '\\' && s.data[s.pos+7] == 'u' {
					low, ok = hex4(s.data, s.pos+8)
				}
				if !ok || low < 0xDC00 || low > 0xDFFF {
					s.problem = fmt.Sprintf(`contains an unpaired UTF-16 surrogate (\u%04x)`, r)
				} else {
					s.pos += 6
				}
			}
			if s.problem != "" {
				return s.data[start:s.closingQuote()], false
			}
			s.pos += 6
		case c == 0:
			s.problem = `contains a NUL character (\u0000)`
			return s.data[start:s.closingQuote()], false
		case c < 0x20:
			return nil, false // a control character: malformed
		case c < utf8.RuneSelf:
			s.pos++
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				s.problem = fmt.Sprintf("contains invalid UTF-8 (byte 0x%02x)", c)
				return s.data[start:s.closingQuote()], false
			}
			s.pos += size
		}
	}
	return nil, false
}

// closingQuote returns the index just past the end of the string s.pos is
// in (or the end of data), for quoting a member name at fault.
func (s *jsonScanner) closingQuote() int {
	for i := s.pos; i < len(s.data); i++ {
		switch s.data[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(s.data)
}

// hex4 reads the 4 hex digits at data[i:i+4].
func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
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

// renderPath writes the path of the scanner's position from root.
func (s *jsonScanner) renderPath(root string) string {
	var b strings.Builder
	b.WriteString(root)
	for _, seg := range s.path {
		if seg.key == nil {
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
			continue
		}
		b.WriteString(pathName(decodeJSONString(seg.key)))
	}
	return b.String()
}

// decodeJSONString decodes a quoted JSON string leniently: a NUL escape
// stays a NUL, invalid UTF-8 becomes U+FFFD (encoding/json's reading), and
// an unterminated or malformed one is shown as its raw text, sanitised.
func decodeJSONString(quoted []byte) string {
	var v string
	if err := json.Unmarshal(quoted, &v); err != nil {
		raw := strings.TrimSuffix(strings.TrimPrefix(string(quoted), `"`), `"`)
		return Text(raw, 0)
	}
	return v
}

// isIdentifier reports whether name can follow a dot in a path: letters,
// digits and underscores, not starting with a digit.
func isIdentifier(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}
