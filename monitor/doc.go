// Package monitor holds what tells operators how rebound is doing: the
// Prometheus metrics a worker pod exports and the collectors that read
// queue state from the database at scrape time.
//
// # Metrics
//
// In-process metrics live in [Metrics], built by [NewMetrics] on a
// non-global registry; [Metrics.JobMiddleware] feeds the per-attempt ones.
// Values read from the database ([QueueCollector]) go through [Snapshots]:
// one pod per period runs the query and stores the result in the
// rebound_metric_snapshot table, every other pod and scrape reads that row,
// so N pods scraped every 15 s do not scan river_job N times.
//
// No label ever holds a job ID, an error message or a URL.
package monitor
