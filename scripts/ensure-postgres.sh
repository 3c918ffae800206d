#!/usr/bin/env bash
# Make sure a PostgreSQL server answers for the test suite, then print its URL on stdout.
#
# Order of attempts: an already running server on 127.0.0.1:5432; the machine's Debian
# cluster (pg_ctlcluster); installing Debian's `postgresql` package; finally a private
# cluster made with initdb in .pgdata/ (as a non-root user) on port 55432.
set -euo pipefail
log() { echo "ensure-postgres: $*" >&2; }

URL_DEFAULT="postgresql://postgres@127.0.0.1:5432/test"
ready() { pg_isready -q -h 127.0.0.1 -p "$1" >/dev/null 2>&1; }
has_db() {
  psql "postgresql://postgres@127.0.0.1:$1/postgres" -tAc "SELECT 1" >/dev/null 2>&1
}
ensure_test_db() {
  local port=$1
  if ! psql "postgresql://postgres@127.0.0.1:$port/postgres" -tAc \
      "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1; then
    psql "postgresql://postgres@127.0.0.1:$port/postgres" -c "CREATE DATABASE test" >/dev/null 2>&1 || true
  fi
}

if [ -n "${FLOWPLANE_TEST_POSTGRES_URL:-}" ]; then
  echo "$FLOWPLANE_TEST_POSTGRES_URL"; exit 0
fi

if command -v pg_isready >/dev/null 2>&1 && ready 5432 && has_db 5432; then
  ensure_test_db 5432; echo "$URL_DEFAULT"; exit 0
fi

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo -n"
fi

if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ] && { [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; }; then
  for version in $(ls /etc/postgresql); do
    log "starting cluster $version/main"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>&1 || true
  done
  for _ in $(seq 1 30); do ready 5432 && break; sleep 1; done
  if ready 5432 && has_db 5432; then ensure_test_db 5432; echo "$URL_DEFAULT"; exit 0; fi
fi

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] || [ -n "$SUDO" ]; then
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq postgresql >&2
    for version in $(ls /etc/postgresql 2>/dev/null); do
      # Trust local TCP connections for the tests (this is a throw-away test server).
      hba="/etc/postgresql/$version/main/pg_hba.conf"
      $SUDO sed -i 's/^\(host.*127.0.0.1\/32\s*\)\S*$/\1trust/; s/^\(host.*::1\/128\s*\)\S*$/\1trust/; s/^\(local.*\)peer$/\1trust/' "$hba" || true
      $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main restart >&2 2>&1 || \
        $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 2>&1 || true
    done
    for _ in $(seq 1 30); do ready 5432 && break; sleep 1; done
    if ready 5432 && has_db 5432; then ensure_test_db 5432; echo "$URL_DEFAULT"; exit 0; fi
  else
    log "no PostgreSQL binaries and no root: cannot install"; exit 1
  fi
fi

# Last resort: a private cluster in .pgdata, owned by a non-root user.
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
DATA="$(pwd)/.pgdata"
PORT=55432
RUN_AS=""
if [ "$(id -u)" = "0" ]; then RUN_AS="su postgres -s /bin/sh -c"; fi
if [ ! -f "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA"; [ -n "$RUN_AS" ] && chown postgres "$DATA"
  log "initdb into $DATA"
  if [ -n "$RUN_AS" ]; then $RUN_AS "$BIN/initdb -D '$DATA' -U postgres -A trust" >&2
  else "$BIN/initdb" -D "$DATA" -U postgres -A trust >&2; fi
fi
if ! ready $PORT; then
  cmd="$BIN/pg_ctl -D '$DATA' -o '-p $PORT -k /tmp -c listen_addresses=127.0.0.1' -l '$DATA/log' -w start"
  if [ -n "$RUN_AS" ]; then $RUN_AS "$cmd" >&2; else sh -c "$cmd" >&2; fi
fi
ensure_test_db $PORT
echo "postgresql://postgres@127.0.0.1:$PORT/test"
