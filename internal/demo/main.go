// Command demo shows rebound working end to end on a real upstream, in
// about 30 seconds (`make demo`):
//
//  1. starts go-httpbin (github.com/mccutchen/go-httpbin/v2, an independently
//     written HTTP test server) on a loopback port;
//  2. creates a database of its own on DATABASE_URL's server (or, when
//     DATABASE_URL is empty and a Docker engine answers, in a PostgreSQL
//     container) and runs `rebound migrate up` on it. The name is --database,
//     else $REBOUND_DEMO_DATABASE, else rebound_demo_<date>_<time>; the
//     database is marked as the demo's (COMMENT ON DATABASE), and the demo
//     never drops a database it did not create;
//  3. starts `worker` with a short backoff and quick circuit breakers (a
//     demo must not wait minutes); each endpoint is its own operation key;
//  4. enqueues a mix of http_request jobs with `enqueue --file` against
//     /status/200, /status/503, /status/429, /status/404, /delay/1 and
//     /unstable;
//  5. waits for every job to finish and tells, per endpoint, what happened:
//     each attempt's outcome, failure class and the backoff chosen (from the
//     jobs' histories), the calls the circuit breaker held back, and what
//     went to the dead-letter queue and why; then shows `rebound breaker
//     list`, `rebound dlq stats` and `rebound dlq list`, and stops everything
//     it started. The database is kept for a look.
//
// It runs the real binaries from --bin (default ./bin, built by `make
// build`).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mccutchen/go-httpbin/v2/httpbin"

	"github.com/rebound-queue/rebound/internal/cli"
)

// demoConfig gives the demo's jobs a short backoff so it ends in a minute.
// Each upstream endpoint is its own operation key, so the breaker of a
// failing endpoint opens without holding back the healthy ones, and the
// breaker's timings are short enough to watch it open and probe.
const demoConfig = `retry:
  default:
    max_attempts: 4
    initial_delay: 250ms
    max_delay: 2s
    min_delay: 100ms
breaker:
  defaults:
    failure_threshold: 3
    open_timeout: 1s
    half_open_max_probes: 2
    park_spread: 500ms
`

func main() {
	bin := flag.String("bin", "bin", "folder holding the worker, enqueue and rebound binaries")
	timeout := flag.Duration("timeout", 90*time.Second, "give up waiting for the jobs after this long")
	database := flag.String("database", "", "the database to create for the demo (default $"+databaseEnv+", else rebound_demo_<date>_<time>); one the demo did not create is never dropped")
	flag.Parse()
	name := *database
	if name == "" {
		name = os.Getenv(databaseEnv)
	}
	if name == "" {
		name = defaultDatabase(time.Now())
	}
	if err := validateDatabase(name); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	if err := run(*bin, *timeout, name); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("==> "+format+"\n", args...)
}

func run(bin string, timeout time.Duration, database string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, name := range []string{"worker", "enqueue", "rebound"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return fmt.Errorf("%s/%s not found: run `make build` first", bin, name)
		}
	}

	// 1. The upstream.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	upstream := &http.Server{Handler: httpbin.New(httpbin.WithMaxDuration(5 * time.Second)).Handler(), ReadHeaderTimeout: 5 * time.Second}
	go upstream.Serve(l) //nolint:errcheck
	defer upstream.Close()
	base := "http://" + l.Addr().String()
	step("go-httpbin listening on %s", base)

	// 2. A database of its own.
	srv, err := findServer(ctx)
	if err != nil {
		return err
	}
	defer srv.stop()
	dbURL, replaced, err := createDatabase(ctx, srv.url, database)
	if err != nil {
		return err
	}
	if replaced {
		step("database %s: the one an earlier demo created was dropped and created afresh", database)
	} else {
		step("database %s: created, marked as the demo's (COMMENT ON DATABASE)", database)
	}
	env := append(os.Environ(), "DATABASE_URL="+dbURL)
	if err := runCmd(ctx, env, filepath.Join(bin, "rebound"), "migrate", "up"); err != nil {
		return err
	}

	// 3. A worker.
	dir, err := os.MkdirTemp("", "rebound-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	hook, err := startReceiver()
	if err != nil {
		return err
	}
	defer hook.close()
	step("webhook receiver listening on %s (alerts of rule breaker-open arrive there, signed)", hook.url)
	cfgPath := filepath.Join(dir, "worker.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoConfig+alertsConfig(hook.url)), 0o600); err != nil {
		return err
	}
	step("rebound alerts set breaker-open --channels local --config worker.yaml   (checked against the file's channels; the rule is live for every pod at its next evaluation)")
	if err := runCmd(ctx, env, filepath.Join(bin, "rebound"), "alerts", "set", "breaker-open", "--channels", "local", "--config", cfgPath); err != nil {
		return err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	workerLog, err := os.Create(filepath.Join(dir, "worker.log"))
	if err != nil {
		return err
	}
	worker := exec.Command(filepath.Join(bin, "worker"), "--config", cfgPath, "--http-addr", httpAddr,
		"--queues", "default=20", "--log-format", "text", "--log-level", "warn")
	worker.Env = env
	worker.Stdout, worker.Stderr = workerLog, workerLog
	if err := worker.Start(); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Wait() }()
	defer func() {
		if worker.ProcessState == nil {
			_ = worker.Process.Kill()
		}
	}()
	if err := waitReady(ctx, "http://"+httpAddr+"/readyz", workerDone); err != nil {
		return fmt.Errorf("worker did not become ready (%w); its log:\n%s", err, readFile(workerLog.Name()))
	}
	step("worker ready; /readyz, /healthz and /metrics on http://%s (demo config: 4 attempts, 250ms initial delay, 2s cap; breakers trip after 3 failures, probe after 1s)", httpAddr)

	// 4. The jobs.
	var ndjson bytes.Buffer
	total := 0
	for _, m := range mix {
		for i := range m.count {
			line, _ := json.Marshal(map[string]any{"url": base + m.path, "operation_key": m.key(), "body": map[string]any{"demo": m.path, "n": i}})
			ndjson.Write(line)
			ndjson.WriteByte('\n')
			total++
		}
	}
	jobsFile := filepath.Join(dir, "jobs.ndjson")
	if err := os.WriteFile(jobsFile, ndjson.Bytes(), 0o600); err != nil {
		return err
	}
	step("enqueue http_request --file jobs.ndjson --max-attempts 4  (%d jobs: 20x /status/200, 5x /status/503, 5x /status/429, 5x /status/404, 5x /delay/1, 10x /unstable)", total)
	if err := runCmd(ctx, env, filepath.Join(bin, "enqueue"), "http_request", "--file", jobsFile, "--max-attempts", "4"); err != nil {
		return err
	}

	// 5. Wait and summarise.
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	start, lastReport := time.Now(), time.Time{}
	tty := cli.IsTerminal(os.Stdout)
	deadline := time.After(timeout)
	for {
		var open int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state NOT IN ('completed', 'cancelled', 'discarded')").Scan(&open); err != nil {
			return err
		}
		if tty || open == 0 || time.Since(lastReport) >= 5*time.Second {
			fmt.Printf("%s    %2d of %d jobs still open (%s)   %s", map[bool]string{true: "\r"}[tty], open, total,
				time.Since(start).Round(time.Second), map[bool]string{false: "\n"}[tty])
			lastReport = time.Now()
		}
		if open == 0 {
			if tty {
				fmt.Println()
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-workerDone:
			return fmt.Errorf("worker exited early (%v); its log:\n%s", err, readFile(workerLog.Name()))
		case <-deadline:
			fmt.Println()
			return fmt.Errorf("jobs still open after %s", timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
	step("what happened, per endpoint: each attempt (failure class, backoff chosen), the outcome, the circuit breaker")
	if err := summarise(ctx, pool, os.Stdout); err != nil {
		return err
	}
	step("rebound breaker list   (a key has a row once a failure the breaker counts happened: server_error, timeout, network)")
	if err := runCmd(ctx, env, filepath.Join(bin, "rebound"), "breaker", "list"); err != nil {
		return err
	}
	step("the dead-letter queue: rebound dlq stats")
	if err := runCmd(ctx, env, filepath.Join(bin, "rebound"), "dlq", "stats"); err != nil {
		return err
	}
	step("rebound dlq list --limit 6   (then: rebound dlq show ID, rebound dlq retry ID, rebound dlq resolve ID --note ...)")
	if err := runCmd(ctx, env, filepath.Join(bin, "rebound"), "dlq", "list", "--limit", "6"); err != nil {
		return err
	}
	if err := alertsDemo(ctx, env, bin, pool, hook); err != nil {
		return err
	}

	step("stopping the worker (SIGTERM) and go-httpbin")
	_ = worker.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-workerDone:
		if err != nil {
			return fmt.Errorf("worker exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		return errors.New("worker did not stop within 30s of SIGTERM")
	}
	if srv.container != nil {
		step("done. The database lived in the PostgreSQL container, which is removed now.")
		return nil
	}
	step("done. The database %s is kept for a look:\n    DATABASE_URL='%s' %s dlq list", database, dbURL, filepath.Join(bin, "rebound"))
	if names, err := demoDatabases(ctx, srv.url); err == nil && len(names) > 0 {
		fmt.Printf("    databases the demo created on this server: %s\n    drop one with: psql '%s' -c 'DROP DATABASE %s'\n", strings.Join(names, ", "), srv.url, database)
	}
	return nil
}

func runCmd(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			fmt.Println("    " + l)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", filepath.Base(name), strings.Join(args, " "), err)
	}
	return nil
}

func waitReady(ctx context.Context, url string, done <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			return fmt.Errorf("worker exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return errors.New("timed out after 20s")
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
