package cli_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/cli"
)

func TestPoolerHintOnlyForStatementCacheErrors(t *testing.T) {
	t.Parallel()
	const hint = "; DATABASE_URL seems to go through PgBouncer in transaction mode, where pgx's prepared statements clash: add default_query_exec_mode=cache_describe to it (see README, Behind PgBouncer)"
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"already exists, wrapped", fmt.Errorf("read river migrations: %w", &pgconn.PgError{Code: "42P05", Message: `prepared statement "stmtcache_9d1c" already exists`}), hint},
		{"does not exist", &pgconn.PgError{Code: "26000", Message: `prepared statement "stmtcache_9d1c" does not exist`}, hint},
		{"a statement of the application's own", &pgconn.PgError{Code: "42P05", Message: `prepared statement "mine" already exists`}, ""},
		{"another SQLSTATE", &pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint"}, ""},
		{"not from PostgreSQL", errors.New("stmtcache_ mentioned"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, cli.PoolerHint(tt.err))
		})
	}
}
