package deploy

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestMain removes the binaries the tests built and drops the databases they
// created, and the shared template when no other test process uses it, once
// the tests end.
func TestMain(m *testing.M) { dbtest.Main(m, proctest.RemoveBinaries) }
