package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/rebound-queue/rebound/jobs"
)

// lineChunk is up to parseChunkLines consecutive non-blank lines of the
// input, parsed by one goroutine of a [lineStream]. Its fields other than
// data and spans are set once done is closed.
type lineChunk struct {
	// data holds the chunk's lines, trimmed, one after the other; spans[i]
	// is where line i is in it.
	data  []byte
	spans []rawLine
	// lines are the parsed lines (those of a bad line are zero).
	lines []line
	// bad is how many lines of the chunk are bad; firstErr names the first
	// of them ("PATH line N: ..."), nil when bad is 0.
	bad      int
	firstErr error
	done     chan struct{}
}

// rawLine is where one non-blank input line is in its chunk's data, and
// its number in the input (from 1, blank lines counted).
type rawLine struct {
	number, start, end int
}

// lineStream reads NDJSON input and parses its lines on several goroutines
// (parseChunkLines lines at a time) while it is still being read. Chunks
// come out of next in input order, so a consumer can insert the first
// lines while later ones are still being read and validated; the lines and
// errors are the same as parsing them one after the other.
type lineStream struct {
	name    string
	ordered chan *lineChunk
	// tooLong is the number of the line longer than maxLineBytes, where
	// reading stopped (0 when none was), and readErr the file's or
	// stdin's error; both are set before ordered is closed.
	tooLong int
	readErr error
	// total is the number of non-blank lines, set (and totalKnown) when
	// the whole input has been read.
	total      atomic.Int64
	totalKnown atomic.Bool
}

// streamLines starts reading r (the input named path: "-" is stdin) and
// parsing its lines as kind's args on parsers goroutines (at least one).
// Call next until it returns nil, then err.
func streamLines(kind jobs.Kind, path string, r io.Reader, parsers int) *lineStream {
	s := &lineStream{name: displayName(path), ordered: make(chan *lineChunk, readAheadChunks)}
	work := make(chan *lineChunk)
	var wg sync.WaitGroup
	for range max(parsers, 1) {
		wg.Go(func() {
			for c := range work {
				c.parse(kind, s.name)
			}
		})
	}
	go func() {
		defer close(s.ordered)
		defer wg.Wait()
		defer close(work)
		s.read(path, r, func(c *lineChunk) {
			s.ordered <- c
			work <- c
		})
	}()
	return s
}

// read scans r into chunks of parseChunkLines non-blank lines, handing each
// to emit, and sets tooLong or readErr, or total.
func (s *lineStream) read(path string, r io.Reader, emit func(*lineChunk)) {
	sc := bufio.NewScanner(r)
	// The buffer holds a line of maxLineBytes and its "\r\n" (a line
	// longer than that is refused below, or by the scanner's ErrTooLong).
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes+len("\r\n"))
	var (
		c              *lineChunk
		number, nLines int
	)
	for sc.Scan() {
		number++
		if len(sc.Bytes()) > maxLineBytes { // the line, its ending not counted
			s.tooLong = number
			break
		}
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if c == nil {
			c = &lineChunk{spans: make([]rawLine, 0, parseChunkLines), done: make(chan struct{})}
		}
		c.spans = append(c.spans, rawLine{number: number, start: len(c.data), end: len(c.data) + len(raw)})
		c.data = append(c.data, raw...)
		nLines++
		if len(c.spans) == parseChunkLines {
			emit(c)
			c = nil
		}
	}
	if c != nil {
		emit(c)
	}
	if s.tooLong > 0 {
		return
	}
	if err := sc.Err(); err != nil {
		switch {
		case errors.Is(err, bufio.ErrTooLong):
			s.tooLong = number + 1
		case path == "-":
			s.readErr = fmt.Errorf("read stdin: %w", err)
		default:
			s.readErr = fmt.Errorf("--file: %w", err) // the error names the file
		}
		return
	}
	s.total.Store(int64(nLines))
	s.totalKnown.Store(true)
}

// parse parses every line of c and closes c.done.
func (c *lineChunk) parse(kind jobs.Kind, name string) {
	defer close(c.done)
	c.lines = make([]line, len(c.spans))
	for i, sp := range c.spans {
		args, err := kind.Parse(c.data[sp.start:sp.end:sp.end])
		if err != nil {
			c.bad++
			if c.firstErr == nil {
				c.firstErr = fmt.Errorf("%s line %d: %w", name, sp.number, err)
			}
			continue
		}
		c.lines[i] = line{number: sp.number, args: args}
	}
}

// next returns the next chunk in input order once it is parsed, or nil at
// the end of the input (or after a reading error: see err).
func (s *lineStream) next() *lineChunk {
	c, ok := <-s.ordered
	if !ok {
		return nil
	}
	<-c.done
	return c
}

// linesTally counts the bad lines of the chunks it is given and keeps the
// first one's error.
type linesTally struct {
	firstErr error
	bad      int
}

func (t *linesTally) add(c *lineChunk) {
	if c.bad > 0 && t.firstErr == nil {
		t.firstErr = c.firstErr
	}
	t.bad += c.bad
}

// err is the stream's verdict once next has returned nil: the first bad
// line (and how many more are bad, then the line too long to read, if
// reading stopped at one), else the line too long to read, else the
// reading error, else nil.
func (s *lineStream) err(t *linesTally) error {
	switch {
	case s.tooLong > 0 && t.bad > 0:
		more := ""
		if t.bad > 1 {
			more = fmt.Sprintf("%d more bad lines, then ", t.bad-1)
		}
		return fmt.Errorf("%w (and %sline %d: longer than %d MiB, where reading stopped; nothing inserted)", t.firstErr, more, s.tooLong, maxLineBytes>>20)
	case s.tooLong > 0:
		return fmt.Errorf("%s line %d: longer than %d MiB (nothing inserted)", s.name, s.tooLong, maxLineBytes>>20)
	case s.readErr != nil:
		return s.readErr
	case t.bad > 1:
		return fmt.Errorf("%w (and %d more bad lines; nothing inserted)", t.firstErr, t.bad-1)
	case t.bad == 1:
		return fmt.Errorf("%w (nothing inserted)", t.firstErr)
	}
	return nil
}

// readFile reads and validates every line of an NDJSON file ("-" is
// stdin). Nothing is returned unless every line is valid: the error names
// the first bad line and how many others are bad. Lines are parsed on
// every CPU while the input is read ([streamLines]): nothing else runs
// meanwhile.
func readFile(kind jobs.Kind, path string, stdin io.Reader) ([]line, error) {
	r, closeFile, err := openInput(path, stdin)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	s := streamLines(kind, path, r, runtime.GOMAXPROCS(0))
	var (
		out   []line
		tally linesTally
	)
	for c := s.next(); c != nil; c = s.next() {
		tally.add(c)
		if tally.bad == 0 {
			out = append(out, c.lines...)
		}
	}
	if err := s.err(&tally); err != nil {
		return nil, err
	}
	return out, nil
}

// openInput opens the --file path ("-" is stdin).
func openInput(path string, stdin io.Reader) (io.Reader, func(), error) {
	if path == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--file: %w", err)
	}
	return f, func() { f.Close() }, nil
}
