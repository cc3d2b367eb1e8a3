#!/bin/sh
# rebound's demo load generator (the loadgen service of docker-compose.yml):
# every LOADGEN_INTERVAL seconds it enqueues one round of jobs with the
# enqueue binary, so the dashboards have something to show.
#
# One round, 20 jobs:
#   http_request against LOADGEN_UPSTREAM (go-httpbin), each endpoint its own
#   operation key (its own circuit breaker):
#     6 x /status/200                 succeed
#     2 x /unstable?failure_rate=0.5  fail (500) about half the time, retried until they succeed
#     1 x /status/503                 server_error: retried, then dead-lettered; opens the "status-503" breaker
#     1 x /status/429                 rate_limited: retried with the aggressive backoff, then dead-lettered
#     1 x /status/404                 not_found: straight to the dead-letter queue
#     1 x /delay/1                    succeeds after a second
#   synthetic:
#     6 x sleep 100 ms                succeed
#     1 x fail twice with a 503       retried, then succeeds (operation key "payments")
#     1 x bad_request                 straight to the dead-letter queue
#
# Environment: DATABASE_URL (as for enqueue), LOADGEN_UPSTREAM (default
# http://httpbin:8080), LOADGEN_INTERVAL in seconds (default 5),
# LOADGEN_ROUNDS (default 0: forever). It stops at the first failed enqueue
# (the container restarts it).
set -eu

upstream="${LOADGEN_UPSTREAM:-http://httpbin:8080}"
interval="${LOADGEN_INTERVAL:-5}"
rounds="${LOADGEN_ROUNDS:-0}"

# http_jobs prints the round's http_request args, one JSON object per line.
http_jobs() {
	for _ in 1 2 3 4 5 6; do
		printf '{"url": "%s/status/200", "operation_key": "status-200"}\n' "$upstream"
	done
	for _ in 1 2; do
		printf '{"url": "%s/unstable?failure_rate=0.5", "operation_key": "unstable"}\n' "$upstream"
	done
	printf '{"url": "%s/status/503", "operation_key": "status-503"}\n' "$upstream"
	printf '{"url": "%s/status/429", "operation_key": "status-429"}\n' "$upstream"
	printf '{"url": "%s/status/404", "operation_key": "status-404"}\n' "$upstream"
	printf '{"url": "%s/delay/1", "method": "GET", "operation_key": "delay"}\n' "$upstream"
}

# synthetic_jobs prints the round's synthetic args.
synthetic_jobs() {
	for _ in 1 2 3 4 5 6; do
		echo '{"sleep_ms": 100}'
	done
	echo '{"fail_attempts": 2, "fail_status": 503, "operation_key": "payments"}'
	echo '{"fail_attempts": 1, "fail_class": "bad_request", "fail_message": "loadgen: a request that cannot succeed"}'
}

echo "loadgen: a round of 20 jobs every ${interval}s against ${upstream}"
n=0
while :; do
	http_jobs | enqueue http_request --file - >/dev/null
	synthetic_jobs | enqueue synthetic --file - >/dev/null
	n=$((n + 1))
	if [ "$rounds" -gt 0 ] && [ "$n" -ge "$rounds" ]; then
		echo "loadgen: done after ${n} round(s)"
		exit 0
	fi
	sleep "$interval"
done
