// Command inventory is a runnable example of rebound inside your own Go
// service. Its job kind, sync_stock, fetches a SKU's stock from a warehouse
// HTTP API and stores it in the service's own table; rebound classifies
// the ways that fails (429 rate limited, 404 not found, a body that is not
// JSON, 503 server error), retries with each class's backoff, opens the
// warehouse's circuit breaker during an outage (jobs wait instead of
// failing), and keeps what cannot succeed in the dead-letter queue.
//
// Run it against a PostgreSQL database of its own (it migrates it first, so
// not the maintenance database "postgres" nor one of your applications'):
//
//	createdb -h 127.0.0.1 -U postgres rebound_inventory
//	DATABASE_URL=postgres://postgres@127.0.0.1:5432/rebound_inventory go run ./examples/inventory
//
// Without --api it starts a demo warehouse on a loopback port and stages an
// outage; with --api it calls yours (GET {api}/stock/{sku} answering
// {"units": n}). While it runs, the pod's routes are served next to the
// service's own on --http-addr: /metrics, /readyz, /api/admin/dlq,
// /api/admin/breakers, /riverui/.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/breaker"
	"github.com/rebound-queue/rebound/deadletter"
	"github.com/rebound-queue/rebound/migrations"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// SyncStockArgs are the args of a sync_stock job: which SKU, from which
// warehouse API.
type SyncStockArgs struct {
	API string `json:"api"`
	SKU string `json:"sku"`
}

// Kind is the job kind.
func (SyncStockArgs) Kind() string { return "sync_stock" }

// OperationKey is the warehouse API's host: every job calling it shares
// one circuit breaker.
func (a SyncStockArgs) OperationKey() string {
	u, err := url.Parse(a.API)
	if err != nil {
		return ""
	}
	return "warehouse:" + u.Host
}

// SyncStockWorker works sync_stock jobs.
type SyncStockWorker struct {
	river.WorkerDefaults[SyncStockArgs]
	Pool   *pgxpool.Pool
	Client *http.Client
}

// WarehouseError is a non-2xx answer. rebound's classifier reads its
// StatusCode (429 rate_limited, 5xx server_error, 404 not_found, ...) and
// RetryAfter (the server's Retry-After, which raises the delay).
type WarehouseError struct {
	Status int
	Wait   time.Duration
}

func (e *WarehouseError) Error() string             { return fmt.Sprintf("warehouse: HTTP %d", e.Status) }
func (e *WarehouseError) StatusCode() int           { return e.Status }
func (e *WarehouseError) RetryAfter() time.Duration { return e.Wait }

// Work fetches the stock and stores it.
func (w *SyncStockWorker) Work(ctx context.Context, job *river.Job[SyncStockArgs]) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, job.Args.API+"/stock/"+url.PathEscape(job.Args.SKU), nil)
	if err != nil {
		return retrypolicy.Permanent(err) // a bad URL will not get better
	}
	resp, err := w.Client.Do(req)
	if err != nil {
		return fmt.Errorf("warehouse: %w", err) // network or timeout, by what is inside
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e := &WarehouseError{Status: resp.StatusCode}
		if d, ok := retrypolicy.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			e.Wait = d
		}
		return e
	}
	var stock struct {
		Units int `json:"units"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&stock); err != nil {
		return fmt.Errorf("warehouse: read stock of %s: %w", job.Args.SKU, err) // decode
	}
	_, err = w.Pool.Exec(ctx, `INSERT INTO inventory_stock (sku, units, synced_at) VALUES ($1, $2, now())
		ON CONFLICT (sku) DO UPDATE SET units = excluded.units, synced_at = excluded.synced_at`, job.Args.SKU, stock.Units)
	return err
}

type options struct {
	databaseURL string
	api         string
	httpAddr    string
	logger      *slog.Logger
}

func main() {
	o := options{databaseURL: os.Getenv("DATABASE_URL")}
	flag.StringVar(&o.api, "api", "", "base URL of the warehouse API (default: a demo warehouse on a loopback port, with an outage)")
	flag.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:8081", "where the service serves its routes and the pod's (/metrics, /api/admin/dlq, ...)")
	flag.Parse()
	o.logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "inventory:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	pool, err := pgxpool.New(ctx, o.databaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()

	// 1. Migrate at start-up: River's tables, then rebound's. Every replica
	// may do this at once; an advisory lock lets one migrate.
	m, err := migrations.New(pool, nil)
	if err != nil {
		return err
	}
	if _, err := m.Up(ctx); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS inventory_stock (sku text PRIMARY KEY, units int NOT NULL, synced_at timestamptz NOT NULL);
		CREATE TABLE IF NOT EXISTS inventory_sync_run (id bigserial PRIMARY KEY, skus text[] NOT NULL, started_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}

	api := o.api
	var demo *warehouse
	if api == "" {
		if demo, err = startWarehouse(); err != nil {
			return err
		}
		defer demo.close()
		api = demo.url
	}

	// 2. Register the kind, as with River.
	workers := river.NewWorkers()
	river.AddWorker(workers, &SyncStockWorker{Pool: pool, Client: &http.Client{}})

	// 3. Assemble the pod: per-kind retry policy and timeout, breaker
	// settings, metrics on the service's registry.
	registry := prometheus.NewRegistry()
	pod, err := rebound.New(rebound.Config{
		Pool:              pool,
		Workers:           workers,
		Queues:            map[string]river.QueueConfig{"inventory": {MaxWorkers: 4}},
		FetchPollInterval: 100 * time.Millisecond,
		Kinds: map[string]rebound.KindConfig{
			"sync_stock": {
				RetryPolicy: retrypolicy.Policy{MaxAttempts: 3, InitialDelay: 200 * time.Millisecond, MaxDelay: 2 * time.Second},
				Timeout:     5 * time.Second,
			},
		},
		Breaker: breaker.Config{Settings: breaker.Settings{
			FailureThreshold: 3,
			OpenTimeout:      2 * time.Second,
			ParkSpread:       500 * time.Millisecond,
		}},
		Registerer: registry,
		Logger:     o.logger,
	})
	if err != nil {
		return err
	}

	// 4. Serve the pod's routes next to the service's own.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stock/{sku}", func(w http.ResponseWriter, r *http.Request) {
		var units int
		if err := pool.QueryRow(r.Context(), "SELECT units FROM inventory_stock WHERE sku = $1", r.PathValue("sku")).Scan(&units); err != nil {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"units": %d}`+"\n", units)
	})
	mux.Handle("/", pod.Handler())
	l, err := net.Listen("tcp", o.httpAddr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()
	fmt.Fprintf(out, "service on http://%s (try /metrics, /api/admin/dlq, /api/admin/breakers); warehouse %s\n", l.Addr(), api)

	// 5. Run the pod.
	if err := pod.Start(ctx); err != nil {
		return err
	}
	defer pod.Stop(context.WithoutCancel(ctx))

	s := &scenario{pod: pod, pool: pool, api: api, out: out}
	if err := s.syncRun(ctx, []string{"A-1", "A-2", "LIMIT", "GONE", "BAD"}); err != nil {
		return err
	}
	if demo != nil {
		if err := s.outage(ctx, demo); err != nil {
			return err
		}
	}
	return s.report(ctx, registry)
}

// scenario drives the example and prints what happens.
type scenario struct {
	pod  *rebound.Pod
	pool *pgxpool.Pool
	api  string
	out  io.Writer
	ids  []int64
}

// syncRun records a sync run and inserts its jobs in one transaction:
// both exist, or neither.
func (s *scenario) syncRun(ctx context.Context, skus []string) error {
	var ids []int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "INSERT INTO inventory_sync_run (skus) VALUES ($1)", skus); err != nil {
			return err
		}
		params := make([]river.InsertManyParams, len(skus))
		for i, sku := range skus {
			params[i] = river.InsertManyParams{Args: SyncStockArgs{API: s.api, SKU: sku}, InsertOpts: &river.InsertOpts{Queue: "inventory"}}
		}
		res, err := s.pod.InsertManyTx(ctx, tx, params)
		for _, r := range res {
			ids = append(ids, r.Job.ID)
		}
		return err
	})
	if err != nil {
		return err
	}
	s.ids = append(s.ids, ids...)
	fmt.Fprintf(s.out, "sync run: %d jobs inserted with the run's row\n", len(ids))
	return s.waitFinished(ctx, ids)
}

// outage makes the demo warehouse answer 503 until the breaker opens, then
// recovers it: the jobs parked behind the breaker run once a probe
// succeeds.
func (s *scenario) outage(ctx context.Context, demo *warehouse) error {
	demo.outage.Store(true)
	fmt.Fprintln(s.out, "outage: the warehouse answers 503")
	key := SyncStockArgs{API: s.api}.OperationKey()
	var ids []int64
	for i := 1; i <= 6; i++ {
		res, err := s.pod.Insert(ctx, SyncStockArgs{API: s.api, SKU: fmt.Sprintf("B-%d", i)}, &river.InsertOpts{Queue: "inventory"})
		if err != nil {
			return err
		}
		ids = append(ids, res.Job.ID)
	}
	s.ids = append(s.ids, ids...)
	if err := waitUntil(ctx, 30*time.Second, func() (bool, error) { return s.pod.Breaker().State(key) == breaker.StateOpen, nil }); err != nil {
		return fmt.Errorf("the breaker did not open: %w", err)
	}
	fmt.Fprintf(s.out, "breaker %s: open; its jobs wait (snoozed, no attempt used) instead of failing\n", key)
	demo.outage.Store(false)
	fmt.Fprintln(s.out, "outage over: a probe will close the breaker")
	return s.waitFinished(ctx, ids)
}

// waitFinished waits until every job of ids is completed, cancelled or
// discarded.
func (s *scenario) waitFinished(ctx context.Context, ids []int64) error {
	return waitUntil(ctx, time.Minute, func() (bool, error) {
		var open int
		err := s.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE id = ANY($1) AND state NOT IN ('completed', 'cancelled', 'discarded')", ids).Scan(&open)
		return open == 0, err
	})
}

func waitUntil(ctx context.Context, timeout time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil || ok {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// report prints every job's outcome and history, the dead-letter queue, the
// breaker and the metrics of the kind.
func (s *scenario) report(ctx context.Context, registry *prometheus.Registry) error {
	fmt.Fprintln(s.out, "jobs:")
	for _, id := range s.ids {
		job, err := s.pod.Client().JobGet(ctx, id)
		if err != nil {
			return err
		}
		var args SyncStockArgs
		if err := json.Unmarshal(job.EncodedArgs, &args); err != nil {
			return err
		}
		out, err := retrypolicy.ParseOutput(job.Metadata)
		if err != nil {
			return err
		}
		var classes []string
		for _, a := range out.Attempts {
			classes = append(classes, fmt.Sprintf("%s (%s, then %dms)", a.Class, a.Error, a.DelayMS))
		}
		fmt.Fprintf(s.out, "  %-6s %-9s after %d attempt(s) %v\n", args.SKU, job.State, job.Attempt, classes)
	}

	page, err := s.pod.DeadLetterQueue().List(ctx, deadletter.ListParams{Filter: deadletter.Filter{Kinds: []string{"sync_stock"}}})
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, "dead-letter queue:")
	for _, e := range slices.Backward(page.Entries) {
		var args SyncStockArgs
		_ = json.Unmarshal(e.Args, &args)
		fmt.Fprintf(s.out, "  #%d %s %s: %s after %d attempt(s): %s\n", e.ID, e.Kind, args.SKU, e.FailureClass, len(e.History), e.FailureReason)
	}

	key := SyncStockArgs{API: s.api}.OperationKey()
	row, err := s.pod.Breaker().Store().Get(ctx, key)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "breaker %s: %s\n", key, row.State)

	families, err := registry.Gather()
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, "metrics:")
	for _, f := range families {
		switch f.GetName() {
		case "rebound_job_attempts_total", "rebound_job_errors_total", "rebound_breaker_transitions_total":
			for _, m := range f.GetMetric() {
				fmt.Fprintf(s.out, "  %s%s %v\n", f.GetName(), labelString(m.GetLabel()), m.GetCounter().GetValue())
			}
		}
	}
	return nil
}

func labelString(labels []*dto.LabelPair) string {
	s := "{"
	for i, l := range labels {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s=%q", l.GetName(), l.GetValue())
	}
	return s + "}"
}
