package deploy_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// rulesDir is the folder of the shipped Prometheus rules, mounted at
// /etc/prometheus/rules by docker compose.
var rulesDir = filepath.Join("prometheus", "rules")

// TestPrometheusRules runs promtool on the shipped rules: check rules
// (syntax, PromQL, templates) on every file Prometheus's rule_files glob
// /etc/prometheus/rules/*.yml loads (a test file there would stop
// Prometheus), and test rules (tests/rebound.rules.test.yml: each alert
// fires on the series that should fire it, stays quiet on the others, and
// two pods reporting the same database-derived gauge count once).
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	promtool := proctest.Tool(t, "promtool", "prometheus")
	loaded, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	require.NoError(t, err)
	require.Equal(t, []string{filepath.Join(rulesDir, "rebound.rules.yml")}, loaded)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"check rules", []string{"check", "rules", "rebound.rules.yml"}, "SUCCESS: 20 rules found"},
		{"test rules", []string{"test", "rules", filepath.Join("tests", "rebound.rules.test.yml")}, "SUCCESS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(promtool, tc.args...)
			cmd.Dir = rulesDir
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "promtool %s:\n%s", strings.Join(tc.args, " "), out)
			require.Contains(t, string(out), tc.want)
		})
	}
}
