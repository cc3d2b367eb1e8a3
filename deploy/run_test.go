package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// commandWords are the leading words of a command line before its first
// flag: the binary and its subcommands ("rebound migrate up").
func commandWords(cmd []string) []string {
	i := slices.IndexFunc(cmd, func(a string) bool { return strings.HasPrefix(a, "-") })
	if i < 0 {
		return cmd
	}
	return cmd[:i]
}

// Every command line of docker-compose.yml and the Dockerfile's CMD is
// parsed by the real binary: each flag exists and its value parses (cobra
// parses the whole line before it answers --help), and the subcommand is the
// one the help names. A line with an unknown flag fails the same check.
func TestComposeCommandsParse(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	type line struct {
		where string
		cmd   []string
	}
	var lines []line
	for name, s := range c.Services {
		if s.Image != reboundImage {
			continue
		}
		require.NotEmpty(t, s.Command, name)
		if s.Command[0] == "sh" {
			continue // the load generator's script: TestComposeServicesRun runs it
		}
		lines = append(lines, line{"service " + name, s.Command})
	}
	for _, in := range readDockerfile(t) {
		if in.keyword == "CMD" {
			lines = append(lines, line{"Dockerfile CMD", dockerfileCmd(t, in.rest)})
		}
	}
	slices.SortFunc(lines, func(a, b line) int { return strings.Compare(a.where, b.where) })
	var where []string
	for _, l := range lines {
		where = append(where, l.where)
	}
	require.Equal(t, []string{"Dockerfile CMD", "service migrate", "service worker"}, where)

	for _, l := range lines {
		t.Run(l.where, func(t *testing.T) {
			t.Parallel()
			words := commandWords(l.cmd)
			res := proctest.Run(t, nil, l.cmd[0], append(slices.Clone(l.cmd[1:]), "--help")...)
			require.Equal(t, 0, res.ExitCode, res.Stderr)
			require.Contains(t, res.Stdout, "Usage:\n  "+strings.Join(words, " ")+" [flags]")

			res = proctest.Run(t, nil, l.cmd[0], append(slices.Clone(l.cmd[1:]), "--no-such-flag", "--help")...)
			require.Equal(t, 1, res.ExitCode)
			require.Equal(t, words[0]+": unknown flag: --no-such-flag\n", res.Stderr)
		})
	}
}

func dockerfileCmd(t *testing.T, rest string) []string {
	t.Helper()
	var cmd []string
	require.NoError(t, json.Unmarshal([]byte(rest), &cmd))
	return cmd
}

// onTestDatabase is a URL of docker-compose.yml moved onto the test
// database: the test server's host, port, user, password and database, with
// the compose URL's parameters (sslmode, default_query_exec_mode...), so
// pgx parses exactly those.
func onTestDatabase(t *testing.T, composeURL, testURL string) string {
	t.Helper()
	cu, err := url.Parse(composeURL)
	require.NoError(t, err)
	u, err := url.Parse(testURL)
	require.NoError(t, err)
	q := u.Query()
	for k, v := range cu.Query() {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// serviceEnv is a service's environment as KEY=value, with its database URLs
// on the test database and the admin token set to token (left out when
// empty).
func serviceEnv(t *testing.T, s composeService, dbURL, token string) []string {
	t.Helper()
	var env []string
	for k, v := range s.Environment {
		switch k {
		case "DATABASE_URL", "DATABASE_DIRECT_URL":
			v = onTestDatabase(t, v, dbURL)
		case "REBOUND_ADMIN_TOKEN":
			if token == "" {
				continue
			}
			v = token
		}
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	return env
}

// What Compose would run, run here without Docker on this machine's
// PostgreSQL: the migration with its command and URL; two workers with their
// command line (only --http-addr's port changed, to a free one on 0.0.0.0),
// environment and admin token, serving /metrics without the token as
// Prometheus scrapes it and guarding the admin routes with it; a worker
// without the token refusing to start; the load generator's script with the
// real enqueue against go-httpbin, whose successes complete and whose 404s
// and bad requests land in the dead-letter queue.
func TestComposeServicesRun(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	db := dbtest.New(t)
	const token = "compose-test-token-0123456789abcdef"

	m := c.Services["migrate"]
	res := proctest.Run(t, serviceEnv(t, m, db.URL, token), m.Command[0], m.Command[1:]...)
	require.Equal(t, 0, res.ExitCode, res.Stderr)
	require.Equal(t, "database is up to date; nothing to apply\n", res.Stdout)

	w := c.Services["worker"]
	res = proctest.Run(t, serviceEnv(t, w, db.URL, ""), w.Command[0], w.Command[1:]...)
	require.Equal(t, 1, res.ExitCode)
	require.Contains(t, res.Stderr, "admin routes need REBOUND_ADMIN_TOKEN")

	var addrs []string
	for range w.Deploy.Replicas {
		args := slices.Clone(w.Command[1:])
		_, port, err := net.SplitHostPort(proctest.FreeAddr(t))
		require.NoError(t, err)
		args[slices.Index(args, "--http-addr")+1] = "0.0.0.0:" + port
		p := proctest.Start(t, serviceEnv(t, w, db.URL, token), w.Command[0], args...)
		addr := "127.0.0.1:" + port
		waitFor(t, 30*time.Second, "the worker to be ready", func() bool { code, _ := get(t, addr, "/readyz", ""); return code == http.StatusOK }, p.Logs)
		addrs = append(addrs, addr)
	}
	for _, addr := range addrs {
		code, body := get(t, addr, "/metrics", "")
		require.Equal(t, http.StatusOK, code)
		require.True(t, strings.Contains(body, "# TYPE rebound_queue_jobs gauge"), "no rebound_queue_jobs in /metrics")
		code, _ = get(t, addr, "/api/admin/dlq", "")
		require.Equal(t, http.StatusUnauthorized, code)
		code, _ = get(t, addr, "/api/admin/dlq", token)
		require.Equal(t, http.StatusOK, code)
	}

	upstream := httptest.NewServer(httpbin.New().Handler())
	defer upstream.Close()
	l := c.Services["loadgen"]
	require.Equal(t, "0", l.Environment["LOADGEN_ROUNDS"], "Compose's load generator runs until stopped")
	env := serviceEnv(t, l, db.URL, token)
	env = slices.DeleteFunc(env, func(kv string) bool {
		return strings.HasPrefix(kv, "LOADGEN_UPSTREAM=") || strings.HasPrefix(kv, "LOADGEN_ROUNDS=")
	})
	env = append(env, "LOADGEN_UPSTREAM="+upstream.URL, "LOADGEN_ROUNDS=1",
		"PATH="+filepath.Dir(proctest.Bin(t, "enqueue"))+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+os.Getenv("HOME"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The script at the path the compose file mounts it from.
	script := filepath.Join(root, strings.TrimPrefix(strings.Split(l.Volumes[0], ":")[0], "./"), filepath.Base(l.Command[1]))
	cmd := exec.CommandContext(ctx, l.Command[0], script)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Equal(t, fmt.Sprintf("loadgen: a round of 20 jobs every %ss against %s\nloadgen: done after 1 round(s)\n", l.Environment["LOADGEN_INTERVAL"], upstream.URL), stdout.String())
	require.Empty(t, stderr.String())

	count := func(query string) int {
		var n int
		require.NoError(t, db.Pool.QueryRow(context.Background(), query).Scan(&n))
		return n
	}
	require.Equal(t, 12, count("SELECT count(*) FROM river_job WHERE kind = 'http_request'"))
	require.Equal(t, 8, count("SELECT count(*) FROM river_job WHERE kind = 'synthetic'"))
	waitFor(t, 30*time.Second, "the load generator's jobs to complete or reach the DLQ", func() bool {
		return count(`SELECT count(*) FROM river_job WHERE state = 'completed' AND kind = 'http_request' AND args->>'operation_key' IN ('status-200', 'delay')`) == 7 &&
			count(`SELECT count(*) FROM river_job WHERE state = 'completed' AND kind = 'synthetic' AND args->>'sleep_ms' = '100'`) == 6 &&
			count(`SELECT count(*) FROM job_dead_letter_queue WHERE kind = 'http_request' AND failure_class = 'not_found' AND operation_key = 'status-404'`) == 1 &&
			count(`SELECT count(*) FROM job_dead_letter_queue WHERE kind = 'synthetic' AND failure_class = 'bad_request'`) == 1
	})
	// Scraping both replicas, as Prometheus does, accounts for every job
	// completed, whichever worker took it.
	waitFor(t, 30*time.Second, "both workers' /metrics to count every completed job", func() bool {
		var sum int
		for _, addr := range addrs {
			_, body := get(t, addr, "/metrics", "")
			for _, m := range completedAttempts.FindAllStringSubmatch(body, -1) {
				n, err := strconv.Atoi(m[1])
				require.NoError(t, err)
				sum += n
			}
		}
		return sum > 0 && sum == count(`SELECT count(*) FROM river_job WHERE state = 'completed' AND kind IN ('http_request', 'synthetic')`)
	})
}

// completedAttempts matches the completed attempts of the load generator's
// kinds in a /metrics answer.
var completedAttempts = regexp.MustCompile(`(?m)^rebound_job_attempts_total\{kind="(?:http_request|synthetic)",outcome="completed",queue="default"\} (\d+)$`)

// get GETs path on addr, with a bearer token unless it is empty.
func get(t *testing.T, addr, path, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
