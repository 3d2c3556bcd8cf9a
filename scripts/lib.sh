# Shared steps of scripts/test and scripts/up. Sourced, not run.
# Each step is idempotent: a second run reuses what the first one made.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STATE_DIR="${TRINITY_STATE_DIR:-$ROOT/.trinity}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Create the virtual environment and install the project with its dev extras (uv when present: fast).
ensure_venv() {
  local python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || die "python3 (3.11+) is required"
  local version minor
  version="$("$python" -V 2>&1)"  # "Python 3.11.2"
  version="${version#Python }"
  minor="${version#*.}"
  minor="${minor%%.*}"
  { [ "${version%%.*}" = 3 ] && [ "$minor" -ge 11 ] 2>/dev/null; } || die "Python 3.11+ is required"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$python" -m venv "$VENV"
  fi
  if [ ! -x "$VENV/bin/uv" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check uv
  fi
  local stamp="$VENV/.trinity-installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    say "installing dependencies"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" -e "$ROOT[${1:-dev}]"
    touch "$stamp"
  fi
}

# Exit 0 when the server at a URL answers (tests/support/probe.py).
probe() { (cd "$ROOT" && "$VENV/bin/python" -m tests.support.probe "$@" >/dev/null 2>&1); }
pg_ready() { probe postgres "$1"; }

# Make TRINITY_TEST_PG_ADMIN_URL point at a PostgreSQL server: the given one, the local one on 5432,
# or a throwaway cluster started here (initdb/pg_ctl from Debian's postgresql package).
ensure_postgres() {
  local url="${TRINITY_TEST_PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
  if pg_ready "$url"; then export TRINITY_TEST_PG_ADMIN_URL="$url"; return 0; fi
  say "no PostgreSQL at $url: starting a throwaway one"
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) || true
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  fi
  if [ -z "$bin" ]; then
    [ "${CI:-}" = "true" ] && die "PostgreSQL is not reachable and initdb/pg_ctl are not installed"
    say "PostgreSQL unavailable: its tests will be skipped"; return 0
  fi
  local dir="$STATE_DIR/test-postgres" port=55432 run=()
  mkdir -p "$STATE_DIR"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
    mkdir -p "$dir"; chown -R postgres "$dir"; run=(runuser -u postgres --)
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust >/dev/null || die "initdb failed"
  fi
  "${run[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null \
    || die "pg_ctl start failed; see $dir/server.log"
  url="postgresql://postgres@127.0.0.1:$port/postgres"
  pg_ready "$url" || die "throwaway PostgreSQL did not come up; see $dir/server.log"
  export TRINITY_TEST_PG_ADMIN_URL="$url"
}

redis_ready() { probe redis "$1"; }

# Redis on 127.0.0.1:6379 for the rate-limiter tests: the running one, else Debian's redis-server
# (installed when missing) started here without persistence.
ensure_redis() {
  local url="redis://127.0.0.1:6379"
  redis_ready "$url" && return 0
  if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's redis-server"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) || true
  fi
  if command -v redis-server >/dev/null; then
    say "no Redis at $url: starting redis-server"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
    local tries
    for tries in 1 2 3 4 5 6 7 8 9 10; do
      redis_ready "$url" && return 0
      sleep 0.5
    done
  fi
  [ "${CI:-}" = "true" ] && die "Redis is not reachable at $url and redis-server could not be installed or started"
  say "Redis unavailable: its tests will be skipped"
}

# Debian's influxdb (influxd, 1.x) and prometheus for the monitoring tests, which start their own
# servers on free ports (tests/support/monitoring_servers.py); installed here when missing.
ensure_debian_binary() {
  local binary="$1" package="$2"
  command -v "$binary" >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's $package"
    # A service the package may start is left alone: the tests start their own on free ports.
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null) || true
  fi
  command -v "$binary" >/dev/null && return 0
  [ "${CI:-}" = "true" ] && die "$binary is not installed and Debian's $package could not be installed"
  say "$binary unavailable: its tests will be skipped"
}
ensure_influxdb() { ensure_debian_binary influxd influxdb; }
# The load balancer of `trinity up` with prefect.api_replicas > 1 (Debian keeps it in /usr/sbin).
ensure_haproxy() { PATH="$PATH:/usr/sbin" ensure_debian_binary haproxy haproxy; }
ensure_prometheus() { ensure_debian_binary prometheus prometheus; }

# Debian's Chromium for the browser test (Playwright drives it; no browser downloads).
ensure_chromium() {
  command -v chromium >/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian's chromium"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || true
  fi
  command -v chromium >/dev/null && return 0
  [ "${CI:-}" = "true" ] && die "chromium is not installed and could not be installed"
  say "chromium unavailable: the browser test will be skipped"
}
