package main

import (
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/rebound-queue/rebound/internal/cli"
)

// The worker refuses a REBOUND_ variable it does not read but lets be the
// variables of enqueue's flags, listed in cli.OtherEnv: the list holds
// every flag of enqueue and enqueue batch (but --help, and --config, which
// the worker reads too), and nothing else of enqueue's.
func TestOtherEnvListsEnqueueFlags(t *testing.T) {
	t.Parallel()
	root := newRootCmd(strings.NewReader(""), io.Discard, io.Discard)
	var want []string
	for _, cmd := range append([]*cobra.Command{root}, root.Commands()...) {
		cmd.InitDefaultHelpFlag()
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if f.Name != "help" && f.Name != "config" {
				want = append(want, cli.EnvName("REBOUND", f.Name))
			}
		})
	}
	slices.Sort(want)
	want = slices.Compact(want)
	var got []string
	for _, name := range cli.OtherEnv {
		if !strings.HasPrefix(name, "REBOUND_DEMO_") && !strings.HasPrefix(name, "REBOUND_DBTEST_") &&
			!strings.HasPrefix(name, "REBOUND_SCALE_") && !strings.HasPrefix(name, "REBOUND_TEST_") {
			got = append(got, name)
		}
	}
	slices.Sort(got)
	require.Equal(t, want, got)
}
