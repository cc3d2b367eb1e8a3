package monitor

import (
	"context"
	"time"
)

// QueueJobs is how many jobs of one kind are in one open River state of one
// queue (see [OpenStates]).
type QueueJobs struct {
	Queue string
	Kind  string
	State string
	Count int64
}

// QueueDepth is the depth of River's queues as the [QueueCollector] shares
// it: open jobs by queue, kind and state, and per queue the seconds the
// oldest available job has waited (absent when none waits).
type QueueDepth struct {
	Jobs          []QueueJobs
	OldestSeconds map[string]float64
}

// ReadQueueDepth reads the queue depth through snapshots, the snapshot the
// queue metrics use (at most maxAge old; 0 means DefaultSnapshotMaxAge), so
// a display costs what a scrape costs. Errors come from the database.
func ReadQueueDepth(ctx context.Context, snapshots *Snapshots, maxAge time.Duration) (*QueueDepth, error) {
	if maxAge <= 0 {
		maxAge = DefaultSnapshotMaxAge
	}
	var snap queueSnapshot
	if err := snapshots.Get(ctx, "queue_jobs", maxAge, computeQueueSnapshot, &snap); err != nil {
		return nil, err
	}
	d := &QueueDepth{OldestSeconds: map[string]float64{}}
	for _, j := range snap.Jobs {
		d.Jobs = append(d.Jobs, QueueJobs(j))
	}
	for _, o := range snap.Oldest {
		d.OldestSeconds[o.Queue] = o.Seconds
	}
	return d, nil
}
