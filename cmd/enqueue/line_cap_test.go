package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/jobs"
)

// A line may hold up to 10 MiB (maxLineBytes), not counting its line
// ending: a line of exactly 10 MiB is read, whether it ends in "\n", in
// "\r\n" or at the end of the input, and one byte more is refused, naming
// the line.
func TestLineCapIsTenMiBWithoutTheLineEnding(t *testing.T) {
	t.Parallel()
	kind, err := jobs.Builtin().Lookup("http_request")
	require.NoError(t, err)
	// line returns an http_request args line of exactly n bytes.
	line := func(n int) string {
		pre, post := `{"url": "http://127.0.0.1:9/a", "body": "`, `"}`
		return pre + strings.Repeat("x", n-len(pre)-len(post)) + post
	}
	good := `{"url": "http://127.0.0.1:9/b"}`
	tests := []struct {
		name      string
		input     string
		wantLines int
		wantErr   string
	}{
		{name: "exactly 10 MiB, LF", input: good + "\n" + line(maxLineBytes) + "\n" + good + "\n", wantLines: 3},
		{name: "exactly 10 MiB, CRLF", input: good + "\r\n" + line(maxLineBytes) + "\r\n" + good + "\r\n", wantLines: 3},
		{name: "exactly 10 MiB, the last line without an ending", input: good + "\n" + line(maxLineBytes), wantLines: 2},
		{name: "one byte over, LF", input: good + "\n" + line(maxLineBytes+1) + "\n" + good + "\n",
			wantErr: "stdin line 2: longer than 10 MiB (nothing inserted)"},
		{name: "one byte over, CRLF", input: good + "\r\n" + line(maxLineBytes+1) + "\r\n",
			wantErr: "stdin line 2: longer than 10 MiB (nothing inserted)"},
		{name: "one byte over, the last line without an ending", input: good + "\n" + line(maxLineBytes+1),
			wantErr: "stdin line 2: longer than 10 MiB (nothing inserted)"},
		{name: "far over", input: good + "\n" + line(3*maxLineBytes) + "\n",
			wantErr: "stdin line 2: longer than 10 MiB (nothing inserted)"},
		// Bad lines before it are named and counted; reading stops at it.
		{name: "a bad line, then one over", input: good + "\n" + `{"body": 1}` + "\n" + line(maxLineBytes+1) + "\n" + `{"body": 2}` + "\n",
			wantErr: "stdin line 2: invalid args: url is required (and line 3: longer than 10 MiB, where reading stopped; nothing inserted)"},
		{name: "two bad lines, then one over", input: `{"body": 1}` + "\n" + "{\n" + line(maxLineBytes+1),
			wantErr: "stdin line 1: invalid args: url is required (and 1 more bad lines, then line 3: longer than 10 MiB, where reading stopped; nothing inserted)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lines, err := readFile(kind, "-", strings.NewReader(tt.input))
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				require.Nil(t, lines)
				return
			}
			require.NoError(t, err)
			require.Len(t, lines, tt.wantLines)
		})
	}
}
