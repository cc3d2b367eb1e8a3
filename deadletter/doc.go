// Package deadletter is rebound's dead-letter queue (DLQ): every River job
// that ends discarded or cancelled by anything but an operator, one row per
// (River job ID, attempt) in job_dead_letter_queue, with its whole history;
// and the operations on those rows (list, show, retry, resolve, purge,
// stats) shared by the Go API, `rebound dlq` and the admin HTTP API.
//
// # Capture
//
// Rows are written by PostgreSQL, not by Go: a trigger on river_job
// (migrations/sql/river_triggers/rebound_dead_letter_capture.sql) fires in
// the same transaction as River's own state change, so no crash, rescuer
// path or dropped event can lose or duplicate a row. It calls
// rebound_dead_letter_capture(to_jsonb(job)) (migrations/sql/002), the one
// definition of a row, also used by the [Reconciler]:
//
//   - Captured: state discarded (attempts used up, River's rescuer after a
//     crash) or cancelled by the job itself (a permanent
//     error, river.JobCancel). Not captured: a cancelled job whose metadata
//     has cancel_attempted_at (client.JobCancel, the River UI): an
//     operator's decision.
//   - failure_class: the class of the final attempt in the history (River's
//     errors merged by attempt number with rebound's metadata.output.attempts);
//     an attempt River has an error for and the history has not is "lost"
//     (the worker died or hung; retrypolicy.LostAttempts' rule). A job of a
//     kind no pod registers is "unknown_kind" (a rebound pod records it).
//   - failure_reason: River's last error without "JobCancelError: ".
//   - failure_fingerprint: the reason with numbers, IDs, quoted values,
//     timestamps, addresses and query strings replaced by placeholders
//     (rebound_failure_fingerprint, migrations/sql/012), filled by a BEFORE
//     trigger on job_dead_letter_queue for every row written, whoever
//     writes it; it never raises (on error: the reason's first line).
//     [Store.Stats] groups by it; Filter.Fingerprints selects by it.
//   - operation_key: metadata.operation_key, else args.operation_key, else
//     the kind, normalised as jobs.NormalizeOperationKey does (over 200
//     characters: the first 183, "…" and 16 hex digits of its SHA-256;
//     SQL function rebound_operation_key, migrations/sql/005), so a long key
//     never stops the capture.
//   - The River UI's Retry (client.JobRetry) re-runs the same job: leaving
//     discarded/cancelled marks that attempt's row retried (retried_job_id =
//     the same job); a new death is a new row for the new attempt.
//
// The trigger never raises (an error there would wedge River's completer
// and leave a batch of jobs running): it turns any error into a PostgreSQL
// WARNING, and the [Reconciler] adds the missing row on its next pass,
// counting it in rebound_dead_letter_reconciled_total (which should stay 0).
// A row the reconciliation cannot write either is skipped, logged with its
// River job ID and counted in rebound_dead_letter_reconcile_failures_total;
// it never stops the other rows.
// River's cleaner deleting old jobs never touches the DLQ; rows are only
// deleted by [Store.Purge], and never while unresolved.
//
// # Operations
//
// [Store] lists (filters, cursor pagination), shows, retries (a new job
// with the original args; each row once unless forced; concurrent callers
// replay each row once), resolves (with a note), purges (closed rows past
// an age) and counts ([Store.Stats]). Every operation that writes has a
// ...Tx twin taking the caller's pgx.Tx. Errors wrap the sentinels
// [ErrNotFound], [ErrAlreadyRetried], [ErrResolved], [ErrAlreadyResolved]
// and [ErrInvalid].
//
// # Displays and secrets
//
// Stored rows keep args, metadata and error text intact: for replay, and as
// evidence. Every display (`rebound dlq` tables and --json, the admin HTTP
// API) goes through [Redact] and [RedactStats], built on the leaf package
// internal/redact: in args and metadata, the values of keys named like
// secrets at any depth (Authorization, Cookie, X-Api-Key, X-Signature,
// session_id, access_key, password, token, secret, auth*, ...; not
// operation_key nor Idempotency-Key), URL passwords and secret query
// parameters; in the failure reason, every attempt's error and stats'
// reasons, JSON-style pairs and name=value pairs with secret names, header
// lines, and Bearer/Basic credentials (upstreams often echo the request in
// their error body). docs/redaction.md has the whole rule. The River UI is
// not rebound's display: it shows raw args.
//
// # HTTP and metrics
//
// [NewHandler] serves the admin API under [APIPath]; mount it behind the
// admin token (internal/adminauth). [SizeCollector] exports
// rebound_dead_letter_queue_size{kind,status} from a small counts table the
// triggers keep exact, so a scrape costs the same at any DLQ size, and
// rebound_dead_letter_queue_oldest_unresolved_seconds.
package deadletter
