package main

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// Args PostgreSQL cannot store (a NUL, invalid UTF-8, an unpaired surrogate,
// in a value or a key) are refused with one line naming the line and the
// field, in rebound's words rather than PostgreSQL's, and nothing is
// inserted.
func TestEnqueueRefusesUnstorableArgs(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	good := `{"url": "http://127.0.0.1:9/a"}`
	nulLine := `{"url": "http://127.0.0.1:9/b", "body": {"name": "a\u0000b"}}`
	file := writeFile(t, good+"\n"+good+"\n"+nulLine+"\n"+good+"\n")
	badBytes := writeFile(t, good+"\n"+"{\"url\": \"http://127.0.0.1:9/\xff\xfe\"}\n")
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string
	}{
		{"NUL in --args", []string{"--args", nulLine},
			"", `enqueue: --args: invalid args: args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"NUL in a key", []string{"--args", `{"url": "http://127.0.0.1:9/", "headers": {"X-\u0000": "1"}}`},
			"", `enqueue: --args: invalid args: args.headers: the key "X-\x00" contains a NUL character (\u0000), which PostgreSQL cannot store`},
		{"invalid UTF-8 in --args", []string{"--args", "{\"url\": \"http://127.0.0.1:9/\", \"operation_key\": \"k\xff\"}"},
			"", `enqueue: --args: invalid args: args.operation_key: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store`},
		{"unpaired surrogate in --args", []string{"--args", `{"url": "http://127.0.0.1:9/", "body": "\udc00"}`},
			"", `enqueue: --args: invalid args: args.body: contains an unpaired UTF-16 surrogate (\udc00), which PostgreSQL cannot store`},
		{"NUL on line 3 of a file", []string{"--file", file},
			"", "enqueue: " + file + ` line 3: invalid args: args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store (nothing inserted)`},
		{"invalid UTF-8 on line 2 of a file", []string{"--file", badBytes},
			"", "enqueue: " + badBytes + ` line 2: invalid args: args.url: contains invalid UTF-8 (byte 0xff), which PostgreSQL cannot store (nothing inserted)`},
		{"NUL on stdin", []string{"--file", "-"},
			good + "\n" + nulLine + "\n", `enqueue: stdin line 2: invalid args: args.body.name: contains a NUL character (\u0000), which PostgreSQL cannot store (nothing inserted)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.RunStdin(t, []string{"DATABASE_URL=" + db.URL}, tt.stdin, "enqueue", append([]string{"http_request"}, tt.args...)...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Equal(t, tt.wantErr, strings.TrimSpace(res.Stderr))
			require.Empty(t, res.Stdout)
		})
	}
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job").Scan(&n))
	require.Zero(t, n)
}
