package rebound

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/monitor"
	"github.com/rebound-queue/rebound/monitor/metricstore"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// unknownKindHandler is the pod's river.ErrorHandler. River runs it after an
// attempt fails and before it stores the failure; the pod uses it for one
// case only: a job of a kind this pod has no worker for
// (retrypolicy.IsUnknownKind), which River fails before any middleware runs,
// so the attempt recorder never sees it. Without this the attempt would be
// back-filled as class lost and retried on the kind's short schedule, so a
// kind registered only by another service, or only by the new build during
// a rolling deploy, would be dead-lettered within seconds.
//
// It records the attempt with class unknown_kind (retrypolicy.AttemptRecorder
// .UnknownKind: history entry, failures by class, the "job dead-lettered"
// line when final), counts it as an attempt in job_retry_metrics and
// rebound_job_attempts_total (errored, or cancelled when final), and stores
// the history itself. When the job is retried it also
// gives the attempt back (river_job.attempt - 1, while the job is still
// running this attempt), so fetches by pods without the kind never use up
// the attempts the job's own worker gets; when final it cancels the job
// into the dead-letter queue. Every other error and every panic is left to
// River and the recorder (nil result).
type unknownKindHandler struct {
	pool     *pgxpool.Pool
	recorder *retrypolicy.AttemptRecorder
	counts   *metricstore.Recorder
	metrics  *monitor.JobMiddleware
	logger   *slog.Logger
}

var _ river.ErrorHandler = unknownKindHandler{}

// unknownKindWriteTimeout bounds unknownKindHandler's write of the history
// and the attempt given back; past it the attempt is left as River stores
// it (it then counts as used) and the failure is logged.
const unknownKindWriteTimeout = 5 * time.Second

// HandleError implements river.ErrorHandler.
func (h unknownKindHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	if !retrypolicy.IsUnknownKind(job, err) {
		return nil
	}
	start := time.Now()
	res := h.recorder.UnknownKind(job, err)
	// Counted as an attempt that failed (errored), or that ended the job
	// (cancelled, dead-lettered), as the attempt middleware counts others.
	counted := err
	if res.Final {
		counted = river.JobCancel(err)
	}
	h.counts.ObserveAttempt(ctx, job, start, true, counted)
	h.metrics.Observe(ctx, job, start, counted)
	out := res.Output
	if out.Attempts == nil {
		out.Attempts = []retrypolicy.Attempt{}
	}
	raw, merr := json.Marshal(out)
	if merr == nil {
		// River waits for the handler: bound the write.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unknownKindWriteTimeout)
		defer cancel()
		_, merr = h.pool.Exec(wctx, `
UPDATE river_job
   SET metadata = jsonb_set(CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}'::jsonb END, '{output}', $2::jsonb),
       attempt  = CASE WHEN $4 THEN attempt ELSE attempt - 1 END
 WHERE id = $1 AND state = 'running' AND attempt = $3`, job.ID, raw, job.Attempt, res.Final)
	}
	if merr != nil {
		h.logger.Warn("rebound: could not record the history of a job whose kind this pod has no worker for",
			slog.Int64("job_id", job.ID), slog.String("kind", job.Kind), slog.String("error", merr.Error()))
	}
	if res.Final {
		return &river.ErrorHandlerResult{SetCancelled: true}
	}
	return nil
}

// HandlePanic implements river.ErrorHandler: panics are the recorder's.
func (unknownKindHandler) HandlePanic(context.Context, *rivertype.JobRow, any, string) *river.ErrorHandlerResult {
	return nil
}
