package rebound

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/rebound-queue/rebound/internal/redact"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/jobs"
)

// OperationKeyer is implemented by job args that name their own operation
// key: the circuit breaker a job shares with the other jobs calling the same
// downstream (a host, an API, a tenant's account). The key of a job is, in
// order:
//
//  1. the operation_key already in the job's metadata (stamped at insert);
//  2. at insert, the args' OperationKey() when they implement
//     OperationKeyer (jobs.HTTPRequestArgs does: operation_key, else the
//     URL's host);
//  3. the kind's KindConfig.OperationKey;
//  4. for rebound's own kinds, their rule (http_request: as in 2, from
//     the args JSON);
//  5. Config.DefaultOperationKey;
//  6. the kind's name.
//
// A step giving "" passes to the next. The result is normalised
// (jobs.NormalizeOperationKey: keys over 200 characters are shortened with
// a hash) and stamped into the job's metadata at insert, so the breaker gate,
// the dead-letter queue and operators' SQL all see the same key. A key that
// breaks the breaker's rule (blank, control characters; breaker.ValidateKey)
// is refused at insert; a job inserted with one by another producer is
// dead-lettered as bad_request without running. Steps 3 to 6 also name the
// key of a job inserted without it (by a producer other than rebound's).
type OperationKeyer = jobs.OperationKeyer

// OperationKeyFunc names the operation key of a job from its kind and its
// args JSON (river_job.args). It must be cheap, must not fail ("" means "no
// opinion") and must not keep encodedArgs. A panic in it (or in an args
// type's OperationKey method, see [OperationKeyer]) is recovered and read
// as "": the rule goes on to its next step, and the pod logs a warning once
// per kind ("operation key rule panicked").
type OperationKeyFunc func(kind string, encodedArgs []byte) string

// OperationKeyFromArgs is an [OperationKeyFunc] that decodes the args into a
// T and calls its OperationKey method: set it as KindConfig.OperationKey so
// that jobs of the kind inserted by another producer (without the key
// stamped) get the same key as jobs inserted through rebound. It returns ""
// for args that do not decode.
func OperationKeyFromArgs[T OperationKeyer](kind string, encodedArgs []byte) string {
	return jobs.ArgsOperationKey[T](encodedArgs)
}

// operationKeys applies the rule of [OperationKeyer].
type operationKeys struct {
	kinds   map[string]OperationKeyFunc
	builtin *jobs.Registry
	def     OperationKeyFunc
	logger  *slog.Logger
	warned  sync.Map // kind -> struct{}: its key rule's panic was logged
}

func newOperationKeys(c *Config) *operationKeys {
	k := &operationKeys{kinds: map[string]OperationKeyFunc{}, builtin: jobs.Builtin(), def: c.DefaultOperationKey, logger: c.Logger}
	for kind, kc := range c.Kinds {
		if kc.OperationKey != nil {
			k.kinds[kind] = kc.OperationKey
		}
	}
	return k
}

// atInsert returns the key of a job being inserted (steps 2 to 6).
func (k *operationKeys) atInsert(p *rivertype.JobInsertParams) string {
	if a, ok := p.Args.(OperationKeyer); ok {
		if key := k.keyerKey(a, p.Kind); key != "" {
			return jobs.NormalizeOperationKey(key)
		}
	}
	return k.fromArgs(p.Kind, p.EncodedArgs)
}

// ofJob returns the key of a job about to run (steps 1 and 3 to 6).
func (k *operationKeys) ofJob(job *rivertype.JobRow) string {
	if key := jobs.StampedOperationKey(job.Metadata); key != "" {
		return jobs.NormalizeOperationKey(key)
	}
	return k.fromArgs(job.Kind, job.EncodedArgs)
}

// fromArgs is steps 3 to 6.
func (k *operationKeys) fromArgs(kind string, encodedArgs []byte) string {
	if f := k.kinds[kind]; f != nil {
		if key := k.call(f, "KindConfig.OperationKey", kind, encodedArgs); key != "" {
			return jobs.NormalizeOperationKey(key)
		}
	}
	if b, err := k.builtin.Lookup(kind); err == nil && b.OperationKey != nil {
		if key := b.OperationKey(encodedArgs); key != "" {
			return jobs.NormalizeOperationKey(key)
		}
	}
	if k.def != nil {
		if key := k.call(k.def, "Config.DefaultOperationKey", kind, encodedArgs); key != "" {
			return jobs.NormalizeOperationKey(key)
		}
	}
	return jobs.NormalizeOperationKey(kind)
}

// call runs a caller's key rule f, named by its setting; a panic in it
// reads as "" and is logged once per kind. It runs in the circuit breaker
// gate, where a panic would end the attempt outside the attempt
// recorder's guard, and in the insert middleware (where River's leader
// inserts periodic jobs).
func (k *operationKeys) call(f OperationKeyFunc, setting, kind string, encodedArgs []byte) (key string) {
	defer func() {
		if v := recover(); v != nil {
			key = ""
			k.warnPanic(setting, kind, v)
		}
	}()
	return f(kind, encodedArgs)
}

// keyerKey is a's OperationKey(), with a panic read as "" as call reads
// one (a method of its own, not a closure through call: it runs on every
// insert of such args).
func (k *operationKeys) keyerKey(a OperationKeyer, kind string) (key string) {
	defer func() {
		if v := recover(); v != nil {
			key = ""
			k.warnPanic("the args' OperationKey method", kind, v)
		}
	}()
	return a.OperationKey()
}

// warnPanic logs, once per kind, that a key rule named by setting panicked
// with v.
func (k *operationKeys) warnPanic(setting, kind string, v any) {
	if _, seen := k.warned.LoadOrStore(kind, struct{}{}); !seen {
		k.logger.Warn("operation key rule panicked; using the rule's next step",
			slog.String("setting", setting), slog.String("kind", kind), slog.String("panic", redact.Text(fmt.Sprint(v))))
	}
}
