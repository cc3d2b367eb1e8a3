package rebound_test

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/retrypolicy"
)

// ChargeArgs charge an order's card through a payments API.
type ChargeArgs struct {
	OrderID int64 `json:"order_id"`
	Cents   int64 `json:"cents"`
}

// Kind is the job kind, as stored in river_job.kind.
func (ChargeArgs) Kind() string { return "example_charge" }

// OperationKey names the circuit breaker every charge shares: when the
// payments API is down, charges wait instead of hammering it.
func (ChargeArgs) OperationKey() string { return "payments-api" }

// ChargeWorker works ChargeArgs.
type ChargeWorker struct {
	river.WorkerDefaults[ChargeArgs]
}

// Work would call the payments API.
func (w *ChargeWorker) Work(ctx context.Context, job *river.Job[ChargeArgs]) error { return nil }

// Insert a job in the same transaction as a business row: the job exists
// only if the order does. Rolling back the first order leaves neither
// behind; the second commits both, with the job's operation key stamped
// and its max attempts from the kind's retry policy.
func ExamplePod_InsertTx() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, exampleDatabaseURL()) // in a service: os.Getenv("DATABASE_URL")
	if err != nil {
		panic(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE example_order (id bigint PRIMARY KEY, cents bigint NOT NULL)"); err != nil {
		panic(err)
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, &ChargeWorker{})
	pod, err := rebound.New(rebound.Config{
		Pool:    pool,
		Workers: workers,
		Queues:  map[string]river.QueueConfig{"payments": {MaxWorkers: 10}},
		Kinds: map[string]rebound.KindConfig{
			"example_charge": {RetryPolicy: retrypolicy.Policy{MaxAttempts: 8}},
		},
	})
	if err != nil {
		panic(err)
	}
	defer pod.Stop(ctx)

	placeOrder := func(id int64, commit bool) {
		tx, err := pool.Begin(ctx)
		if err != nil {
			panic(err)
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "INSERT INTO example_order (id, cents) VALUES ($1, $2)", id, 1250); err != nil {
			panic(err)
		}
		res, err := pod.InsertTx(ctx, tx, ChargeArgs{OrderID: id, Cents: 1250}, &river.InsertOpts{Queue: "payments"})
		if err != nil {
			panic(err)
		}
		fmt.Printf("order %d: charge job inserted, max attempts %d, metadata %s\n", id, res.Job.MaxAttempts, res.Job.Metadata)
		if commit {
			if err := tx.Commit(ctx); err != nil {
				panic(err)
			}
		}
	}
	placeOrder(1, false) // rolled back, e.g. the stock check failed after the insert
	placeOrder(2, true)

	rows, _ := pool.Query(ctx, "SELECT id FROM example_order ORDER BY id")
	orders, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		panic(err)
	}
	rows, _ = pool.Query(ctx, "SELECT (args->>'order_id')::bigint FROM river_job WHERE kind = 'example_charge' ORDER BY 1")
	charges, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		panic(err)
	}
	fmt.Println("orders:", orders, "charge jobs for orders:", charges)
	// Output:
	// order 1: charge job inserted, max attempts 8, metadata {"operation_key": "payments-api"}
	// order 2: charge job inserted, max attempts 8, metadata {"operation_key": "payments-api"}
	// orders: [2] charge jobs for orders: [2]
}
