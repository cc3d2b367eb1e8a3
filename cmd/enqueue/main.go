// Command enqueue inserts rebound jobs: one from --args, or a file of them
// (NDJSON, one args object per line) inserted all-or-nothing in one
// transaction.
//
//	enqueue http_request --args '{"url": "https://example.com/hook"}'
//	enqueue http_request --file jobs.ndjson --queue webhooks --json
//	producer | enqueue http_request --file -
//
// It reads DATABASE_URL (libpq's defaults when unset).
package main

import (
	"os"

	"github.com/rebound-queue/rebound/internal/cli"
)

func main() {
	cli.Execute(newRootCmd(os.Stdin, os.Stdout, os.Stderr))
}
