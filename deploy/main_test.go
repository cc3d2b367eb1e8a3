package deploy_test

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
	"github.com/rebound-queue/rebound/internal/proctest"
)

func TestMain(m *testing.M) { dbtest.Main(m, proctest.RemoveBinaries) }
