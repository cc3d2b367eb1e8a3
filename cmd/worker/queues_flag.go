package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/riverqueue/river"
)

// queuesFlag is --queues: "name=workers,name=workers".
type queuesFlag map[string]int

// queueNameRE is River's rule for queue names.
var queueNameRE = regexp.MustCompile(`^(?:[a-z0-9])+(?:[_|\-]?[a-z0-9]+)*$`)

func (q *queuesFlag) String() string {
	names := make([]string, 0, len(*q))
	for n := range *q {
		names = append(names, n)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s=%d", n, (*q)[n])
	}
	return strings.Join(parts, ",")
}

func (q *queuesFlag) Type() string { return "name=workers,..." }

func (q *queuesFlag) Set(s string) error {
	out := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, n, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("%q: want name=workers", part)
		}
		name = strings.TrimSpace(name)
		if len(name) > 128 || !queueNameRE.MatchString(name) {
			return fmt.Errorf("queue name %q: use lower-case letters, digits, '_' or '-'", name)
		}
		workers, err := strconv.Atoi(strings.TrimSpace(n))
		if err != nil || workers < 1 || workers > river.QueueNumWorkersMax {
			return fmt.Errorf("queue %q: workers must be a number from 1 to %d, got %q", name, river.QueueNumWorkersMax, n)
		}
		if _, dup := out[name]; dup {
			return fmt.Errorf("queue %q given twice", name)
		}
		out[name] = workers
	}
	if len(out) == 0 {
		return fmt.Errorf("no queue given")
	}
	*q = out
	return nil
}
