package listencheck_test

import (
	"testing"

	"github.com/rebound-queue/rebound/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }
