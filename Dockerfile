# syntax=docker/dockerfile:1
#
# rebound's image: the three binaries (worker, enqueue, rebound) built from
# ./cmd/... (the same packages as `make build`) on a small Alpine base, run as
# an unprivileged user. Run any of them:
#
#   docker build -t rebound .
#   docker run --rm -e DATABASE_URL=... rebound rebound migrate up
#   docker run --rm -e DATABASE_URL=... -e REBOUND_ADMIN_TOKEN=... -p 8080:8080 rebound
#
# The default command is a worker listening on 0.0.0.0:8080 (a container's
# loopback is unreachable from outside), which therefore needs
# REBOUND_ADMIN_TOKEN: without it the worker refuses to start and says so.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-alpine AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM alpine:3.22
# ca-certificates: http_request jobs and alert channels call HTTPS endpoints;
# tzdata: time zones in schedules; busybox's wget serves the healthchecks.
RUN apk add --no-cache ca-certificates tzdata \
    && addgroup -S -g 10001 rebound \
    && adduser -S -D -H -u 10001 -G rebound -s /sbin/nologin rebound
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
EXPOSE 8080
CMD ["worker", "--http-addr", "0.0.0.0:8080"]
