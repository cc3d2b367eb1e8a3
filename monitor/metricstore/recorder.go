package metricstore

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// DefaultFlushInterval is how often a [Recorder] adds its counts to
// job_retry_metrics: 10 s.
const DefaultFlushInterval = 10 * time.Second

// RecorderConfig configures a [Recorder].
type RecorderConfig struct {
	// FlushInterval is how often counts are written. 0 means
	// [DefaultFlushInterval]; at least 100 ms. Ticks are aligned to the wall
	// clock (a 10 s interval flushes at :00, :10, ...), so with an interval
	// that divides a minute every count lands in the minute it happened.
	FlushInterval time.Duration
	// Logger receives a warning when a flush fails (once per outage) and an
	// info line when it recovers. nil discards.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Recorder counts attempts per job kind in memory and flushes them to
// job_retry_metrics. Install [Recorder.Middleware] outside the circuit
// breaker gate and [Recorder.GateMarker] right inside it, feed
// [Recorder.ObserveFailedAttempt] from the attempt recorder, and Start /
// Stop it with the pod. Safe for concurrent use.
type Recorder struct {
	store    *Store
	interval time.Duration
	logger   *slog.Logger
	now      func() time.Time

	kindsMu sync.Mutex                         // serialises copy-on-write of kinds
	kinds   atomic.Pointer[map[string]*counts] // read without a lock

	flushMu   sync.Mutex // one flush at a time; guards pending, lastFlush, failing
	pending   map[rowKey]*Row
	inflight  *Flush // a flush whose outcome is unknown (ErrOutcomeUnknown), checked by the next
	lastFlush time.Time
	failing   bool

	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

type rowKey struct {
	kind  string
	start time.Time
}

// counts are one kind's counts since the last flush.
type counts struct {
	attempts, completed, deadLettered, retries, shortCircuited, runTimeNS atomic.Int64
	lastAttemptNS                                                         atomic.Int64
	classesMu                                                             sync.Mutex
	classes                                                               atomic.Pointer[map[string]*atomic.Int64]
}

// NewRecorder returns a recorder writing through store.
func NewRecorder(store *Store, cfg *RecorderConfig) (*Recorder, error) {
	var c RecorderConfig
	if cfg != nil {
		c = *cfg
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.FlushInterval < 100*time.Millisecond {
		return nil, errors.New("metricstore: FlushInterval " + c.FlushInterval.String() + " is under 100ms")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	r := &Recorder{store: store, interval: c.FlushInterval, logger: c.Logger, now: c.Now, pending: map[rowKey]*Row{}}
	empty := map[string]*counts{}
	r.kinds.Store(&empty)
	r.lastFlush = c.Now()
	return r, nil
}

// of returns kind's counts, creating them the first time a kind is seen.
func (r *Recorder) of(kind string) *counts {
	if c, ok := (*r.kinds.Load())[kind]; ok {
		return c
	}
	r.kindsMu.Lock()
	defer r.kindsMu.Unlock()
	old := *r.kinds.Load()
	if c, ok := old[kind]; ok {
		return c
	}
	next := make(map[string]*counts, len(old)+1)
	maps.Copy(next, old)
	c := &counts{}
	empty := map[string]*atomic.Int64{}
	c.classes.Store(&empty)
	next[kind] = c
	r.kinds.Store(&next)
	return c
}

func (c *counts) class(class string) *atomic.Int64 {
	if n, ok := (*c.classes.Load())[class]; ok {
		return n
	}
	c.classesMu.Lock()
	defer c.classesMu.Unlock()
	old := *c.classes.Load()
	if n, ok := old[class]; ok {
		return n
	}
	next := make(map[string]*atomic.Int64, len(old)+1)
	maps.Copy(next, old)
	n := &atomic.Int64{}
	next[class] = n
	c.classes.Store(&next)
	return n
}

// ObserveFailedAttempt counts one failed attempt of a job of kind with its
// failure class, and a scheduled retry when retry is true. Feed it from
// retrypolicy's RecorderOpts.OnAttempt.
func (r *Recorder) ObserveFailedAttempt(kind, class string, retry bool) {
	c := r.of(kind)
	c.class(class).Add(1)
	if retry {
		c.retries.Add(1)
	}
}

// gateMarkKey is the context key of the mark GateMarker sets.
type gateMarkKey struct{}

// markCtx is the attempt's context with the mark GateMarker sets when the
// gate let the attempt through: one allocation per attempt (a
// context.WithValue and a separate mark would be two).
type markCtx struct {
	context.Context
	ok bool
}

// Value returns the markCtx itself for gateMarkKey.
func (c *markCtx) Value(key any) any {
	if _, ok := key.(gateMarkKey); ok {
		return c
	}
	return c.Context.Value(key)
}

// Middleware returns the worker middleware that counts attempts and how
// jobs finish. Install it outside the circuit breaker gate.
func (r *Recorder) Middleware() rivertype.WorkerMiddleware { return &outerMiddleware{r: r} }

// GateMarker returns the worker middleware that tells Middleware an
// attempt got past the circuit breaker gate. Install it right inside the
// gate; without it every snooze counts as short-circuited.
func (r *Recorder) GateMarker() rivertype.WorkerMiddleware { return &gateMarker{} }

type gateMarker struct{ river.MiddlewareDefaults }

func (*gateMarker) Work(ctx context.Context, _ *rivertype.JobRow, doInner func(context.Context) error) error {
	if m, ok := ctx.Value(gateMarkKey{}).(*markCtx); ok {
		m.ok = true
	}
	return doInner(ctx)
}

type outerMiddleware struct {
	river.MiddlewareDefaults
	r *Recorder
}

// Work implements rivertype.WorkerMiddleware.
func (m *outerMiddleware) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) (err error) {
	start := m.r.now()
	mark := &markCtx{Context: ctx}
	finished := false
	defer func() {
		if !finished { // a panic on its way up: River records it as an error
			m.r.observe(ctx, job, start, mark.ok, errPanicked)
		}
	}()
	err = doInner(mark)
	finished = true
	m.r.observe(ctx, job, start, mark.ok, err)
	return err
}

var errPanicked = errors.New("panicked")

// ObserveAttempt counts an attempt's end as Middleware does, for a caller
// that runs Middleware's part inline in a worker middleware of its own
// (rebound's pod does, around its circuit breaker gate): start is when the
// attempt began (by the recorder's clock, RecorderConfig.Now: time.Now by
// default), ran whether the gate let it run (false:
// parked or refused, counted as short-circuited), err what it returned.
func (r *Recorder) ObserveAttempt(ctx context.Context, job *rivertype.JobRow, start time.Time, ran bool, err error) {
	r.observe(ctx, job, start, ran, err)
}

// ObservePanic counts an attempt that began at start and panicked, as
// Middleware does: a failed attempt, dead-lettered when it was the job's
// last.
func (r *Recorder) ObservePanic(ctx context.Context, job *rivertype.JobRow, start time.Time, ran bool) {
	r.observe(ctx, job, start, ran, errPanicked)
}

// observe counts one attempt's end. The rule for dead-lettered is the
// dead-letter queue's: the job ends discarded (an error on its last
// attempt) or cancelled, except by an operator (client.JobCancel).
func (r *Recorder) observe(ctx context.Context, job *rivertype.JobRow, start time.Time, ran bool, err error) {
	c := r.of(job.Kind)
	end := r.now()
	if _, snoozed := errors.AsType[*rivertype.JobSnoozeError](err); snoozed {
		if !ran {
			c.shortCircuited.Add(1)
		}
		return
	}
	if err != nil && ctx.Err() != nil {
		cause := context.Cause(ctx)
		if errors.Is(cause, rivertype.ErrJobCancelledRemotely) {
			return // an operator's cancel: neither completed nor dead-lettered
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, cause) {
			return // the pod is stopping: the job returns to the queue, no attempt used
		}
	}
	if ran {
		c.attempts.Add(1)
		c.runTimeNS.Add(int64(end.Sub(start)))
		for ns := end.UnixNano(); ; {
			old := c.lastAttemptNS.Load()
			if ns <= old || c.lastAttemptNS.CompareAndSwap(old, ns) {
				break
			}
		}
	} else {
		c.shortCircuited.Add(1)
	}
	switch {
	case err == nil:
		c.completed.Add(1)
	case isCancel(err) || job.Attempt >= job.MaxAttempts:
		c.deadLettered.Add(1)
	}
}

func isCancel(err error) bool {
	_, ok := errors.AsType[*rivertype.JobCancelError](err)
	return ok
}
