package deploy_test

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// root is the repository's top level, relative to this package.
const root = ".."

// composeFile is the part of docker-compose.yml the tests read. Decoding is
// strict: a key no field names (a typo such as "depend_on") fails.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extensions are the top-level x-* fields (anchors).
	Extensions map[string]any `yaml:",inline"`
}

type composeService struct {
	Image       string            `yaml:"image"`
	Build       map[string]string `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Deploy      struct {
		Replicas int `yaml:"replicas"`
	} `yaml:"deploy"`
	Expose      []string                     `yaml:"expose"`
	Ports       []string                     `yaml:"ports"`
	Volumes     []string                     `yaml:"volumes"`
	DependsOn   map[string]composeDependency `yaml:"depends_on"`
	Healthcheck struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	Restart         string `yaml:"restart"`
	StopGracePeriod string `yaml:"stop_grace_period"`
}

type composeDependency struct {
	Condition string `yaml:"condition"`
}

// reboundImage is the image docker-compose.yml builds from ./Dockerfile.
const reboundImage = "rebound:local"

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var c composeFile
	require.NoError(t, dec.Decode(&c), "docker-compose.yml")
	return c
}

// httpAddrPort is the port of a command line's --http-addr (the worker's
// default when absent).
func httpAddrPort(t *testing.T, args []string) string {
	t.Helper()
	i := slices.Index(args, "--http-addr")
	require.GreaterOrEqual(t, i, 0, "no --http-addr in %q", args)
	require.Less(t, i+1, len(args))
	_, port, err := net.SplitHostPort(args[i+1])
	require.NoError(t, err)
	return port
}

// containerPort is the container side of a "ports" entry
// ([host_ip:][host_port[-range]:]container_port).
func containerPort(entry string) string {
	return entry[strings.LastIndex(entry, ":")+1:]
}

// healthcheckURLPort is the port of the http:// URL in a healthcheck test.
func healthcheckURLPort(t *testing.T, test []string) string {
	t.Helper()
	for _, a := range test {
		if strings.HasPrefix(a, "http://") {
			u, err := url.Parse(a)
			require.NoError(t, err)
			return u.Port()
		}
	}
	t.Fatalf("no http:// URL in healthcheck %q", test)
	return ""
}

// flagValue is the value after flag in args ("" when absent).
func flagValue(args []string, flag string) string {
	if i := slices.Index(args, flag); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	names := make([]string, 0, len(c.Services))
	for name := range c.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	require.Equal(t, []string{"grafana", "httpbin", "loadgen", "migrate", "pgbouncer", "postgres", "prometheus", "worker"}, names)
	for key := range c.Extensions {
		require.True(t, strings.HasPrefix(key, "x-"), "unknown top-level key %q in docker-compose.yml", key)
	}

	tests := []struct {
		service string
		image   string
	}{
		{"postgres", "postgres:16-alpine"},
		{"pgbouncer", "edoburu/pgbouncer:v1.25.1-p0"},
		{"migrate", reboundImage},
		{"worker", reboundImage},
		{"loadgen", reboundImage},
		{"httpbin", "mccutchen/go-httpbin:" + moduleVersion(t, "github.com/mccutchen/go-httpbin/v2")},
		{"prometheus", "prom/prometheus:v2.55.1"},
		{"grafana", "grafana/grafana:11.6.0"},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			s := c.Services[tt.service]
			require.Equal(t, tt.image, s.Image)
			if tt.image == reboundImage {
				require.Equal(t, map[string]string{"context": ".", "dockerfile": "Dockerfile"}, s.Build)
			}
			// Every dependency is a service of the file, with a condition
			// Compose knows.
			for dep, d := range s.DependsOn {
				require.Contains(t, c.Services, dep)
				require.Contains(t, []string{"service_started", "service_healthy", "service_completed_successfully"}, d.Condition)
				if d.Condition == "service_healthy" {
					require.NotEmpty(t, c.Services[dep].Healthcheck.Test, "%s waits for %s to be healthy, which has no healthcheck", tt.service, dep)
				}
			}
		})
	}
}

// The start order: PostgreSQL healthy, then the migration (direct) and
// PgBouncer; the workers and the load generator only once the migration has
// succeeded and PgBouncer answers.
func TestComposeStartOrder(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	want := map[string]map[string]string{
		"postgres":   nil,
		"pgbouncer":  {"postgres": "service_healthy"},
		"migrate":    {"postgres": "service_healthy"},
		"worker":     {"migrate": "service_completed_successfully", "pgbouncer": "service_healthy"},
		"loadgen":    {"migrate": "service_completed_successfully", "pgbouncer": "service_healthy", "httpbin": "service_started"},
		"httpbin":    nil,
		"prometheus": {"worker": "service_started"},
		"grafana":    {"prometheus": "service_healthy"},
	}
	for name, s := range c.Services {
		var got map[string]string
		for dep, d := range s.DependsOn {
			if got == nil {
				got = map[string]string{}
			}
			got[dep] = d.Condition
		}
		require.Equal(t, want[name], got, name)
	}
	require.Equal(t, "no", c.Services["migrate"].Restart, "the migration is a one-shot job")
}

// The database URLs: workers and the load generator through PgBouncer (with
// an exec mode that needs no named prepared statements), the migration and
// the breakers' LISTEN on PostgreSQL directly; both point at the services and
// ports of the file.
func TestComposeDatabaseURLs(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	pooled := "postgres://rebound:rebound@pgbouncer:6432/rebound?sslmode=disable&default_query_exec_mode=cache_describe"
	direct := "postgres://rebound:rebound@postgres:5432/rebound?sslmode=disable"
	require.Equal(t, pooled, c.Services["worker"].Environment["DATABASE_URL"])
	require.Equal(t, direct, c.Services["worker"].Environment["DATABASE_DIRECT_URL"])
	require.Equal(t, pooled, c.Services["loadgen"].Environment["DATABASE_URL"])
	require.Equal(t, direct, c.Services["migrate"].Environment["DATABASE_URL"])
	require.True(t, slices.Contains(c.Services["worker"].Command, "--poll-only"), "workers behind PgBouncer in transaction mode must poll")

	pg := c.Services["postgres"]
	pgb := c.Services["pgbouncer"]
	require.Equal(t, "transaction", pgb.Environment["POOL_MODE"])
	for _, tt := range []struct {
		raw, host, port string
	}{{pooled, "pgbouncer", pgb.Environment["LISTEN_PORT"]}, {direct, "postgres", "5432"}} {
		u, err := url.Parse(tt.raw)
		require.NoError(t, err)
		require.Equal(t, tt.host, u.Hostname())
		require.Equal(t, tt.port, u.Port())
		pass, _ := u.User.Password()
		require.Equal(t, []string{pg.Environment["POSTGRES_USER"], pg.Environment["POSTGRES_PASSWORD"], pg.Environment["POSTGRES_DB"]},
			[]string{u.User.Username(), pass, strings.TrimPrefix(u.Path, "/")})
	}
	// PgBouncer forwards to the postgres service, with its credentials, and
	// its healthcheck asks its own port.
	require.Equal(t, []string{"postgres", "5432", "rebound", "rebound", "rebound"},
		[]string{pgb.Environment["DB_HOST"], pgb.Environment["DB_PORT"], pgb.Environment["DB_USER"], pgb.Environment["DB_PASSWORD"], pgb.Environment["DB_NAME"]})
	require.Equal(t, pgb.Environment["LISTEN_PORT"], flagValue(pgb.Healthcheck.Test, "-p"))
	require.Equal(t, "5432", flagValue(pg.Healthcheck.Test, "-p"))
}

// The workers listen beyond loopback, so they need the admin token, which
// Compose demands (${VAR:?message}) rather than starting workers that would
// refuse to run; .env.example documents every variable the file reads.
func TestComposeAdminToken(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	w := c.Services["worker"]
	host, _, err := net.SplitHostPort(flagValue(w.Command, "--http-addr"))
	require.NoError(t, err)
	require.Equal(t, "0.0.0.0", host)
	require.Regexp(t, `^\$\{REBOUND_ADMIN_TOKEN:\?[^}]*REBOUND_ADMIN_TOKEN[^}]*\.env[^}]*\}$`, w.Environment["REBOUND_ADMIN_TOKEN"])

	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	require.NoError(t, err)
	vars := regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(string(raw), -1)
	require.NotEmpty(t, vars)
	for _, v := range vars {
		require.Regexp(t, `(?m)^`+v[1]+`=`, string(example), ".env.example does not document %s", v[1])
	}
	// The example's token is empty: Compose refuses it until one is set.
	require.Regexp(t, `(?m)^REBOUND_ADMIN_TOKEN=$`, string(example))
}

// Every port a service exposes or publishes is the one it listens on: the
// worker's --http-addr port, which its healthcheck asks and Prometheus
// scrapes; httpbin's, which the load generator calls; Prometheus's, which
// Grafana's datasource names.
func TestComposePorts(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	w := c.Services["worker"]
	port := httpAddrPort(t, w.Command)
	require.Equal(t, "8080", port)
	require.Equal(t, []string{port}, w.Expose)
	require.Len(t, w.Ports, 1)
	require.Equal(t, port, containerPort(w.Ports[0]))
	// One host port per replica.
	hostRange := strings.Split(strings.TrimPrefix(strings.TrimSuffix(w.Ports[0], ":"+port), "127.0.0.1:"), "-")
	require.Len(t, hostRange, 2, w.Ports[0])
	lo, err := strconv.Atoi(hostRange[0])
	require.NoError(t, err)
	hi, err := strconv.Atoi(hostRange[1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, hi-lo+1, w.Deploy.Replicas)
	require.Equal(t, port, healthcheckURLPort(t, w.Healthcheck.Test))
	require.Equal(t, "/readyz", mustURL(t, w.Healthcheck.Test[len(w.Healthcheck.Test)-1]).Path)

	h := c.Services["httpbin"]
	upstream := mustURL(t, c.Services["loadgen"].Environment["LOADGEN_UPSTREAM"])
	require.Equal(t, "httpbin", upstream.Hostname())
	require.Equal(t, h.Expose, []string{upstream.Port()})

	for _, tt := range []struct{ service, port string }{{"prometheus", "9090"}, {"grafana", "3000"}} {
		s := c.Services[tt.service]
		require.Equal(t, []string{"127.0.0.1:" + tt.port + ":" + tt.port}, s.Ports, tt.service)
		require.Equal(t, tt.port, healthcheckURLPort(t, s.Healthcheck.Test), tt.service)
	}
	ds := grafanaDatasource(t)
	require.Equal(t, "http://prometheus:9090", ds.URL)
	require.Contains(t, c.Services, mustURL(t, ds.URL).Hostname())
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u
}

// prometheusConfig is the part of deploy/prometheus/prometheus.yml the
// tests read.
type prometheusConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `yaml:"job_name"`
		MetricsPath  string `yaml:"metrics_path"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
		Authorization any `yaml:"authorization"`
		BasicAuth     any `yaml:"basic_auth"`
	} `yaml:"scrape_configs"`
}

// Prometheus finds every worker replica through Docker's DNS (one A record
// per replica of the service), on the worker's port, without credentials:
// /metrics is not an admin route (TestComposeServicesRun shows a worker
// with a token serving it to a request without one).
func TestPrometheusScrapesEveryWorker(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	raw, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	require.NoError(t, err)
	var p prometheusConfig
	require.NoError(t, yaml.Unmarshal(raw, &p))

	var found int
	for _, sc := range p.ScrapeConfigs {
		for _, sd := range sc.DNSSDConfigs {
			found++
			require.Equal(t, []string{"worker"}, sd.Names)
			require.Contains(t, c.Services, sd.Names[0])
			require.Equal(t, "A", sd.Type)
			require.Equal(t, httpAddrPort(t, c.Services["worker"].Command), strconv.Itoa(sd.Port))
			require.Equal(t, "/metrics", sc.MetricsPath)
			require.Nil(t, sc.Authorization)
			require.Nil(t, sc.BasicAuth)
		}
	}
	require.Equal(t, 1, found, "one dns_sd_config for the workers")
	require.Equal(t, 2, c.Services["worker"].Deploy.Replicas)

	// The rules are read from where Compose mounts ./deploy/prometheus/rules.
	require.Equal(t, []string{"/etc/prometheus/rules/*.yml"}, p.RuleFiles)
	require.Contains(t, c.Services["prometheus"].Volumes, "./deploy/prometheus/rules:/etc/prometheus/rules:ro")
	require.Contains(t, c.Services["prometheus"].Volumes, "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro")
}

// promtool accepts the configuration, with the rule files it would find in
// the container (the repository's deploy/prometheus/rules/*.yml), which it
// checks too.
func TestPromtoolChecksConfig(t *testing.T) {
	t.Parallel()
	promtool := proctest.Tool(t, "promtool", "prometheus")
	raw, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	require.NoError(t, err)
	rulesDir, err := filepath.Abs(filepath.Join(root, "deploy/prometheus/rules"))
	require.NoError(t, err)
	rules, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	require.NoError(t, err)
	require.NotEmpty(t, rules, "no rule files in deploy/prometheus/rules")

	tests := []struct {
		name     string
		edit     func(string) string
		wantCode int
		wantOut  string
	}{
		{
			name:     "as shipped",
			edit:     func(s string) string { return strings.ReplaceAll(s, "/etc/prometheus/rules/", rulesDir+"/") },
			wantCode: 0,
			wantOut:  fmt.Sprintf("SUCCESS: %d rule files found", len(rules)),
		},
		{
			// The check can fail: a port that is not one.
			name:     "broken",
			edit:     func(s string) string { return strings.Replace(s, "port: 8080", "port: eighty", 1) },
			wantCode: 1,
			wantOut:  "FAILED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "prometheus.yml")
			require.NoError(t, os.WriteFile(path, []byte(tt.edit(string(raw))), 0o644))
			out, err := exec.Command(promtool, "check", "config", path).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.wantCode, code, string(out))
			require.Contains(t, string(out), tt.wantOut)
		})
	}
}

// Every bind mount's source exists in the repository, and Grafana's
// provisioning points at what Compose mounts: a Prometheus datasource with
// uid "prometheus" and a file dashboard provider reading the dashboards'
// mount target, which holds dashboards.
func TestComposeMounts(t *testing.T) {
	t.Parallel()
	c := loadCompose(t)
	var binds int
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, _, ok := strings.Cut(v, ":")
			require.True(t, ok, "%s: volume %q", name, v)
			if !strings.HasPrefix(src, "./") {
				require.Contains(t, c.Volumes, src, "%s: named volume %q is not declared", name, src)
				continue
			}
			binds++
			_, err := os.Stat(filepath.Join(root, src))
			require.NoError(t, err, "%s mounts %s", name, src)
		}
	}
	require.Equal(t, 5, binds)

	g := c.Services["grafana"]
	require.Contains(t, g.Volumes, "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro")
	require.Contains(t, g.Volumes, "./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro")
	ds := grafanaDatasource(t)
	require.Equal(t, "prometheus", ds.Type)

	var paths []string
	for _, f := range yamlFiles(t, "deploy/grafana/provisioning/dashboards") {
		var p struct {
			Providers []struct {
				Type    string `yaml:"type"`
				Options struct {
					Path string `yaml:"path"`
				} `yaml:"options"`
			} `yaml:"providers"`
		}
		readYAML(t, f, &p)
		for _, pr := range p.Providers {
			require.Equal(t, "file", pr.Type, f)
			paths = append(paths, pr.Options.Path)
		}
	}
	require.Equal(t, []string{"/var/lib/grafana/dashboards"}, paths)
	dashboards, err := filepath.Glob(filepath.Join(root, "deploy/grafana/dashboards/*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, dashboards)

	// The load generator's script is where its command runs it.
	l := c.Services["loadgen"]
	require.Equal(t, []string{"./deploy/loadgen:/loadgen:ro"}, l.Volumes)
	require.Equal(t, []string{"sh", "/loadgen/loadgen.sh"}, l.Command)
}

type datasource struct {
	UID  string `yaml:"uid"`
	Type string `yaml:"type"`
	URL  string `yaml:"url"`
}

// grafanaDatasource is the provisioned datasource with uid "prometheus".
func grafanaDatasource(t *testing.T) datasource {
	t.Helper()
	var found []datasource
	for _, f := range yamlFiles(t, "deploy/grafana/provisioning/datasources") {
		var d struct {
			Datasources []datasource `yaml:"datasources"`
		}
		readYAML(t, f, &d)
		for _, ds := range d.Datasources {
			if ds.UID == "prometheus" {
				found = append(found, ds)
			}
		}
	}
	require.Len(t, found, 1, "one datasource with uid prometheus in deploy/grafana/provisioning/datasources")
	return found[0]
}

func yamlFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	for _, pattern := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(root, dir, pattern))
		require.NoError(t, err)
		files = append(files, m...)
	}
	require.NotEmpty(t, files, "no YAML file in %s", dir)
	return files
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(raw, v), path)
}

// moduleVersion is the version of module in go.mod.
func moduleVersion(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", module).Output()
	require.NoError(t, err)
	return strings.TrimSpace(string(out))
}
