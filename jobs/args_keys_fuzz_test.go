package jobs_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rebound-queue/rebound/jobs"
)

// Whatever args http_request accepts name each field exactly as its JSON
// tag does, and hold no two headers that differ only in case: encoding/json
// matches field names regardless of case, so anything else would fill a
// field the user did not name.
func FuzzParseHTTPRequestArgsKeys(f *testing.F) {
	for _, seed := range []string{
		`{"url": "http://a/"}`,
		`{"url": "http://a/", "URL": "http://x"}`,
		`{"Url": "http://x"}`,
		`{"url": "http://a/", "headers": {"Idempotency-Key": "A", "idempotency-key": "B"}}`,
		`{"url": "http://a/", "OPERATION_KEY": "k"}`,
		`{"url": "http://a/", "body": {"a": 1, "A": 2}}`,
	} {
		f.Add(seed)
	}
	exact := map[string]bool{"url": true, "method": true, "headers": true, "body": true, "timeout_seconds": true, "operation_key": true}
	reg := jobs.Builtin()
	f.Fuzz(func(t *testing.T, raw string) {
		if _, err := reg.Parse(jobs.KindHTTPRequest, []byte(raw)); err != nil {
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal([]byte(strings.TrimPrefix(raw, "\xef\xbb\xbf")), &top); err != nil {
			t.Fatalf("accepted args that are not an object: %q", raw)
		}
		for k := range top {
			if !exact[k] {
				t.Fatalf("accepted key %q, not a field name as written: %q", k, raw)
			}
		}
		var headers map[string]string
		if h, ok := top["headers"]; ok && json.Unmarshal(h, &headers) == nil {
			seen := map[string]string{}
			for k := range headers {
				if other, ok := seen[strings.ToLower(k)]; ok {
					t.Fatalf("accepted headers %q and %q: %q", other, k, raw)
				}
				seen[strings.ToLower(k)] = k
			}
		}
	})
}
