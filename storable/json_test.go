package storable_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/storable"
)

func TestCheckJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // "" for nil
	}{
		{"storable", `{"url": "http://x", "body": {"name": "é\u00e9\ud83d\ude00", "n": [1, true, null]}}`, ""},
		{"empty object", `{}`, ""},
		{"NUL escape in a value", `{"body": {"name": "a\u0000b"}}`, `args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"NUL escape upper case", `{"a": "\U0000"}`, ""}, // \U is no JSON escape: the decoder refuses it
		{"NUL escape in an array", `{"tags": ["ok", "x\u0000"]}`, `args.tags[1]: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"raw NUL byte", "{\"a\": \"x\x00\"}", `args.a: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8", "{\"body\": {\"name\": \"\xff\xfe\"}}", `args.body.name: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"NUL in a key", `{"body": {"na\u0000me": 1}}`, `args.body: the key "na\x00me" contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in a key", "{\"k\xffey\": 1}", "args: the key \"k\uFFFDey\" contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store"},
		{"raw NUL in a key", "{\"k\x00\": 1}", "args: the key \"k\uFFFD\" contains a NUL character (\\u0000), which PostgreSQL cannot store"},
		{"lone high surrogate", `{"a": "\ud800x"}`, `args.a: contains an unpaired UTF-16 surrogate (\ud800), which PostgreSQL cannot store`},
		{"high surrogate at the end", `{"a": "\uD800"}`, `args.a: contains an unpaired UTF-16 surrogate (\ud800), which PostgreSQL cannot store`},
		{"lone low surrogate", `{"a": "\udc00"}`, `args.a: contains an unpaired UTF-16 surrogate (\udc00), which PostgreSQL cannot store`},
		{"two high surrogates", `{"a": "\ud800\ud800"}`, `args.a: contains an unpaired UTF-16 surrogate (\ud800), which PostgreSQL cannot store`},
		{"path with odd names", `{"headers": {"Content-Type": {"a b": [{"1x": "\u0000"}]}}}`, `args.headers["Content-Type"]["a b"][0]["1x"]: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"escaped quote before", `{"a\"": "x\\", "b": "\u0000"}`, `args.b: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"top-level string", `"\u0000"`, `args: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"first problem wins", `{"a": "\u0000", "b": "\u0000"}`, `args.a: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"malformed before the problem", `{"a" 1, "b": "\u0000"}`, ""},
		{"unterminated", `{"a": "\u00`, ""},
		{"empty input", ``, ""},
		{"too deep", strings.Repeat("[", 10_002) + `"\u0000"` + strings.Repeat("]", 10_002), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := storable.CheckJSON([]byte(tt.in), "args")
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.want)
			_, ok := errors.AsType[*storable.JSONError](err)
			require.True(t, ok)
		})
	}
}

func TestCheckJSONAllocations(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want float64
	}{
		{name: "no escape: the shortcut", doc: `{"url": "https://api.example.com/hook", "headers": {"X-Id": "7"}, "body": {"items": [1, 2, {"name": "é"}]}}`, want: 0},
		{name: "escapes: one pass", doc: `{"url": "https://api.example.com/hook", "headers": {"X-Id": "7"}, "body": {"items": [1, 2, {"name": "\u00e9\n"}]}}`, want: 1},
	}
	for _, tt := range tests {
		doc := []byte(tt.doc)
		require.Equal(t, tt.want, testing.AllocsPerRun(100, func() {
			if storable.CheckJSON(doc, "args") != nil {
				t.Fatal("refused")
			}
		}), tt.name)
	}
}

// FuzzCheckJSONShortcut: CheckJSON's shortcut (no backslash, no NUL byte,
// valid UTF-8: nothing to refuse) says what the full scan says, for any
// bytes.
func FuzzCheckJSONShortcut(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": "\u0000"}`, "{\"a\": \"\xff\"}", `["\ud800"]`, `{"a\u0000": 1}`, `{"a": "\ud83d\ude00"}`, `[1, "x", {"y": null}]`, `"\udc00"`, "{\"a\": \"b\x00\"}", "\x00", `{"a": "é"`, `{"a": ["b", {"c": "d"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, want := storable.CheckJSON(data, "args"), storable.ScanJSON(data, "args")
		if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
			t.Fatalf("CheckJSON(%q) = %v, the full scan says %v", data, got, want)
		}
	})
}

// FuzzCheckJSON: CheckJSON never panics; when it passes a document that
// encoding/json finds valid, PostgreSQL stores it as jsonb (or refuses it
// only for a reason that is not a string's content: a number out of
// numeric's range, nesting beyond its stack); when it refuses one,
// PostgreSQL refuses it too.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": "\u0000"}`, "{\"a\": \"\xff\"}", `["\ud800"]`, `{"a\u0000": 1}`, `{"a": "\ud83d\ude00"}`, `[1, "x", {"y": null}]`, `"\udc00"`} {
		f.Add([]byte(s))
	}
	db := dbtest.New(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		err := storable.CheckJSON(data, "args")
		if err != nil && !strings.HasPrefix(err.Error(), "args") {
			t.Fatalf("error without the path: %v", err)
		}
		if !json.Valid(data) {
			return
		}
		var stored bool
		pgErr := db.Pool.QueryRow(context.Background(), "SELECT $1::text::jsonb IS NOT NULL", string(data)).Scan(&stored)
		switch {
		case err == nil && pgErr != nil:
			var pe *pgconn.PgError
			if errors.As(pgErr, &pe) && (pe.Code == "22003" || pe.Code == "54001") {
				return // numeric out of range; stack depth
			}
			t.Fatalf("CheckJSON passed %q, PostgreSQL refused it: %v", data, pgErr)
		case err != nil && pgErr == nil:
			t.Fatalf("CheckJSON refused %q (%v), PostgreSQL stored it", data, err)
		}
	})
}
