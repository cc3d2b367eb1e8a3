package jobs_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
)

// ParseKnownFields parses what a worker decodes from an object with fields
// of its own: those are ignored, the kind's own are checked.
func TestParseKnownFields(t *testing.T) {
	t.Parallel()
	summary := `{"id": 4, "name": "b", "kind": "http_request", "total": 3, "failures_by_class": {}}`
	tests := []struct {
		name    string
		kind    string
		raw     string
		wantErr string
	}{
		{"a summary as http_request", "http_request", summary, "invalid args: url is required"},
		{"a summary as weekly_intelligence", "weekly_intelligence", summary, "invalid args: user_id must be a positive integer, got 0"},
		{"a summary as synthetic", "synthetic", summary, ""},
		{"own fields are still checked", "synthetic", `{"id": 4, "sleep_ms": -1}`, "invalid args: sleep_ms must be between 0 and 3600000 (1 hour), got -1"},
		{"own fields kept", "http_request", `{"id": 4, "url": "http://127.0.0.1:9/a"}`, ""},
		{"not an object: parsed as it is", "synthetic", `[1]`, "invalid args"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, err := jobs.Builtin().Lookup(tt.kind)
			require.NoError(t, err)
			_, err = k.ParseKnownFields([]byte(tt.raw))
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}
