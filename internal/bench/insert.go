package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/rebound-queue/rebound/jobs"
)

// The sides of the insert scenario.
const (
	// SideInsertManyFast is River's InsertManyFast (COPY FROM) called
	// directly by a plain River client, with the args already built.
	SideInsertManyFast Side = "InsertManyFast"
	// SideInsertManyFastKeyed is the same InsertManyFast call with each
	// job's operation key already in its metadata, as rebound's insert
	// middleware stamps it: the rows enqueue stores, byte for byte, so what
	// separates it from the enqueue side is enqueue's code alone.
	SideInsertManyFastKeyed Side = "InsertManyFast, keyed"
	// SideEnqueue is the enqueue binary run as a subprocess: enqueue
	// http_request --file PATH.
	SideEnqueue Side = "enqueue --file"
	// SideEnqueueJSON is the same with --json (the inserted jobs' IDs
	// printed).
	SideEnqueueJSON Side = "enqueue --file --json"
)

// insertSides are the insert scenario's sides, in the order of odd rounds.
var insertSides = []Side{SideInsertManyFast, SideInsertManyFastKeyed, SideEnqueue, SideEnqueueJSON}

// InsertConfig sets the insert scenario: N http_request jobs inserted by
// the enqueue binary from an NDJSON file against River's InsertManyFast
// with the same args.
type InsertConfig struct {
	// Lines is how many jobs (lines of the file) each side inserts per
	// round. Default 100,000.
	Lines int
	// Rounds is how many rounds each side runs. Default 5.
	Rounds int
	// EnqueueBin is the path of the enqueue binary. Required.
	EnqueueBin string
	// Dir is where the NDJSON file is written (and removed at the end).
	// Default os.TempDir().
	Dir string
	// Timeout bounds one side's round. Default 5 minutes.
	Timeout time.Duration
}

func (c InsertConfig) withDefaults() InsertConfig {
	if c.Lines <= 0 {
		c.Lines = 100_000
	}
	if c.Rounds <= 0 {
		c.Rounds = 5
	}
	if c.Dir == "" {
		c.Dir = os.TempDir()
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Minute
	}
	return c
}

// InsertReport is the result of [RunInsert]. Its Rounds' CPU is the CPU
// time (user + system) of the process that inserted: this process for
// InsertManyFast, the enqueue subprocess for the enqueue sides.
type InsertReport struct {
	Config  InsertConfig
	Machine Machine
	// FileBytes is the size of the NDJSON file, in bytes.
	FileBytes int64
	// Rounds are every round of every side, in the order they ran.
	Rounds []Round
	// Checkpoints says each round started right after a CHECKPOINT, so
	// that none pays for one that the round before made due (a round
	// writes about 100 MB of WAL at 100,000 lines). False when the role may
	// not run CHECKPOINT (it needs superuser or pg_checkpoint).
	Checkpoints bool
}

// Ratio is side's median jobs/s over InsertManyFast's (1 means as fast as
// River's COPY path called directly; 0 when a median is missing).
func (r *InsertReport) Ratio(side Side) float64 { return r.RatioTo(side, SideInsertManyFast) }

// RatioTo is side's median jobs/s over base's (0 when a median is
// missing). RatioTo(SideEnqueue, SideInsertManyFastKeyed) compares enqueue
// with River's COPY path storing the very same rows.
func (r *InsertReport) RatioTo(side, base Side) float64 {
	s, _ := Of(r.Rounds, side)
	f, _ := Of(r.Rounds, base)
	if f.Median == 0 {
		return 0
	}
	return s.Median / f.Median
}

// insertLine is line i (from 0) of the scenario's NDJSON file: a webhook
// to one of 50 endpoints with a small body of its own.
func insertLine(i int) string {
	return `{"url": "http://127.0.0.1:9/hook/` + strconv.Itoa(i%50) + `", "body": {"order_id": ` + strconv.Itoa(i) + `, "event": "paid"}}`
}

// writeInsertFile writes cfg.Lines lines into a new file in cfg.Dir and
// returns its path.
func writeInsertFile(cfg InsertConfig) (string, error) {
	f, err := os.CreateTemp(cfg.Dir, "rebound-bench-insert-*.ndjson")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	for i := range cfg.Lines {
		w.WriteString(insertLine(i))
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// RunInsert runs the insert scenario on pool, which must hold a migrated
// database of the bench's own ([NewDatabase]) whose URL is databaseURL (the
// enqueue subprocess connects to it). Every round of every side starts from
// an empty river_job and ends by checking that exactly cfg.Lines rows were
// inserted, and for --json that the printed IDs are exactly those rows'.
// Sides rotate which goes first from round to round. progress, if not nil,
// gets one line per side and round.
func RunInsert(ctx context.Context, pool *pgxpool.Pool, databaseURL string, cfg InsertConfig, progress io.Writer) (*InsertReport, error) {
	cfg = cfg.withDefaults()
	if cfg.EnqueueBin == "" {
		return nil, fmt.Errorf("insert scenario: no enqueue binary given")
	}
	bin, err := filepath.Abs(cfg.EnqueueBin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("insert scenario: enqueue binary: %w", err)
	}
	path, err := writeInsertFile(cfg)
	if err != nil {
		return nil, fmt.Errorf("insert scenario: write the NDJSON file: %w", err)
	}
	defer os.Remove(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	rep := &InsertReport{Config: cfg, Machine: machine(ctx, pool), FileBytes: st.Size()}

	// River's sides insert the same args, built before the clock starts;
	// the keyed side's metadata holds the operation key rebound's insert
	// middleware would stamp ({"operation_key":"127.0.0.1:9"}).
	registry := jobs.Builtin()
	kind, err := registry.Lookup(jobs.KindHTTPRequest)
	if err != nil {
		return nil, err
	}
	params := make([]river.InsertManyParams, cfg.Lines)
	keyed := make([]river.InsertManyParams, cfg.Lines)
	for i := range params {
		line := []byte(insertLine(i))
		args, err := kind.Parse(line)
		if err != nil {
			return nil, fmt.Errorf("insert scenario: line %d: %w", i+1, err)
		}
		encoded, err := json.Marshal(args)
		if err != nil {
			return nil, err
		}
		metadata, err := json.Marshal(map[string]string{jobs.MetadataOperationKey: registry.OperationKey(kind.Name, encoded, nil)})
		if err != nil {
			return nil, err
		}
		params[i] = river.InsertManyParams{Args: args}
		keyed[i] = river.InsertManyParams{Args: args, InsertOpts: &river.InsertOpts{Metadata: metadata}}
	}
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}

	db := newDBCPU(ctx, pool)
	ckpt := &checkpointer{}
	for n := 1; n <= cfg.Rounds; n++ {
		for i := range insertSides {
			side := insertSides[(i+n-1)%len(insertSides)]
			if _, err := pool.Exec(ctx, "TRUNCATE river_job RESTART IDENTITY"); err != nil {
				return nil, err
			}
			if err := ckpt.run(ctx, pool); err != nil {
				return nil, err
			}
			roundCtx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			var r Round
			db0, dbOK := db.read()
			switch side {
			case SideInsertManyFast:
				r, err = insertManyFastRound(roundCtx, client, params)
			case SideInsertManyFastKeyed:
				r, err = insertManyFastRound(roundCtx, client, keyed)
			default:
				r, err = enqueueRound(roundCtx, pool, bin, databaseURL, path, cfg.Lines, side == SideEnqueueJSON)
			}
			cancel()
			r.DBCPU = db.since(db0, dbOK)
			if err == nil {
				err = checkRowCount(ctx, pool, cfg.Lines)
			}
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", n, side, err)
			}
			r.Number, r.Side, r.Jobs = n, side, cfg.Lines
			rep.Rounds = append(rep.Rounds, r)
			if progress != nil {
				fmt.Fprintf(progress, "round %d %-22s %7.3f s %8.0f jobs/s %7.1f µs CPU/job%s\n", n, side, r.Elapsed.Seconds(), r.JobsPerSecond(), r.CPUPerJob(), dbCPUNote(r))
			}
		}
	}
	rep.Machine.LoadAfter = LoadAverage()
	rep.Checkpoints = !ckpt.refused
	return rep, nil
}

// insertManyFastRound times one InsertManyFast call of params.
func insertManyFastRound(ctx context.Context, client *river.Client[pgx.Tx], params []river.InsertManyParams) (Round, error) {
	cpu0, t0 := processCPU(), time.Now()
	n, err := client.InsertManyFast(ctx, params)
	r := Round{Elapsed: time.Since(t0), CPU: processCPU() - cpu0}
	if err != nil {
		return r, err
	}
	if n != len(params) {
		return r, fmt.Errorf("InsertManyFast inserted %d jobs, want %d", n, len(params))
	}
	return r, nil
}

// enqueueRound runs enqueue http_request --file path [--json] against
// databaseURL and times it from the process's start to its exit; CPU is
// the subprocess's. With --json it checks that the printed IDs are lines
// distinct IDs of rows in river_job.
func enqueueRound(ctx context.Context, pool *pgxpool.Pool, bin, databaseURL, path string, lines int, withJSON bool) (Round, error) {
	args := []string{jobs.KindHTTPRequest, "--file", path}
	if withJSON {
		args = append(args, "--json")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = []string{"DATABASE_URL=" + databaseURL, "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	t0 := time.Now()
	err := cmd.Run()
	r := Round{Elapsed: time.Since(t0)}
	if cmd.ProcessState != nil {
		r.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return r, fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, bytes.TrimSpace(stderr.Bytes()))
	}
	if !withJSON {
		return r, nil
	}
	var out struct {
		Inserted int     `json:"inserted"`
		IDs      []int64 `json:"ids"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return r, fmt.Errorf("read enqueue --json's output: %w", err)
	}
	if out.Inserted != lines || len(out.IDs) != lines {
		return r, fmt.Errorf("enqueue --json says %d inserted and gives %d IDs, want %d", out.Inserted, len(out.IDs), lines)
	}
	var matching int
	if err := pool.QueryRow(ctx, "SELECT count(DISTINCT id) FROM river_job WHERE id = ANY($1)", out.IDs).Scan(&matching); err != nil {
		return r, err
	}
	if matching != lines {
		return r, fmt.Errorf("%d of the %d IDs enqueue --json printed are rows of river_job", matching, lines)
	}
	return r, nil
}

// checkRowCount fails unless river_job holds exactly want rows.
func checkRowCount(ctx context.Context, pool *pgxpool.Pool, want int) error {
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job").Scan(&n); err != nil {
		return err
	}
	if n != want {
		return fmt.Errorf("river_job holds %d rows, want %d", n, want)
	}
	return nil
}
