package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
	"github.com/rebound-queue/rebound/migrations"
)

// `rebound migrate status` and `rebound migrate up` count the same things:
// what status says is pending is what up then applies, migrations apart
// from the dead-letter trigger, in text and in JSON.
func TestMigrateStatusAndUpAgree(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := dbtest.New(t)
	_, err := db.Pool.Exec(ctx, "DROP SCHEMA public CASCADE; CREATE SCHEMA public")
	require.NoError(t, err)
	env := []string{"DATABASE_URL=" + db.URL}
	run := func(args ...string) string {
		t.Helper()
		res := proctest.Run(t, env, "rebound", args...)
		require.Equal(t, 0, res.ExitCode, res.Stderr)
		return res.Stdout
	}
	lastLine := func(out string) string {
		lines := strings.Split(strings.TrimSpace(out), "\n")
		return lines[len(lines)-1]
	}

	var status struct {
		Pending          int `json:"pending"`
		TriggersMissing  int `json:"triggers_missing"`
		TriggersDisabled int `json:"triggers_disabled"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("migrate", "status", "--json")), &status))
	n := status.Pending
	require.Greater(t, n, len(migrations.All()), "River's migrations and rebound's")
	require.Equal(t, 4, status.TriggersMissing, "the dead-letter capture and the three batch counters")
	require.Equal(t, fmt.Sprintf("%d migrations pending, 4 triggers missing: run `rebound migrate up`", n), lastLine(run("migrate", "status")))

	up := run("migrate", "up")
	require.Equal(t, fmt.Sprintf("%d migrations applied, 4 triggers created", n), lastLine(up))
	require.Equal(t, n, strings.Count(up, "\napplied ")+1, up) // one line per migration
	require.Equal(t, "up to date", lastLine(run("migrate", "status")))
	require.Equal(t, "database is up to date; nothing to apply", lastLine(run("migrate", "up")))

	// A disabled trigger: status and up name it alike.
	require.Len(t, migrations.Triggers(), 4)
	_, err = db.Pool.Exec(ctx, "ALTER TABLE river_job DISABLE TRIGGER "+migrations.Triggers()[0].Name)
	require.NoError(t, err)
	require.Equal(t, "1 trigger disabled: run `rebound migrate up`", lastLine(run("migrate", "status")))
	var upJSON struct {
		Applied []migrations.Applied `json:"applied"`
	}
	require.NoError(t, json.Unmarshal([]byte(run("migrate", "up", "--json")), &upJSON))
	require.Len(t, upJSON.Applied, 1)
	require.Equal(t, "trigger", upJSON.Applied[0].Line)
	require.True(t, upJSON.Applied[0].Repaired)
	require.Equal(t, "up to date", lastLine(run("migrate", "status")))
}
