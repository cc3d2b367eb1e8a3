// Package deploy holds no code: it is the home of rebound's deployment files
// (the Docker Compose stack's Prometheus configuration in prometheus/, its
// Grafana provisioning in grafana/, the demo load generator in loadgen/) and
// of the tests that check them, together with ../docker-compose.yml,
// ../Dockerfile and ../.dockerignore, against the real binaries: flags,
// ports, scrape targets, mounts and the build's package list. No Docker
// engine is needed to run them.
package deploy
