// Package bench measures rebound against plain River on the same machine, in
// the same run and on the same database: `rebound bench` prints its tables
// and writes its plot (docs/benchmarks.md explains the figures).
//
// Each scenario runs both sides in alternating rounds (plain River first in
// odd rounds, rebound first in even ones), so a machine that gets busier or
// quieter during the run weighs on both alike, and reports per side the
// median and the spread (min to max) of jobs per second and of the Go
// process's CPU time (user + system, getrusage(2)) per job: CPU per job is
// steadier than jobs/s on a shared machine.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rebound-queue/rebound/internal/cli"
	"github.com/rebound-queue/rebound/migrations"
)

// Side names one side of a comparison.
type Side string

// The sides of the comparisons.
const (
	SideRiver   Side = "river"
	SideRebound Side = "rebound"
)

// Round is one measured round of one side.
type Round struct {
	// Number counts rounds from 1; both sides run once per round.
	Number int
	// Side is which side ran.
	Side Side
	// Jobs is how many jobs the round worked.
	Jobs int
	// Elapsed is the wall time from the client's start until the last job
	// finished.
	Elapsed time.Duration
	// CPU is the process's user + system CPU time over Elapsed.
	CPU time.Duration
	// Start is the part of Elapsed the side's Start call took (a pod checks
	// its migrations, kinds and alert rules, loads its breakers and opens
	// its listener before it fetches; a plain River client only starts).
	// Zero where not measured.
	Start time.Duration `json:",omitempty"`
	// DBCPU is the PostgreSQL server's CPU time (user + system, all its
	// processes) over Elapsed, where the server runs on this machine and
	// /proc shows it; zero where not measured. It counts everything the
	// server did meanwhile, so it is only meaningful on a quiet server.
	DBCPU time.Duration `json:",omitempty"`
}

// JobsPerSecond is Jobs / Elapsed.
func (r Round) JobsPerSecond() float64 { return float64(r.Jobs) / r.Elapsed.Seconds() }

// CPUPerJob is the process's CPU time per job, in microseconds.
func (r Round) CPUPerJob() float64 { return float64(r.CPU.Microseconds()) / float64(r.Jobs) }

// DBCPUPerJob is the PostgreSQL server's CPU time per job, in
// microseconds; 0 where not measured.
func (r Round) DBCPUPerJob() float64 { return float64(r.DBCPU.Microseconds()) / float64(r.Jobs) }

// Summary is the median and spread of one figure of one side.
type Summary struct {
	Median, Min, Max float64
}

func summarize(v []float64) Summary {
	if len(v) == 0 {
		return Summary{}
	}
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Summary{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// DBOf returns the summary of the PostgreSQL server's CPU µs/job of side
// in rounds, and false when no round of side measured it.
func DBOf(rounds []Round, side Side) (Summary, bool) {
	var cpu []float64
	for _, r := range rounds {
		if r.Side == side && r.DBCPU > 0 {
			cpu = append(cpu, r.DBCPUPerJob())
		}
	}
	return summarize(cpu), len(cpu) > 0
}

// Of returns the summaries of jobs/s and CPU µs/job of side in rounds.
func Of(rounds []Round, side Side) (jobsPerSec, cpuPerJob Summary) {
	var rate, cpu []float64
	for _, r := range rounds {
		if r.Side == side {
			rate = append(rate, r.JobsPerSecond())
			cpu = append(cpu, r.CPUPerJob())
		}
	}
	return summarize(rate), summarize(cpu)
}

// processCPU is the user + system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Machine describes where a run took place.
type Machine struct {
	// CPUs is runtime.NumCPU(); GOMAXPROCS the scheduler's setting.
	CPUs, GOMAXPROCS int
	// GoVersion is runtime.Version().
	GoVersion string
	// PostgreSQL is the server's version string.
	PostgreSQL string
	// LoadBefore and LoadAfter are /proc/loadavg's first three fields
	// (1, 5 and 15 minute load averages), "" where it is not readable.
	LoadBefore, LoadAfter string
}

// LoadAverage returns the 1, 5 and 15 minute load averages from
// /proc/loadavg, "" where it is not readable.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// Database is a scratch database of the bench's own, created on a server
// and dropped by Close.
type Database struct {
	// Name is the database's name (rebound_bench_<random hex>).
	Name string
	// URL connects to it.
	URL string
	// Pool is a pool on it, sized by [NewDatabase]'s poolSize.
	Pool *pgxpool.Pool

	baseURL string
}

// NewDatabase creates a database named rebound_bench_<random> on the server
// baseURL points to (its role needs CREATEDB), migrates it (River's tables
// and rebound's) and opens a pool of poolSize connections on it. The bench
// never touches any other database.
func NewDatabase(ctx context.Context, baseURL string, poolSize int) (*Database, error) {
	var b [5]byte
	_, _ = rand.Read(b[:])
	name := "rebound_bench_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(ctx, baseURL)
	if err != nil {
		// pgx puts each address tried on a line of its own: one line.
		return nil, fmt.Errorf("connect to the server: %s", strings.Join(strings.Fields(err.Error()), " "))
	}
	_, err = admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	_ = admin.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("create the bench's database %s: %w", name, err)
	}
	d := &Database{Name: name, baseURL: baseURL}
	if d.URL, err = cli.WithDatabase(baseURL, name); err != nil {
		_ = d.Close()
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(d.URL)
	if err != nil {
		_ = d.Close()
		return nil, err
	}
	cfg.MaxConns = int32(poolSize)
	if d.Pool, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
		_ = d.Close()
		return nil, err
	}
	m, err := migrations.New(d.Pool, nil)
	if err == nil {
		_, err = m.Up(ctx)
	}
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("migrate the bench's database: %w", err)
	}
	return d, nil
}

// Close closes the pool and drops the database.
func (d *Database) Close() error {
	if d.Pool != nil {
		d.Pool.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, d.baseURL)
	if err != nil {
		return err
	}
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{d.Name}.Sanitize()+" WITH (FORCE)")
	return err
}

// machine fills Machine from the running process and the database.
func machine(ctx context.Context, pool *pgxpool.Pool) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), LoadBefore: LoadAverage()}
	_ = pool.QueryRow(ctx, "SHOW server_version").Scan(&m.PostgreSQL)
	return m
}
