package batch

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RateText is a success rate as people read it: "66.7%", or "n/a" when
// nil (nothing has succeeded or failed yet).
func RateText(rate *float64) string {
	if rate == nil {
		return "n/a"
	}
	return strconv.FormatFloat(*rate, 'f', 1, 64) + "%"
}

// SubBatchesText describes how items jobs split into sub-batches of size:
// "1 sub-batch of 3 jobs", "3 sub-batches of 10 jobs", "3 sub-batches of
// 10 jobs (the last of 5)", "1 sub-batch of 1 job"; "no sub-batch" for 0
// items. A size below 1 is taken as 1.
func SubBatchesText(items, size int64) string {
	size = max(size, 1)
	if items <= 0 {
		return "no sub-batch"
	}
	subs := (items + size - 1) / size
	if subs == 1 {
		return fmt.Sprintf("1 sub-batch of %d %s", items, plural(items, "job", "jobs"))
	}
	s := fmt.Sprintf("%d sub-batches of %d %s", subs, size, plural(size, "job", "jobs"))
	if last := items - (subs-1)*size; last != size {
		s += fmt.Sprintf(" (the last of %d)", last)
	}
	return s
}

// plural is one for n == 1, else many.
func plural(n int64, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// WriteText writes s for people, one "field: value" per line, as `rebound
// batch show` and `enqueue batch --wait` print it.
func WriteText(w io.Writer, s *Summary) error {
	var b strings.Builder
	fmt.Fprintf(&b, "batch %d %q (%s)\n", s.ID, s.Name, s.Kind)
	status := "running"
	if s.CompletedAt != nil {
		status = "completed at " + s.CompletedAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "  status:        %s\n", status)
	fmt.Fprintf(&b, "  total:         %d\n", s.Total)
	fmt.Fprintf(&b, "  succeeded:     %d\n", s.Succeeded)
	fmt.Fprintf(&b, "  failed:        %d (dead-lettered)\n", s.Failed)
	fmt.Fprintf(&b, "  cancelled:     %d\n", s.Cancelled)
	fmt.Fprintf(&b, "  pending:       %d\n", s.Pending)
	fmt.Fprintf(&b, "  retried:       %d (needed more than one attempt, dead-letter replays included)\n", s.Retried)
	fmt.Fprintf(&b, "  success rate:  %s\n", RateText(s.SuccessRate))
	if len(s.FailuresByClass) > 0 {
		parts := make([]string, 0, len(s.FailuresByClass))
		for _, c := range slices.Sorted(maps.Keys(s.FailuresByClass)) {
			parts = append(parts, fmt.Sprintf("%s %d", c, s.FailuresByClass[c]))
		}
		fmt.Fprintf(&b, "  failures:      %s\n", strings.Join(parts, ", "))
	}
	if len(s.DeadLetterIDs) > 0 {
		ids := make([]string, len(s.DeadLetterIDs))
		for i, id := range s.DeadLetterIDs {
			ids[i] = strconv.FormatInt(id, 10)
		}
		more := ""
		if s.DeadLetterIDsTruncated {
			more = " (more not shown)"
		}
		fmt.Fprintf(&b, "  dead letters:  %s%s (rebound dlq show ID)\n", strings.Join(ids, " "), more)
	}
	subs := SubBatchesText(s.Total, int64(s.BatchSize))
	if s.Total > int64(s.BatchSize) {
		subs += ", " + (time.Duration(s.DelayBetweenBatchesMS) * time.Millisecond).String() + " apart"
	}
	fmt.Fprintf(&b, "  sub-batches:   %s, from %s\n", subs, s.StartsAt.UTC().Format(time.RFC3339))
	if s.CallbackKind != "" {
		cb := "pending"
		switch {
		case s.CallbackJobID != nil:
			cb = "job " + strconv.FormatInt(*s.CallbackJobID, 10)
		case s.CallbackError != "":
			cb = "not inserted: " + s.CallbackError
		}
		fmt.Fprintf(&b, "  callback:      %s (%s)\n", s.CallbackKind, cb)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
