package metricstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"time"
)

// Start starts the flush loop; it runs until Stop or ctx ends.
func (r *Recorder) Start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(ctx)
	r.done = make(chan struct{})
	go r.loop(ctx)
}

// Stop ends the flush loop and flushes what is left (bounded by ctx). Call
// it after the River client has stopped, so every attempt is counted.
// It returns the final flush's error; the counts it could not write are
// lost with the process.
func (r *Recorder) Stop(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			<-r.done
		}
		err = r.Flush(ctx)
	})
	return err
}

func (r *Recorder) loop(ctx context.Context) {
	defer close(r.done)
	for {
		now := r.now()
		next := now.Truncate(r.interval).Add(r.interval)
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		fctx, cancel := context.WithTimeout(ctx, max(r.interval, 5*time.Second))
		_ = r.Flush(fctx)
		cancel()
	}
}

// Flush moves the counts since the last flush into the pending rows, under
// the minute the interval started in, and adds every pending row to
// job_retry_metrics in one transaction, exactly once ([Store.AddOnce]).
// On error the rows stay pending and are added by the next flush; when the
// error left it unknown whether they were added (at COMMIT), the next flush
// finds out from the flush's token before it adds them again.
func (r *Recorder) Flush(ctx context.Context) error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	now := r.now()
	minute := r.lastFlush.UTC().Truncate(time.Minute)
	r.lastFlush = now
	for kind, c := range *r.kinds.Load() {
		row := Row{
			Kind:             kind,
			PeriodStart:      minute,
			Attempts:         c.attempts.Swap(0),
			Completed:        c.completed.Swap(0),
			DeadLettered:     c.deadLettered.Swap(0),
			RetriesScheduled: c.retries.Swap(0),
			ShortCircuited:   c.shortCircuited.Swap(0),
			runTimeNS:        c.runTimeNS.Swap(0),
		}
		if ns := c.lastAttemptNS.Swap(0); ns > 0 {
			row.LastAttemptAt = time.Unix(0, ns).UTC()
		}
		for class, n := range *c.classes.Load() {
			if v := n.Swap(0); v != 0 {
				if row.Failures == nil {
					row.Failures = map[string]int64{}
				}
				row.Failures[class] = v
			}
		}
		if row.empty() {
			continue
		}
		key := rowKey{kind: kind, start: minute}
		if p, ok := r.pending[key]; ok {
			p.add(&row)
		} else {
			r.pending[key] = &row
		}
	}
	if len(r.pending) == 0 && r.inflight == nil {
		return nil
	}
	rows := make([]Row, 0, len(r.pending))
	for _, k := range slices.SortedFunc(maps.Keys(r.pending), func(a, b rowKey) int {
		if c := a.start.Compare(b.start); c != 0 {
			return c
		}
		return compareStrings(a.kind, b.kind)
	}) {
		p := r.pending[k]
		p.RunTimeMS = p.runTimeNS / int64(time.Millisecond)
		rows = append(rows, *p)
	}
	sent, err := r.store.AddOnce(ctx, r.inflight, Flush{Token: newFlushToken(), Rows: rows})
	switch {
	case err == nil:
	case errors.Is(err, ErrOutcomeUnknown):
		// The rows may be in: the next flush looks up sent's token and
		// adds them only if they are not.
		r.inflight = &sent
		clear(r.pending)
		fallthrough
	default:
		if !r.failing {
			r.logger.Warn("job metrics flush failed; counts are kept and added by the next flush", "rows", len(sent.Rows), "error", err.Error())
		}
		r.failing = true
		return err
	}
	if r.failing {
		r.logger.Info("job metrics flush recovered", "rows", len(sent.Rows))
	}
	r.failing = false
	r.inflight = nil
	clear(r.pending)
	return nil
}

// newFlushToken returns 32 hex digits from crypto/rand.
func newFlushToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
