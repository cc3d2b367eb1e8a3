package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// privatePostgres is a PostgreSQL server of the test's own: initdb in a
// temporary folder, a free port, stopped and removed when the test ends.
type privatePostgres struct {
	t       *testing.T
	bin     string // folder of initdb, pg_ctl
	dir     string
	port    int
	asOwner func(name string, args ...string) *exec.Cmd
}

// startPrivatePostgres starts one, or skips t when no server binaries are
// installed (they are looked for under /usr/lib/postgresql/*/bin).
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(found) == 0 {
		t.Skip("no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin")
	}
	p := &privatePostgres{t: t, bin: filepath.Dir(found[len(found)-1])}
	dir, err := os.MkdirTemp("", "rebound-pg-drill-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	p.dir = dir
	p.asOwner = func(name string, args ...string) *exec.Cmd {
		return exec.Command(filepath.Join(p.bin, name), args...)
	}
	if os.Getuid() == 0 {
		// initdb refuses root: run the server as the postgres user.
		u, err := user.Lookup("postgres")
		require.NoError(t, err, "running as root needs a postgres user for initdb")
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		require.NoError(t, os.Chown(dir, uid, gid))
		require.NoError(t, os.Chmod(dir, 0o755))
		p.asOwner = func(name string, args ...string) *exec.Cmd {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(p.bin, name)}, args...)...)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p.port = ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	p.run("initdb", "-D", p.dir+"/data", "-U", "postgres", "--auth=trust", "-E", "UTF8")
	p.pgctl("start")
	t.Cleanup(func() { _ = p.asOwner("pg_ctl", "-D", p.dir+"/data", "-m", "immediate", "stop").Run() })
	return p
}

func (p *privatePostgres) run(name string, args ...string) {
	p.t.Helper()
	out, err := p.asOwner(name, args...).CombinedOutput()
	require.NoError(p.t, err, "%s: %s", name, out)
}

// pgctl runs pg_ctl start or restart (fast shutdown: connections are cut).
func (p *privatePostgres) pgctl(action string) {
	p.t.Helper()
	p.run("pg_ctl", "-D", p.dir+"/data", "-l", p.dir+"/log", "-w", "-m", "fast",
		"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", p.port, p.dir), action)
}

func (p *privatePostgres) url(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, database)
}

// A private PostgreSQL restarted while a worker works 1,500 synthetic
// jobs: the worker reconnects and finishes every job, nothing is lost,
// nothing stays running, nothing is dead-lettered.
func TestDrillPostgresRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pg := startPrivatePostgres(t)
	dbURL := pg.url("postgres")
	env := []string{"DATABASE_URL=" + dbURL}
	res := proctest.Run(t, env, "rebound", "migrate", "up")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	const n = 1500
	res = proctest.RunStdin(t, env, strings.Repeat(`{"sleep_ms": 20}`+"\n", n), "enqueue", "synthetic", "--file", "-")
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	worker := proctest.StartWorker(t, dbURL, append([]string{"--queues", "default=20"}, fastRescue...)...)
	waitFor(t, time.Minute, func() bool {
		return count(t, pool, "SELECT count(*) FROM river_job WHERE state = 'completed'") >= 200
	})
	pg.pgctl("restart")
	time.Sleep(time.Second) // the pool's connections were cut; let it notice

	waitSettled(t, pool, 3*time.Minute, worker.Logs)
	require.Equal(t, n, count(t, pool, "SELECT count(*) FROM river_job WHERE state = 'completed'"), worker.Logs())
	require.Equal(t, 0, count(t, pool, "SELECT count(*) FROM job_dead_letter_queue"))
	lost := count(t, pool, `SELECT count(*) FROM river_job WHERE metadata->'output'->'attempts' @> '[{"class": "lost"}]'`)
	t.Logf("%d jobs came back through the rescuer", lost)
}
