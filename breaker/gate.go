package breaker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/internal/failurelog"
	"github.com/rebound-queue/rebound/storable"
)

// Metadata keys the gate writes on a parked job (river.MetadataSet; cleared
// to null when the job is admitted).
const (
	// MetadataParkedKey holds the operation key a job is parked behind.
	MetadataParkedKey = "breaker_parked_key"
	// MetadataParkedAt holds when the job was first parked (RFC 3339,
	// database clock as estimated by the pod).
	MetadataParkedAt = "breaker_parked_at"
	// MetadataOperationKey is the metadata key DefaultKeyFunc reads (the
	// jobs package's insert middleware stamps it).
	MetadataOperationKey = "operation_key"
)

// DefaultParkLogInterval is how often, while a key keeps parking jobs, the
// gate logs how many it parked since its last line.
const DefaultParkLogInterval = time.Minute

// ErrorSnooze is the snooze of a job whose gate could not reach the database
// while taking a probe slot: the job is retried without using an attempt.
const ErrorSnooze = 5 * time.Second

// GateConfig configures the River gate. The zero value is usable.
type GateConfig struct {
	// KeyFunc returns a job's operation key from its row, before its args
	// are decoded. nil means DefaultKeyFunc.
	KeyFunc func(job *rivertype.JobRow) string
	// OnParkExpired decides what happens to a job parked behind key for
	// longer than the key's MaxPark; its return value is the job's result.
	// rebound's worker wires retrypolicy's terminal recorder (class
	// breaker_open, returning a river.JobCancel). nil means
	// DefaultOnParkExpired.
	OnParkExpired func(ctx context.Context, job *rivertype.JobRow, err *OpenError, parkedFor time.Duration) error
	// OnInvalidKey decides what happens to a job whose operation key breaks
	// ValidateKey's rule (err matches ErrInvalidKey and names the problem):
	// no breaker can guard it, and the job is not run. Its return value is
	// the job's result. nil means DefaultOnInvalidKey.
	OnInvalidKey func(ctx context.Context, job *rivertype.JobRow, err error) error
	// Workers is how many jobs the pod works at once (the sum of its
	// queues' MaxWorkers): the size of a wave when the gate spreads the
	// wake-up of a closed key's parked jobs (see Settings.WakeSpread and
	// WakeWave). Zero (or negative) means no wave: the wake-up is spread
	// over the whole WakeSpread.
	Workers int
	// DisableWake turns off the waker: parked jobs are then neither woken
	// when their key closes nor to probe; they wake when their snooze ends.
	DisableWake bool
	// Rand returns a uniform draw from [0, 1) for the park spread. nil
	// means math/rand/v2.Float64.
	Rand func() float64
	// ParkLogInterval is how often the gate logs, per key, the number of
	// jobs it parked since its last line (see [Gate]). Zero means
	// DefaultParkLogInterval (1 minute).
	ParkLogInterval time.Duration
}

// Gate is the River worker middleware that guards jobs with the breaker:
// a job whose key is open (or half-open with every probe slot taken) is
// snoozed — no attempt used, the downstream not called — until the breaker
// may probe, plus a spread; a job parked longer than MaxPark goes to
// OnParkExpired; a job whose key is invalid (ValidateKey) goes to
// OnInvalidKey without running. Install it first in river.Config.Middleware.
//
// Logging, at info, without a line per job: when a key that was not parking
// jobs on this pod parks its first one ("jobs parked behind circuit
// breaker", with the key, the state and the time until the breaker may
// probe); every ParkLogInterval while the key keeps parking, the number
// parked since the last line ("jobs still parked behind circuit breaker");
// and once when the key closes, the total ("circuit breaker closed: parked
// jobs wake"). Each pod logs the jobs it parked itself.
type Gate struct {
	river.MiddlewareDefaults
	b   *Breaker
	cfg GateConfig

	wakeMu  sync.Mutex
	pending map[string]time.Time // key -> when to run the second close wake-up

	parkMu  sync.Mutex
	parking map[string]*parkCount // keys that parked jobs since they were last closed

	// wakeFails logs failed wake-ups without a line per key every few
	// seconds while the database is away; used by tick only (the refresh
	// loop's goroutine).
	wakeFails failurelog.Log
}

// parkCount is what a pod parked behind one key since the key was last
// closed.
type parkCount struct {
	since      time.Time // first park
	reportedAt time.Time // last line
	unreported int64     // parked since the last line
	total      int64
}

// DefaultKeyFunc returns the job's metadata.operation_key when it is a
// non-empty string, else the job's kind.
func DefaultKeyFunc(job *rivertype.JobRow) string {
	if bytes.Contains(job.Metadata, []byte(`"`+MetadataOperationKey+`"`)) {
		var m struct {
			Key string `json:"operation_key"`
		}
		if json.Unmarshal(job.Metadata, &m) == nil && m.Key != "" {
			return m.Key
		}
	}
	return job.Kind
}

// DefaultOnParkExpired cancels the job (river.JobCancel) with an error
// wrapping the *OpenError, so its class is breaker_open.
func DefaultOnParkExpired(_ context.Context, _ *rivertype.JobRow, err *OpenError, parkedFor time.Duration) error {
	return river.JobCancel(fmt.Errorf("parked behind circuit breaker %q for %s: %w", err.Key, parkedFor.Round(time.Second), err))
}

// DefaultOnInvalidKey cancels the job (river.JobCancel) with err: the job
// ends at once, without running, and lands in the dead-letter queue with the
// reason. Retrying would not help: the key comes from the job itself.
func DefaultOnInvalidKey(_ context.Context, _ *rivertype.JobRow, err error) error {
	return river.JobCancel(err)
}

// NewGate returns the River gate over b. Call it before b.Start: the gate
// registers its waker with the breaker.
func NewGate(b *Breaker, cfg GateConfig) *Gate {
	if cfg.KeyFunc == nil {
		cfg.KeyFunc = DefaultKeyFunc
	}
	if cfg.OnParkExpired == nil {
		cfg.OnParkExpired = DefaultOnParkExpired
	}
	if cfg.OnInvalidKey == nil {
		cfg.OnInvalidKey = DefaultOnInvalidKey
	}
	cfg.Workers = max(cfg.Workers, 0)
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.ParkLogInterval <= 0 {
		cfg.ParkLogInterval = DefaultParkLogInterval
	}
	g := &Gate{b: b, cfg: cfg, pending: map[string]time.Time{}, parking: map[string]*parkCount{},
		wakeFails: failurelog.Log{Logger: b.logger, Msg: "breaker gate: waking parked jobs failed", Recovered: "breaker gate: waking parked jobs works again"}}
	if !cfg.DisableWake {
		b.addHooks(g.onChange, g.tick)
	}
	b.addHooks(g.parkLogChange, g.parkLogTick)
	return g
}

// parked counts a job parked behind key, logging the key's first one.
func (g *Gate) parked(ctx context.Context, key string, oe *OpenError) {
	now := g.b.now()
	g.parkMu.Lock()
	c, ok := g.parking[key]
	if !ok {
		c = &parkCount{since: now, reportedAt: now}
		g.parking[key] = c
	} else {
		c.unreported++
	}
	c.total++
	g.parkMu.Unlock()
	if !ok {
		g.b.logger.LogAttrs(context.WithoutCancel(ctx), slog.LevelInfo, "jobs parked behind circuit breaker",
			slog.String("key", key), slog.String("state", oe.State.String()),
			slog.String("probe_in", oe.After.Round(time.Millisecond).String()))
	}
}

// parkLogTick logs, per key, the jobs parked since the last line, once per
// ParkLogInterval.
func (g *Gate) parkLogTick(ctx context.Context) {
	now := g.b.now()
	type line struct {
		key    string
		n      int64
		total  int64
		parked time.Duration
	}
	var lines []line
	g.parkMu.Lock()
	for key, c := range g.parking {
		if c.unreported > 0 && now.Sub(c.reportedAt) >= g.cfg.ParkLogInterval {
			lines = append(lines, line{key, c.unreported, c.total, now.Sub(c.since)})
			c.unreported, c.reportedAt = 0, now
		}
	}
	g.parkMu.Unlock()
	for _, l := range lines {
		g.b.logger.LogAttrs(ctx, slog.LevelInfo, "jobs still parked behind circuit breaker",
			slog.String("key", l.key), slog.Int64("parked", l.n), slog.Int64("parked_total", l.total),
			slog.String("since", l.parked.Round(time.Second).String()))
	}
}

// parkLogChange ends a key's count when it closes, with the total.
func (g *Gate) parkLogChange(key string, _, to State, _ *Row) {
	if to != StateClosed {
		return
	}
	g.parkMu.Lock()
	c, ok := g.parking[key]
	delete(g.parking, key)
	g.parkMu.Unlock()
	if ok {
		g.b.logger.LogAttrs(context.Background(), slog.LevelInfo, "circuit breaker closed: parked jobs wake",
			slog.String("key", key), slog.Int64("parked_total", c.total),
			slog.String("since", g.b.now().Sub(c.since).Round(time.Second).String()))
	}
}

type parkMeta struct {
	Key string    `json:"breaker_parked_key"`
	At  time.Time `json:"breaker_parked_at"`
}

func readParkMeta(metadata []byte) (parkMeta, bool) {
	if !bytes.Contains(metadata, []byte(`"`+MetadataParkedKey+`"`)) {
		return parkMeta{}, false
	}
	var m struct {
		Key *string `json:"breaker_parked_key"`
		At  *string `json:"breaker_parked_at"`
	}
	if json.Unmarshal(metadata, &m) != nil || m.Key == nil || *m.Key == "" {
		return parkMeta{}, false
	}
	pm := parkMeta{Key: *m.Key}
	if m.At != nil {
		pm.At, _ = time.Parse(time.RFC3339Nano, *m.At)
	}
	return pm, true
}

// Work implements rivertype.WorkerMiddleware. Whatever it returns is
// storable (see [storableResult]).
func (g *Gate) Work(ctx context.Context, job *rivertype.JobRow, doInner func(ctx context.Context) error) error {
	if err := g.work(ctx, job, doInner); err != nil {
		return storableResult(err)
	}
	return nil
}

// storableResult returns err as River can store it: River writes an
// attempt's error text (err.Error()) into river_job.errors, a jsonb column,
// unsanitised, and one NUL there fails every completion of the pod. The
// gate's own errors quote keys with %q, but OnParkExpired, OnInvalidKey and
// the jobs behind the gate are other people's code, so everything the gate
// returns goes through storable.Error (the original stays reachable with
// errors.Is / errors.As). nil and a snooze (which stores no text) are
// returned as they are. Never inlined into Work (see admit).
//
//go:noinline
func storableResult(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*rivertype.JobSnoozeError](err); ok {
		return err
	}
	return storable.Error(err)
}

func (g *Gate) work(ctx context.Context, job *rivertype.JobRow, doInner func(ctx context.Context) error) error {
	p, ok, err := g.admit(ctx, job)
	if !ok {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			// The job panicked (River records it): free a probe slot
			// without deciding anything, then let the panic go on.
			p.Done(ctx, context.Canceled)
		}
	}()
	err = doInner(ctx)
	finished = true
	g.done(ctx, p, err)
	return err // the job's own result, snooze included
}

// Admit is the gate's decision before an attempt, for a caller that runs
// the gate inline in a worker middleware of its own rather than installing
// it in river.Config.Middleware (rebound's pod runs its metrics, the gate
// and the attempt recorder as one middleware layer). It does what Work
// does before calling the job:
//
//   - run true: the job may run; p is its permit, and the caller must hand
//     the attempt's result to Finish exactly once, context.Canceled when
//     the attempt panicked (that frees a probe slot without deciding
//     anything);
//   - run false: the job does not run (its key is open, or invalid, or the
//     probe slot could not be taken); err is what the job returns instead
//     (a river.JobSnooze, or what OnParkExpired or OnInvalidKey returned),
//     storable as Work's result is, and Finish is not called.
func (g *Gate) Admit(ctx context.Context, job *rivertype.JobRow) (p Permit, run bool, err error) {
	p, run, err = g.admit(ctx, job)
	if !run {
		err = storableResult(err)
	}
	return p, run, err
}

// Finish reports the result of an attempt Admit let run to the key's
// breaker: nil is a success, an error a failure (by the breaker's
// classifier), and a snooze (the job chose to wait) or context.Canceled
// decides nothing and only frees the permit's probe slot.
func (g *Gate) Finish(ctx context.Context, p Permit, err error) { g.done(ctx, p, err) }

// admit asks the breaker of the job's key: ok with the permit to run, or
// not ok with what the job returns instead (a snooze, a cancel). It and
// done are apart from work, and never inlined there, so that their locals
// do not enlarge the stack frame every job's goroutine pays for (a deeper
// frame made each job's goroutine grow, that is copy, its stack).
//
//go:noinline
func (g *Gate) admit(ctx context.Context, job *rivertype.JobRow) (Permit, bool, error) {
	key := g.cfg.KeyFunc(job)
	if !bytes.Contains(job.Metadata, []byte(`"`+MetadataOperationKey+`"`)) {
		// A job inserted without the key in its metadata (by a producer
		// other than rebound's) gets it, so whatever reads the job later
		// (the dead-letter capture) sees the key its breaker used.
		_ = river.MetadataSet(ctx, MetadataOperationKey, key)
	}
	p, err := g.b.Allow(ctx, key)
	if err != nil {
		if oe, ok := errors.AsType[*OpenError](err); ok {
			return Permit{}, false, g.park(ctx, job, key, oe)
		}
		if errors.Is(err, ErrInvalidKey) {
			return Permit{}, false, g.cfg.OnInvalidKey(ctx, job, err)
		}
		g.b.logger.WarnContext(ctx, "breaker gate: snoozing job", "job_id", job.ID, "key", key, "error", err)
		return Permit{}, false, river.JobSnooze(ErrorSnooze)
	}
	if _, parked := readParkMeta(job.Metadata); parked {
		_ = river.MetadataSet(ctx, MetadataParkedKey, nil)
		_ = river.MetadataSet(ctx, MetadataParkedAt, nil)
	}
	return p, true, nil
}

// done reports the attempt's outcome to the breaker; see admit.
//
//go:noinline
func (g *Gate) done(ctx context.Context, p Permit, err error) {
	outcome := err
	if _, ok := errors.AsType[*rivertype.JobSnoozeError](err); ok {
		outcome = context.Canceled // the job chose to wait: decides nothing
	}
	p.Done(ctx, outcome)
}

// park snoozes a refused job until the breaker may probe plus a spread, or
// hands it to OnParkExpired once it has been parked longer than MaxPark.
func (g *Gate) park(ctx context.Context, job *rivertype.JobRow, key string, oe *OpenError) error {
	st := g.b.Settings(key)
	now := g.b.dbNow()
	pm, ok := readParkMeta(job.Metadata)
	if !ok || pm.Key != key || pm.At.IsZero() || pm.At.After(now) {
		pm = parkMeta{Key: key, At: now}
	}
	parkedFor := now.Sub(pm.At)
	if parkedFor >= st.MaxPark {
		// The job ends here; a replay of it must start its parking afresh.
		_ = river.MetadataSet(ctx, MetadataParkedKey, nil)
		_ = river.MetadataSet(ctx, MetadataParkedAt, nil)
		return g.cfg.OnParkExpired(ctx, job, oe, parkedFor)
	}
	d := oe.After + time.Duration(g.cfg.Rand()*float64(st.ParkSpread))
	// Wake in time to be dead-lettered close to MaxPark.
	d = min(d, st.MaxPark-parkedFor+time.Second)
	d = max(d, 0) // JobSnooze panics on a negative duration
	_ = river.MetadataSet(ctx, MetadataParkedKey, key)
	_ = river.MetadataSet(ctx, MetadataParkedAt, pm.At.UTC().Format(time.RFC3339Nano))
	g.parked(ctx, key, oe)
	return river.JobSnooze(d)
}

// onChange schedules the wake-up of jobs parked behind a key that closed,
// and has the breaker run it at once rather than at its next refresh.
func (g *Gate) onChange(key string, _, to State, _ *Row) {
	if to != StateClosed {
		return
	}
	g.wakeMu.Lock()
	// Now; again once the jobs this pod was parking when it saw the close
	// are written (River's completer writes a snooze within 50 ms); and
	// once more a few seconds later, for the stragglers of slower pods.
	now := g.b.now()
	g.pending[key+"\x00now"] = time.Time{}
	g.pending[key+"\x00soon"] = now.Add(closeRewake)
	g.pending[key] = now.Add(3 * time.Second)
	g.wakeMu.Unlock()
	g.b.kickTickers()
	time.AfterFunc(closeRewake, g.b.kickTickers)
}

// probeRewake is how long the gate waits before it wakes probe jobs of the
// same generation again, when the key still waits for a probe (the woken
// jobs were parked again: another pod's job took the slot and gave it back,
// or the pod's estimate of the database clock was early).
const probeRewake = 2 * time.Second

// probeKickMargin is how long after its estimate of the probe time the gate
// wakes the probe jobs: the estimate of the database clock may be a little
// early.
const probeKickMargin = 20 * time.Millisecond

// closeRewake is when, after a key's close, the gate wakes its parked jobs
// a second time: the jobs that were being parked when the first wake-up
// ran.
const closeRewake = 500 * time.Millisecond

// tick runs, once per refresh, the wake-ups due: parked jobs of closed keys,
// and a few parked jobs of keys whose probe time has come (to be the probes).
// A pass's failed wake-ups are logged through wakeFails: the first at warn,
// then at most one line a minute while passes keep failing (the database is
// away: otherwise one line per open key every probeRewake), and the
// recovery once.
func (g *Gate) tick(ctx context.Context) {
	now := g.b.now()
	woke := false     // a wake-up was tried this pass
	var wakeErr error // the pass's first failed wake-up
	defer func() {
		if woke && ctx.Err() == nil {
			g.wakeFails.Observe(ctx, now, wakeErr)
		}
	}()
	var due []string
	g.wakeMu.Lock()
	for k, at := range g.pending {
		if !at.After(now) {
			due = append(due, k)
			delete(g.pending, k)
		}
	}
	g.wakeMu.Unlock()
	for _, k := range due {
		key, _, _ := bytes.Cut([]byte(k), []byte{0})
		woke = true
		if n, spread, err := g.wakeClosed(ctx, string(key), g.b.Settings(string(key))); err != nil {
			if wakeErr == nil {
				wakeErr = fmt.Errorf("key %q: wake parked jobs: %w", string(key), err)
			}
		} else if n > 0 {
			g.b.logger.DebugContext(ctx, "breaker gate: woke parked jobs", "key", string(key), "jobs", n,
				"spread", spread.String())
		}
	}
	dbNow := g.b.dbNow()
	g.b.views.Range(func(_, val any) bool {
		v := val.(*keyView)
		s := v.snap.Load()
		if !s.exists || (v.probeWokenGen.Load() == s.generation && now.Sub(time.Unix(0, v.probeWokenAt.Load())) < probeRewake) {
			return true
		}
		st := g.b.Settings(v.key)
		if until := s.nextProbeAt.Sub(dbNow); s.state == StateOpen && until > 0 {
			// Not yet: run again just after the probe time rather than up
			// to a refresh interval after it.
			if until <= g.b.cfg.RefreshInterval && v.probeKickGen.Swap(s.generation) != s.generation {
				time.AfterFunc(until+probeKickMargin, g.b.kickTickers)
			}
			return true
		}
		ready := s.state == StateOpen ||
			(s.state == StateHalfOpen && func() bool { n, _ := liveProbes(s.probes, dbNow, st.ProbeTimeout); return n == 0 }())
		if !ready {
			return true
		}
		v.probeWokenGen.Store(s.generation)
		v.probeWokenAt.Store(now.UnixNano())
		woke = true
		if _, err := g.wakeProbes(ctx, v.key, st.HalfOpenMaxProbes); err != nil && wakeErr == nil {
			wakeErr = fmt.Errorf("key %q: wake probe jobs: %w", v.key, err)
		}
		return true
	})
}

// wakeSafeSQL holds for a row of river_job j that may go from scheduled to
// available without breaking River's unique index (which covers a unique
// job while its state is in its unique_states): the job has no unique
// states, or it is already covered as scheduled, or it would not be covered
// as available. A job for which it does not hold stays scheduled, and
// River's scheduler makes it available (as River would, with its unique
// checks).
const wakeSafeSQL = `(j.unique_key IS NULL OR j.unique_states IS NULL
	OR river_job_state_in_bitmask(j.unique_states, 'scheduled')
	OR NOT river_job_state_in_bitmask(j.unique_states, 'available'))`

// wakeClosed wakes the n jobs parked behind key: each becomes available
// (see wakeSafeSQL), due at a uniform time in [now, now + spread), where
// spread = ceil(n / Workers) * st.WakeWave, at most st.WakeSpread
// (st.WakeSpread when Workers is 0). Available at once, because River's
// scheduler, which moves due scheduled jobs to available, runs only every
// 5 seconds; River's producers fetch an available job once its
// scheduled_at has come. Parked jobs are mostly scheduled, but River stores
// a snooze shorter than its scheduler's interval as available, due later:
// such a job due after the spread is brought forward too. A parked job
// already due within the spread keeps its time. Rows another transaction
// holds are skipped, and woken jobs are due within the spread, so running
// it from every pod, twice, is harmless. It returns how many jobs it woke
// and the spread.
func (g *Gate) wakeClosed(ctx context.Context, key string, st Settings) (int64, time.Duration, error) {
	var n int64
	var spreadMs float64
	err := g.b.pool.QueryRow(ctx, `WITH parked AS (
			SELECT id FROM river_job
			WHERE state IN ('scheduled', 'available')
			  AND metadata @> jsonb_build_object('`+MetadataParkedKey+`', $1::text)
			FOR UPDATE SKIP LOCKED
		), spread AS (
			SELECT make_interval(secs => CASE WHEN $3::int > 0
				THEN least($2::float8, ceil(count(*)::float8 / $3::int) * $4::float8)
				ELSE $2::float8 END / 1000) AS d
			FROM parked
		), woken AS (
			UPDATE river_job j SET
				state = CASE WHEN `+wakeSafeSQL+` THEN 'available' ELSE j.state END,
				scheduled_at = CASE WHEN j.scheduled_at > now() + s.d THEN now() + random() * s.d ELSE j.scheduled_at END
			FROM parked p, spread s
			WHERE j.id = p.id AND (j.scheduled_at > now() + s.d OR (j.state = 'scheduled' AND `+wakeSafeSQL+`))
			RETURNING 1
		)
		SELECT (SELECT count(*) FROM woken), (SELECT extract(epoch FROM d)::float8 * 1000 FROM spread)`,
		key, float64(st.WakeSpread.Milliseconds()), g.cfg.Workers, float64(st.WakeWave.Milliseconds())).Scan(&n, &spreadMs)
	return n, time.Duration(math.Round(spreadMs)) * time.Millisecond, err
}

// wakeProbes makes up to n jobs parked behind key, the earliest due, due
// now and available (see wakeSafeSQL), so that one of them takes the probe
// slot without waiting for River's scheduler — unless they are already due
// within a second (a pod woke them just before): the candidates are the
// parked jobs still scheduled, and those stored as available (see
// wakeClosed) due after now - 5 s; one due longer ago is in a queue no pod
// works now (or a paused one) and must not hold the probe off.
func (g *Gate) wakeProbes(ctx context.Context, key string, n int) (int64, error) {
	tag, err := g.b.pool.Exec(ctx, `UPDATE river_job j SET
			state = CASE WHEN `+wakeSafeSQL+` THEN 'available' ELSE j.state END,
			scheduled_at = least(j.scheduled_at, now())
		WHERE j.id IN (
			SELECT id FROM river_job
			WHERE metadata @> jsonb_build_object('`+MetadataParkedKey+`', $1::text)
			  AND (state = 'scheduled' OR (state = 'available' AND scheduled_at > now() - interval '5 seconds'))
			ORDER BY scheduled_at
			LIMIT $2
			FOR UPDATE SKIP LOCKED)
		AND (j.scheduled_at > now() + interval '1 second' OR (j.state = 'scheduled' AND `+wakeSafeSQL+`))`, key, n)
	return tag.RowsAffected(), err
}
