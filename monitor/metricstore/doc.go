// Package metricstore keeps the counts behind job health and alerts in the
// job_retry_metrics table, so success rates survive River's cleaner (which
// deletes finished jobs after a day by default).
//
// # What is counted
//
// Per job kind and minute: attempts worked, jobs finished completed, jobs
// finished dead-lettered (discarded or cancelled by rebound's rules: the
// dead-letter queue's rule, so an operator's cancel is neither), failed
// attempts by failure class, retries scheduled, jobs short-circuited by an
// open circuit breaker (snoozed or, past their maximum park, dead-lettered
// without an attempt), and the attempts' total run time in milliseconds.
// One definition holds everywhere: success rate = completed / (completed +
// dead-lettered) over a window, in percent; a job that failed and then
// succeeded is a success.
//
// A job River's rescuer discards (its worker died on the last attempt)
// never returns through a worker: it is in the dead-letter queue but not in
// these counts.
//
// # How it is written
//
// A [Recorder] counts each attempt in atomic counters in memory: no lock,
// and no allocation once a kind has been seen when the caller reports the
// attempt itself ([Recorder.ObserveAttempt], as rebound's pod does). As
// River worker middleware ([Recorder.Middleware] outside the breaker gate,
// [Recorder.GateMarker] inside it) the gate's mark costs one small
// allocation per attempt.
// Every flush interval ([DefaultFlushInterval], ticks aligned to the wall
// clock so a flush never spans a minute) and at Stop, the pod adds what it
// counted to job_retry_metrics in one INSERT ... ON CONFLICT DO UPDATE
// statement (one row per kind and minute touched): one write per flush per
// pod, never one per job. A flush that fails is kept in memory and added
// to the next one, so counts stay exact across pods, restarts and database
// outages; a SIGKILL loses at most one flush interval of one pod.
//
// # Rollup and retention
//
// [RollupWorker], a periodic job inserted hourly by River's leader, folds
// minute rows older than [DefaultRollupAfter] (a day) into hour rows and
// deletes rows older than the retention ([DefaultRetention], 30 days), in
// one transaction, so a 15-minute window is answerable for the last day
// and the table stays small.
package metricstore
