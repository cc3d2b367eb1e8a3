package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/retrypolicy"
)

// endpoint is one go-httpbin endpoint the demo sends jobs to.
type endpoint struct {
	path  string // path and query on go-httpbin
	count int    // jobs
}

// key is the endpoint's operation key: "httpbin" and the path without its
// query, so each endpoint has a circuit breaker of its own.
func (e endpoint) key() string {
	p, _, _ := strings.Cut(e.path, "?")
	return "httpbin" + p
}

// mix is the demo's jobs: 50 in all.
var mix = []endpoint{
	{"/status/200", 20}, {"/status/503", 5}, {"/status/429", 5}, {"/status/404", 5},
	{"/delay/1", 5}, {"/unstable?failure_rate=0.5", 10},
}

// jobRow is what the summary reads of one finished job.
type jobRow struct {
	key      string
	state    string
	attempt  int
	snoozes  int
	attempts []retrypolicy.Attempt
}

// deadLetter is one group of dead-letter entries of a key.
type deadLetter struct {
	class, finalState string
	maxAttempts, n    int
}

// breakerRow is what the summary reads of a key's breaker.
type breakerRow struct {
	state             string
	failures, trips   int
	probeDue, present bool
}

// summarise tells, per endpoint, what happened to its jobs: each attempt's
// outcome with the failure class and the backoff the policy chose (read from
// the jobs' histories, metadata.output.attempts), what the circuit breaker
// held back, and what went to the dead-letter queue and why; then the
// totals. Jobs, attempts (calls to the upstream) and calls avoided are
// counted apart.
func summarise(ctx context.Context, pool *pgxpool.Pool, w io.Writer) error {
	jobs, err := readJobs(ctx, pool)
	if err != nil {
		return err
	}
	dlq, err := readDeadLetters(ctx, pool)
	if err != nil {
		return err
	}
	breakers, err := readBreakers(ctx, pool)
	if err != nil {
		return err
	}

	var total struct{ jobs, completed, retried, dead, notRetried, calls, avoided int }
	fmt.Fprintln(w)
	for _, e := range mix {
		var mine []jobRow
		for _, j := range jobs {
			if j.key == e.key() {
				mine = append(mine, j)
			}
		}
		fmt.Fprintf(w, "  %s   (operation key %s, %d jobs)\n", e.path, e.key(), len(mine))
		for _, line := range attemptLines(mine) {
			fmt.Fprintf(w, "    %s\n", line)
		}

		var completed, retried, calls, avoided int
		var seen []retrypolicy.Class
		for _, j := range mine {
			calls += j.attempt
			avoided += j.snoozes
			if j.state == "completed" {
				completed++
				if j.attempt > 1 {
					retried++
				}
			}
			for _, a := range j.attempts {
				if !slices.Contains(seen, a.Class) {
					seen = append(seen, a.Class)
				}
			}
		}
		outcome := []string{}
		if completed > 0 {
			s := fmt.Sprintf("%d completed", completed)
			if retried > 0 {
				s += fmt.Sprintf(" (%d after a retry)", retried)
			}
			outcome = append(outcome, s)
		}
		for _, d := range dlq[e.key()] {
			why := fmt.Sprintf("all %d attempts used", d.maxAttempts)
			if d.finalState == "cancelled" {
				why = "not retried"
				total.notRetried += d.n
			}
			outcome = append(outcome, fmt.Sprintf("%d to the dead-letter queue: %s, %s", d.n, d.class, why))
			total.dead += d.n
		}
		fmt.Fprintf(w, "    outcome     %s\n", strings.Join(outcome, "; "))
		fmt.Fprintf(w, "    breaker     %s\n", breakerLine(breakers[e.key()], seen, avoided))
		fmt.Fprintln(w)

		total.jobs += len(mine)
		total.completed += completed
		total.retried += retried
		total.calls += calls
		total.avoided += avoided
	}
	fmt.Fprintf(w, "  jobs            %d: %d completed (%d after a retry), %d in the dead-letter queue (%d not retried, %d with every attempt used)\n",
		total.jobs, total.completed, total.retried, total.dead, total.notRetried, total.dead-total.notRetried)
	fmt.Fprintf(w, "  upstream calls  %d made (one per attempt), %d avoided by open circuit breakers (a job held back instead of calling: snoozed, no attempt used)\n\n",
		total.calls, total.avoided)
	return nil
}

// attemptLines gives one line per attempt number: how many jobs succeeded
// on it and, per failure class, how many failed and what followed (the
// backoff chosen, its range over the jobs, or the end of the job).
func attemptLines(jobs []jobRow) []string {
	type group struct {
		class      retrypolicy.Class
		status     string
		strategy   retrypolicy.Strategy
		fate       string // "retry", "not retried", "no attempt left"
		n          int
		minMS      int64
		maxMS      int64
		retryAfter int64
	}
	succeeded := map[int]int{}
	failed := map[int][]*group{}
	last := 0
	for _, j := range jobs {
		last = max(last, j.attempt)
		if j.state == "completed" {
			succeeded[j.attempt]++
		}
		for _, a := range j.attempts {
			fate := "retry"
			switch {
			case a.Strategy == "":
				fate = "not retried"
			case a.Final || a.DelayMS == 0:
				fate = "no attempt left"
			}
			status := httpStatus.FindString(a.Error)
			i := slices.IndexFunc(failed[a.Attempt], func(g *group) bool {
				return g.class == a.Class && g.status == status && g.fate == fate
			})
			if i < 0 {
				failed[a.Attempt] = append(failed[a.Attempt], &group{class: a.Class, status: status, strategy: a.Strategy, fate: fate, minMS: a.DelayMS, maxMS: a.DelayMS})
				i = len(failed[a.Attempt]) - 1
			}
			g := failed[a.Attempt][i]
			g.n++
			g.minMS, g.maxMS = min(g.minMS, a.DelayMS), max(g.maxMS, a.DelayMS)
			g.retryAfter = max(g.retryAfter, a.RetryAfterMS)
		}
	}
	var lines []string
	for n := 1; n <= last; n++ {
		var parts []string
		if succeeded[n] > 0 {
			parts = append(parts, fmt.Sprintf("%d succeeded", succeeded[n]))
		}
		for _, g := range failed[n] {
			s := fmt.Sprintf("%d failed: %s", g.n, g.class)
			if g.status != "" {
				s += " (" + g.status + ")"
			}
			switch g.fate {
			case "retry":
				s += fmt.Sprintf(" → backoff %s (%s)", msRange(g.minMS, g.maxMS), g.strategy)
				if g.retryAfter > 0 {
					s += fmt.Sprintf(", the server asked for up to %s", msRange(g.retryAfter, g.retryAfter))
				}
			default:
				s += " → " + g.fate
			}
			parts = append(parts, s)
		}
		if len(parts) > 0 {
			lines = append(lines, fmt.Sprintf("attempt %d   %s", n, strings.Join(parts, "; ")))
		}
	}
	return lines
}

var httpStatus = regexp.MustCompile(`HTTP [0-9]{3}`)

// msRange formats a range of milliseconds: "213–290 ms", "0.85–1.20 s", or
// one value when both ends are equal.
func msRange(lo, hi int64) string {
	f := func(ms int64) string {
		if hi >= 1000 {
			return fmt.Sprintf("%.2f", float64(ms)/1000)
		}
		return fmt.Sprint(ms)
	}
	unit := " ms"
	if hi >= 1000 {
		unit = " s"
	}
	if lo == hi {
		return f(lo) + unit
	}
	return f(lo) + "–" + f(hi) + unit
}

// breakerLine describes a key's breaker: its state now, what it counted and
// the upstream calls it avoided (avoided: the times its jobs were held back,
// snoozed instead of calling the upstream). A key without a row never had a
// failure the breaker counts.
func breakerLine(b breakerRow, classes []retrypolicy.Class, avoided int) string {
	if !b.present {
		var ignored []string
		for _, c := range classes {
			if !c.DownstreamUnhealthy() {
				ignored = append(ignored, string(c))
			}
		}
		if len(ignored) == 0 {
			return "closed (no failures)"
		}
		verb := "says"
		if len(ignored) > 1 {
			verb = "say"
		}
		return fmt.Sprintf("closed (no failure counted: %s %s nothing about the upstream's health)", strings.Join(ignored, ", "), verb)
	}
	s := b.state + " now"
	if b.probeDue {
		s += " (probe due)"
	}
	if b.failures == 0 {
		s += ": no failure since its last success"
	} else {
		s += fmt.Sprintf(": %d consecutive failures counted", b.failures)
	}
	if b.trips > 0 {
		s += fmt.Sprintf(", opened %d time(s) since it last closed (each failed probe opens it again)", b.trips)
	}
	if avoided == 0 {
		return s + "; no upstream call avoided"
	}
	return s + fmt.Sprintf("; %d upstream calls avoided while it was open (jobs snoozed instead of calling, no attempt used)", avoided)
}

func readJobs(ctx context.Context, pool *pgxpool.Pool) ([]jobRow, error) {
	rows, err := pool.Query(ctx, `SELECT coalesce(args->>'operation_key', ''), state::text, attempt,
			coalesce((metadata->>'snoozes')::int, 0), metadata
		FROM river_job WHERE kind = 'http_request' ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var jobs []jobRow
	for rows.Next() {
		var j jobRow
		var meta []byte
		if err := rows.Scan(&j.key, &j.state, &j.attempt, &j.snoozes, &meta); err != nil {
			return nil, err
		}
		out, err := retrypolicy.ParseOutput(meta)
		if err != nil {
			return nil, fmt.Errorf("job history: %w", err)
		}
		j.attempts = out.Attempts
		jobs = append(jobs, j)
	}
	return jobs, rows.Err()
}

func readDeadLetters(ctx context.Context, pool *pgxpool.Pool) (map[string][]deadLetter, error) {
	rows, err := pool.Query(ctx, `SELECT coalesce(operation_key, ''), failure_class, final_state, max_attempts, count(*)
		FROM job_dead_letter_queue GROUP BY 1, 2, 3, 4 ORDER BY 1, 5 DESC, 2`)
	if err != nil {
		return nil, err
	}
	out := map[string][]deadLetter{}
	var key string
	var d deadLetter
	_, err = pgx.ForEachRow(rows, []any{&key, &d.class, &d.finalState, &d.maxAttempts, &d.n}, func() error {
		out[key] = append(out[key], d)
		return nil
	})
	return out, err
}

func readBreakers(ctx context.Context, pool *pgxpool.Pool) (map[string]breakerRow, error) {
	rows, err := pool.Query(ctx, `SELECT breaker_key, state, failure_count, trip_count,
			state = 'open' AND next_probe_at <= now()
		FROM circuit_breaker_state`)
	if err != nil {
		return nil, err
	}
	out := map[string]breakerRow{}
	var key string
	var b breakerRow
	_, err = pgx.ForEachRow(rows, []any{&key, &b.state, &b.failures, &b.trips, &b.probeDue}, func() error {
		b.present = true
		out[key] = b
		return nil
	})
	return out, err
}
