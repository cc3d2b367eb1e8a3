package rebound

import (
	"context"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// maxLoggedReason bounds the reason in a "job dead-lettered" line, in bytes.
const maxLoggedReason = 512

// deadLetterLog writes one line at info for every job this pod sends to the
// dead-letter queue ("job dead-lettered": kind, job_id, attempt,
// max_attempts, queue, class, operation_key, and the reason with secrets
// redacted and at most maxLoggedReason bytes). The pod that decides a job's
// end logs it, so each dead letter is logged once cluster-wide:
//
//   - the attempt recorder's final entries (a class that is not retried, the
//     job's or the policy's last attempt, the rescue limit): [deadLetterLog.attempt];
//   - the breaker gate's endings (parked longer than max_park, an invalid
//     operation key): [deadLetterLog.ended];
//   - a job River's rescuer takes back on its last attempt, which it
//     discards without running any middleware: the leader's rescuer asks
//     the retry policy for a retry time first (River v0.51.2,
//     JobRescuer.makeRetryDecision), and only the rescuer asks it for a job
//     on its last attempt (the executor does not), so
//     [rescueLogPolicy] logs it there.
type deadLetterLog struct {
	logger *slog.Logger
	keys   *operationKeys
}

// attempt logs a history entry that ends the job (Final).
func (l deadLetterLog) attempt(job *rivertype.JobRow, a retrypolicy.Attempt) {
	if a.Final {
		l.ended(job, a.Class, a.Error)
	}
}

// ended logs the job as dead-lettered with class and reason.
func (l deadLetterLog) ended(job *rivertype.JobRow, class retrypolicy.Class, reason string) {
	l.logger.LogAttrs(context.Background(), slog.LevelInfo, "job dead-lettered",
		slog.String("kind", job.Kind),
		slog.Int64("job_id", job.ID),
		slog.Int("attempt", job.Attempt),
		slog.Int("max_attempts", job.MaxAttempts),
		slog.String("queue", job.Queue),
		slog.String("class", string(class)),
		slog.String("operation_key", l.keys.ofJob(job)),
		slog.String("reason", loggedReason(reason)),
	)
}

// loggedReason is reason with secrets redacted and at most maxLoggedReason
// bytes (slog quotes or escapes control characters itself).
func loggedReason(reason string) string {
	s := redact.Text(reason)
	if len(s) <= maxLoggedReason {
		return s
	}
	cut := maxLoggedReason
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// rescueLogPolicy is the pod's river.ClientRetryPolicy: the recorder's,
// plus the "job dead-lettered" line of a job River's rescuer discards.
type rescueLogPolicy struct {
	river.ClientRetryPolicy
	log deadLetterLog
}

// NextRetry implements river.ClientRetryPolicy.
func (p rescueLogPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	if job.Attempt >= job.MaxAttempts {
		p.log.ended(job, retrypolicy.ClassLost, "lost on its last attempt: its pod died or hung, and River's rescuer took it back")
	}
	return p.ClientRetryPolicy.NextRetry(job)
}
