package rebound

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// Insert inserts one job through the pod's River client, with rebound's
// insert-time rules (see [Pod.InsertManyTx]). opts may be nil. The job is
// worked once the insert commits; for a job that must exist only if your
// own writes commit, use [Pod.InsertTx].
func (p *Pod) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return p.client.Insert(ctx, args, opts)
}

// InsertTx inserts one job inside tx, your own transaction, with rebound's
// insert-time rules (see [Pod.InsertManyTx]): the job exists, and is worked,
// only if tx commits; a rollback leaves nothing behind. opts may be nil.
func (p *Pod) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	return p.client.InsertTx(ctx, tx, args, opts)
}

// InsertMany inserts jobs in one statement, all or none, with rebound's
// insert-time rules (see [Pod.InsertManyTx]).
func (p *Pod) InsertMany(ctx context.Context, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	return p.client.InsertMany(ctx, params)
}

// InsertManyTx inserts jobs inside tx, your own transaction. Every insert
// through the pod's client ([Pod.Client] included) follows rebound's rules:
//
//   - The kind must have a worker in this pod (River's rule; River's
//     *UnknownJobKindError otherwise).
//   - The args and metadata must be storable: valid UTF-8, no NUL character
//     (PostgreSQL's jsonb refuses "\u0000"), no unpaired surrogate escape
//     (jobs.CheckStorableInsert); the error names the field (wrapping
//     jobs.ErrInvalidArgs for args), and nothing is inserted.
//   - The job's operation key is stamped into its metadata
//     (metadata.operation_key) unless the metadata holds one: see
//     [OperationKeyer] for the rule. A key the circuit breaker cannot hold
//     (blank, control characters) is refused the same way.
//   - Max attempts: InsertOpts.MaxAttempts, else the args' InsertOpts,
//     else the kind's retry policy's MaxAttempts (not River's 25); and never
//     more than the policy's MaxAttempts, to which a higher value is
//     lowered: the attempt recorder would end the job there anyway, and
//     River's max_attempts then says so.
//
// Your own insert middleware (Config.Middleware) runs after these rules.
func (p *Pod) InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error) {
	return p.client.InsertManyTx(ctx, tx, params)
}

// insertRules is the pod's River job insert middleware: it applies the
// rules of [Pod.InsertManyTx] to every job its client inserts.
type insertRules struct {
	river.MiddlewareDefaults
	keys     *operationKeys
	policies *retrypolicy.Policies
}

// unsetMaxAttempts is the River client's default max attempts: a job that
// arrives with it asked for none, and gets its kind's policy's. A job that
// asks for exactly this many is lowered to the policy's too, which the
// ceiling would do anyway (no policy allows more).
const unsetMaxAttempts = retrypolicy.MaxMaxAttempts

// InsertMany implements rivertype.JobInsertMiddleware.
func (m *insertRules) InsertMany(ctx context.Context, manyParams []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	for i, p := range manyParams {
		if err := jobs.CheckStorableInsert(p); err != nil {
			if len(manyParams) > 1 {
				return nil, fmt.Errorf("insert %s job %d of %d: %w", p.Kind, i+1, len(manyParams), err)
			}
			return nil, fmt.Errorf("insert %s job: %w", p.Kind, err)
		}
		key := gjson.GetBytes(p.Metadata, jobs.MetadataOperationKey)
		if !key.Exists() {
			k := m.keys.atInsert(p)
			if err := breaker.ValidateKey(k); err != nil {
				return nil, fmt.Errorf("insert %s job: %w: %v", p.Kind, jobs.ErrInvalidArgs, err)
			}
			metadata := p.Metadata
			if len(metadata) == 0 {
				metadata = []byte("{}")
			}
			stamped, err := sjson.SetBytes(metadata, jobs.MetadataOperationKey, k)
			if err != nil {
				return nil, fmt.Errorf("%s job: stamp operation key into metadata: %w", p.Kind, err)
			}
			p.Metadata = stamped
		} else if key.Type == gjson.String {
			if err := breaker.ValidateKey(jobs.NormalizeOperationKey(key.Str)); err != nil {
				return nil, fmt.Errorf("insert %s job: invalid metadata: operation_key: %v", p.Kind, err)
			}
		}
		p.MaxAttempts = min(p.MaxAttempts, m.policies.Lookup(p.Kind).MaxAttempts)
	}
	return doInner(ctx)
}
