package main

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

// TestMain drops the databases the tests created, and the shared template
// when no other test process uses it, and the binaries proctest built, once
// the tests end.
func TestMain(m *testing.M) { dbtest.Main(m, proctest.RemoveBinaries) }
