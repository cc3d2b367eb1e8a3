package cli_test

import (
	"bytes"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/cli"
)

func TestWithDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct{ base, want string }{
		{"postgres://u:p@h:5432/postgres?sslmode=disable", "postgres://u:p@h:5432/other?sslmode=disable"},
		{"postgresql://h/db", "postgresql://h/other"},
		{"host=h user=u dbname=postgres", "host=h user=u dbname=postgres dbname=other"},
	}
	for _, tt := range tests {
		got, err := cli.WithDatabase(tt.base, "other")
		require.NoError(t, err)
		require.Equal(t, tt.want, got)
	}
	_, err := cli.WithDatabase("postgres://%zz", "x")
	require.ErrorContains(t, err, "parse database URL")
}

func TestBindEnv(t *testing.T) {
	t.Setenv("TESTAPP_SOME_FLAG", "from-env")
	t.Setenv("TESTAPP_COUNT", "x")
	var some string
	var count int
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cmd.Flags().StringVar(&some, "some-flag", "default", "")
	cmd.Flags().IntVar(&count, "count", 1, "")

	require.NoError(t, cmd.Flags().Parse([]string{"--count", "3"}))
	require.NoError(t, cli.BindEnv(cmd, "TESTAPP"))
	require.Equal(t, "from-env", some)
	require.Equal(t, 3, count, "the command line wins over the environment")
	require.True(t, cmd.Flags().Changed("some-flag"), "set from the environment counts as given, as on the command line")
	require.Equal(t, "TESTAPP_SOME_FLAG", cli.FlagRef(cmd, "some-flag"))
	require.Equal(t, "--count", cli.FlagRef(cmd, "count"))

	cmd2 := &cobra.Command{Use: "y"}
	cmd2.Flags().IntVar(&count, "count", 1, "")
	require.EqualError(t, cli.BindEnv(cmd2, "TESTAPP"), `invalid TESTAPP_COUNT "x": want a whole number`)
}

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l, err := cli.NewLogger(&buf, "auto", "info")
	require.NoError(t, err)
	l.Info("hello", "k", 1)
	require.Contains(t, buf.String(), `"msg":"hello","k":1}`, "JSON when not a terminal")
	_, err = cli.NewLogger(&buf, "xml", "info")
	require.EqualError(t, err, `invalid log format "xml" (auto, json, text)`)
}

func TestRequireSubcommand(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args    []string
		wantErr string
		ran     bool
	}{
		{args: []string{"sub"}, ran: true},
		{args: []string{"bogus"}, wantErr: `unknown command "bogus" for "app" (run "app --help")`},
		{args: []string{}, wantErr: "missing command: app needs one of its subcommands"},
	}
	for _, tt := range tests {
		ran := false
		root := cli.RequireSubcommand(&cobra.Command{Use: "app"})
		root.AddCommand(&cobra.Command{Use: "sub", RunE: func(*cobra.Command, []string) error { ran = true; return nil }})
		root.SetOut(&bytes.Buffer{})
		root.SetArgs(tt.args)
		err := root.Execute()
		if tt.wantErr != "" {
			require.EqualError(t, err, tt.wantErr)
		} else {
			require.NoError(t, err)
		}
		require.Equal(t, tt.ran, ran)
	}
}

func TestConnectNamesBadURLs(t *testing.T) {
	tests := []struct{ url, want string }{
		{"mysql://u@h/db", `invalid DATABASE_URL: scheme "mysql": want postgres:// or postgresql://`},
		{"notaurl", `invalid DATABASE_URL: want a postgres://user@host:5432/db URL or a key=value string such as "host=localhost dbname=app"`},
		{"postgres://%zz", "invalid DATABASE_URL: "},
		{"postgres://postgres@127.0.0.1:1/x?connect_timeout=1", "database unreachable at 127.0.0.1:1/x as user postgres: dial error: dial tcp 127.0.0.1:1: connect: connection refused"},
	}
	for _, tt := range tests {
		t.Setenv("DATABASE_URL", tt.url)
		_, err := cli.Connect(t.Context(), nil)
		require.ErrorContains(t, err, tt.want)
	}
}
