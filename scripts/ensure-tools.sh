#!/usr/bin/env bash
# ensure-tools.sh: install, when missing, the Debian packages some tests drive
# as real programs: prometheus (the server and promtool, for the rules and the
# dashboard queries), pgbouncer (the pooler tests) and chromium (the console's
# browser tests). Used by .ci/run; on a developer's machine those tests skip
# with a message when a program is missing, and fail under CI=true.
set -euo pipefail

need=()
command -v promtool   >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v pgbouncer  >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v chromium   >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
# shellcheck disable=SC2207
need=($(printf '%s\n' "${need[@]}" | sort -u))
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
echo "ensure-tools: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
