package breaker

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/storable"
)

// DefaultRefreshInterval is how often a pod re-reads rows changed lately, as
// a fallback for a missed notification: no pod stays blind to a transition
// for longer than this.
const DefaultRefreshInterval = time.Second

// DefaultStatementTimeout bounds each statement the breaker runs for a
// call's outcome, independently of the call's own context.
const DefaultStatementTimeout = 10 * time.Second

// fullRefreshEvery is how often a pod reloads every row (also noticing
// deleted ones).
const fullRefreshEvery = 30 * time.Second

// refreshMargin is how far back an incremental refresh looks before the
// previous one, covering statements that committed late.
const refreshMargin = 5 * time.Second

// maxErrorText caps the last_error written to the row (bytes).
const maxErrorText = 1024

// NotifyChannel is the PostgreSQL channel every change of a key's state,
// generation or probes is announced on; the payload is the key ("" for a
// key longer than 7000 bytes: reload everything).
const NotifyChannel = "rebound_breaker"

// Config configures a Breaker. The zero value is usable.
type Config struct {
	// Settings apply to every key without an entry in Keys. Zero fields
	// mean the package defaults (see Settings).
	Settings Settings
	// Keys holds per-key settings; their zero fields inherit from Settings.
	// nil means none.
	Keys map[string]Settings
	// RefreshInterval is the period of the fallback refresh (rows changed
	// lately are re-read) and of the batched success writes. Zero means
	// DefaultRefreshInterval (1 second); more than 1 second is refused.
	RefreshInterval time.Duration
	// ListenConfig connects the dedicated LISTEN connection. LISTEN needs a
	// session: behind PgBouncer in transaction mode, point it at PostgreSQL
	// itself. nil means a copy of the pool's connection config.
	ListenConfig *pgx.ConnConfig
	// ListenDisabled turns LISTEN off: pods then see transitions through
	// the RefreshInterval re-read alone (within a second), as behind
	// PgBouncer in transaction mode without a direct connection.
	ListenDisabled bool
	// Metrics receives this pod's breaker metrics. nil means none.
	Metrics *Metrics
	// Logger receives warnings (lost LISTEN connection, failed writes).
	// nil means a logger that discards everything.
	Logger *slog.Logger
	// Now is the pod's clock, used only for pod-local decisions (how long
	// until a probe, as estimated from the database clock and the offset
	// measured at each refresh). nil means time.Now.
	Now func() time.Time
}

// Breaker is the circuit breaker of every operation key, shared by all pods
// through circuit_breaker_state. Allow and Execute read a local view kept
// current by LISTEN/NOTIFY and a 1-second refresh, so a closed, healthy key
// costs no database round trip. Create it with New, then Start it; it is
// safe for concurrent use.
type Breaker struct {
	pool     *pgxpool.Pool
	store    *Store
	cfg      Config
	base     Settings
	keys     map[string]Settings
	logger   *slog.Logger
	now      func() time.Time
	metrics  *Metrics
	views    sync.Map // string -> *keyView
	offsetNs atomic.Int64

	started  atomic.Bool
	startMu  sync.Mutex
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	fullCh   chan struct{}
	tickCh   chan struct{}
	hooksMu  sync.Mutex
	onChange []func(key string, from, to State, row *Row)
	tickers  []func(ctx context.Context)

	watermark time.Time // refresh loop only
}

// backgroundKey marks the contexts of the breaker's background work (the
// refresh and LISTEN loops), so a query tracer can tell them from the
// queries a call costs.
type backgroundKey struct{}

// IsBackground reports whether ctx belongs to the breaker's background work
// (fallback refresh, LISTEN connection, batched writes, waker) rather than
// to a call. Query tracers use it to count the round trips calls cost.
func IsBackground(ctx context.Context) bool {
	v, _ := ctx.Value(backgroundKey{}).(bool)
	return v
}

// keyView is one key's local view: an immutable snapshot swapped atomically,
// plus this pod's counts not yet written.
type keyView struct {
	key  string
	snap atomic.Pointer[snapshot]

	calls   atomic.Int64 // successful calls since the last write
	dirty   atomic.Bool  // successes wait for a write
	probing atomic.Bool  // a probe acquisition of this pod is in flight
	failing atomic.Bool  // failures wait for a write (mirrors failures > 0)

	mu        sync.Mutex // guards the fields below
	pendGen   int64
	failures  int64
	trailing  int64
	reset     bool
	lastError string

	flushMu sync.Mutex

	probeWokenGen atomic.Int64 // gate: last generation parked probes were woken for
	probeKickGen  atomic.Int64 // gate: last generation a run at the probe time was arranged for
	probeWokenAt  atomic.Int64 // gate: when (pod clock, Unix ns) probe jobs were last woken
}

// snapshot is what a pod knows of a key's row.
type snapshot struct {
	exists         bool
	state          State
	generation     int64
	failureCount   int
	windowFailures int64
	nextProbeAt    time.Time
	openedAt       time.Time // zero: NULL
	changedAt      time.Time // zero: NULL
	probes         []time.Time
	updatedAt      time.Time
}

var absent = &snapshot{state: StateClosed, generation: 1}

// New returns a Breaker over pool. It validates every key (ValidateKey) and
// its settings, and returns an error naming the key and field of the first
// invalid one.
func New(pool *pgxpool.Pool, cfg Config) (*Breaker, error) {
	if pool == nil {
		return nil, errors.New("breaker: pool is nil")
	}
	base := cfg.Settings.WithDefaults()
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("breaker: default settings: %w", err)
	}
	keys := make(map[string]Settings, len(cfg.Keys))
	for k, s := range cfg.Keys {
		if err := ValidateKey(k); err != nil {
			return nil, fmt.Errorf("breaker: settings for a key: %w", err)
		}
		r := s.inherit(base)
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("breaker: key %q: %w", k, err)
		}
		keys[k] = r
	}
	cfg.RefreshInterval = cmp.Or(cfg.RefreshInterval, DefaultRefreshInterval)
	if cfg.RefreshInterval < 10*time.Millisecond || cfg.RefreshInterval > time.Second {
		return nil, fmt.Errorf("breaker: refresh_interval %s: must be in [10ms, 1s]", cfg.RefreshInterval)
	}
	b := &Breaker{
		pool:    pool,
		store:   NewStore(pool),
		cfg:     cfg,
		base:    base,
		keys:    keys,
		logger:  cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		now:     cfg.Now,
		metrics: cfg.Metrics,
		fullCh:  make(chan struct{}, 1),
		tickCh:  make(chan struct{}, 1),
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.metrics != nil {
		b.metrics.attach(b)
	}
	return b, nil
}

// Store returns the Store the breaker writes through.
func (b *Breaker) Store() *Store { return b.store }

// Settings returns the settings in force for key (defaults filled in).
func (b *Breaker) Settings(key string) Settings {
	if s, ok := b.keys[key]; ok {
		return s
	}
	return b.base
}

// Start loads every row, then runs the LISTEN connection, the fallback
// refresh and batched writes until Stop. It returns the error of the
// initial load (the breaker is then not started).
func (b *Breaker) Start(ctx context.Context) error {
	b.startMu.Lock()
	defer b.startMu.Unlock()
	if b.started.Load() {
		return errors.New("breaker: already started")
	}
	if err := b.refresh(ctx, true); err != nil {
		return fmt.Errorf("breaker: load circuit_breaker_state: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithValue(context.WithoutCancel(ctx), backgroundKey{}, true))
	b.cancel = cancel
	if !b.cfg.ListenDisabled {
		b.wg.Add(1)
		go func() { defer b.wg.Done(); b.listenLoop(runCtx) }()
	}
	b.wg.Add(1)
	go func() { defer b.wg.Done(); b.refreshLoop(runCtx) }()
	b.started.Store(true)
	return nil
}

// Stop ends the background work started by Start, writes the counts still
// pending, and waits (bounded by ctx) for it to finish. Allow returns
// ErrNotStarted afterwards.
func (b *Breaker) Stop(ctx context.Context) error {
	b.startMu.Lock()
	defer b.startMu.Unlock()
	if !b.started.Load() {
		return nil
	}
	b.started.Store(false)
	b.cancel()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.flushAll(ctx)
	return nil
}

// State returns this pod's view of key's state (StateClosed for a key with
// no row). It never touches the database.
func (b *Breaker) State(key string) State {
	if v, ok := b.views.Load(key); ok {
		return v.(*keyView).snap.Load().state
	}
	return StateClosed
}

// dbNow estimates the database clock from the pod's clock and the offset
// measured at the last refresh.
func (b *Breaker) dbNow() time.Time {
	return b.now().Add(time.Duration(b.offsetNs.Load()))
}

func (b *Breaker) view(key string) *keyView {
	if v, ok := b.views.Load(key); ok {
		return v.(*keyView)
	}
	v := &keyView{key: key}
	v.snap.Store(absent)
	actual, loaded := b.views.LoadOrStore(key, v)
	if !loaded {
		b.metrics.seen(key)
	}
	return actual.(*keyView)
}

// callView returns key's view for a call. A key seen before was valid; a new
// one is checked with ValidateKey first, so an invalid key gets no view, no
// row and no metric series.
func (b *Breaker) callView(key string) (*keyView, error) {
	if v, ok := b.views.Load(key); ok {
		return v.(*keyView), nil
	}
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("breaker: %w", err)
	}
	return b.view(key), nil
}

// Permit is an admitted call. Report its outcome with Done exactly once.
type Permit struct {
	b          *Breaker
	v          *keyView
	generation int64
	token      string // non-empty for a half-open probe
}

// Probe reports whether the call was admitted as a half-open probe.
func (p Permit) Probe() bool { return p.token != "" }

// Allow asks whether a call for key may run now. It returns a Permit, or an
// *OpenError (errors.Is(err, ErrOpenState)) when the breaker refuses the
// call, or ErrNotStarted, or an error matching ErrInvalidKey when key breaks
// ValidateKey's rule (no breaker can guard such a key: the call must not
// run), or a database error met while taking a probe slot.
// While key is closed it touches no database; while open it refuses from the
// local view until the probe time, then takes a probe slot with one
// statement.
func (b *Breaker) Allow(ctx context.Context, key string) (Permit, error) {
	if !b.started.Load() {
		return Permit{}, ErrNotStarted
	}
	v, err := b.callView(key)
	if err != nil {
		return Permit{}, err
	}
	// The healthy path: closed. Kept in this small frame; the rest, with its
	// settings, clock and probe bookkeeping, lives in allowSlow, so a job's
	// goroutine does not grow its stack for a check that returns at once.
	if s := v.snap.Load(); s.state == StateClosed {
		return Permit{b: b, v: v, generation: s.generation}, nil
	}
	return b.allowSlow(ctx, key, v)
}

// allowSlow is Allow for a breaker that was not closed at first look.
//
//go:noinline
func (b *Breaker) allowSlow(ctx context.Context, key string, v *keyView) (Permit, error) {
	for attempt := 0; ; attempt++ {
		s := v.snap.Load()
		if s.state == StateClosed {
			return Permit{b: b, v: v, generation: s.generation}, nil
		}
		st := b.Settings(key)
		now := b.dbNow()
		switch s.state {
		case StateOpen:
			if now.Before(s.nextProbeAt) {
				return Permit{}, b.refuse(key, StateOpen, s.nextProbeAt.Sub(now))
			}
		case StateHalfOpen:
			if live, earliest := liveProbes(s.probes, now, st.ProbeTimeout); live >= st.HalfOpenMaxProbes {
				return Permit{}, b.refuse(key, StateHalfOpen, min(time.Second, earliest.Add(st.ProbeTimeout).Sub(now)))
			}
		}
		if attempt >= 2 || !v.probing.CompareAndSwap(false, true) {
			// Another goroutine of this pod is taking a slot right now.
			return Permit{}, b.refuse(key, StateHalfOpen, time.Second)
		}
		token := newToken()
		res, err := b.store.acquireProbe(ctx, key, s.generation, token, st)
		v.probing.Store(false)
		if err != nil {
			return Permit{}, fmt.Errorf("breaker %q: take probe slot: %w", key, err)
		}
		b.apply(res.row)
		if res.applied {
			if s.state == StateOpen {
				b.transitioned(ctx, StateOpen, res.row)
			}
			return Permit{b: b, v: v, generation: res.row.Generation, token: token}, nil
		}
		if res.row.Generation == s.generation {
			// Same generation, no free slot (or not yet probe time by the
			// database's clock): refuse from the fresh view.
			attempt = 2
		}
	}
}

func (b *Breaker) refuse(key string, state State, after time.Duration) error {
	b.metrics.shortCircuited(key)
	return &OpenError{Key: key, State: state, After: max(after, 0)}
}

// liveProbes counts the probes started after now - timeout and returns the
// earliest start among them.
func liveProbes(probes []time.Time, now time.Time, timeout time.Duration) (int, time.Time) {
	n := 0
	var earliest time.Time
	cut := now.Add(-timeout)
	for _, p := range probes {
		if p.After(cut) {
			n++
			if earliest.IsZero() || p.Before(earliest) {
				earliest = p
			}
		}
	}
	return n, earliest
}

func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Done reports the call's outcome. A nil error is a success; an error
// matching context.Canceled decides nothing (a probe frees its slot); any
// other error is a failure when the key's IsFailure says so, else a success
// (the downstream answered). Failures are written at once (concurrent ones
// of this pod in one statement); successes only when they change something,
// in the background at most once per RefreshInterval. A probe's outcome is
// written at once. Writes run with a fresh context bounded by
// DefaultStatementTimeout, so a cancelled ctx still records the outcome.
func (p Permit) Done(ctx context.Context, err error) {
	if p.b == nil {
		return
	}
	b := p.b
	st := b.Settings(p.v.key)
	cancelled := err != nil && errors.Is(err, context.Canceled)
	failed := err != nil && !cancelled && st.IsFailure(err)

	if p.token != "" {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultStatementTimeout)
		defer cancel()
		var res casResult
		var werr error
		switch {
		case cancelled:
			res, werr = b.store.releaseProbe(wctx, p.v.key, p.generation, p.token)
		case failed:
			res, werr = b.store.probeFailed(wctx, p.v.key, p.generation, errorText(err), st)
		default:
			res, werr = b.store.probeSucceeded(wctx, p.v.key, p.generation, p.token, st)
		}
		if werr != nil {
			b.logger.WarnContext(ctx, "breaker: write probe outcome", "key", p.v.key, "error", werr)
			return
		}
		b.apply(res.row)
		switch {
		case !res.applied && !cancelled:
			b.metrics.stale(p.v.key)
		case res.applied && res.row.Generation != p.generation:
			b.transitioned(ctx, StateHalfOpen, res.row)
		}
		return
	}

	if cancelled {
		return
	}
	v := p.v
	if !failed {
		v.calls.Add(1)
		s := v.snap.Load()
		if s.failureCount > 0 || s.windowFailures > 0 || v.hasPendingFailures() {
			v.mu.Lock()
			v.reset = true
			v.trailing = 0
			v.mu.Unlock()
			v.dirty.Store(true)
		}
		return
	}
	v.mu.Lock()
	switch {
	case v.failures == 0 || p.generation > v.pendGen:
		if v.failures > 0 {
			b.metrics.staleN(v.key, v.failures)
		}
		// A success still waiting for its write (reset) keeps restarting
		// the count; one from an older batch of failures does not.
		v.pendGen, v.failures, v.trailing, v.reset = p.generation, 0, 0, v.reset && v.failures == 0
	case p.generation < v.pendGen:
		v.mu.Unlock()
		b.metrics.stale(v.key)
		return
	}
	v.failures++
	v.trailing++
	v.lastError = errorText(err)
	v.failing.Store(true)
	v.mu.Unlock()
	if v.flushMu.TryLock() {
		// Another goroutine flushing will pick our failure up otherwise.
		defer v.flushMu.Unlock()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultStatementTimeout)
		defer cancel()
		b.flushLocked(wctx, v)
	}
}

func (v *keyView) hasPendingFailures() bool { return v.failing.Load() }

// errorText is err's message as PostgreSQL text can hold it, by the one
// rule of package storable: NUL bytes and invalid UTF-8 become U+FFFD, and it
// is cut to at most maxErrorText bytes at a character boundary, ending in
// "…".
func errorText(err error) string {
	return storable.Text(err.Error(), maxErrorText)
}

// Execute runs fn when key's breaker admits the call and records its
// outcome; when the breaker refuses, it returns an *OpenError without
// calling fn, and for an invalid key (see ValidateKey) an error matching
// ErrInvalidKey without calling fn. fn's error is returned as is. A panic in fn frees a probe slot
// without deciding anything and is re-raised. Execute satisfies
// retrypolicy's in-process gate.
func (b *Breaker) Execute(ctx context.Context, key string, fn func(context.Context) error) (err error) {
	p, err := b.Allow(ctx, key)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			p.Done(ctx, context.Canceled) // panicked: decide nothing
		}
	}()
	err = fn(ctx)
	done = true
	p.Done(ctx, err)
	return err
}

// flushLocked writes v's pending counts; the caller holds v.flushMu.
func (b *Breaker) flushLocked(ctx context.Context, v *keyView) {
	for range 8 {
		v.mu.Lock()
		calls := v.calls.Swap(0)
		v.dirty.Store(false)
		p := recordParams{
			key: v.key, generation: v.pendGen, calls: calls + v.failures, failures: v.failures,
			reset: v.reset, trailing: v.trailing, lastError: v.lastError,
		}
		v.failures, v.trailing, v.reset, v.lastError = 0, 0, false, ""
		v.failing.Store(false)
		v.mu.Unlock()
		if p.failures == 0 && !p.reset {
			return
		}
		s := v.snap.Load()
		if p.failures == 0 {
			// Successes only: they belong to whatever generation is closed now.
			if s.state != StateClosed || (s.failureCount == 0 && s.windowFailures == 0) {
				return
			}
			p.generation = s.generation
		}
		st := b.Settings(v.key)
		p.settings = st
		p.builtin = st.ReadyToTrip == nil
		if !s.exists {
			if err := b.store.ensureRow(ctx, v.key); err != nil {
				b.logger.WarnContext(ctx, "breaker: create row", "key", v.key, "error", err)
				return
			}
		}
		res, err := b.store.record(ctx, p)
		if errors.Is(err, ErrNotFound) {
			if err = b.store.ensureRow(ctx, v.key); err == nil {
				res, err = b.store.record(ctx, p)
			}
		}
		if err != nil {
			b.logger.WarnContext(ctx, "breaker: write outcome", "key", v.key, "error", err)
			return
		}
		b.apply(res.row)
		switch {
		case !res.applied:
			b.metrics.staleN(v.key, max(p.failures, 1))
		case res.tripped:
			b.transitioned(ctx, StateClosed, res.row)
		case st.ReadyToTrip != nil && p.failures > 0 && st.ReadyToTrip(Counts{
			ConsecutiveFailures: res.row.FailureCount, WindowCalls: res.row.WindowCalls,
			WindowFailures: res.row.WindowFailures, Trips: res.row.TripCount,
		}):
			tr, err := b.store.trip(ctx, v.key, res.row.Generation, st)
			if err != nil {
				b.logger.WarnContext(ctx, "breaker: trip", "key", v.key, "error", err)
				return
			}
			b.apply(tr.row)
			if tr.applied {
				b.transitioned(ctx, StateClosed, tr.row)
			}
		}
		if !v.hasPendingFailures() {
			return
		}
	}
}

// transitioned counts, and logs at info, a transition of row's key from
// from to row.State made by a statement of this pod. Every automatic
// transition is one compare-and-set statement that exactly one pod wins, so
// each is logged once cluster-wide, by the pod that made it. Changes made by
// hand (Store.Reset, Store.Open, SQL) are recorded in the row (changed_by,
// change_reason, changed_at) and not logged by the pods that notice them.
// The line holds no error text: `rebound breaker show KEY` has the last one.
func (b *Breaker) transitioned(ctx context.Context, from State, row *Row) {
	to := row.State
	b.metrics.transition(row.Key, from, to)
	if from == to {
		return
	}
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs, slog.String("key", row.Key), slog.String("from", from.String()), slog.String("to", to.String()))
	var msg string
	switch {
	case to == StateOpen && from == StateClosed:
		msg = "circuit breaker opened"
		attrs = append(attrs, slog.Int("failure_count", row.FailureCount),
			slog.Int64("window_failures", row.WindowFailures), slog.Int64("window_calls", row.WindowCalls))
	case to == StateOpen:
		msg = "circuit breaker re-opened: a probe failed"
	case to == StateHalfOpen:
		msg = "circuit breaker half-open: probing"
	default:
		msg = "circuit breaker closed"
	}
	if to == StateOpen {
		attrs = append(attrs, slog.Int("trips", row.TripCount))
		if row.NextProbeAt != nil {
			attrs = append(attrs, slog.Time("next_probe_at", *row.NextProbeAt))
			if row.OpenedAt != nil {
				attrs = append(attrs, slog.String("open_for", row.NextProbeAt.Sub(*row.OpenedAt).Round(time.Millisecond).String()))
			}
		}
	}
	b.logger.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, msg, attrs...)
}

func (b *Breaker) flushAll(ctx context.Context) {
	b.views.Range(func(_, val any) bool {
		v := val.(*keyView)
		if v.dirty.Load() || v.hasPendingFailures() {
			v.flushMu.Lock()
			b.flushLocked(ctx, v)
			v.flushMu.Unlock()
		}
		return true
	})
}

// apply installs row in the local view unless the view already holds a
// newer version (higher generation, or same generation updated later), and
// reports a change of state to the hooks.
func (b *Breaker) apply(row *Row) {
	ns := &snapshot{
		exists: true, state: row.State, generation: row.Generation, failureCount: row.FailureCount,
		windowFailures: row.WindowFailures, updatedAt: row.UpdatedAt,
	}
	if row.NextProbeAt != nil {
		ns.nextProbeAt = *row.NextProbeAt
	}
	ns.openedAt, ns.changedAt = deref(row.OpenedAt), deref(row.ChangedAt)
	for _, t := range row.Probes {
		ns.probes = append(ns.probes, t)
	}
	v := b.view(row.Key)
	for {
		old := v.snap.Load()
		if old.exists && (old.generation > ns.generation || (old.generation == ns.generation && old.updatedAt.After(ns.updatedAt))) {
			return
		}
		if v.snap.CompareAndSwap(old, ns) {
			if old.state != ns.state {
				b.changed(row.Key, old.state, ns.state, row)
			}
			return
		}
	}
}

// forget marks key as having no row (it was deleted).
func (b *Breaker) forget(v *keyView) {
	old := v.snap.Load()
	if !old.exists {
		return
	}
	if v.snap.CompareAndSwap(old, absent) && old.state != StateClosed {
		b.changed(v.key, old.state, StateClosed, nil)
	}
}

func (b *Breaker) changed(key string, from, to State, row *Row) {
	if f := b.Settings(key).OnStateChange; f != nil {
		f(key, from, to)
	}
	b.hooksMu.Lock()
	hooks := b.onChange
	b.hooksMu.Unlock()
	for _, h := range hooks {
		h(key, from, to, row)
	}
}

// kickTickers asks the refresh loop to run an iteration, tickers included,
// now rather than at its next RefreshInterval tick. It never blocks.
func (b *Breaker) kickTickers() {
	select {
	case b.tickCh <- struct{}{}:
	default:
	}
}

// addHooks registers a change hook and a per-refresh ticker (the River
// gate's waker); call before Start.
func (b *Breaker) addHooks(onChange func(key string, from, to State, row *Row), tick func(ctx context.Context)) {
	b.hooksMu.Lock()
	defer b.hooksMu.Unlock()
	if onChange != nil {
		b.onChange = append(b.onChange, onChange)
	}
	if tick != nil {
		b.tickers = append(b.tickers, tick)
	}
}
