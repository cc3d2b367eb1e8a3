// Package deploy holds no code: it is the home of what operators deploy next
// to rebound's worker pods, and of the tests that prove it against real
// programs (no Docker engine needed):
//
//   - ../docker-compose.yml, ../Dockerfile, ../.dockerignore and
//     loadgen/: the Compose stack, checked against the real binaries (flags,
//     ports, scrape targets, mounts, the build's package list);
//   - prometheus/prometheus.yml: the stack's scrape configuration (every
//     worker replica found by DNS), checked with promtool check config;
//   - prometheus/rules/rebound.rules.yml: recording and alerting rules
//     (rebound's own alert thresholds, for Alertmanager), with their unit
//     tests in prometheus/rules/tests/ (promtool test rules);
//   - grafana/: a provisioned Prometheus data source and the rebound
//     dashboard (dashboards/rebound.json), every query of which is evaluated
//     by a real Prometheus scraping two worker pods.
package deploy
