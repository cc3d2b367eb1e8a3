package deadletter_test

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestMain drops the databases the tests created, and the shared template
// when no other test process uses it, once the tests end, and the binaries proctest built.
func TestMain(m *testing.M) { dbtest.Main(m, proctest.RemoveBinaries) }
