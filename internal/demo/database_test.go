package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/dbtest"
)

func TestDefaultDatabase(t *testing.T) {
	t.Parallel()
	name := defaultDatabase(time.Date(2026, 12, 2, 0, 35, 44, 0, time.Local))
	require.Equal(t, "rebound_demo_20261202_003544", name)
	require.NoError(t, validateDatabase(name))
}

func TestValidateDatabase(t *testing.T) {
	t.Parallel()
	const rule = ": must be 1 to 63 characters: lower-case letters, digits and underscores, starting with a letter"
	tests := []struct {
		name, wantErr string
	}{
		{"rebound_demo", ""},
		{"d", ""},
		{"demo_2" + strings.Repeat("x", 57), ""},
		{"", `database name ""` + rule},
		{"demo_2" + strings.Repeat("x", 58), `database name "demo_2` + strings.Repeat("x", 58) + `"` + rule},
		{"Rebound", `database name "Rebound"` + rule},
		{"1demo", `database name "1demo"` + rule},
		{"_demo", `database name "_demo"` + rule},
		{"re-bound", `database name "re-bound"` + rule},
		{"demo; DROP DATABASE x", `database name "demo; DROP DATABASE x"` + rule},
		{"d\x00", `database name "d\x00"` + rule},
		{"démo", `database name "démo"` + rule},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := validateDatabase(tt.name)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

// comment returns the database's comment, and whether it exists.
func comment(t *testing.T, conn *pgxpool.Pool, name string) (string, bool) {
	t.Helper()
	var c string
	err := conn.QueryRow(context.Background(), `SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1`, name).Scan(&c)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false
	}
	require.NoError(t, err)
	return c, true
}

// hasTable reports whether the database at url has table t1.
func hasTable(t *testing.T, url string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var ok bool
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT to_regclass('t1') IS NOT NULL").Scan(&ok))
	return ok
}

// The demo creates its database and marks it; it replaces a database only
// when an earlier demo created it, and leaves any other alone.
func TestCreateDatabase(t *testing.T) {
	t.Parallel()
	base := dbtest.New(t).URL
	ctx := context.Background()
	admin, err := pgxpool.New(ctx, base)
	require.NoError(t, err)
	t.Cleanup(admin.Close)

	tests := []struct {
		name     string
		existing string // "": none; "demo": one the demo created; else a database with this comment ("-" for none)
		wantErr  string
	}{
		{name: "absent"},
		{name: "earlier demo", existing: "demo"},
		{name: "not the demo's, no comment", existing: "-", wantErr: "exists and the demo did not create it"},
		{name: "not the demo's, another comment", existing: "orders, production", wantErr: "exists and the demo did not create it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := make([]byte, 5)
			_, _ = rand.Read(b)
			name := "rebound_demo_test_" + hex.EncodeToString(b)
			ident := pgx.Identifier{name}.Sanitize()
			t.Cleanup(func() { _, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)") })

			var earlierURL string
			var err error
			switch tt.existing {
			case "":
			case "demo":
				earlierURL, _, err = createDatabase(ctx, base, name)
				require.NoError(t, err)
			default:
				_, err := admin.Exec(ctx, "CREATE DATABASE "+ident)
				require.NoError(t, err)
				if tt.existing != "-" {
					_, err = admin.Exec(ctx, "COMMENT ON DATABASE "+ident+" IS "+quote(tt.existing))
					require.NoError(t, err)
				}
				earlierURL, err = cli.WithDatabase(base, name)
				require.NoError(t, err)
			}
			if earlierURL != "" {
				conn, err := pgx.Connect(ctx, earlierURL)
				require.NoError(t, err)
				_, err = conn.Exec(ctx, "CREATE TABLE t1 (id int)")
				conn.Close(ctx)
				require.NoError(t, err)
			}
			before, _ := comment(t, admin, name)

			url, replaced, err := createDatabase(ctx, base, name)
			if tt.wantErr != "" {
				require.EqualError(t, err, "database "+name+" exists and the demo did not create it, so the demo leaves it alone: choose another name with --database or REBOUND_DEMO_DATABASE")
				after, ok := comment(t, admin, name)
				require.True(t, ok, "database dropped")
				require.Equal(t, before, after)
				require.True(t, hasTable(t, earlierURL), "its contents changed")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.existing == "demo", replaced)
			c, ok := comment(t, admin, name)
			require.True(t, ok)
			require.True(t, strings.HasPrefix(c, demoMark+" on "), c)
			require.True(t, strings.HasSuffix(c, "; drop it with: DROP DATABASE "+name), c)
			require.False(t, hasTable(t, url), "not a fresh database")

			names, err := demoDatabases(ctx, base)
			require.NoError(t, err)
			require.Contains(t, names, name)
		})
	}
}
