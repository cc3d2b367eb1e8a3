package jobs

import (
	"bytes"
	"testing"

	"github.com/tidwall/sjson"
)

// stampOperationKey stores a key exactly as sjson.SetBytes does, for the
// metadata it builds directly (none, {}) and for any other.
func FuzzStampOperationKeyMatchesSjson(f *testing.F) {
	for _, seed := range []struct{ metadata, key string }{
		{"", "api.example.com"},
		{"{}", "127.0.0.1:9"},
		{"{}", `a"b\c`},
		{"{}", "café <&> \u2028"},
		{"{}", "tab\there"},
		{"{}", "bad \xff utf-8"},
		{"{}", "\x7f"},
		{`{"batch_id": 7}`, "k"},
		{`{"operation_key": "old"}`, "new"},
		{" {}", "k"},
	} {
		f.Add(seed.metadata, seed.key)
	}
	f.Fuzz(func(t *testing.T, metadata, key string) {
		in := []byte(metadata)
		if len(in) == 0 {
			in = nil
		}
		got, gotErr := stampOperationKey(in, key)
		from := []byte(metadata)
		if len(from) == 0 {
			from = []byte("{}")
		}
		want, wantErr := sjson.SetBytes(from, MetadataOperationKey, key)
		if (gotErr == nil) != (wantErr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("stampOperationKey(%q, %q) = %q, %v; sjson: %q, %v", metadata, key, got, gotErr, want, wantErr)
		}
	})
}
