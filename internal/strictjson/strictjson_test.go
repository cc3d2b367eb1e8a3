package strictjson_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/strictjson"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, wantErr string
	}{
		{"ASCII", `"hello"`, ""},
		{"UTF-8 as sent", `"café €"`, ""},
		{"escaped non-ASCII", `"caf\u00e9"`, ""},
		{"a surrogate pair", `"\ud83d\ude00"`, ""},
		{"a pair in upper case", `"\uD83D\uDE00"`, ""},
		{"U+FFFD sent as it is", "\"a\uFFFDb\"", ""},
		{"U+FFFD escaped", `"a\ufffdb"`, ""},
		{"an escaped backslash before u", `"\\ud800"`, ""},
		{"an object of good text", `{"note": "ok", "n": [1, "x"]}`, ""},
		{"an invalid byte", "\"a\xffb\"", "not valid UTF-8"},
		{"a cut sequence", "\"caf\xc3\"", "not valid UTF-8"},
		{"an encoded surrogate", "\"\xed\xa0\x80\"", "not valid UTF-8"},
		{"a lone high surrogate", `"a\ud800b"`, `\ud800 is half of a UTF-16 surrogate pair, not a character`},
		{"a lone low surrogate", `"\uDC00"`, `\uDC00 is half of a UTF-16 surrogate pair, not a character`},
		{"high then not low", `"\ud800\u0041"`, `\ud800 is half of a UTF-16 surrogate pair, not a character`},
		{"two highs", `"\ud800\ud800"`, `\ud800 is half of a UTF-16 surrogate pair, not a character`},
		{"high at the end", `"\ud83d`, `\ud83d is half of a UTF-16 surrogate pair, not a character`},
		{"deep in an object", `{"a": {"b": ["\udfff"]}}`, `\udfff is half of a UTF-16 surrogate pair, not a character`},
		{"malformed escape left to the decoder", `"\u12"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := strictjson.Check([]byte(tt.raw))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

func TestCheckFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, wantErr string
	}{
		{"good", `{"note": "rotated the key", "by": "dana", "all": true}`, ""},
		{"empty object", `{}`, ""},
		{"not an object", `["\ud800"]`, ""},
		{"malformed", `{"note": `, ""},
		{"invalid UTF-8 in a value", "{\"by\": \"dana\", \"note\": \"a\xffb\"}", `"note": not valid UTF-8`},
		{"a lone surrogate in a value", `{"note": "ok", "by": "\udc00"}`, `"by": \udc00 is half of a UTF-16 surrogate pair, not a character`},
		{"in an array value", `{"kinds": ["a", "\ud800"]}`, `"kinds": \ud800 is half of a UTF-16 surrogate pair, not a character`},
		{"in a member name", "{\"ok\": 1, \"n\xffte\": \"x\"}", "member name \"n\uFFFDte\": not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := strictjson.CheckFields([]byte(tt.raw))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

// FuzzCheck: Check never panics; whatever encoding/json writes passes; and
// when Check passes a JSON string, encoding/json did not replace anything in
// it: every U+FFFD decoded was sent as U+FFFD or as an escape of it.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{`"a"`, `"\ud800"`, `"\ud83d\ude00"`, "\"\xff\"", `"\\ud800"`, `"\ufffd"`, "\"\uFFFD\"", `{"a":"\udc00"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := strictjson.Check(raw)
		_ = strictjson.CheckFields(raw)

		// Go strings, even invalid UTF-8, marshal to JSON that passes.
		enc, merr := json.Marshal(string(raw))
		require.NoError(t, merr)
		require.NoError(t, strictjson.Check(enc), "encoding/json's output %q", enc)

		var s string
		if err != nil || json.Unmarshal(raw, &s) != nil {
			return
		}
		require.True(t, utf8.ValidString(s))
		sent := bytes.Count(raw, []byte("\uFFFD")) + strings.Count(strings.ToLower(string(raw)), `\ufffd`)
		require.LessOrEqual(t, strings.Count(s, "\uFFFD"), sent, "Check passed %q, which decodes with a replacement", raw)
	})
}

func TestCheckUnique(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, wantErr string
	}{
		{"distinct names", `{"all": true, "dry_run": true, "kinds": ["a", "a"]}`, ""},
		{"a name repeated", `{"all": true, "dry_run": true, "dry_run": false}`, `member "dry_run" appears twice`},
		{"a name repeated after an array", `{"kinds": ["x", "y"], "note": "a", "kinds": []}`, `member "kinds" appears twice`},
		{"a name repeated in a nested object", `{"a": {"b": 1, "c": {"d": 1}, "b": 2}}`, `member "b" appears twice`},
		{"a name as a value is no name", `{"a": "b", "b": "a"}`, ""},
		{"the same name in sibling objects", `[{"a": 1}, {"a": 2}]`, ""},
		{"the same name in an object and its parent", `{"a": {"a": 1}}`, ""},
		{"objects in an array in an object", `{"l": [{"k": 1}, {"k": 2}], "k": 3}`, ""},
		{"a name escaped differently", `{"ab": 1, "a\u0062": 2}`, `member "ab" appears twice`},
		{"not JSON", `{"a": 1, "b"`, ""},
		{"a scalar", `"x"`, ""},
		{"empty", ``, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := strictjson.CheckUnique([]byte(tt.raw))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}
