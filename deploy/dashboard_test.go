package deploy_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// dashboardPath is the shipped Grafana dashboard.
var dashboardPath = filepath.Join("grafana", "dashboards", "rebound.json")

// dashboard is the part of Grafana's dashboard JSON the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Datasource dsRef  `json:"datasource"`
			Definition string `json:"definition"`
			Query      struct {
				Query string `json:"query"`
			} `json:"query"`
			Multi      bool   `json:"multi"`
			IncludeAll bool   `json:"includeAll"`
			AllValue   string `json:"allValue"`
		} `json:"list"`
	} `json:"templating"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource dsRef  `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource dsRef  `json:"datasource"`
	} `json:"targets"`
}

// loadDashboard reads and decodes the shipped dashboard.
func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	require.NoError(t, err)
	var d dashboard
	require.NoError(t, json.Unmarshal(b, &d), "dashboard JSON")
	return d
}

// builtinVariables are the Grafana variables the queries may use besides
// the dashboard's own.
var builtinVariables = []string{"__rate_interval", "__interval", "__range"}

var variableRE = regexp.MustCompile(`\$\{?(\w+)`)

// TestDashboardIsValid keeps the hand-kept dashboard reviewable and
// loadable: a uid, unique panel ids, every panel on the provisioned data
// source (uid prometheus) with at least one query, unique refIds, panels
// of known types inside the 24-column grid without overlapping, and
// queries using only the dashboard's variables (kind, queue: multi-value
// with All as .*) and Grafana's built-ins. Every query is run against real
// worker pods by TestDashboardAndRulesAgainstPrometheus.
func TestDashboardIsValid(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	require.Equal(t, "rebound", d.UID)
	require.NotEmpty(t, d.Title)

	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
		require.Equal(t, "query", v.Type, v.Name)
		require.Equal(t, dsRef{"prometheus", "prometheus"}, v.Datasource, v.Name)
		require.Equal(t, v.Definition, v.Query.Query, v.Name)
		require.Regexp(t, `^label_values\(rebound_\w+, \w+\)$`, v.Definition, v.Name)
		require.True(t, v.Multi && v.IncludeAll, v.Name)
		require.Equal(t, ".*", v.AllValue, v.Name)
	}
	require.Equal(t, []string{"kind", "queue"}, vars)

	ids := map[int]bool{}
	type cell struct{ x, y int }
	used := map[cell]string{}
	queries := 0
	for _, p := range d.Panels {
		require.False(t, ids[p.ID], "panel id %d twice", p.ID)
		ids[p.ID] = true
		g := p.GridPos
		require.True(t, g.W > 0 && g.H > 0 && g.X >= 0 && g.Y >= 0 && g.X+g.W <= 24, "panel %q: gridPos %+v", p.Title, g)
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				require.Empty(t, used[cell{x, y}], "panel %q overlaps %q", p.Title, used[cell{x, y}])
				used[cell{x, y}] = p.Title
			}
		}
		require.Contains(t, []string{"row", "timeseries", "stat", "heatmap", "state-timeline"}, p.Type, p.Title)
		if p.Type == "row" {
			require.Empty(t, p.Targets, p.Title)
			continue
		}
		require.Equal(t, dsRef{"prometheus", "prometheus"}, p.Datasource, p.Title)
		require.NotEmpty(t, p.Targets, p.Title)
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			require.NotEmpty(t, tg.Expr, p.Title)
			require.False(t, refs[tg.RefID], "panel %q: refId %s twice", p.Title, tg.RefID)
			refs[tg.RefID] = true
			require.Equal(t, dsRef{"prometheus", "prometheus"}, tg.Datasource, p.Title)
			for _, m := range variableRE.FindAllStringSubmatch(tg.Expr, -1) {
				require.True(t, slices.Contains(vars, m[1]) || slices.Contains(builtinVariables, m[1]),
					"panel %q uses unknown variable $%s", p.Title, m[1])
			}
		}
	}
	require.Equal(t, 30, len(d.Panels))
	require.Equal(t, 27, queries)
}

// TestGrafanaProvisioning checks the provisioning files point Grafana at
// the Prometheus of docker compose (uid prometheus, as the dashboard's
// panels name it) and at the dashboards folder.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, UID, Type, URL, Access string
		} `yaml:"datasources"`
	}
	b, err := os.ReadFile(filepath.Join("grafana", "provisioning", "datasources", "prometheus.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &ds))
	require.Equal(t, 1, ds.APIVersion)
	require.Len(t, ds.Datasources, 1)
	require.Equal(t, "prometheus", ds.Datasources[0].UID)
	require.Equal(t, "prometheus", ds.Datasources[0].Type)
	require.Equal(t, "http://prometheus:9090", ds.Datasources[0].URL)
	require.Equal(t, "proxy", ds.Datasources[0].Access)

	var prov struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name, Type string
			Options    struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	b, err = os.ReadFile(filepath.Join("grafana", "provisioning", "dashboards", "rebound.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &prov))
	require.Equal(t, 1, prov.APIVersion)
	require.Len(t, prov.Providers, 1)
	require.Equal(t, "file", prov.Providers[0].Type)
	require.Equal(t, "/var/lib/grafana/dashboards", prov.Providers[0].Options.Path)
}
