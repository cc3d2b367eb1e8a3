package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// SideReboundNoBreaker is rebound with its circuit breaker unable to trip
// (failure threshold 1,000,000,000, failure ratio rule off): the outage
// scenario's third side.
const SideReboundNoBreaker Side = "rebound-no-breaker"

// HTTPQueueConfig holds the queue and retry settings the failure and outage
// scenarios give both sides alike.
type HTTPQueueConfig struct {
	// Workers is the queue's MaxWorkers on every side. Default 100.
	Workers int
	// FetchCooldown is the least time between two fetches, every side.
	// Default 2 ms.
	FetchCooldown time.Duration
	// FetchPollInterval is the idle poll interval, every side. Default
	// 50 ms. A retry due in the future is found by this poll.
	FetchPollInterval time.Duration
	// RetryDelay is the first retry's delay, every side: rebound's
	// InitialDelay (every retried class exponential, ±20 % jitter) and
	// plain River's ClientRetryPolicy, which computes the same
	// RetryDelay × 2^(n-1), ±20 %, capped at MaxRetryDelay. Default 100 ms.
	RetryDelay time.Duration
	// MaxRetryDelay caps a retry's delay, every side. Default 1 s.
	MaxRetryDelay time.Duration
	// Timeout bounds one round. Default 5 minutes.
	Timeout time.Duration
}

func (c HTTPQueueConfig) withDefaults() HTTPQueueConfig {
	if c.Workers <= 0 {
		c.Workers = 100
	}
	if c.FetchCooldown <= 0 {
		c.FetchCooldown = 2 * time.Millisecond
	}
	if c.FetchPollInterval <= 0 {
		c.FetchPollInterval = 50 * time.Millisecond
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = 100 * time.Millisecond
	}
	if c.MaxRetryDelay <= 0 {
		c.MaxRetryDelay = time.Second
	}
	if c.MaxRetryDelay < c.RetryDelay {
		c.MaxRetryDelay = c.RetryDelay
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	return c
}

// HTTPRound is one measured round of one side of the failure or outage
// scenario. Its Round holds the jobs, wall and CPU time; the counts come
// from river_job, job_dead_letter_queue and the upstream after the round.
type HTTPRound struct {
	Round
	// Attempts is the sum of river_job.attempt over the round's jobs: the
	// attempts used (a job parked by the breaker gets its attempt back).
	Attempts int64
	// Completed is how many jobs ended completed; Dead how many ended
	// discarded or cancelled.
	Completed, Dead int
	// DLQRows is how many job_dead_letter_queue rows the round's jobs got
	// (the capture trigger is on river_job, so plain River's discarded jobs
	// get one too).
	DLQRows int
	// Calls is how many requests the upstream answered during the round.
	Calls int64
	// Parked is the sum of metadata.snoozes: jobs the breaker gate held
	// back instead of calling (0 on plain River).
	Parked int64
	// CallsDuringOutage is the upstream's count at recovery (outage only).
	CallsDuringOutage int64 `json:",omitempty"`
	// Drain is the time from the upstream's recovery until the last job
	// finished (outage only; 0 when every job had finished before).
	Drain time.Duration `json:",omitempty"`
}

// AttemptsPerJob is Attempts / Jobs.
func (r HTTPRound) AttemptsPerJob() float64 { return float64(r.Attempts) / float64(r.Jobs) }

// CallsPerJob is Calls / Jobs.
func (r HTTPRound) CallsPerJob() float64 { return float64(r.Calls) / float64(r.Jobs) }

// SummaryOf is the median and spread of value over side's rounds.
func SummaryOf(rounds []HTTPRound, side Side, value func(HTTPRound) float64) Summary {
	var v []float64
	for _, r := range rounds {
		if r.Side == side {
			v = append(v, value(r))
		}
	}
	return summarize(v)
}

// httpJob is one job of a round: the URL it calls and its operation key.
type httpJob struct {
	url, key string
}

// plainHTTPArgs are the args of plain River's HTTP job.
type plainHTTPArgs struct {
	URL string `json:"url"`
}

func (plainHTTPArgs) Kind() string { return "bench_http" }

// plainHTTPWorker makes the call rebound's http_request makes (POST, no
// body, an Idempotency-Key, the same HTTP client), as a River user would
// write it: a non-2xx answer is an error, which River retries after its
// ClientRetryPolicy's delay until the job's max attempts.
type plainHTTPWorker struct {
	river.WorkerDefaults[plainHTTPArgs]
	client *http.Client
}

func (w *plainHTTPWorker) Work(ctx context.Context, job *river.Job[plainHTTPArgs]) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, job.Args.URL, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Idempotency-Key", "river-"+strconv.FormatInt(job.ID, 10))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s", job.Args.URL, resp.Status)
	}
	return nil
}

// expRetry is plain River's ClientRetryPolicy in these scenarios: the delay
// rebound's policy computes for an exponential class, initial × 2^(n-1)
// with n the attempt that failed, ±20 % uniform jitter, capped at max.
type expRetry struct {
	initial, max time.Duration
}

func (p expRetry) NextRetry(job *rivertype.JobRow) time.Time {
	n := len(job.Errors) + 1 // River's own count (its default policy's)
	d := p.max
	if n-1 < 40 && p.initial<<(n-1) < p.max && p.initial<<(n-1) > 0 {
		d = p.initial << (n - 1)
	}
	d = time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return time.Now().Add(min(d, p.max))
}

// httpSide is one side of an HTTP round: a plain River client or a pod.
type httpSide struct {
	kind   string
	insert func(ctx context.Context, jobs []httpJob, maxAttempts int) error
	start  func(ctx context.Context) error
	stop   func(ctx context.Context) error
}

func riverHTTPSide(pool *pgxpool.Pool, q HTTPQueueConfig, client *http.Client) (*httpSide, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &plainHTTPWorker{client: client})
	c, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: q.Workers}},
		FetchCooldown:     q.FetchCooldown,
		FetchPollInterval: q.FetchPollInterval,
		RetryPolicy:       expRetry{initial: q.RetryDelay, max: q.MaxRetryDelay},
		Workers:           workers,
		Logger:            slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	return &httpSide{
		kind: plainHTTPArgs{}.Kind(),
		insert: func(ctx context.Context, js []httpJob, maxAttempts int) error {
			params := make([]river.InsertManyParams, len(js))
			for i, j := range js {
				params[i] = river.InsertManyParams{Args: plainHTTPArgs{URL: j.url}, InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts}}
			}
			_, err := c.InsertManyFast(ctx, params)
			return err
		},
		start: c.Start,
		stop:  c.Stop,
	}, nil
}

func reboundHTTPSide(pool *pgxpool.Pool, q HTTPQueueConfig, client *http.Client, maxAttempts int, br breaker.Settings) (*httpSide, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &jobs.HTTPRequestWorker{Client: client})
	pod, err := rebound.New(rebound.Config{
		Pool:              pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: q.Workers}},
		FetchCooldown:     q.FetchCooldown,
		FetchPollInterval: q.FetchPollInterval,
		RetryPolicy: retrypolicy.Policy{
			MaxAttempts:  maxAttempts,
			InitialDelay: q.RetryDelay,
			MaxDelay:     q.MaxRetryDelay,
			MinDelay:     time.Millisecond,
			Jitter:       retrypolicy.JitterProportional,
			// server_error's default strategy is exponential already;
			// said here so both sides' delays are the same formula.
			Rules: map[retrypolicy.Class]retrypolicy.Rule{
				retrypolicy.ClassServerError: {Retry: true, Strategy: retrypolicy.StrategyExponential},
			},
		},
		Breaker:    breaker.Config{Settings: br},
		Registerer: prometheus.NewRegistry(),
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		return nil, err
	}
	return &httpSide{
		kind: jobs.KindHTTPRequest,
		insert: func(ctx context.Context, js []httpJob, maxAttempts int) error {
			params := make([]river.InsertManyParams, len(js))
			for i, j := range js {
				params[i] = river.InsertManyParams{
					Args:       jobs.HTTPRequestArgs{URL: j.url, ExplicitOperationKey: j.key, TimeoutSeconds: 30},
					InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts},
				}
			}
			_, err := pod.Client().InsertManyFast(ctx, params)
			return err
		},
		start: pod.Start,
		stop:  pod.Stop,
	}, nil
}

// runHTTPRound empties river_job and the breaker rows, inserts js through
// side (not timed), starts it and waits until every job of the side's kind
// has finished; then it stops the side and reads the counts. With outage >
// 0 the upstream is down from before the start until outage after it.
func runHTTPRound(ctx context.Context, pool *pgxpool.Pool, up *Upstream, q HTTPQueueConfig, sideName Side, side *httpSide,
	js []httpJob, maxAttempts int, outage time.Duration,
) (HTTPRound, error) {
	if _, err := pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		return HTTPRound{}, err
	}
	if _, err := pool.Exec(ctx, "DELETE FROM circuit_breaker_state"); err != nil {
		return HTTPRound{}, err
	}
	if err := side.insert(ctx, js, maxAttempts); err != nil {
		return HTTPRound{}, fmt.Errorf("insert: %w", err)
	}
	type recovery struct {
		at    time.Time
		calls int64
	}
	recovered := make(chan recovery, 1)
	up.SetDown(outage > 0)
	defer up.SetDown(false)
	calls0 := up.Calls()
	cpu0, t0 := processCPU(), time.Now()
	if outage > 0 {
		timer := time.AfterFunc(outage, func() {
			up.SetDown(false)
			recovered <- recovery{at: time.Now(), calls: up.Calls()}
		})
		defer timer.Stop()
	}
	// Labelled as in the no-op scenario: go tool pprof -tagfocus side=rebound.
	var err error
	pprof.Do(ctx, pprof.Labels("side", string(sideName)), func(context.Context) { err = side.start(ctx) })
	if err != nil {
		return HTTPRound{}, err
	}
	stop := func(err error) error {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		return errors.Join(err, side.stop(stopCtx))
	}
	deadline := t0.Add(q.Timeout)
	for {
		var open int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job
			WHERE kind = $1 AND state NOT IN ('completed', 'cancelled', 'discarded')`, side.kind).Scan(&open); err != nil {
			return HTTPRound{}, stop(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			return HTTPRound{}, stop(fmt.Errorf("%d of %d jobs still unfinished after %s", open, len(js), q.Timeout))
		}
		select {
		case <-ctx.Done():
			return HTTPRound{}, stop(ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
	end := time.Now()
	r := HTTPRound{Round: Round{Side: sideName, Jobs: len(js), Elapsed: end.Sub(t0), CPU: processCPU() - cpu0}}
	if err := stop(nil); err != nil {
		return HTTPRound{}, err
	}
	r.Calls = up.Calls() - calls0
	if outage > 0 {
		select {
		case rec := <-recovered:
			r.CallsDuringOutage = rec.calls - calls0
			if end.After(rec.at) {
				r.Drain = end.Sub(rec.at)
			}
		default: // every job finished while the upstream was down
			r.CallsDuringOutage = r.Calls
		}
	}
	err = pool.QueryRow(ctx, `SELECT coalesce(sum(attempt), 0),
			count(*) FILTER (WHERE state = 'completed'),
			count(*) FILTER (WHERE state IN ('cancelled', 'discarded')),
			coalesce(sum((metadata->>'snoozes')::bigint), 0),
			(SELECT count(*) FROM job_dead_letter_queue d WHERE d.river_job_id IN (SELECT id FROM river_job WHERE kind = $1))
		FROM river_job WHERE kind = $1`, side.kind).Scan(&r.Attempts, &r.Completed, &r.Dead, &r.Parked, &r.DLQRows)
	return r, err
}
