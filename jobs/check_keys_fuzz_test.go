package jobs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// checkKeysTokens is checkKeys as it was written first, on encoding/json's
// tokenizer: the reference FuzzCheckKeysMatchesTokenizer compares the
// faster walk with.
func checkKeysTokens(raw []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var walk func(path string, t reflect.Type) error
	walk = func(path string, t reflect.Type) error {
		t = decodedType(t)
		tok, err := dec.Token()
		if err != nil {
			return nil // malformed: the decoder says how
		}
		delim, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch delim {
		case '{':
			var fields map[string]reflect.Type
			var elem reflect.Type
			foldCheck := false
			if t != nil {
				switch t.Kind() {
				case reflect.Struct:
					fields, foldCheck = structFields(t), true
				case reflect.Map:
					elem, foldCheck = t.Elem(), t.Key().Kind() == reflect.String
				}
			}
			seen := map[string]bool{}
			var folded map[string]string // lower case -> key as given
			if foldCheck {
				folded = map[string]string{}
			}
			for dec.More() {
				keyTok, err := dec.Token()
				if err != nil {
					return nil
				}
				key, _ := keyTok.(string)
				if seen[key] {
					return fmt.Errorf("key %q appears twice in %s", key, path)
				}
				seen[key] = true
				if folded != nil {
					lower := strings.ToLower(key)
					if k, ok := folded[lower]; ok {
						return fmt.Errorf("keys %q and %q in %s differ only in case; give one", k, key, path)
					}
					folded[lower] = key
				}
				next := elem
				if fields != nil {
					ft, ok := fields[key]
					if !ok {
						for name := range fields {
							if strings.EqualFold(name, key) {
								return fmt.Errorf("unknown field %q in %s (field names are exact: %q)", key, path, name)
							}
						}
					}
					next = ft
				}
				if err := walk(path+"."+key, next); err != nil {
					return err
				}
			}
			_, _ = dec.Token() // '}'
		case '[':
			var elem reflect.Type
			if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
				elem = t.Elem()
			}
			for i := 0; dec.More(); i++ {
				if err := walk(fmt.Sprintf("%s[%d]", path, i), elem); err != nil {
					return err
				}
			}
			_, _ = dec.Token() // ']'
		}
		return nil
	}
	return walk("the args", t)
}

// On valid JSON, checkKeys (a gjson walk) reports exactly what the
// tokenizer-based walk it replaced reported, for the args types of the
// built-in kinds.
func FuzzCheckKeysMatchesTokenizer(f *testing.F) {
	for _, seed := range []string{
		`{"url": "http://a/"}`,
		`{"url": "http://a/", "URL": "http://x"}`,
		`{"Url": "http://x"}`,
		`{"url": "http://a/", "headers": {"Idempotency-Key": "A", "idempotency-key": "B"}}`,
		`{"url": "http://a/", "body": {"a": 1, "a": 2}}`,
		`{"url": "http://a/", "body": [{"a": 1}, {"b": [{"c": 1, "c": 2}]}]}`,
		`{"url": "x", "url": "y"}`,
		`{"items": [{"id": 1, "ID": 2}]}`,
		`{"a\u0041": 1, "aA": 2}`,
		`[1, {"x": 1}]`,
		`"text"`,
		// Past smallObjectKeys keys, checkKeys keeps them in maps.
		`{"body": {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6, "g": 7, "h": 8, "i": 9, "a": 10}}`,
		`{"headers": {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9", "B": "10"}}`,
		`{"headers": {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "H": "8", "h": "9"}}`,
	} {
		f.Add(seed)
	}
	types := []reflect.Type{nil, reflect.TypeFor[HTTPRequestArgs](), reflect.TypeFor[SyntheticArgs](), reflect.TypeFor[WeeklyIntelligenceArgs](), reflect.TypeFor[map[string]any]()}
	f.Fuzz(func(t *testing.T, raw string) {
		if !json.Valid([]byte(raw)) {
			return
		}
		for _, typ := range types {
			got, want := checkKeys([]byte(raw), typ), checkKeysTokens([]byte(raw), typ)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("%v: checkKeys(%q) = %v, the tokenizer's walk says %v", typ, raw, got, want)
			}
		}
	})
}
