package bench_test

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestMain removes the binaries proctest built once the tests end.
func TestMain(m *testing.M) { dbtest.Main(m, proctest.RemoveBinaries) }
