package jobs

import "encoding/json"

// StampedOperationKey returns the operation key stamped in a job's metadata
// (the string at [MetadataOperationKey] in the top-level object), or ""
// when there is none, it is not a string, or the metadata is not a JSON
// object. It runs before every attempt (the circuit breaker's gate), so it
// scans the JSON in place without decoding it: no allocation unless the
// key holds escapes, and a small stack frame (a general JSON path reader
// made the job's goroutine grow its stack, a cost the size of the rest of
// rebound's per-job work).
func StampedOperationKey(metadata []byte) string {
	v, _ := topLevelString(metadata, MetadataOperationKey)
	return v
}

// topLevelString returns the string value of key in the top-level JSON
// object raw (the first occurrence), and whether it is there as a string.
func topLevelString(raw []byte, key string) (string, bool) {
	i := skipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return "", false
	}
	i++
	for {
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != '"' {
			return "", false // '}' (end) or malformed
		}
		k := i
		if i = skipString(raw, i); i < 0 {
			return "", false
		}
		name := raw[k:i]
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != ':' {
			return "", false
		}
		i = skipSpace(raw, i+1)
		if stringEquals(name, key) {
			if i >= len(raw) || raw[i] != '"' {
				return "", false
			}
			v := i
			if i = skipString(raw, i); i < 0 {
				return "", false
			}
			return unquote(raw[v:i])
		}
		if i = skipValue(raw, i); i < 0 {
			return "", false
		}
		i = skipSpace(raw, i)
		if i >= len(raw) || raw[i] != ',' {
			return "", false
		}
		i++
	}
}

func skipSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the JSON string starting at
// raw[i] (a '"'), or -1 when it does not end.
func skipString(raw []byte, i int) int {
	for i++; i < len(raw); i++ {
		switch raw[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value starting at raw[i],
// or -1 when it does not end. Numbers and literals end at the next
// delimiter; their spelling is not checked.
func skipValue(raw []byte, i int) int {
	if i >= len(raw) {
		return -1
	}
	switch raw[i] {
	case '"':
		return skipString(raw, i)
	case '{', '[':
		depth := 0
		for i < len(raw) {
			switch raw[i] {
			case '"':
				if i = skipString(raw, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(raw) && raw[i] != ',' && raw[i] != '}' && raw[i] != ']' && raw[i] != ' ' && raw[i] != '\n' && raw[i] != '\t' && raw[i] != '\r' {
		i++
	}
	return i
}

// stringEquals reports whether the JSON string quoted (with its quotes)
// is s.
func stringEquals(quoted []byte, s string) bool {
	inner := quoted[1 : len(quoted)-1]
	if len(inner) == len(s) && string(inner) == s {
		return true
	}
	for _, c := range inner {
		if c == '\\' {
			v, ok := unquote(quoted)
			return ok && v == s
		}
	}
	return false
}

// unquote decodes the JSON string quoted (with its quotes).
func unquote(quoted []byte) (string, bool) {
	inner := quoted[1 : len(quoted)-1]
	plain := true
	for _, c := range inner {
		if c == '\\' || c < ' ' {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), true
	}
	var s string
	if json.Unmarshal(quoted, &s) != nil {
		return "", false
	}
	return s, true
}
