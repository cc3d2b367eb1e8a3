// Command pod is a test program for package breaker's multi-process tests:
// one "pod" of rebound reduced to what the breaker needs. It is built by the
// tests and talks to them on stdin/stdout.
//
//	pod probe-race KEY N      start a breaker, print "ready", wait for a line on
//	                          stdin, then N goroutines call Allow(KEY) at once;
//	                          print "admitted <count>"
//	pod caller KEY URL EVERY  call Execute(KEY, GET URL) every EVERY until stdin
//	                          closes; print "open <unix-ms>" the first time this
//	                          pod is refused, "refused <n> calls <n>" at the end
//	pod worker QUEUE_WORKERS  run a River client with the breaker gate and the
//	                          upstream_call job kind until stdin closes
//
// Settings come from BREAKER_* environment variables (Go durations).
// DATABASE_URL names the database.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/rebound-queue/rebound/breaker"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "pod:", err)
		os.Exit(1)
	}
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}

func settings() breaker.Settings {
	n, _ := strconv.Atoi(os.Getenv("BREAKER_FAILURE_THRESHOLD"))
	return breaker.Settings{
		FailureThreshold: n,
		FailureRatio:     -1,
		OpenTimeout:      envDuration("BREAKER_OPEN_TIMEOUT"),
		ProbeTimeout:     envDuration("BREAKER_PROBE_TIMEOUT"),
		ParkSpread:       envDuration("BREAKER_PARK_SPREAD"),
		WakeSpread:       time.Second,
	}
}

func run() error {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return err
	}
	defer pool.Close()
	b, err := breaker.New(pool, breaker.Config{Settings: settings()})
	if err != nil {
		return err
	}
	if len(os.Args) < 3 {
		return errors.New("usage: pod probe-race|caller|worker ...")
	}
	switch os.Args[1] {
	case "probe-race":
		return probeRace(ctx, b)
	case "caller":
		return caller(ctx, b)
	case "worker":
		return worker(ctx, b, pool)
	}
	return fmt.Errorf("unknown mode %q", os.Args[1])
}

func probeRace(ctx context.Context, b *breaker.Breaker) error {
	key := os.Args[2]
	n, _ := strconv.Atoi(os.Args[3])
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Stop(ctx)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			if _, err := b.Allow(ctx, key); err == nil {
				admitted.Add(1)
			} else if !errors.Is(err, breaker.ErrOpenState) {
				fmt.Fprintln(os.Stderr, "allow:", err)
			}
		})
	}
	close(start)
	wg.Wait()
	fmt.Printf("admitted %d\n", admitted.Load())
	return nil
}

func caller(ctx context.Context, b *breaker.Breaker) error {
	key, url := os.Args[2], os.Args[3]
	every, err := time.ParseDuration(os.Args[4])
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Stop(ctx)
	fmt.Println("ready")
	stop := make(chan struct{})
	go func() { _, _ = bufio.NewReader(os.Stdin).ReadString('\n'); close(stop) }()
	client := &http.Client{Timeout: 5 * time.Second}
	var refused, calls int
	reported := false
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			fmt.Printf("refused %d calls %d\n", refused, calls)
			return nil
		case <-t.C:
		}
		err := b.Execute(ctx, key, func(ctx context.Context) error {
			calls++
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			req.Header.Set("X-Pod", os.Getenv("POD_NAME"))
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				return fmt.Errorf("upstream: HTTP %d", resp.StatusCode)
			}
			return nil
		})
		if errors.Is(err, breaker.ErrOpenState) {
			refused++
			if !reported {
				reported = true
				fmt.Printf("open %d\n", time.Now().UnixMilli())
			}
		}
	}
}

// UpstreamArgs is a job that GETs URL once per attempt.
type UpstreamArgs struct {
	URL string `json:"url"`
}

func (UpstreamArgs) Kind() string { return "upstream_call" }

type upstreamWorker struct {
	river.WorkerDefaults[UpstreamArgs]
	client *http.Client
}

func (w *upstreamWorker) Work(ctx context.Context, job *river.Job[UpstreamArgs]) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.URL, nil)
	req.Header.Set("X-Job-ID", strconv.FormatInt(job.ID, 10))
	req.Header.Set("X-Attempt", strconv.Itoa(job.Attempt))
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("upstream: HTTP %d", resp.StatusCode)
	}
	return nil
}

// fastRetry retries after 200 ms, so without the breaker a failing
// upstream exhausts a job's attempts within seconds.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time {
	return time.Now().Add(200 * time.Millisecond)
}

func worker(ctx context.Context, b *breaker.Breaker, pool *pgxpool.Pool) error {
	n, _ := strconv.Atoi(os.Args[2])
	gate := breaker.NewGate(b, breaker.GateConfig{})
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Stop(ctx)
	workers := river.NewWorkers()
	river.AddWorker(workers, &upstreamWorker{client: &http.Client{Timeout: 5 * time.Second}})
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}},
		FetchCooldown:     20 * time.Millisecond,
		FetchPollInterval: 100 * time.Millisecond,
		RetryPolicy:       fastRetry{},
		Workers:           workers,
		Middleware:        []rivertype.Middleware{gate},
	})
	if err != nil {
		return err
	}
	if err := client.Start(ctx); err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return client.Stop(stopCtx)
}
