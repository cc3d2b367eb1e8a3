# rebound: `make demo` shows it working, `make test` proves it.
GO       ?= go
BIN      := bin
GOFLAGS  ?=
TESTFLAGS ?= -race -count=1 -timeout 12m

.PHONY: build demo test lint bench bench-go clean

## build: the three binaries (worker, enqueue, rebound) into ./bin
build:
	$(GO) build $(GOFLAGS) -o $(BIN)/ ./cmd/...

## demo: go-httpbin upstream + migrate + worker + a mix of jobs, about 30 seconds. It creates
## (and keeps) a database of its own, rebound_demo_<date>_<time>, or REBOUND_DEMO_DATABASE; when
## no PostgreSQL is found (DATABASE_URL empty) it runs one in Docker if an engine answers.
demo: build
	DATABASE_URL="$$(scripts/ensure-postgres.sh || true)" $(GO) run ./internal/demo --bin $(BIN)

## test: the whole suite against a real PostgreSQL (found or started by scripts/ensure-postgres.sh)
test:
	DATABASE_URL="$$(scripts/ensure-postgres.sh)"; export DATABASE_URL; \
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$DATABASE_URL}" $(GO) test $(TESTFLAGS) ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## bench: rebound against plain River, same run (docs/benchmarks.md); BENCHFLAGS="--jobs 5000" etc.
bench: build
	DATABASE_URL="$$(scripts/ensure-postgres.sh)" $(BIN)/rebound bench --svg bench-noop.svg $(BENCHFLAGS)

## bench-go: the Go micro-benchmarks (classify, delay, breaker...)
bench-go:
	DATABASE_URL="$$(scripts/ensure-postgres.sh)"; export DATABASE_URL; \
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-$$DATABASE_URL}" $(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN) .demo
