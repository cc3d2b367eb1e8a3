// Package batch enqueues a list of jobs of one kind as a named batch, and
// reports on it: how many of its jobs succeeded, were dead-lettered, were
// cancelled or are still pending, and when the last one finished.
//
// # Enqueueing
//
// A [Processor] inserts a [Batch]'s items in sub-batches of
// Config.BatchSize jobs: sub-batch k (0-based) is scheduled at
// start + k x Config.DelayBetweenBatches, which spreads the load on a
// downstream service. Every job carries the batch's ID in its metadata
// ([MetadataKey], a JSON number), never in its args, which their kind
// decodes strictly. The job_batch row and every job are inserted in one
// transaction ([Processor.EnqueueTx] takes yours): all or nothing.
//
// A batch's name is unique among all batches that exist (job_batch.name):
// a second batch with the same name is refused with [ErrDuplicateName] and
// nothing is inserted. Name a recurring batch after its period
// ("weekly_intelligence 2026-W49") and a repeated run of the same period is
// refused instead of doing the work twice.
//
// # Counting
//
// Triggers on River's river_job table (migrations 013 and
// sql/river_triggers/rebound_batch_count*.sql) append a signed delta to
// job_batch_delta whenever a batch's job finishes, is retried by River, is
// deleted before finishing, or is replayed from the dead-letter queue; a
// pod's [Completer] folds the deltas into job_batch every second. So the
// counts survive River's cleaner, which deletes finished jobs (completed
// ones after 24 hours by default). The triggers never raise: a failure is a
// PostgreSQL WARNING and that job is missing from the counts.
//
// A job counts once, by its final outcome:
//
//   - succeeded: the job completed (after any number of failed attempts);
//   - failed: it was dead-lettered (discarded, or cancelled by a permanent
//     error), counted by the failure class of its final attempt;
//   - cancelled: an operator cancelled it, or deleted it before it
//     finished; neither a success nor a failure;
//   - retried, shown separately: succeeded or failed jobs that needed more
//     than one attempt (a completed job with any failed attempt, a
//     dead-lettered one with more than one, any replay from the DLQ).
//
// success_rate is succeeded / (succeeded + failed) x 100, the one
// definition rebound uses everywhere (health, alerts, batches); it is null
// ("n/a") while no job has succeeded or failed, never NaN.
//
// A dead letter replayed from the DLQ (rebound dlq retry) keeps the batch
// ID in its metadata: the dead letter stops counting as failed, the replay
// is pending until it finishes and then counts by its outcome. A replay
// does not reopen a completed batch: completed_at, the completion metric
// and the callback stay as they were; the counts move.
//
// # Completion
//
// When every job of a batch has finished (succeeded + failed + cancelled
// >= total), the [Completer] that folds the deltas sets completed_at, once
// even with many pods (one folds at a time under a PostgreSQL advisory
// lock, and the row is only updated while completed_at is NULL), calls its
// OnComplete hook (the pod counts rebound_batches_completed_total) and, if
// the batch names a callback kind, inserts one job of that kind in the
// same transaction with the batch's [Summary] as its args.
//
// # Callback kinds
//
// Any pod whose Completer folds the batch may insert its callback, through
// its own River client, which refuses a kind it has no worker for (the
// batch then records callback_error); so register the callback kind's
// worker on every pod that works the batch's queue, with args that decode
// a [Summary] (for example type ReportDoneArgs Summary, with its Kind
// method). [Processor.Enqueue] checks only the kind's form
// ([ValidateCallbackKind]); the enqueue CLI also refuses a kind the stock
// workers do not run or whose worker cannot run on a summary (of rebound's
// own kinds only synthetic can be a callback).
package batch
