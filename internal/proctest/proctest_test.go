package proctest_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/proctest"
)

// childEnv tells this test binary it runs as the child process of
// TestRemoveBinariesLeavesNothing.
const childEnv = "PROCTEST_TEST_CHILD"

func TestMain(m *testing.M) {
	code := m.Run()
	proctest.RemoveBinaries()
	os.Exit(code)
}

// TestChildProcess builds the binaries and prints where one of them is.
func TestChildProcess(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("runs only as the child process of TestRemoveBinariesLeavesNothing")
	}
	bin := proctest.Bin(t, "rebound")
	_, err := os.Stat(bin)
	require.NoError(t, err)
	fmt.Printf("built %s\n", bin)
}

// A test process that built the binaries (about 70 MB) leaves nothing in
// its temporary folder once its tests end.
func TestRemoveBinariesLeavesNothing(t *testing.T) {
	t.Parallel()
	tmp := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"=1", "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var bin string
	for line := range strings.Lines(string(out)) {
		if b, ok := strings.CutPrefix(strings.TrimSpace(line), "built "); ok {
			bin = b
		}
	}
	require.True(t, strings.HasPrefix(bin, tmp+string(os.PathSeparator)+"rebound-bin-"), "binary %q not built under TMPDIR %s; output:\n%s", bin, tmp, out)
	_, err = os.Stat(bin)
	require.ErrorIs(t, err, os.ErrNotExist)
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	require.Empty(t, left, "left in TMPDIR")
}
