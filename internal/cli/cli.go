// Package cli holds what rebound's three programs (worker, enqueue,
// rebound) share: connecting from DATABASE_URL with clear errors, logging,
// flags that environment variables can set, JSON and table output, and the
// rule that every failure is one line on stderr and exit code 1.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// DefaultConnectTimeout bounds each attempt to connect to the database when
// DATABASE_URL sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// Connect opens a pool on DATABASE_URL (libpq's PG* variables and defaults
// when it is unset) and checks that the database answers. Errors say which:
// "invalid DATABASE_URL: ..." or "database unreachable at HOST:PORT/DB as
// user U: ..." (the reason once; see [ConnectErrorDetail]), or, when the
// server answered that the database does not exist, `database "DB" does
// not exist on HOST:PORT`, or with another refusal, `HOST:PORT refused
// user U for database DB: REASON (SQLSTATE CODE)` ([Refused]).
// When DATABASE_URL is unset they say so and name the database, host, port
// and user the PG* variables and defaults gave (never the password), and
// once connected [Execute] adds the same to any error the program ends with
// (a database that is not migrated, a missing row), so a forgotten
// DATABASE_URL is not mistaken for a problem of the intended database.
func Connect(ctx context.Context, configure func(*pgxpool.Config)) (*pgxpool.Pool, error) {
	raw := os.Getenv("DATABASE_URL")
	unset := strings.TrimSpace(raw) == ""
	if err := checkURLForm(raw); err != nil {
		return nil, fmt.Errorf("invalid DATABASE_URL: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(raw)
	if err != nil {
		if unset {
			// pgx quotes the (empty) connection string: "cannot parse ``: invalid port".
			return nil, fmt.Errorf("DATABASE_URL is not set, and libpq's PG* variables are invalid: %s", strings.TrimPrefix(parseErrorMessage(err), "cannot parse ``: "))
		}
		return nil, fmt.Errorf("invalid DATABASE_URL: %s", parseErrorMessage(err))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		if unset {
			return nil, fmt.Errorf("%s: %w", unsetNote(cfg), err)
		}
		return nil, fmt.Errorf("invalid DATABASE_URL: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if missing := Refused(err, cfg.ConnConfig); missing != "" {
			if unset {
				return nil, fmt.Errorf("%s (%s)", missing, unsetNote(cfg))
			}
			return nil, errors.New(missing)
		}
		if unset {
			return nil, fmt.Errorf("database unreachable (%s): %s", unsetNote(cfg), ConnectErrorDetail(err))
		}
		cc := cfg.ConnConfig
		return nil, fmt.Errorf("database unreachable at %s:%d/%s as user %s: %s", cc.Host, cc.Port, cc.Database, cc.User, ConnectErrorDetail(err))
	}
	if unset {
		note := unsetNote(cfg)
		connectedByDefaults.Store(&note)
	}
	return pool, nil
}

// UnsetDatabaseURLNote is, when DATABASE_URL is unset, the note Connect's
// errors carry: "DATABASE_URL is not set: libpq's PG* variables and defaults
// gave database D on HOST:PORT as user U" (never the password); "" when it
// is set, or when the PG* variables do not parse. For a program that
// connects without Connect (rebound bench) to add to its errors.
func UnsetDatabaseURLNote() string {
	if strings.TrimSpace(os.Getenv("DATABASE_URL")) != "" {
		return ""
	}
	cfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return ""
	}
	return unsetNote(cfg)
}

// connectedByDefaults is, once Connect has connected with DATABASE_URL
// unset, the note saying so that Execute adds to the program's error.
var connectedByDefaults atomic.Pointer[string]

// unsetNote says that DATABASE_URL is unset and which database libpq's
// PG* variables and defaults chose: "DATABASE_URL is not set: libpq's PG*
// variables and defaults gave database D on HOST:PORT as user U". An empty
// database name is PostgreSQL's default, the user's name.
func unsetNote(cfg *pgxpool.Config) string {
	cc := cfg.ConnConfig
	db := cc.Database
	if db == "" {
		db = cc.User
	}
	return fmt.Sprintf("DATABASE_URL is not set: libpq's PG* variables and defaults gave database %s on %s:%d as user %s", db, cc.Host, cc.Port, cc.User)
}

// checkURLForm refuses what is neither a postgres:// URL nor a libpq
// key=value string, with a message saying so (pgx would only say "invalid
// keyword/value").
func checkURLForm(raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil // libpq's PG* variables and defaults
	}
	if scheme, _, ok := strings.Cut(raw, "://"); ok {
		if scheme != "postgres" && scheme != "postgresql" {
			return fmt.Errorf("scheme %q: want postgres:// or postgresql://", scheme)
		}
		return nil
	}
	if !strings.Contains(raw, "=") {
		return errors.New("want a postgres://user@host:5432/db URL or a key=value string such as \"host=localhost dbname=app\"")
	}
	return nil
}

func parseErrorMessage(err error) string {
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		// Its message repeats the whole connection string; keep the reason.
		if inner := errors.Unwrap(pe); inner != nil {
			return inner.Error()
		}
	}
	return err.Error()
}

// Refused is, when err (from connecting with cc) is the server's refusal
// (it answered with an error: a database or role that does not exist, a
// failed password, no pg_hba.conf entry), the message that says so, naming
// the server that answered (the server was reached: "unreachable" would
// send one looking for a network problem): `database "app" does not exist
// on db.internal:5432`, or for any other refusal `db.internal:5432 refused
// user u for database app: role "u" does not exist (SQLSTATE 28000)`; ""
// for any other error.
func Refused(err error, cc *pgx.ConnConfig) string {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	if !ok {
		return ""
	}
	if pe.Code == "3D000" {
		return fmt.Sprintf("%s on %s:%d", pe.Message, cc.Host, cc.Port)
	}
	return fmt.Sprintf("%s:%d refused user %s for database %s: %s (SQLSTATE %s)", cc.Host, cc.Port, cc.User, cc.Database, pe.Message, pe.Code)
}

// ConnectErrorDetail is the reason a connection attempt failed, on one
// line, for a message that already names the host, port, database and
// user: pgx's "failed to connect to `user=U database=D`:" prefix is left
// out, and each attempt's reason is given once. pgx tries each address
// twice under sslmode=prefer or allow (with TLS, then without), failing
// the same way: "dial error: dial tcp 127.0.0.1:1: connect: connection
// refused", not that twice behind "127.0.0.1:1 (127.0.0.1): ". Attempts
// that failed at different addresses (several hosts, a name resolving to
// several) keep theirs: "ADDR (HOST): REASON; ADDR (HOST): REASON". An
// error that is not pgx's connect error is returned whole, on one line.
func ConnectErrorDetail(err error) string {
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) || ce.Unwrap() == nil {
		return oneLine(err)
	}
	attempts := []error{ce.Unwrap()}
	if joined, ok := attempts[0].(interface{ Unwrap() []error }); ok {
		attempts = joined.Unwrap()
	}
	var whole []string // each attempt's "ADDR (HOST): REASON", once
	reasons := map[string]bool{}
	for _, a := range attempts {
		if text := oneLine(a); !slices.Contains(whole, text) {
			whole = append(whole, text)
		}
		if r := errors.Unwrap(a); r != nil {
			reasons[oneLine(r)] = true
		} else {
			reasons[oneLine(a)] = true
		}
	}
	if len(whole) == 1 && len(reasons) == 1 {
		for r := range reasons {
			return r
		}
	}
	return strings.Join(whole, "; ")
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// NewLogger returns a slog logger writing to w at level: JSON when format
// is "json", or when it is "auto" and w is not a terminal; text otherwise.
// An unknown format or level is an error naming it.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid log level %q (debug, info, warn, error)", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "auto", "":
		if IsTerminal(w) {
			return slog.New(slog.NewTextHandler(w, opts)), nil
		}
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("invalid log format %q (auto, json, text)", format)
	}
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// BindEnv lets environment variables set the flags of cmd that were not
// given on the command line: flag --http-addr reads PREFIX_HTTP_ADDR. A flag
// set from the environment behaves exactly as if it had been given on the
// command line: the same parsing, and cmd.Flags().Changed reports it (so a
// rule such as "--max-attempts 0 is refused, absent means the default"
// holds for PREFIX_MAX_ATTEMPTS=0 too); [FlagRef] names the variable in
// messages. A bad value is an error naming the variable. Call it from
// PreRunE.
func BindEnv(cmd *cobra.Command, prefix string) error {
	fs := cmd.Flags()
	type setting struct{ flag, env, value string }
	var settings []setting
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		name := EnvName(prefix, f.Name)
		if v, ok := os.LookupEnv(name); ok {
			settings = append(settings, setting{f.Name, name, v})
		}
	})
	for _, s := range settings {
		// FlagSet.Set marks the flag changed, as parsing it would; Value.Set
		// alone would not.
		if err := fs.Set(s.flag, s.value); err != nil {
			if cause := errors.Unwrap(err); cause != nil {
				err = cause // pflag's wrapper names the flag, not the variable
			}
			return fmt.Errorf("invalid %s %q: %s", s.env, s.value, valueProblem(fs.Lookup(s.flag), err))
		}
		if err := fs.SetAnnotation(s.flag, envAnnotation, []string{s.env}); err != nil {
			return err
		}
	}
	return nil
}

// envAnnotation marks a flag BindEnv set, with its variable's name.
const envAnnotation = "rebound_env"

// FlagRef names flag of cmd as the user gave it, for messages: its
// environment variable (REBOUND_MAX_ATTEMPTS) when [BindEnv] set it from
// there, else the flag itself (--max-attempts).
func FlagRef(cmd *cobra.Command, flag string) string {
	if f := cmd.Flags().Lookup(flag); f != nil {
		if env := f.Annotations[envAnnotation]; len(env) == 1 {
			return env[0]
		}
	}
	return "--" + flag
}

// refuseRepeats makes every single-value flag of cmd and of its
// subcommands refuse a second use on the command line, where pflag's rule
// (the last one wins) would silently drop the first: `--file a --file b`,
// `--channels a --channels b` and `--for 20s --for 30s` fail, through
// [Execute], with "--file given twice: give it once" (the values are not
// echoed: --args may hold a secret). Repeatable flags (a list value such as
// dlq list's --kind, pflag.SliceValue) and flags whose value may be left
// out (booleans such as --json: saying it twice says the same) are left as
// they are. A flag set from the environment ([BindEnv]) is set once.
func refuseRepeats(cmd *cobra.Command) {
	wrap := func(f *pflag.Flag) {
		if _, list := f.Value.(pflag.SliceValue); list || f.NoOptDefVal != "" {
			return
		}
		if _, done := f.Value.(*onceValue); !done {
			f.Value = &onceValue{Value: f.Value, name: f.Name}
		}
	}
	cmd.Flags().VisitAll(wrap)
	cmd.PersistentFlags().VisitAll(wrap)
	for _, sub := range cmd.Commands() {
		refuseRepeats(sub)
	}
}

// onceValue is a flag value that refuses a second Set.
type onceValue struct {
	pflag.Value
	name string
	set  bool
}

func (v *onceValue) Set(s string) error {
	if v.set {
		return &repeatedFlagError{flag: v.name}
	}
	v.set = true
	return v.Value.Set(s)
}

// repeatedFlagError is onceValue's refusal of a second Set.
type repeatedFlagError struct{ flag string }

func (e *repeatedFlagError) Error() string {
	return "--" + e.flag + " given twice: give it once"
}

// EnvName is the environment variable that sets flag name under prefix.
func EnvName(prefix, flag string) string {
	return prefix + "_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// PrintJSON writes v as indented JSON, with <, > and & as they are (not
// escaped for HTML).
func PrintJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // a terminal, not a web page: <n> stays <n>
	return enc.Encode(v)
}

// Table writes rows under a header, aligned in columns.
func Table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// RequireSubcommand makes a command that only groups subcommands fail on
// anything else: `rebound dlq bogus` is `unknown command "bogus" for
// "rebound dlq"` and a bare `rebound dlq` prints its help and fails with
// "missing command", both with exit code 1 (cobra's default is to print help
// and exit 0, which hides a typo in a script). It returns cmd.
func RequireSubcommand(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("unknown command %q for %q (run %q)", args[0], cmd.CommandPath(), cmd.CommandPath()+" --help")
		}
		_ = cmd.Help()
		return fmt.Errorf("missing command: %s needs one of its subcommands", cmd.CommandPath())
	}
	return cmd
}

// Execute runs root and turns any error into one line on stderr,
// "PROGRAM: message", and exit code 1. A single-value flag of any of its
// commands given twice is such an error: "--for given twice: give it once"
// (see refuseRepeats). Cobra's own usage dump on errors is
// silenced; --help still prints it.
func Execute(root *cobra.Command) {
	root.SilenceUsage = true
	root.SilenceErrors = true
	refuseRepeats(root)
	if err := root.Execute(); err != nil {
		if rep, ok := errors.AsType[*repeatedFlagError](err); ok {
			err = rep // "--file given twice: give it once", not "invalid --file ..."
		} else if ive, ok := errors.AsType[*pflag.InvalidValueError](err); ok {
			// pflag's text quotes strconv ("strconv.ParseInt: parsing ...").
			err = fmt.Errorf("invalid --%s %q: %s", ive.GetFlag().Name, ive.GetValue(), valueProblem(ive.GetFlag(), ive.Unwrap()))
		}
		if code, ok := errors.AsType[*ExitCode](err); ok {
			os.Exit(code.Code)
		}
		note := ""
		if n := connectedByDefaults.Load(); n != nil {
			note = " (" + *n + ")"
		}
		fmt.Fprintf(os.Stderr, "%s: %s%s%s\n", root.Name(), err, PoolerHint(err), note)
		os.Exit(1)
	}
}

// PoolerHint returns, for an error PostgreSQL raised about a prepared
// statement of pgx's statement cache (SQLSTATE 42P05 "prepared statement
// ... already exists" or 26000 "... does not exist"), the advice that
// fixes it, starting with "; ": such errors mean DATABASE_URL goes through
// a pooler in transaction mode (PgBouncer before 1.21), where a prepared
// statement outlives its program on the server connection. "" for any
// other error.
func PoolerHint(err error) string {
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	if !ok || (pgErr.Code != "42P05" && pgErr.Code != "26000") || !strings.Contains(pgErr.Message, "stmtcache_") {
		return ""
	}
	return "; DATABASE_URL seems to go through PgBouncer in transaction mode, where pgx's prepared statements clash: add default_query_exec_mode=cache_describe to it (see README, Behind PgBouncer)"
}

// ExitCode is an error a command returns to end with a given exit code
// and no message: a state it reports (`rebound health` exits 2 when
// degraded), not a failure. Code is never 0 or 1.
type ExitCode struct{ Code int }

// Error returns "exit code N".
func (e *ExitCode) Error() string { return fmt.Sprintf("exit code %d", e.Code) }

// WithDatabase returns base (a postgres:// URL or a key=value connection
// string) pointing at database name instead.
func WithDatabase(base, name string) (string, error) {
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			return "", fmt.Errorf("parse database URL: %w", err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	// In a key=value string a later key wins.
	return strings.TrimSpace(base) + " dbname=" + name, nil
}

// valueProblem says, in the user's terms, what a flag of f's type wants
// when cause refused a value: "want a whole number" for the integer types,
// "want true or false", "want a duration such as 30s, 5m or 1h30m", "want a
// number"; cause's own text for the other types (rebound's own flag values
// say what they want).
func valueProblem(f *pflag.Flag, cause error) string {
	if f != nil && errors.Is(cause, strconv.ErrRange) {
		return "out of range"
	}
	if f != nil {
		switch f.Value.Type() {
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
			return "want a whole number"
		case "bool":
			return "want true or false"
		case "duration":
			return "want a duration such as 30s, 5m or 1h30m"
		case "float32", "float64":
			return "want a number"
		}
	}
	if cause == nil {
		return "invalid value"
	}
	return cause.Error()
}

// OtherEnv are the REBOUND_* variables that rebound's other programs and
// tools read, which one environment (a shell, a pod spec shared by workers
// and producers) may hold for them: enqueue's and enqueue batch's flags
// (REBOUND_CONFIG is the worker's too), the demo's database and the test
// suite's settings (README). [CheckEnv] lets them be.
var OtherEnv = []string{
	"REBOUND_ARGS", "REBOUND_BATCH_SIZE", "REBOUND_CALLBACK_KIND", "REBOUND_DELAY_BETWEEN_BATCHES",
	"REBOUND_FILE", "REBOUND_FORMAT", "REBOUND_JSON", "REBOUND_KIND", "REBOUND_MAX_ATTEMPTS", "REBOUND_NAME",
	"REBOUND_PRIORITY", "REBOUND_QUEUE", "REBOUND_SCHEDULE_IN", "REBOUND_UNIQUE", "REBOUND_WAIT", "REBOUND_WAIT_INTERVAL",
	"REBOUND_DEMO_DATABASE",
	"REBOUND_DBTEST_TEMPLATE", "REBOUND_SCALE_MAX_MS", "REBOUND_SCALE_PLANS", "REBOUND_SCALE_ROWS", "REBOUND_TEST_ARTIFACTS",
}

// CheckEnv refuses the variables of the environment named PREFIX_... that
// cmd does not read, so that a typo (REBOUND_WROKERS, or a breaker setting
// such as REBOUND_WAKE_SPREAD, which only the YAML file holds) is not
// silently ignored. cmd reads the variable of each of its flags but --help
// (see [BindEnv]) and those of reads (REBOUND_ADMIN_TOKEN, the ${NAME}
// references of its configuration file). Also let be: [OtherEnv], and the
// variables Kubernetes gives every pod for a Service whose name starts
// with the prefix (a Service "rebound" gives REBOUND_SERVICE_HOST,
// REBOUND_SERVICE_PORT, REBOUND_PORT=tcp://..., REBOUND_PORT_8080_TCP...).
// The error names every unknown variable, with the closest one cmd reads
// when one is a typo away, else the list of those it reads: `unknown
// environment variable REBOUND_QUEUS (did you mean REBOUND_QUEUES?)`.
func CheckEnv(cmd *cobra.Command, prefix string, reads ...string) error {
	own := slices.Clone(reads)
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			own = append(own, EnvName(prefix, f.Name))
		}
	})
	slices.Sort(own)
	own = slices.Compact(own)
	var unknown []string
	for _, kv := range os.Environ() {
		name, value, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, prefix+"_") || slices.Contains(own, name) || slices.Contains(OtherEnv, name) || serviceLink(prefix, name, value) {
			continue
		}
		unknown = append(unknown, name)
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	listOwn := false
	for i, name := range unknown {
		if near := closest(name, own); near != "" {
			unknown[i] += " (did you mean " + near + "?)"
		} else {
			listOwn = true
		}
	}
	what := "unknown environment variable "
	if len(unknown) > 1 {
		what = "unknown environment variables "
	}
	msg := what + strings.Join(unknown, ", ")
	if listOwn {
		msg += fmt.Sprintf(": %s reads %s", cmd.Name(), strings.Join(own, ", "))
	}
	return errors.New(msg)
}

// serviceLinkRE matches the ends of the names of the variables Kubernetes
// sets for a Service (its name upper-cased, '-' as '_'), but ..._PORT.
var serviceLinkRE = regexp.MustCompile(`_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT_[0-9]+_(TCP|UDP|SCTP)(_PROTO|_PORT|_ADDR)?)$`)

// serviceLink reports whether name=value is one of the variables
// Kubernetes sets for a Service whose name starts with prefix; ..._PORT
// only with its form of value, "tcp://10.0.0.1:8080" (so
// REBOUND_HTTP_PORT=9090 is still refused).
func serviceLink(prefix, name, value string) bool {
	rest := strings.TrimPrefix(name, prefix)
	return serviceLinkRE.MatchString(rest) || strings.HasSuffix(rest, "_PORT") && strings.Contains(value, "://")
}

// closest is the name of names nearest to name, if it is a typo away (at
// most 2 edits, fewer than a third of name's length); "" otherwise.
func closest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(name, n); d < bestD && 3*d < len(name) {
			best, bestD = n, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
