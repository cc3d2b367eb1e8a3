package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgerrcode"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/procfs"
)

// dbCPU reads the CPU time the PostgreSQL server has used, when it runs on
// this machine and /proc shows its processes: the postmaster's own, every
// live child's (backends, WAL writer, checkpointer, autovacuum...) and the
// children it has reaped (the postmaster's cutime and cstime, where a
// backend's CPU goes when its connection closes, as the enqueue
// subprocess's does). The whole server is counted, so anything else it
// serves during a round counts too: read it on a quiet server.
type dbCPU struct {
	fs         procfs.FS
	postmaster int
}

// newDBCPU finds the server's postmaster from the PID of one of pool's
// backends: nil when the server is not a local process whose /proc entries
// this process can read (a remote server, a container, another PID
// namespace), and then no round reports PostgreSQL's CPU.
func newDBCPU(ctx context.Context, pool *pgxpool.Pool) *dbCPU {
	var backend int
	if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return nil
	}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil
	}
	proc, err := fs.Proc(backend)
	if err != nil {
		return nil
	}
	st, err := proc.Stat()
	if err != nil || st.Comm != "postgres" {
		return nil // a PID of another machine's, or of no process here
	}
	parent, err := fs.Proc(st.PPID)
	if err != nil {
		return nil
	}
	pst, err := parent.Stat()
	if err != nil || pst.Comm != "postgres" {
		return nil
	}
	d := &dbCPU{fs: fs, postmaster: st.PPID}
	if _, _, ok := d.postmasterTicks(); !ok {
		return nil
	}
	if _, ok := d.childrenTicks(); !ok {
		return nil
	}
	return d
}

// readAttempts is how many times read scans /proc before it gives up on a
// server that reaps a child during every scan (a scan takes about a
// millisecond; a server opening and closing connections many times a
// second, as the test suite's does, may need a few dozen).
const readAttempts = 100

// read returns the server's CPU time so far (user + system), false when
// /proc could not be read or a child was reaped during each of
// readAttempts scans (the round then reports no PostgreSQL CPU). A nil d
// reads nothing.
//
// A child the postmaster reaps while the children are being scanned would
// be counted twice or not at all (its CPU moves from its own /proc entry
// into the postmaster's cutime between the two reads): the enqueue
// subprocess's backend exits just as a round ends, and a round then
// measured next to nothing. So the postmaster's reaped time is read before
// and after the scan, and the scan repeated until no child was reaped
// during it.
func (d *dbCPU) read() (time.Duration, bool) {
	if d == nil {
		return 0, false
	}
	for range readAttempts {
		_, reaped, ok := d.postmasterTicks()
		if !ok {
			return 0, false
		}
		live, ok := d.childrenTicks()
		if !ok {
			return 0, false
		}
		own, reapedAfter, ok := d.postmasterTicks()
		if !ok {
			return 0, false
		}
		if reapedAfter == reaped {
			// /proc counts in USER_HZ ticks, 100 a second on Linux
			// (procfs's CPUTime assumes the same).
			return time.Duration(own+reaped+live) * (time.Second / 100), true
		}
	}
	return 0, false
}

// postmasterTicks reads the postmaster's own CPU ticks (user + system) and
// those of the children it has reaped (cutime + cstime).
func (d *dbCPU) postmasterTicks() (own, reaped int64, ok bool) {
	p, err := d.fs.Proc(d.postmaster)
	if err != nil {
		return 0, 0, false
	}
	st, err := p.Stat()
	if err != nil {
		return 0, 0, false
	}
	return int64(st.UTime) + int64(st.STime), int64(st.CUTime) + int64(st.CSTime), true
}

// childrenTicks sums the CPU ticks (user + system) of the postmaster's
// live children (a child that has exited and is not yet reaped still
// shows its own).
func (d *dbCPU) childrenTicks() (int64, bool) {
	procs, err := d.fs.AllProcs()
	if err != nil {
		return 0, false
	}
	var ticks int64
	for _, p := range procs {
		st, err := p.Stat()
		if err != nil {
			continue // it was reaped meanwhile: the postmaster's cutime changed
		}
		if st.PPID == d.postmaster {
			ticks += int64(st.UTime) + int64(st.STime)
		}
	}
	return ticks, true
}

// since is the server's CPU time since from, which d.read returned with
// ok; 0 when d is nil or /proc could not be read.
func (d *dbCPU) since(from time.Duration, ok bool) time.Duration {
	if !ok {
		return 0
	}
	now, ok := d.read()
	if !ok || now < from {
		return 0
	}
	return now - from
}

// dbCPUNote is a progress line's note of the server's CPU per job, "" when
// not measured.
func dbCPUNote(r Round) string {
	if r.DBCPU == 0 {
		return ""
	}
	return fmt.Sprintf(" %7.1f µs PostgreSQL CPU/job", r.DBCPUPerJob())
}

// checkpointer runs CHECKPOINT before a round, until the server refuses it
// for want of privilege (superuser or, from PostgreSQL 15, pg_checkpoint),
// after which it does nothing: the rounds are then only less steady.
type checkpointer struct{ refused bool }

func (c *checkpointer) run(ctx context.Context, pool *pgxpool.Pool) error {
	if c.refused {
		return nil
	}
	_, err := pool.Exec(ctx, "CHECKPOINT")
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == pgerrcode.InsufficientPrivilege {
		c.refused = true
		return nil
	}
	return err
}

// dbCPUColumns appends the PostgreSQL CPU columns to a report's header
// and, for each of rows (one per side, in sides' order), that side's
// median and spread, when any round of sides measured it. /proc counts in
// 10 ms ticks, so a short round may read no CPU at all and is left out:
// a side with some rounds left out says how many were measured ("(2 of 3
// rounds)"), and a side with none shows "-".
func dbCPUColumns(rounds []Round, sides []Side, header []string, rows [][]string) ([]string, [][]string) {
	measured := false
	for _, side := range sides {
		if _, ok := DBOf(rounds, side); ok {
			measured = true
		}
	}
	if !measured {
		return header, rows
	}
	header = append(header, "POSTGRESQL CPU µS/JOB (MEDIAN)", "POSTGRESQL CPU µS/JOB (MIN-MAX)")
	for i, side := range sides {
		db, ok := DBOf(rounds, side)
		if !ok {
			rows[i] = append(rows[i], "-", "-")
			continue
		}
		median := fmt.Sprintf("%.1f", db.Median)
		if k, n := dbMeasured(rounds, side); k < n {
			median += fmt.Sprintf(" (%d of %d rounds)", k, n)
		}
		rows[i] = append(rows[i], median, fmt.Sprintf("%.1f-%.1f", db.Min, db.Max))
	}
	return header, rows
}

// dbMeasured returns how many of side's rounds measured PostgreSQL's CPU
// (k) and how many rounds side ran (n).
func dbMeasured(rounds []Round, side Side) (k, n int) {
	for _, r := range rounds {
		if r.Side != side {
			continue
		}
		n++
		if r.DBCPU > 0 {
			k++
		}
	}
	return k, n
}
