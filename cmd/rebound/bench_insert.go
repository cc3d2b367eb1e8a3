package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rebound-queue/rebound/internal/bench"
)

// insertFlags are the flags of `rebound bench --scenario insert`.
type insertFlags struct {
	lines      int
	enqueueBin string
	svgPath    string
}

func (f *insertFlags) add(fs *pflag.FlagSet) {
	fs.IntVar(&f.lines, "lines", 100_000, "insert scenario: lines of the NDJSON file (jobs) per round and side")
	fs.StringVar(&f.enqueueBin, "enqueue-bin", "", "insert scenario: the enqueue binary to time (default: enqueue next to this rebound binary)")
	fs.StringVar(&f.svgPath, "insert-svg", "", "insert scenario: write a plot of jobs/s and CPU per job per round to this SVG file")
}

// check refuses bad insert settings and finds the enqueue binary.
func (f *insertFlags) check() error {
	if f.lines < 1 || f.lines > 10_000_000 {
		return fmt.Errorf("--lines must be between 1 and 10000000, got %d", f.lines)
	}
	if f.enqueueBin == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("--enqueue-bin: %w", err)
		}
		f.enqueueBin = filepath.Join(filepath.Dir(self), "enqueue")
	}
	if st, err := os.Stat(f.enqueueBin); err != nil || st.IsDir() {
		return fmt.Errorf("--enqueue-bin: no enqueue binary at %s (make build puts it next to rebound in bin/)", f.enqueueBin)
	}
	return nil
}

// runInsertBench runs the insert scenario on db and adds its report to out;
// its plot goes to --insert-svg if given, else to svgPath (--svg, with
// -insert before the extension under --scenario all).
func runInsertBench(cmd *cobra.Command, db *bench.Database, f insertFlags, rounds int, svgPath string, out *benchOutput) error {
	rep, err := bench.RunInsert(cmd.Context(), db.Pool, db.URL, bench.InsertConfig{Lines: f.lines, Rounds: rounds, EnqueueBin: f.enqueueBin}, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if f.svgPath != "" {
		svgPath = f.svgPath
	}
	if err := writeBenchSVG(svgPath, rep.WriteSVG); err != nil {
		return err
	}
	out.add("insert", rep, func(w io.Writer) error { return rep.WriteTable(w) })
	return nil
}
