// Command worker is rebound's worker daemon, one per pod: it works jobs from
// the queues it is given and serves /healthz, /readyz, /metrics and the
// admin routes over HTTP.
//
// Every flag can also be set through the environment: --http-addr by
// REBOUND_HTTP_ADDR, --queues by REBOUND_QUEUES, and so on. The database is
// DATABASE_URL (libpq's defaults when unset); REBOUND_ADMIN_TOKEN guards the
// admin routes; DATABASE_DIRECT_URL gives the circuit breakers a direct
// connection for LISTEN behind PgBouncer. `worker --help` lists them all.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/rebound-queue/rebound"
	"github.com/rebound-queue/rebound/internal/adminauth"
	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/internal/config"
	"github.com/rebound-queue/rebound/jobs"
	"github.com/rebound-queue/rebound/monitor/notify"
	"github.com/rebound-queue/rebound/monitor/tracing"
)

func main() {
	cli.Execute(newRootCmd())
}

type options struct {
	httpAddr             string
	queues               queuesFlag
	configPath           string
	shutdownTimeout      time.Duration
	fetchCooldown        time.Duration
	fetchPollInterval    time.Duration
	jobTimeout           time.Duration
	rescueGrace          time.Duration
	rescueStuckJobsAfter time.Duration
	pollOnly             bool
	tracing              bool
	secureCookie         bool
	trustForwardedProto  bool
	logFormat            string
	logLevel             string
	id                   string

	// ref names a flag as the user gave it: --flag, or its REBOUND_
	// variable (cli.FlagRef).
	ref func(flag string) string
	// checkEnv refuses a REBOUND_ variable the worker does not read
	// (cli.CheckEnv); reads are those it reads besides its flags'.
	checkEnv func(reads ...string) error
}

func newRootCmd() *cobra.Command {
	o := &options{queues: queuesFlag{"default": rebound.DefaultQueueWorkers}}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Work rebound jobs from PostgreSQL (DATABASE_URL) until SIGTERM",
		Args:  cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return cli.BindEnv(cmd, "REBOUND")
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.ref = func(flag string) string { return cli.FlagRef(cmd, flag) }
			o.checkEnv = func(reads ...string) error { return cli.CheckEnv(cmd, "REBOUND", reads...) }
			return run(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.httpAddr, "http-addr", rebound.DefaultHTTPAddr, "address of the HTTP server (/healthz, /readyz, /metrics, admin routes)")
	f.Var(&o.queues, "queues", "queues to work and how many jobs of each at once, as name=workers,...")
	f.StringVar(&o.configPath, "config", "", "YAML file: retry policy per job kind, circuit breaker settings per operation key, alert channels")
	f.DurationVar(&o.shutdownTimeout, "shutdown-timeout", rebound.DefaultShutdownTimeout,
		"on SIGTERM, how long running jobs may finish before they are cancelled and returned to the queue (keep it under the pod's grace period)")
	f.DurationVar(&o.fetchCooldown, "fetch-cooldown", rebound.DefaultFetchCooldown,
		"least time between two fetches of one queue; a queue works at most workers/fetch-cooldown jobs per second (River's default 100ms caps 50 workers at 500 jobs/s; 20ms allows 2,500/s; 0 means the default)")
	f.DurationVar(&o.fetchPollInterval, "fetch-poll-interval", rebound.DefaultFetchPollInterval,
		"how often an idle queue polls when no LISTEN/NOTIFY wake-up arrives (the only way behind PgBouncer in transaction mode); 0 means the default")
	f.DurationVar(&o.jobTimeout, "job-timeout", rebound.DefaultJobTimeout,
		"longest a job may run, for kinds without their own timeout (http_request follows its timeout_seconds); 0 means the default")
	f.DurationVar(&o.rescueGrace, "rescue-grace", rebound.DefaultRescueGrace,
		"how long after a job's own deadline River's rescuer still leaves it alone (clock differences between pods and PostgreSQL, time to save the result); 0 means the default")
	f.DurationVar(&o.rescueStuckJobsAfter, "rescue-stuck-jobs-after", 0,
		"how long a job may stay running before it counts as lost (its pod died or hung) and the leader's rescuer retries it; a kind with a longer timeout waits for it (http_request: timeout_seconds + --rescue-grace); at least --job-timeout + --rescue-grace; 0 (the default) means exactly that, 1m15s with the defaults")
	f.BoolVar(&o.pollOnly, "poll-only", false,
		"find jobs by polling only, without LISTEN/NOTIFY (needed behind PgBouncer in transaction mode); the circuit breakers then LISTEN only on DATABASE_DIRECT_URL if set, else see transitions by their 1s re-read")
	f.BoolVar(&o.tracing, "tracing", false,
		"trace every job attempt with OpenTelemetry and export the spans over OTLP/HTTP, configured by the OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER...); http_request jobs pass a traceparent header upstream")
	f.BoolVar(&o.secureCookie, "console-secure-cookie", false,
		"mark the console's session cookie Secure on plain HTTP too (a TLS-terminating proxy serves the console); requests over TLS get it anyway")
	f.BoolVar(&o.trustForwardedProto, "trust-forwarded-proto", false,
		"mark the console's session cookie Secure when a request says X-Forwarded-Proto: https; only behind a proxy that always sets that header")
	f.StringVar(&o.logFormat, "log-format", "auto", "log format: auto (JSON unless stdout is a terminal), json or text")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.id, "id", "", "name of this worker in River (default: the host name and the start time)")
	cmd.Long = longHelp(cmd)
	return cmd
}

// longHelp is the worker's description, with every environment variable it
// reads: one per flag (generated from the flags, as cli.BindEnv reads them)
// and the others.
func longHelp(cmd *cobra.Command) string {
	var b strings.Builder
	b.WriteString(`worker leases jobs from the rebound queues in PostgreSQL (DATABASE_URL) and works them.
Run any number of workers (pods) against one database.

On SIGTERM or SIGINT it stops fetching, lets running jobs finish within
--shutdown-timeout, then cancels the rest: they return to the queue without
using an attempt.

A job whose pod died (SIGKILL, OOM) or hung is taken back by River's rescuer,
which runs every 30 s on the leader pod: once --rescue-stuck-jobs-after and
the job's own timeout (http_request: timeout_seconds + --rescue-grace) have
passed since its attempt started, it is retried as class lost. With the
defaults such a job is available again within 2 minutes of its attempt's
start (1m15s, up to 30 s until the rescuer's next run, the retry delay of
about 2 s, up to 5 s until River's scheduler releases it), and a job still
within its deadline is never taken back.

Environment:
  DATABASE_URL                     the database: a postgres:// URL or a libpq key=value string (libpq's PG* variables and defaults when unset); through PgBouncer in transaction mode add default_query_exec_mode=cache_describe
  DATABASE_DIRECT_URL              a direct connection to PostgreSQL for the circuit breakers' LISTEN, when DATABASE_URL goes through PgBouncer in transaction mode
  OTEL_EXPORTER_OTLP_ENDPOINT      with --tracing: the OTLP/HTTP collector (default https://localhost:4318; /v1/traces is appended); the other OTEL_* variables of the OpenTelemetry SDK apply too (OTEL_SERVICE_NAME, default rebound-worker; OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG; OTEL_EXPORTER_OTLP_HEADERS...)
  ` + adminauth.EnvToken + `              guards the admin routes (/api/admin/..., /console/, /riverui/): Authorization: Bearer <token>, or the console's login form (/console/login) in a browser; at least 16 characters; without it they are served only on a loopback --http-addr
`)
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		fmt.Fprintf(&b, "  %-32s --%s\n", cli.EnvName("REBOUND", f.Name), f.Name)
	})
	b.WriteString("\nEach variable follows the same rules as its flag; a flag on the command line wins over its variable." +
		"\nAny other REBOUND_* variable is refused at start as a typo, except enqueue's (REBOUND_MAX_ATTEMPTS...), a ${NAME}" +
		"\nthat --config references, and those Kubernetes sets for a Service named rebound (REBOUND_SERVICE_HOST...).")
	return b.String()
}

func run(ctx context.Context, o *options) error {
	var level slog.Level
	if level.UnmarshalText([]byte(o.logLevel)) != nil {
		return fmt.Errorf("invalid %s %q: want debug, info, warn or error", o.ref("log-level"), o.logLevel)
	}
	logger, err := cli.NewLogger(os.Stdout, o.logFormat, o.logLevel)
	if err != nil {
		return fmt.Errorf("invalid %s %q: want auto, json or text", o.ref("log-format"), o.logFormat)
	}
	if o.shutdownTimeout <= 0 {
		return fmt.Errorf("invalid %s %s: must be positive", o.ref("shutdown-timeout"), o.shutdownTimeout)
	}

	settings, err := config.Load(o.configPath)
	if err != nil {
		return config.NameSource(err, o.ref("config"))
	}
	// A REBOUND_ variable the worker does not read is most likely a typo;
	// the file's ${NAME} secrets may be named REBOUND_ too.
	if err := o.checkEnv(append([]string{adminauth.EnvToken}, settings.EnvRefs...)...); err != nil {
		return err
	}
	adminToken := os.Getenv(adminauth.EnvToken)
	if err := checkFlags(o, adminToken); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	pool, err := cli.Connect(ctx, nil)
	if err != nil {
		return err
	}
	defer pool.Close()

	breakerConfig := settings.Breaker
	if direct := os.Getenv("DATABASE_DIRECT_URL"); direct != "" {
		cc, err := pgx.ParseConfig(direct)
		if err != nil {
			return fmt.Errorf("invalid DATABASE_DIRECT_URL: %w", err)
		}
		// A typo here would otherwise start the worker and warn every 5 s
		// that the breakers' LISTEN connection is lost: check it once, as
		// DATABASE_URL is.
		if cc.ConnectTimeout == 0 {
			cc.ConnectTimeout = cli.DefaultConnectTimeout
		}
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			if missing := cli.Refused(err, cc); missing != "" {
				return fmt.Errorf("DATABASE_DIRECT_URL: %s", missing)
			}
			return fmt.Errorf("DATABASE_DIRECT_URL unreachable at %s:%d/%s as user %s: %s", cc.Host, cc.Port, cc.Database, cc.User, cli.ConnectErrorDetail(err))
		}
		_ = conn.Close(ctx)
		breakerConfig.ListenConfig = cc
	} else if o.pollOnly {
		// --poll-only means DATABASE_URL cannot LISTEN (PgBouncer in
		// transaction mode): the breakers rely on their 1s re-read.
		breakerConfig.ListenDisabled = true
	}

	httpClient := jobs.NewHTTPClient()
	var tracerProvider trace.TracerProvider // nil: no tracing
	if o.tracing {
		tp, err := startTracing(logger)
		if err != nil {
			return err
		}
		defer stopTracing(logger, tp)
		tracerProvider = tp
		httpClient.Transport = tracing.Transport(httpClient.Transport, tp)
	}

	// The job kinds this binary works: rebound's built-in ones.
	registry := jobs.Builtin()
	registry.Register(jobs.WeeklyIntelligenceKind(settings.WeeklyIntelligence))
	workers := river.NewWorkers()
	if err := registry.AddWorkers(workers, jobs.WorkerDeps{HTTPClient: httpClient, RescueGrace: o.rescueGrace}); err != nil {
		return err
	}
	kinds := make(map[string]rebound.KindConfig, len(registry.Names()))
	for _, kind := range registry.Names() {
		kinds[kind] = rebound.KindConfig{}
	}
	if err := settings.CheckKinds(o.configPath, registry); err != nil {
		return err
	}
	for _, kind := range settings.Retry.Kinds() {
		kinds[kind] = rebound.KindConfig{RetryPolicy: settings.Retry.Lookup(kind)}
	}
	// Alert deliveries: their own policy, with retry.kinds.rebound_notify.
	kinds[notify.Kind] = rebound.KindConfig{RetryPolicy: settings.NotifyRetry}
	// weekly_intelligence jobs inserted without an operation key (by a
	// producer without the config) get the reports API's host.
	if key := settings.WeeklyIntelligence.OperationKey(); key != "" {
		kc := kinds[jobs.KindWeeklyIntelligence]
		kc.OperationKey = func(string, []byte) string { return key }
		kinds[jobs.KindWeeklyIntelligence] = kc
	}
	queues := make(map[string]river.QueueConfig, len(o.queues))
	for name, n := range o.queues {
		queues[name] = river.QueueConfig{MaxWorkers: n}
	}

	pod, err := rebound.New(rebound.Config{
		Pool:                 pool,
		Workers:              workers,
		Queues:               queues,
		RetryPolicy:          settings.Retry.Default(),
		Kinds:                kinds,
		Breaker:              breakerConfig,
		BreakerIdleTTL:       settings.BreakerIdleTTL,
		PollOnly:             o.pollOnly,
		FetchCooldown:        o.fetchCooldown,
		FetchPollInterval:    o.fetchPollInterval,
		JobTimeout:           o.jobTimeout,
		RescueGrace:          o.rescueGrace,
		RescueStuckJobsAfter: o.rescueStuckJobsAfter,
		ShutdownTimeout:      o.shutdownTimeout,
		HTTPAddr:             o.httpAddr,
		AdminToken:           adminToken,
		Console:              rebound.ConsoleConfig{SecureCookie: o.secureCookie, TrustForwardedProto: o.trustForwardedProto},
		Monitoring: rebound.MonitoringConfig{
			AlertInterval: settings.Alerts.Interval,
			Channels:      settings.Alerts.Channels,
			Link:          settings.Alerts.Link,
		},
		TracerProvider: tracerProvider,
		Logger:         logger,
		ID:             o.id,
	})
	if err != nil {
		return flagError(o, err)
	}
	return pod.Run(ctx)
}

// tracingShutdownTimeout bounds the export of the last spans on stop.
const tracingShutdownTimeout = 5 * time.Second

// startTracing builds the OTLP/HTTP tracer provider from the OTEL_*
// variables and logs once where spans go; the SDK's own errors (a failed
// export) are logged as warnings.
func startTracing(logger *slog.Logger) (*sdktrace.TracerProvider, error) {
	tp, desc, err := tracing.NewProvider(context.Background())
	if err != nil {
		return nil, err
	}
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: " + err.Error())
	}))
	logger.Info("tracing on: exporting job spans", slog.String("export", desc))
	return tp, nil
}

// stopTracing exports the spans still buffered, within
// tracingShutdownTimeout, once the pod has stopped.
func stopTracing(logger *slog.Logger, tp *sdktrace.TracerProvider) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingShutdownTimeout)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		logger.Warn("tracing: last spans not exported", slog.String("error", err.Error()))
		return
	}
	logger.Info("tracing: spans flushed")
}

// checkFlags refuses, in the terms of the command line, what the pod would
// refuse in Go terms.
func checkFlags(o *options, adminToken string) error {
	if _, _, err := net.SplitHostPort(o.httpAddr); err != nil {
		return fmt.Errorf("invalid %s %q: %v (want host:port, e.g. :8080 or 127.0.0.1:8080)", o.ref("http-addr"), o.httpAddr, err)
	}
	if err := adminauth.CheckListenAddr(o.httpAddr, adminToken); err != nil {
		return err
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"job-timeout", o.jobTimeout}, {"rescue-grace", o.rescueGrace}, {"rescue-stuck-jobs-after", o.rescueStuckJobsAfter}} {
		if d.v < 0 {
			return fmt.Errorf("invalid %s %s: must not be negative", o.ref(d.flag), d.v)
		}
	}
	jobTimeout, grace := cmp.Or(o.jobTimeout, rebound.DefaultJobTimeout), cmp.Or(o.rescueGrace, rebound.DefaultRescueGrace)
	if least := jobTimeout + grace; o.rescueStuckJobsAfter > 0 && o.rescueStuckJobsAfter < least {
		return fmt.Errorf("%s (%s) must be at least %s plus %s (%s + %s = %s): a job still within its timeout would count as lost; lower the job timeout too",
			o.ref("rescue-stuck-jobs-after"), o.rescueStuckJobsAfter, o.ref("job-timeout"), o.ref("rescue-grace"), jobTimeout, grace, least)
	}
	return nil
}

// flagOf names the flag behind a field of rebound.Config.
var flagOf = map[string]string{
	"FetchCooldown":        "fetch-cooldown",
	"FetchPollInterval":    "fetch-poll-interval",
	"JobTimeout":           "job-timeout",
	"RescueGrace":          "rescue-grace",
	"RescueStuckJobsAfter": "rescue-stuck-jobs-after",
	"ShutdownTimeout":      "shutdown-timeout",
	"HTTPAddr":             "http-addr",
	"ID":                   "id",
}

// flagError says a refused setting in the command line's terms: the flag
// that set it, or its REBOUND_ variable when the environment did.
func flagError(o *options, err error) error {
	ce, ok := errors.AsType[*rebound.ConfigError](err)
	if !ok {
		return err
	}
	if strings.HasPrefix(ce.Field, "Queues[") {
		return fmt.Errorf("invalid %s: %s: %s", o.ref("queues"), ce.Field, ce.Problem)
	}
	if ce.Field == "AdminToken" {
		return fmt.Errorf("invalid %s: %s", adminauth.EnvToken, ce.Problem)
	}
	if f, ok := flagOf[ce.Field]; ok {
		return fmt.Errorf("invalid %s: %s", o.ref(f), ce.Problem)
	}
	return err
}
