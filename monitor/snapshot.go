package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultSnapshotMaxAge is how old a shared snapshot may be before a pod
// recomputes it: 10 seconds, under Prometheus' usual 15 s scrape interval.
const DefaultSnapshotMaxAge = 10 * time.Second

// localSnapshotTTL is how long a pod reuses what it read without asking the
// database again (several scrapers of one pod, the health endpoint).
const localSnapshotTTL = 2 * time.Second

// Snapshots reads values computed from the database that every pod shares
// through the rebound_metric_snapshot table: the first pod to find a value
// older than its maximum age recomputes it under an advisory transaction lock
// while the others keep serving the stored value. A scrape therefore costs
// one primary-key read, and the expensive query runs once per period for
// the whole cluster.
//
// Safe for concurrent use.
type Snapshots struct {
	pool *pgxpool.Pool
	now  func() time.Time

	mu    sync.Mutex
	local map[string]localSnapshot
}

type localSnapshot struct {
	value []byte
	until time.Time
}

// NewSnapshots returns a Snapshots reading and writing through pool.
func NewSnapshots(pool *pgxpool.Pool) *Snapshots {
	return &Snapshots{pool: pool, now: time.Now, local: map[string]localSnapshot{}}
}

// ComputeFunc computes a snapshot's value (JSON-encodable) inside the
// transaction that stores it.
type ComputeFunc func(ctx context.Context, tx pgx.Tx) (any, error)

// Get returns the JSON of snapshot name, decoded into out. A stored value
// younger than maxAge (by the database's clock) is used as it is; otherwise
// this pod recomputes it with compute, unless another pod is doing so at this
// moment, in which case the stale value is used. Errors come from the
// database or from compute.
func (s *Snapshots) Get(ctx context.Context, name string, maxAge time.Duration, compute ComputeFunc, out any) error {
	s.mu.Lock()
	if l, ok := s.local[name]; ok && s.now().Before(l.until) {
		s.mu.Unlock()
		return json.Unmarshal(l.value, out)
	}
	s.mu.Unlock()

	value, err := s.get(ctx, name, maxAge, compute)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.local[name] = localSnapshot{value: value, until: s.now().Add(min(localSnapshotTTL, maxAge))}
	s.mu.Unlock()
	return json.Unmarshal(value, out)
}

func (s *Snapshots) get(ctx context.Context, name string, maxAge time.Duration, compute ComputeFunc) ([]byte, error) {
	var (
		stored []byte
		fresh  bool
	)
	err := s.pool.QueryRow(ctx,
		"SELECT value, taken_at > now() - $2::interval FROM rebound_metric_snapshot WHERE name = $1::text",
		name, maxAge).Scan(&stored, &fresh)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read snapshot %s: %w", name, err)
	}
	if fresh {
		return stored, nil
	}

	var value []byte
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock($1)", snapshotLockKey(name)).Scan(&locked); err != nil {
			return err
		}
		if !locked && stored != nil {
			value = stored // another pod is recomputing; serve the stale value
			return nil
		}
		v, err := compute(ctx, tx)
		if err != nil {
			return err
		}
		if value, err = json.Marshal(v); err != nil {
			return err
		}
		if !locked {
			return nil // first value ever, being stored by another pod
		}
		// value goes as a string: pgx sends a []byte as bytea, whose text
		// (\x...) jsonb cannot read in the exec and simple_protocol modes.
		_, err = tx.Exec(ctx, `INSERT INTO rebound_metric_snapshot (name, taken_at, value) VALUES ($1::text, now(), $2::jsonb)
			ON CONFLICT (name) DO UPDATE SET taken_at = excluded.taken_at, value = excluded.value`, name, string(value))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("compute snapshot %s: %w", name, err)
	}
	return value, nil
}

func snapshotLockKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("rebound.snapshot." + name))
	return int64(h.Sum64())
}
