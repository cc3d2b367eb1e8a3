#!/usr/bin/env bash
# ensure-postgres.sh: make sure a PostgreSQL server answers, and print its URL
# on stdout (everything else goes to stderr). Used by `make demo`, `make test`
# and .ci/run:
#
#   export DATABASE_URL="$(scripts/ensure-postgres.sh)"
#
# In order:
#   1. DATABASE_URL, if set, must answer (no fallback: you asked for that one).
#   2. The local server at 127.0.0.1:5432 (trust auth, user postgres). If it
#      does not answer and a Debian cluster exists, start it with
#      pg_ctlcluster.
#   3. When PostgreSQL's binaries are installed: a private throwaway cluster
#      (initdb in a temporary folder, a free port), reused by later calls
#      while it runs. Stop it with: scripts/ensure-postgres.sh --stop
#   4. Otherwise one message saying how to get PostgreSQL, and exit 1
#      (make demo and make test then try a Docker engine, through
#      testcontainers-go).
#
# ENSURE_POSTGRES_PRIVATE=1 skips 1 and 2: always the private cluster.
set -euo pipefail

say() { printf 'ensure-postgres: %s\n' "$*" >&2; }

private_dir="${TMPDIR:-/tmp}/rebound-postgres-$(id -u)"

answers() { # answers HOST PORT
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$1" -p "$2" -t 3 >/dev/null 2>&1
  else
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
  fi
}

pg_bin() { # pg_bin NAME: a PostgreSQL server binary, or nothing
  local found
  found=$(command -v "$1" 2>/dev/null || true)
  if [[ -z $found ]]; then
    found=$(ls -d /usr/lib/postgresql/*/bin/"$1" 2>/dev/null | sort -V | tail -1 || true)
  fi
  printf '%s' "$found"
}

as_owner() { # run a server command as a non-root user (initdb refuses root)
  if [[ $(id -u) -eq 0 ]]; then
    if id postgres >/dev/null 2>&1; then
      runuser -u postgres -- "$@"
    else
      say "running as root and no 'postgres' user exists for initdb"
      return 1
    fi
  else
    "$@"
  fi
}

if [[ ${1:-} == --stop ]]; then
  if [[ -f $private_dir/data/postmaster.pid ]]; then
    as_owner "$(pg_bin pg_ctl)" -D "$private_dir/data" -m fast stop >&2
  fi
  exit 0
fi

private_only=${ENSURE_POSTGRES_PRIVATE:-}

# 1. An explicit DATABASE_URL.
if [[ -z $private_only && -n ${DATABASE_URL:-} ]]; then
  if command -v psql >/dev/null 2>&1; then
    if ! psql "$DATABASE_URL" -Atqc 'SELECT 1' >/dev/null 2>&1; then
      say "DATABASE_URL is set but PostgreSQL does not answer there; fix it or unset it"
      exit 1
    fi
  fi
  printf '%s\n' "$DATABASE_URL"
  exit 0
fi

local_url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

# 2. The machine's own server.
if [[ -z $private_only ]] && answers 127.0.0.1 5432; then
  printf '%s\n' "$local_url"
  exit 0
fi
if [[ -z $private_only ]] && command -v pg_ctlcluster >/dev/null 2>&1 && [[ -d /etc/postgresql ]] && [[ -n $(ls /etc/postgresql 2>/dev/null) ]]; then
  version=$(ls /etc/postgresql | sort -V | tail -1)
  say "starting the local cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || true
  for _ in $(seq 1 30); do
    if answers 127.0.0.1 5432; then
      printf '%s\n' "$local_url"
      exit 0
    fi
    sleep 0.5
  done
  say "the local cluster did not come up; trying a private one"
fi

# 3. A private throwaway cluster.
initdb=$(pg_bin initdb)
pg_ctl=$(pg_bin pg_ctl)
if [[ -n $initdb && -n $pg_ctl ]]; then
  if [[ -f $private_dir/port ]] && answers 127.0.0.1 "$(cat "$private_dir/port")"; then
    printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$(cat "$private_dir/port")"
    exit 0
  fi
  rm -rf "$private_dir"
  mkdir -p "$private_dir"
  [[ $(id -u) -eq 0 ]] && chown postgres "$private_dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
  say "starting a private PostgreSQL in $private_dir on port $port"
  as_owner "$initdb" -D "$private_dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
  as_owner "$pg_ctl" -D "$private_dir/data" -l "$private_dir/log" -w \
    -o "-p $port -k $private_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >&2
  echo "$port" >"$private_dir/port"
  printf 'postgres://postgres@127.0.0.1:%s/postgres?sslmode=disable\n' "$port"
  exit 0
fi

# 4. Nothing to use.
cat >&2 <<'EOF'
ensure-postgres: no PostgreSQL found. Any one of these works:
  - set DATABASE_URL to a server you have (postgres://user@host:5432/db)
  - Debian/Ubuntu: sudo apt-get install -y postgresql   (then run this again)
  - macOS:         brew install postgresql@16 && brew services start postgresql@16
  - Docker:        start a Docker engine; make demo and make test then run
                   PostgreSQL in a container (testcontainers-go)
EOF
exit 1
