package main

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// With DATABASE_URL unset, libpq's PG* variables and defaults choose the
// database: every program's error says so and names the database, host,
// port and user they gave (never the password), whether it failed to
// connect or failed after connecting (here: a database not migrated, the
// same message as with DATABASE_URL, plus the note).
func TestUnsetDatabaseURLNamesTheDatabase(t *testing.T) {
	t.Parallel()
	empty := dbtest.New(t)
	_, err := empty.Pool.Exec(context.Background(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	cc, err := pgconn.ParseConfig(empty.URL)
	require.NoError(t, err)
	password := cc.Password
	if password == "" {
		password = "h4-never-shown" // the server trusts the user: sent, never needed
	}
	port := strconv.Itoa(int(cc.Port))
	pg := []string{"PGHOST=" + cc.Host, "PGPORT=" + port, "PGUSER=" + cc.User, "PGDATABASE=" + cc.Database, "PGSSLMODE=disable", "PGPASSWORD=" + password}
	note := " (DATABASE_URL is not set: libpq's PG* variables and defaults gave database " + cc.Database + " on " + cc.Host + ":" + port + " as user " + cc.User + ")"

	for _, tt := range []struct {
		bin  string
		args []string
	}{
		{"rebound", []string{"health"}},
		{"rebound", []string{"dlq", "list"}},
		{"rebound", []string{"alerts", "list", "--json"}},
		{"enqueue", []string{"http_request", "--args", `{"url": "http://127.0.0.1:9/a"}`}},
		{"worker", []string{"--http-addr", "127.0.0.1:0"}},
	} {
		t.Run(tt.bin+" "+tt.args[0], func(t *testing.T) {
			t.Parallel()
			withURL := proctest.Run(t, []string{"DATABASE_URL=" + empty.URL}, tt.bin, tt.args...)
			require.Equal(t, 1, withURL.ExitCode, withURL.Stderr)
			require.True(t, strings.HasPrefix(withURL.Stderr, tt.bin+": database migrations are behind: "), withURL.Stderr)
			wantEnd := "; run `rebound migrate up`\n"
			if tt.bin == "enqueue" {
				wantEnd = "; run `rebound migrate up` (nothing inserted)\n" // as every failed insert says
			}
			require.True(t, strings.HasSuffix(withURL.Stderr, wantEnd), withURL.Stderr)

			res := proctest.Run(t, pg, tt.bin, tt.args...)
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			require.Empty(t, res.Stdout)
			require.Equal(t, strings.TrimSuffix(withURL.Stderr, "\n")+note+"\n", res.Stderr)
			require.NotContains(t, res.Stderr, password)
		})
	}

	// Nothing answers: the note comes first, then the connection error.
	for _, tt := range []struct {
		name string
		env  []string
		want string
	}{
		{"unreachable", []string{"PGHOST=127.0.0.1", "PGPORT=1", "PGUSER=nobody", "PGDATABASE=app", "PGCONNECT_TIMEOUT=2", "PGPASSWORD=" + password},
			"rebound: database unreachable (DATABASE_URL is not set: libpq's PG* variables and defaults gave database app on 127.0.0.1:1 as user nobody): dial error: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{"no database named", []string{"PGHOST=127.0.0.1", "PGPORT=1", "PGUSER=nobody", "PGCONNECT_TIMEOUT=2"},
			"rebound: database unreachable (DATABASE_URL is not set: libpq's PG* variables and defaults gave database nobody on 127.0.0.1:1 as user nobody): dial error: dial tcp 127.0.0.1:1: connect: connection refused\n"},
		{"bad PGPORT", []string{"PGPORT=abc"}, "rebound: DATABASE_URL is not set, and libpq's PG* variables are invalid: invalid port\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.Run(t, tt.env, "rebound", "health")
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			require.Empty(t, res.Stdout)
			require.True(t, strings.HasPrefix(res.Stderr, tt.want), res.Stderr)
			require.Equal(t, 1, strings.Count(res.Stderr, "\n"), res.Stderr)
			require.NotContains(t, res.Stderr, password)
		})
	}

	// rebound bench connects to the server on its own: its error ends with
	// the same note.
	t.Run("bench unreachable", func(t *testing.T) {
		t.Parallel()
		res := proctest.Run(t, []string{"PGHOST=127.0.0.1", "PGPORT=1", "PGUSER=nobody", "PGDATABASE=app", "PGCONNECT_TIMEOUT=2", "PGPASSWORD=" + password},
			"rebound", "bench", "--jobs", "10", "--rounds", "1")
		require.Equal(t, 1, res.ExitCode, res.Stderr)
		require.Empty(t, res.Stdout)
		require.True(t, strings.HasPrefix(res.Stderr, "rebound: connect to the server: failed to connect to `user=nobody database=app`: "), res.Stderr)
		require.True(t, strings.HasSuffix(res.Stderr, " (DATABASE_URL is not set: libpq's PG* variables and defaults gave database app on 127.0.0.1:1 as user nobody)\n"), res.Stderr)
		require.Equal(t, 1, strings.Count(res.Stderr, "\n"), res.Stderr)
		require.NotContains(t, res.Stderr, password)
	})
}

// A database the server says does not exist is named with the server that
// answered, not reported as unreachable (the server was reached): by every
// program, with DATABASE_URL or the PG* variables, and for the worker's
// DATABASE_DIRECT_URL. Other connection errors are as they were (above).
func TestMissingDatabaseNamesTheServer(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	const name = "rebound_h9_no_such_database"
	missingURL, err := cli.WithDatabase(db.URL, name)
	require.NoError(t, err)
	cc, err := pgconn.ParseConfig(db.URL)
	require.NoError(t, err)
	server := cc.Host + ":" + strconv.Itoa(int(cc.Port))
	missing := `database "` + name + `" does not exist on ` + server
	pg := []string{"PGHOST=" + cc.Host, "PGPORT=" + strconv.Itoa(int(cc.Port)), "PGUSER=" + cc.User, "PGDATABASE=" + name, "PGSSLMODE=disable", "PGPASSWORD=" + cc.Password}
	u, err := url.Parse(db.URL)
	require.NoError(t, err)
	u.User = url.User("rebound_no_such_role")
	noRoleURL := u.String()
	note := " (DATABASE_URL is not set: libpq's PG* variables and defaults gave database " + name + " on " + server + " as user " + cc.User + ")"

	tests := []struct {
		name string
		env  []string
		bin  string
		args []string
		want string
	}{
		{"rebound", []string{"DATABASE_URL=" + missingURL}, "rebound", []string{"health"}, "rebound: " + missing + "\n"},
		{"enqueue", []string{"DATABASE_URL=" + missingURL}, "enqueue", []string{"http_request", "--args", `{"url": "http://127.0.0.1:9/a"}`}, "enqueue: " + missing + " (nothing inserted)\n"},
		{"worker", []string{"DATABASE_URL=" + missingURL}, "worker", []string{"--http-addr", "127.0.0.1:0"}, "worker: " + missing + "\n"},
		{"worker DATABASE_DIRECT_URL", []string{"DATABASE_URL=" + db.URL, "DATABASE_DIRECT_URL=" + missingURL}, "worker", []string{"--http-addr", "127.0.0.1:0"}, "worker: DATABASE_DIRECT_URL: " + missing + "\n"},
		{"rebound, PG* variables", pg, "rebound", []string{"health"}, "rebound: " + missing + note + "\n"},
		// Any other refusal by the server says who refused what.
		{"rebound, a role that does not exist", []string{"DATABASE_URL=" + noRoleURL}, "rebound", []string{"health"},
			"rebound: " + server + ` refused user rebound_no_such_role for database ` + cc.Database + `: role "rebound_no_such_role" does not exist (SQLSTATE 28000)` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := proctest.Run(t, tt.env, tt.bin, tt.args...)
			require.Equal(t, 1, res.ExitCode, res.Stderr)
			require.Empty(t, res.Stdout)
			require.Equal(t, tt.want, res.Stderr)
		})
	}
}
