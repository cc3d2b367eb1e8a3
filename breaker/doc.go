// Package breaker is rebound's circuit breaker: one breaker per operation
// key (a downstream, e.g. the host an http_request job calls), shared by
// every pod through one row of circuit_breaker_state, so a failing
// dependency stops being hammered cluster-wide.
//
// # States
//
//	         failure_threshold consecutive failures, or
//	         failure_ratio of >= minimum_calls calls in window
//	CLOSED ─────────────────────────────────────────────────▶ OPEN ◀─────┐
//	  ▲  ▲                                                     │         │
//	  │  │ reset (operator, any state)     next_probe_at passed: │         │ a probe fails
//	  │  └──────────────────────────────── a call takes a slot   │         │ (next open timeout =
//	  │                                                         ▼         │  open_timeout x
//	  └───────────────────────────────────────────────────── HALF_OPEN ───┘  multiplier^(trips-1),
//	        success_threshold successful probes                              capped)
//
// In HALF_OPEN at most half_open_max_probes probes run at once, cluster-wide;
// a cancelled probe frees its slot and decides nothing; a probe silent for
// probe_timeout (its pod died) frees its slot. `rebound breaker open KEY
// --for 10m` moves any state to OPEN until now() + 10m.
//
// OPEN becomes HALF_OPEN only when a call comes after next_probe_at: a key
// nobody calls stays OPEN in its row. Rows read after next_probe_at has
// passed (database clock) carry Row.ProbeDue ("probe_due": true in JSON,
// "open (probe due)" in `rebound breaker list`): the breaker no longer holds
// calls off.
//
// Health, the breaker_open alert rule and the rebound_breaker_open gauge
// judge a breaker by CountsAsOpen: half-open, open before its probe time,
// or opened by failures with its probe due for less than that open's
// timeout (at least ProbeDueGrace) count as open; an expired hold set by
// hand and a probe untaken for longer do not.
//
// # Operation keys
//
// A key is 1 to MaxKeyLength (255) characters of UTF-8, not blank, without
// control characters: ValidateKey is the one rule. Allow and Execute refuse an
// invalid key with an error matching ErrInvalidKey (the call does not run;
// nothing is written or logged), the Store's operations and the admin API
// refuse it (400), the River gate hands the job to GateConfig.OnInvalidKey
// (default: cancelled into the dead-letter queue), and a CHECK constraint on
// circuit_breaker_state keeps SQL written by hand within the same bounds.
// Callers with longer natural keys (URLs, say) should shorten them first,
// as rebound's jobs package does: a prefix, "…" and a hash of the whole.
//
// # Shared state, one statement per transition
//
// Every transition is one SQL statement that locks the key's row and
// compares its generation with the one the caller's permit was issued under
// (compare-and-set), timed with the database clock now(), never a pod's
// clock. A result that belongs to an older generation changes nothing and
// is counted in rebound_breaker_stale_results_total. The statements:
//
//   - record: add a pod's failures (and the successes that came with them)
//     to a CLOSED row; trips to OPEN in the same statement when a rule says
//     so (generation+1, trip_count+1, next_probe_at = now() + open timeout).
//   - acquireProbe: OPEN with next_probe_at <= now() becomes HALF_OPEN
//     (generation+1) with this probe's token in probes; HALF_OPEN admits a
//     probe while fewer than half_open_max_probes live ones hold slots.
//   - probeSucceeded / probeFailed / releaseProbe: close (generation+1,
//     counters cleared), re-open (generation+1), or free the slot.
//   - Store.Reset / Store.Open: an operator's close / hold-open, recorded in
//     changed_by, change_reason and changed_at.
//
// A trigger on circuit_breaker_state gives a new generation to any state
// change made by hand in SQL — the seed's manual reset
//
//	UPDATE circuit_breaker_state SET state = 'closed', failure_count = 0 WHERE breaker_key = 'your_key';
//
// keeps working — and a second trigger announces every transition on the
// channel rebound_breaker (NotifyChannel).
//
// # Hot path
//
// Allow and Execute read this pod's local view. While a key is CLOSED and
// healthy, a call costs no database round trip: failures are written at
// once (concurrent ones of one pod in one statement), successes only when
// they change something (they reset a non-zero consecutive count, or feed a
// window that holds failures), in the background at most once per second
// per key. The view is refreshed by LISTEN/NOTIFY on every transition, and
// by a re-read of recently changed rows every second, so a missed
// notification leaves a pod blind for at most a second. A pod started (or
// restarted) loads every row before it admits anything.
//
// LISTEN needs a session: it does not work through PgBouncer in
// transaction mode. Give Config.ListenConfig a direct connection to
// PostgreSQL in that set-up; the 1-second refresh keeps pods correct, only
// slower, while the LISTEN connection is down.
//
// # In the worker: the River gate
//
// Gate is River worker middleware, first in the chain (breaker gate ->
// attempt recorder -> Work); rebound's pod runs it inline in its one
// attempt middleware instead, through [Gate.Admit] and [Gate.Finish]. It
// finds a job's key with a KeyFunc over the job row (default:
// metadata.operation_key, else the kind) before args are decoded. A job whose key is OPEN, or HALF_OPEN with every slot taken, is
// snoozed with river.JobSnooze — no attempt used, the downstream not called —
// until the breaker may probe plus a uniform spread in [0, park_spread), and
// marked in metadata (breaker_parked_key, breaker_parked_at). A backlog
// does not churn: a parked job sleeps through the open period and is woken
// early only when it is needed — when its key closes (every parked job) or,
// when the probe time comes, a few jobs to be the probes. Woken jobs are
// made available at once (not left scheduled for River's scheduler, which
// runs every 5 s); on a close, the n parked jobs are due spread over
// ceil(n / GateConfig.Workers) waves of wake_wave (100 ms), at most
// wake_spread (10 s), so a backlog reaches a recovering downstream no faster
// than one wave of the pod's workers per wake_wave. A job parked longer than
// max_park goes to OnParkExpired (rebound: the DLQ with class breaker_open).
//
// # Logs
//
// At info, never a line per call or job: each transition, once cluster-wide,
// by the pod whose statement made it ("circuit breaker opened", "circuit
// breaker half-open: probing", "circuit breaker re-opened: a probe failed",
// "circuit breaker closed", with the key, from and to, and for an opening
// the counts, trips and next probe time; no error text); and, from the River
// gate, per pod and key, the first parked job, a count every
// GateConfig.ParkLogInterval while jobs keep parking, and the total when the
// key closes. Changes made by hand are recorded in the row, not logged.
//
// # In-process use
//
// Breaker.Execute(ctx, key, fn) guards any call outside the queue with the
// same shared state; it is the gate retrypolicy's Do accepts. A refusal is
// an *OpenError: FailureClass() "breaker_open", RetryAfter() the time until
// the breaker may probe, errors.Is(err, ErrOpenState).
//
// # Operators
//
// `rebound breaker list|show KEY|reset KEY|open KEY --for 10m` and the
// admin API under /api/admin/breakers (NewAdminHandler). Metrics (Metrics):
// rebound_breaker_state{key}, rebound_breaker_transitions_total{key,from,to},
// rebound_breaker_short_circuited_total{key},
// rebound_breaker_stale_results_total{key}; at most MaxMetricKeys key
// values, the rest under OtherKey. Rows of keys idle for idle_ttl (default 7
// days) are removed by the CleanupArgs periodic job.
package breaker
