package batch_test

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

// TestMain drops the databases the tests created, and the shared template
// when no other test process uses it, once the tests end.
func TestMain(m *testing.M) { dbtest.Main(m) }
