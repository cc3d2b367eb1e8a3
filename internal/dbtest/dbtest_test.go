package dbtest_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// childEnv tells this test binary it runs as a child process of a test
// below: "hold" runs TestChildProcess under dbtest.Main, "nomain" runs it
// without.
const childEnv = "DBTEST_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "nomain" {
		os.Exit(m.Run())
	}
	dbtest.Main(m)
}

// TestChildProcess is the body of the child processes: it creates a test
// database, prints its name, and holds it until its stdin closes.
func TestChildProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("runs only as a child process of TestTemplateDroppedByLastProcess and TestNewNeedsMain")
	}
	db := dbtest.New(t)
	fmt.Printf("ready %s\n", db.Name)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
	out   strings.Builder
}

func startChild(t *testing.T, mode, template string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, dbtest.TemplateEnv+"="+template)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	c := &child{cmd: cmd, stdin: stdin}
	cmd.Stderr = &c.out
	c.lines = bufio.NewScanner(stdout)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return c
}

// ready waits for the child's "ready NAME" line and returns NAME.
func (c *child) ready(t *testing.T) string {
	t.Helper()
	for c.lines.Scan() {
		c.out.WriteString(c.lines.Text() + "\n")
		if name, ok := strings.CutPrefix(c.lines.Text(), "ready "); ok {
			return name
		}
	}
	t.Fatalf("child ended before it was ready; its output:\n%s", c.out.String())
	return ""
}

// finish closes the child's stdin, waits for it to exit and returns its
// exit code and output.
func (c *child) finish(t *testing.T) (int, string) {
	t.Helper()
	require.NoError(t, c.stdin.Close())
	for c.lines.Scan() {
		c.out.WriteString(c.lines.Text() + "\n")
	}
	err := c.cmd.Wait()
	if exitErr, ok := errors.AsType[*exec.ExitError](err); ok {
		return exitErr.ExitCode(), c.out.String()
	}
	require.NoError(t, err)
	return 0, c.out.String()
}

func adminConn(t *testing.T) *pgx.Conn {
	t.Helper()
	base := os.Getenv("TEST_DATABASE_URL")
	if base == "" {
		base = os.Getenv("DATABASE_URL")
	}
	if base == "" {
		t.Fatal(dbtest.HowToProvide)
	}
	conn, err := pgx.Connect(context.Background(), base)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// oid returns the database's OID, 0 when it does not exist.
func oid(t *testing.T, conn *pgx.Conn, name string) uint32 {
	t.Helper()
	var id uint32
	err := conn.QueryRow(context.Background(), "SELECT oid FROM pg_database WHERE datname = $1", name).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	require.NoError(t, err)
	return id
}

func randomTemplate(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	name := "rebound_tpl_test_" + hex.EncodeToString(b)
	t.Cleanup(func() { // only when the test failed half-way
		ident := pgx.Identifier{name}.Sanitize()
		_, _ = conn.Exec(context.Background(), "ALTER DATABASE "+ident+" IS_TEMPLATE false")
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)")
	})
	return name
}

// Two test processes share one template: it outlives the first to end and
// is dropped by the last, and each drops its own test database.
func TestTemplateDroppedByLastProcess(t *testing.T) {
	t.Parallel()
	conn := adminConn(t)
	tpl := randomTemplate(t, conn)

	a := startChild(t, "hold", tpl)
	dbA := a.ready(t)
	built := oid(t, conn, tpl)
	require.NotZero(t, built, "template %s after the first process set up", tpl)
	require.NotZero(t, oid(t, conn, dbA))

	b := startChild(t, "hold", tpl)
	dbB := b.ready(t)
	require.Equal(t, built, oid(t, conn, tpl), "the second process reuses the template, not a rebuild")

	code, out := a.finish(t)
	require.Equal(t, 0, code, out)
	require.Equal(t, built, oid(t, conn, tpl), "template dropped while the second process still uses it")
	require.Zero(t, oid(t, conn, dbA), "test database %s left behind", dbA)

	code, out = b.finish(t)
	require.Equal(t, 0, code, out)
	require.Zero(t, oid(t, conn, tpl), "template %s left behind by the last process", tpl)
	require.Zero(t, oid(t, conn, dbB), "test database %s left behind", dbB)

	// A process starting afterwards builds it again.
	c := startChild(t, "hold", tpl)
	dbC := c.ready(t)
	require.NotZero(t, oid(t, conn, dbC))
	code, out = c.finish(t)
	require.Equal(t, 0, code, out)
	require.Zero(t, oid(t, conn, tpl))
}

// A package whose TestMain does not run dbtest.Main gets a failure that
// says so, not a template that nothing drops.
func TestNewNeedsMain(t *testing.T) {
	t.Parallel()
	conn := adminConn(t)
	tpl := randomTemplate(t, conn)

	c := startChild(t, "nomain", tpl)
	code, out := c.finish(t)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "dbtest: this package's TestMain must run the tests through dbtest.Main(m), which releases the template database when they end")
	require.Zero(t, oid(t, conn, tpl), "no template built")
}
