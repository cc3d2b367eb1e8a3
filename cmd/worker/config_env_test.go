package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// A bad --config file is refused with one line that names the file, then
// the key: an unknown kind under retry.kinds (checked against the kinds the
// worker works, after config.Load) as every other key, an unset ${NAME} in
// a channel's URL with the key that holds it, and a file that is not UTF-8
// with what it is. Exit code 1, the worker never starts, every table as it
// was.
func TestConfigErrorsNameTheFileAndKey(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	before := db.RowCounts(t)
	dir := t.TempDir()
	file := func(name string, content []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, content, 0o600))
		return path
	}
	kind := file("kind.yaml", []byte("retry:\n  kinds:\n    http_requset: {max_attempts: 3}\n"))
	unset := file("unset.yaml", []byte("alerts:\n  channels:\n    ops: {type: slack, url: \"${REBOUND_TEST_UNSET_SLACK_URL}\"}\n"+
		"    pager: {type: webhook, url: \"https://hooks.example.com/x\", secret: \"${REBOUND_TEST_UNSET_SECRET}\"}\n"))
	var utf16 []byte
	for _, c := range []byte("retry:\n  default: {max_attempts: 3}\n") {
		utf16 = append(utf16, c, 0)
	}
	utf16BOM := file("utf16-bom.yaml", append([]byte{0xFF, 0xFE}, utf16...))
	utf16NoBOM := file("utf16.yaml", utf16)
	latin1 := file("latin1.yaml", []byte("retry:\n  default: {max_attempts: 3}\n# r\xe9essais\n"))
	const known = ` (known kinds: http_request, rebound_notify, synthetic, weekly_intelligence)`

	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr string
	}{
		{"unknown kind", []string{"--config", kind}, nil,
			"worker: " + kind + `: retry.kinds.http_requset: unknown job kind "http_requset"` + known + "\n"},
		{"unknown kind, file from the environment", nil, []string{"REBOUND_CONFIG=" + kind},
			"worker: " + kind + `: retry.kinds.http_requset: unknown job kind "http_requset"` + known + "\n"},
		{"missing file from the environment", nil, []string{"REBOUND_CONFIG=/nonexistent.yaml"},
			"worker: REBOUND_CONFIG /nonexistent.yaml: no such file or directory\n"},
		{"unset variables in a channel", []string{"--config", unset}, nil,
			"worker: " + unset + ": alerts.channels.ops.url: environment variable REBOUND_TEST_UNSET_SLACK_URL is unset or empty; " +
				"alerts.channels.pager.secret: environment variable REBOUND_TEST_UNSET_SECRET is unset or empty\n"},
		{"UTF-16 with a byte order mark", []string{"--config", utf16BOM}, nil,
			"worker: " + utf16BOM + ": not UTF-8 (it looks like UTF-16): the configuration file must be UTF-8\n"},
		{"UTF-16 without one", []string{"--config", utf16NoBOM}, nil,
			"worker: " + utf16NoBOM + ": not UTF-8 (it looks like UTF-16): the configuration file must be UTF-8\n"},
		{"Latin-1", []string{"--config", latin1}, nil,
			"worker: " + latin1 + ": not UTF-8 (byte 0xE9 on line 3): the configuration file must be UTF-8\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := proctest.WithDefaults(tt.args, "--http-addr", proctest.FreeAddr(t))
			res := proctest.Run(t, append([]string{"DATABASE_URL=" + db.URL}, tt.env...), "worker", args...)
			require.Equal(t, 1, res.ExitCode, "stdout: %s\nstderr: %s", res.Stdout, res.Stderr)
			require.Equal(t, tt.wantErr, res.Stderr)
			require.NotContains(t, res.Stdout, "worker started")
		})
	}
	t.Cleanup(func() { require.Equal(t, before, db.RowCounts(t), "every table as it was") })
}
