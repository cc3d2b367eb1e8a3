// Package proctest runs rebound's real binaries in tests: it builds worker,
// enqueue and rebound once per test process and starts them as OS
// processes against a test database, so end-to-end tests exercise exactly
// what operators run (flags, signals, exit codes, stdout and stderr).
package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Bin returns the path of a rebound binary ("worker", "enqueue",
// "rebound"), building all three on first use into a temporary folder
// (rebound-bin-*, about 70 MB) that [RemoveBinaries] removes: call it when
// the package's tests end, from TestMain.
func Bin(t testing.TB, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "rebound-bin-")
		if buildErr != nil {
			return
		}
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("go", "build", "-o", buildDir+string(os.PathSeparator), "./cmd/...")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/...: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("proctest: %v", buildErr)
	}
	return filepath.Join(buildDir, name)
}

// RemoveBinaries removes the folder Bin built the binaries into, if any.
// Call it once the package's tests have ended (after m.Run in TestMain, e.g.
// dbtest.Main(m, proctest.RemoveBinaries)); a later Bin fails.
func RemoveBinaries() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	buildOnce.Do(func() {}) // a Bin after this builds nothing
	buildErr = errors.New("the binaries were removed (RemoveBinaries): tests have ended")
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the module root")
	}
	return filepath.Join(filepath.Dir(file), "..", ".."), nil
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Run runs binary name with args and environment env (added to a minimal
// environment: PATH, HOME) and waits for it, at most 2 minutes.
func Run(t testing.TB, env []string, name string, args ...string) Result {
	t.Helper()
	return RunStdin(t, env, "", name, args...)
}

// RunStdin is Run with stdin as the command's standard input.
func RunStdin(t testing.TB, env []string, stdin, name string, args ...string) Result {
	t.Helper()
	bin := Bin(t, name) // the build (first use) does not count against the 2 minutes
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = baseEnv(env)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("proctest: run %s: %v", name, err)
	}
	return res
}

func baseEnv(env []string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	return append(out, env...)
}

// Process is a long-running binary (a worker pod).
type Process struct {
	t    testing.TB
	cmd  *exec.Cmd
	logs *SyncBuffer
	done chan struct{}
	err  error
	// HTTPAddr is the worker's --http-addr.
	HTTPAddr string
}

// WithDefaults returns args with each flag of defaults (pairs: "--flag",
// "value") put before them unless args give that flag themselves
// ("--flag" or "--flag=..."): the programs refuse a single-value flag
// given twice, so a test's own value must replace the default, not follow
// it.
func WithDefaults(args []string, defaults ...string) []string {
	var out []string
	for i := 0; i+1 < len(defaults); i += 2 {
		flag := defaults[i]
		given := slices.ContainsFunc(args, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") })
		if !given {
			out = append(out, flag, defaults[i+1])
		}
	}
	return append(out, args...)
}

// StartWorker starts a worker process against databaseURL with a free
// loopback --http-addr plus args, waits until /readyz answers 200 (at most
// 30 s), and kills it when the test ends if it is still running.
// Its --log-format json and --log-level debug are defaults args may
// replace.
func StartWorker(t testing.TB, databaseURL string, args ...string) *Process {
	t.Helper()
	addr := FreeAddr(t)
	all := WithDefaults(args, "--http-addr", addr, "--log-format", "json", "--log-level", "debug")
	p := Start(t, []string{"DATABASE_URL=" + databaseURL}, "worker", all...)
	p.HTTPAddr = addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("proctest: worker exited before it was ready (%v); its output:\n%s", p.err, p.Logs())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("proctest: worker not ready after 30s; its output:\n%s", p.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Start starts binary name with args in the background.
func Start(t testing.TB, env []string, name string, args ...string) *Process {
	t.Helper()
	cmd := exec.Command(Bin(t, name), args...)
	cmd.Env = baseEnv(env)
	logs := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("proctest: start %s: %v", name, err)
	}
	p := &Process{t: t, cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("proctest: signal %v: %v", sig, err)
	}
}

// Kill sends SIGKILL and waits for the process to die.
func (p *Process) Kill() {
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Wait waits at most timeout for the process to exit and returns its exit
// code; it fails the test on timeout.
func (p *Process) Wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.t.Fatalf("proctest: process still running after %s; its output:\n%s", timeout, p.Logs())
	}
	var exitErr *exec.ExitError
	if errors.As(p.err, &exitErr) {
		return exitErr.ExitCode()
	}
	return 0
}

// Logs is everything the process wrote to stdout and stderr so far.
func (p *Process) Logs() string { return p.logs.String() }

// FreeAddr returns a loopback address with a port free at the moment.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers (a process's
// output, a logger on several goroutines) and a reader: tests capture logs
// into it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tool returns the path of an installed program a test drives for real
// (promtool, prometheus, pgbouncer, chromium), looking in PATH and then in
// the directories Debian installs daemons into (/usr/sbin, /usr/lib/...).
// When it is missing the test is skipped with a message naming the Debian
// package, except under CI=true, where scripts/ensure-tools.sh must have
// installed it and the test fails instead.
func Tool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	msg := fmt.Sprintf("%s not found: install Debian's %s package (scripts/ensure-tools.sh does)", name, debianPackage)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
