// Package rebound runs rebound inside your own Go service: your job kinds,
// worked by River, with rebound's failure classification and backoff,
// circuit breakers shared by every pod, dead-letter queue, Prometheus
// metrics and admin routes around them. The worker binary (cmd/worker) is
// itself a thin user of this package: one assembly, the same behaviour.
//
// # Migrate
//
// rebound needs River's tables and its own in the database. Migrate from
// your service's start-up with package migrations; Up applies each
// migration in a transaction that takes a PostgreSQL advisory lock first,
// so every pod may call it at the same moment: one applies each migration,
// the others wait and find nothing to do. Nothing depends on a session, so
// this works through PgBouncer in transaction mode too; a direct connection
// is still the better one for migrations.
//
//	m, err := migrations.New(pool, nil)
//	if err != nil { ... }
//	if _, err := m.Up(ctx); err != nil { ... }
//
// # Register kinds
//
// Define args and a worker as for River, and add the worker to a
// river.Workers bundle with river.AddWorker. A kind's args may implement
// [OperationKeyer] to name the circuit breaker its jobs share (the
// downstream they call); without it a job's key is Config.DefaultOperationKey
// or its kind. Return errors that say what failed: an error with a
// StatusCode() int method is an HTTP failure (429 rate_limited, 5xx
// server_error, 404 not_found, ...), a context deadline is a timeout, a
// refused connection is network; retrypolicy.Permanent, Retryable and
// WithRetryAfter force a class or a wait. Per-kind settings (retry policy,
// operation key, timeout) go in Config.Kinds.
//
//	type ChargeArgs struct {
//		Account string `json:"account"`
//		Cents   int64  `json:"cents"`
//	}
//
//	func (ChargeArgs) Kind() string           { return "charge" }
//	func (ChargeArgs) OperationKey() string   { return "payments-api" }
//
//	workers := river.NewWorkers()
//	river.AddWorker(workers, &ChargeWorker{})
//
// # Run a pod
//
// [New] checks the [Config] and assembles the pod: the River client with
// rebound's middleware around every attempt (metrics -> job counts ->
// circuit breaker gate -> attempt recorder, in one River middleware layer;
// then kind timeouts, your Config.Middleware and your Work), the retry
// policy hand-over,
// rebound's periodic jobs (inserted by River's leader), the dead-letter
// reconciliation and the metrics. [Pod.Start] checks the database (reachable,
// migrations and the dead-letter trigger in place) and starts it;
// [Pod.Stop] stops it gracefully; [Pod.Run] does both around a context.
//
//	pod, err := rebound.New(rebound.Config{
//		Pool:    pool,
//		Workers: workers,
//		Queues:  map[string]river.QueueConfig{"default": {MaxWorkers: 20}},
//		Kinds: map[string]rebound.KindConfig{
//			"charge": {RetryPolicy: retrypolicy.Policy{MaxAttempts: 8}},
//		},
//		Registerer: prometheus.DefaultRegisterer,
//		Logger:     slog.Default(),
//	})
//	if err != nil { ... }
//	mux.Handle("/", pod.Handler()) // /healthz, /readyz, /metrics, /api/admin/..., /console/, /riverui/
//	if err := pod.Run(ctx); err != nil { ... }
//
// [Pod.Handler] serves the health, readiness, metrics and admin routes for
// you to mount on your server; set Config.HTTPAddr for a server of the
// pod's own instead (the worker binary does).
//
// # Insert jobs
//
// [Pod.Insert] and [Pod.InsertTx] insert through the pod's River client with
// rebound's insert-time rules: the operation key stamped into the job's
// metadata, max attempts from the kind's retry policy and never above it,
// args and metadata PostgreSQL can store (see [Pod.InsertManyTx]). InsertTx
// joins your transaction: the job exists only if your own writes commit.
// They accept the kinds of [Config.Workers] only; another kind is refused
// with River's "job kind is not registered in the client's Workers bundle".
// There is no insert-only pod: a service that only enqueues a kind must
// register its worker too (and works it when its Queues include the job's
// queue).
//
//	tx, err := pool.Begin(ctx)
//	...
//	_, err = tx.Exec(ctx, "INSERT INTO orders (id) VALUES ($1)", id)
//	_, err = pod.InsertTx(ctx, tx, ChargeArgs{Account: "acct_1", Cents: 500}, nil)
//	err = tx.Commit(ctx)
//
// # Read the dead-letter queue and the breakers
//
// [Pod.DeadLetterQueue] lists, shows, retries and resolves dead letters
// (jobs that used up their attempts or failed with a class that is not
// retried), each with its args and every attempt; [Pod.Breaker] gives each
// operation key's state, and its Store lists, resets and opens breakers. A
// service without a pod uses deadletter.New(pool, nil) and
// breaker.NewStore(pool) on the same database.
//
//	page, err := pod.DeadLetterQueue().List(ctx, deadletter.ListParams{
//		Filter: deadletter.Filter{Kinds: []string{"charge"}},
//	})
//	row, err := pod.Breaker().Store().Get(ctx, "payments-api")
//
// # Errors
//
// A refused Config is a [*ConfigError] naming the field in Go terms, e.g.
// `rebound: Config.Kinds["charge"].RetryPolicy.MaxDelay: must be >=
// initial_delay (2s)`; New and Start never panic on bad configuration.
package rebound
