// Package deploy holds what operators deploy next to rebound's worker pods
// and the tests that prove it against real programs:
//
//   - prometheus/rules/rebound.rules.yml: Prometheus recording and alerting
//     rules (rebound's own alert thresholds, for Alertmanager), with their
//     unit tests in rebound.rules.test.yml (promtool test rules);
//   - grafana/: a provisioned Prometheus data source and the rebound
//     dashboard (dashboards/rebound.json).
//
// The package has no code of its own: its tests run promtool on the rules,
// check the dashboard's JSON, and run two worker pods scraped by a real
// Prometheus server to evaluate every dashboard query and every rule.
package deploy
