package jobs_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tidwall/gjson"

	"github.com/rebound-queue/rebound/jobs"
)

func TestStampedOperationKey(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, metadata, want string }{
		{name: "jsonb's form", metadata: `{"output": {"attempts": []}, "operation_key": "payments"}`, want: "payments"},
		{name: "alone", metadata: `{"operation_key":"a"}`, want: "a"},
		{name: "after nested objects holding the same key", metadata: `{"x": {"operation_key": "nested"}, "y": [{"operation_key": "n2"}, "]}"], "operation_key": "top"}`, want: "top"},
		{name: "after strings with quotes and braces", metadata: `{"a": "he said \"}\" {", "operation_key": "k"}`, want: "k"},
		{name: "after numbers and literals", metadata: `{"a": -1.5e3, "b": true, "c": null, "operation_key": "k"}`, want: "k"},
		{name: "escapes in the value", metadata: `{"operation_key": "caf\u00e9 \"q\""}`, want: `café "q"`},
		{name: "escaped key name", metadata: `{"operation\u005fkey": "k"}`, want: "k"},
		{name: "first of two", metadata: `{"operation_key": "one", "operation_key": "two"}`, want: "one"},
		{name: "only nested", metadata: `{"x": {"operation_key": "nested"}}`, want: ""},
		{name: "not a string", metadata: `{"operation_key": 5}`, want: ""},
		{name: "null", metadata: `{"operation_key": null}`, want: ""},
		{name: "empty object", metadata: `{}`, want: ""},
		{name: "empty", metadata: ``, want: ""},
		{name: "array", metadata: `["operation_key", "k"]`, want: ""},
		{name: "truncated", metadata: `{"operation_key": "k`, want: ""},
		{name: "truncated before", metadata: `{"a": {"b": `, want: ""},
		{name: "a prefix of the name", metadata: `{"operation_ke": "no", "operation_keys": "no"}`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, jobs.StampedOperationKey([]byte(tt.metadata)))
		})
	}
}

// The healthy path reads the key without allocating.
func TestStampedOperationKeyAllocatesNothing(t *testing.T) {
	md := []byte(`{"output": {"attempts": [{"class": "timeout"}]}, "operation_key": "payments"}`)
	var key string
	allocs := testing.AllocsPerRun(100, func() { key = jobs.StampedOperationKey(md) })
	require.Equal(t, "payments", key)
	// One allocation: the returned string's bytes.
	require.LessOrEqual(t, allocs, 1.0)
}

// For any valid JSON object the scanner agrees with a JSON path reader
// (gjson, which also takes the first of duplicate keys); it never panics
// on anything.
func FuzzStampedOperationKey(f *testing.F) {
	f.Add([]byte(`{"x": {"operation_key": "nested"}, "operation_key": "top"}`))
	f.Add([]byte(`{"operation\u005fkey": "k\n"}`))
	f.Add([]byte(`{"a": [1, "]", {"b": "}"}], "operation_key": "\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := jobs.StampedOperationKey(raw)
		if !json.Valid(raw) || len(raw) == 0 || raw[0] != '{' {
			return
		}
		var want string
		if v := gjson.GetBytes(raw, jobs.MetadataOperationKey); v.Type == gjson.String {
			want = v.Str
		}
		require.Equal(t, want, got, "%q", raw)
	})
}

// BenchmarkStampedOperationKey compares the in-place scan with the JSON
// path reader it replaced, on metadata shaped as jsonb prints it.
func BenchmarkStampedOperationKey(b *testing.B) {
	md := []byte(`{"output": {"attempts": [{"class": "timeout"}]}, "operation_key": "payments"}`)
	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = jobs.StampedOperationKey(md)
		}
	})
	b.Run("gjson", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = gjson.GetBytes(md, jobs.MetadataOperationKey).Str
		}
	})
}
