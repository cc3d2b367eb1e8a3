package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/rebound-queue/rebound/jobs"
)

// inputFormat picks the format of --file: --format when given, else the
// extension (.csv is CSV; .ndjson, .jsonl and .json are NDJSON), else for
// standard input the first non-blank byte ('{' is NDJSON, anything else
// CSV).
func inputFormat(format, path string, peek []byte) (string, error) {
	switch format {
	case "csv", "ndjson":
		return format, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("invalid --format %q: want auto, ndjson or csv", format)
	}
	lower := strings.ToLower(path)
	switch {
	case strings.HasSuffix(lower, ".csv"):
		return "csv", nil
	case strings.HasSuffix(lower, ".ndjson"), strings.HasSuffix(lower, ".jsonl"), strings.HasSuffix(lower, ".json"):
		return "ndjson", nil
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(peek, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return "ndjson", nil
	}
	return "csv", nil
}

// readItems reads and validates every item of --file (NDJSON or CSV).
// Nothing is returned unless every item is valid: the error names the first
// bad line and how many others are bad.
func readItems(kind jobs.Kind, path, format string, stdin io.Reader) ([]line, string, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, "", fmt.Errorf("--file: %w", err)
		}
		defer f.Close()
		r = f
	}
	br := bufio.NewReaderSize(r, 64<<10)
	peek, _ := br.Peek(512)
	format, err := inputFormat(format, path, peek)
	if err != nil {
		return nil, "", err
	}
	if format == "ndjson" {
		lines, err := readFile(kind, path, br)
		return lines, format, err
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(peek, []byte("\xef\xbb\xbf")), " \t\r\n")
	lines, err := readCSV(kind, displayName(path), br, len(trimmed) > 0 && trimmed[0] == '{')
	return lines, format, err
}

// readCSV reads a CSV of items: a header row naming args fields, then one
// item per row. Cells are typed by the kind's args (jobs.Kind.Args):
// number fields become JSON numbers, "true or false" fields booleans,
// object, array and "any JSON" fields must hold JSON; an empty cell leaves
// the field out (its default applies). Every row is checked by the kind's
// Parse. Every error ends in "(nothing inserted)"; when looksNDJSON (the
// input starts with '{'), an error of the header row or of the CSV syntax
// says that the input looks like NDJSON and how to read it so.
func readCSV(kind jobs.Kind, name string, r io.Reader, looksNDJSON bool) ([]line, error) {
	hint := ""
	if looksNDJSON {
		hint = "; it looks like NDJSON (it starts with {): give --format ndjson"
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: empty (want a header row naming the args fields; nothing inserted)", name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s%s (nothing inserted)", name, csvError(err), hint)
	}
	header = slices.Clone(header)
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	fields := kind.Args
	types := make(map[string]string, len(fields))
	var known []string
	for _, f := range fields {
		types[f.Name] = f.Type
		known = append(known, f.Name)
	}
	seen := map[string]bool{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		header[i] = h
		switch {
		case !utf8.ValidString(h) || strings.ContainsFunc(h, unicode.IsControl):
			return nil, fmt.Errorf("%s line 1: column %d: name %s is not valid UTF-8 or holds a control character%s (nothing inserted)", name, i+1, quoteCell(h), hint)
		case h == "":
			return nil, fmt.Errorf("%s line 1: column %d has no name%s (nothing inserted)", name, i+1, hint)
		case seen[h]:
			return nil, fmt.Errorf("%s line 1: column %s appears twice%s (nothing inserted)", name, quoteCell(h), hint)
		case len(fields) > 0 && types[h] == "":
			return nil, fmt.Errorf("%s line 1: column %s is not a field of %s args (fields: %s)%s (nothing inserted)", name, quoteCell(h), kind.Name, strings.Join(known, ", "), hint)
		}
		seen[h] = true
	}

	var (
		out      []line
		firstErr error
		bad      int
	)
	fail := func(err error) {
		bad++
		if firstErr == nil {
			firstErr = err
		}
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				fail(fmt.Errorf("%s line %d: %d fields, but the header has %d", name, pe.StartLine, len(rec), len(header)))
				continue
			}
			// A malformed quote stops the reader: report it now.
			return nil, fmt.Errorf("%s %s%s (nothing inserted)", name, csvError(err), hint)
		}
		row, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" && len(header) > 1 {
			continue // a blank line
		}
		size := 0
		for _, cell := range rec {
			size += len(cell)
		}
		if size > maxLineBytes { // the cap of an NDJSON line
			fail(fmt.Errorf("%s line %d: longer than %d MiB", name, row, maxLineBytes>>20))
			continue
		}
		raw, err := csvObject(header, types, rec)
		if err != nil {
			fail(fmt.Errorf("%s line %d: %w", name, row, err))
			continue
		}
		args, err := kind.Parse(raw)
		if err != nil {
			fail(fmt.Errorf("%s line %d: %w", name, row, err))
			continue
		}
		out = append(out, line{number: row, args: args})
	}
	if firstErr != nil {
		if bad > 1 {
			return nil, fmt.Errorf("%w (and %d more bad lines; nothing inserted)", firstErr, bad-1)
		}
		return nil, fmt.Errorf("%w (nothing inserted)", firstErr)
	}
	return out, nil
}

// csvObject builds the args JSON object of one row.
func csvObject(header []string, types map[string]string, rec []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for i, cell := range rec {
		col := header[i]
		if cell == "" {
			continue
		}
		if !utf8.ValidString(cell) {
			return nil, fmt.Errorf("column %s: not valid UTF-8", col)
		}
		v, err := csvValue(types[col], cell)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", col, err)
		}
		if n > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(col)
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
		n++
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// csvValue is one cell as the JSON value of a field of type typ (a
// jobs.Arg Type; "" when the kind lists no args: a string).
func csvValue(typ, cell string) ([]byte, error) {
	s := strings.TrimSpace(cell)
	switch typ {
	case "number":
		if _, err := strconv.ParseFloat(s, 64); err != nil || !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("want a number, not %s", quoteCell(cell))
		}
		return []byte(s), nil
	case "true or false":
		v, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("want true or false, not %s", quoteCell(cell))
		}
		return json.Marshal(v)
	case "object", "array", "any JSON":
		if !json.Valid([]byte(s)) {
			return nil, fmt.Errorf("want JSON (%s), not %s", typ, quoteCell(cell))
		}
		return []byte(s), nil
	default:
		return json.Marshal(cell)
	}
}

// cellQuoteBytes bounds the part of a cell an error message quotes.
const cellQuoteBytes = 64

// quoteCell quotes cell for an error message: its first cellQuoteBytes
// bytes (cut at a character boundary) and "…" when it is longer, so a
// 10 MB cell makes a one-line message.
func quoteCell(cell string) string {
	if len(cell) <= cellQuoteBytes {
		return strconv.Quote(cell)
	}
	cut := cellQuoteBytes
	for cut > 0 && !utf8.RuneStart(cell[cut]) {
		cut--
	}
	return strconv.Quote(cell[:cut]) + "…"
}

// csvError says a CSV reader error as "line N: what is wrong", in words
// rather than the CSV reader's ("bare \" in non-quoted-field").
func csvError(err error) string {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return err.Error()
	}
	what := pe.Err.Error()
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		what = `a " inside a cell that does not start with " (quote the whole cell and double each " in it: "say ""hi""")`
	case errors.Is(pe.Err, csv.ErrQuote):
		what = `a quoted cell is not closed, or a " inside it is not doubled`
	}
	line := pe.StartLine
	if pe.Line > 0 && errors.Is(pe.Err, csv.ErrBareQuote) {
		line = pe.Line
	}
	return fmt.Sprintf("line %d: %s", line, what)
}
