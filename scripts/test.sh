#!/usr/bin/env bash
# Run every test: Rust unit and integration tests (SQLite and PostgreSQL), then the real-client
# compatibility suites (boto3, aws CLI v1, JS SDK) against a live server on each backend, then
# the runnable client examples and the packaging checks.
#
# Needs: cargo, python3 with compat-tests/requirements*.txt, node + npm, psql/pg_dump, and a
# PostgreSQL at $TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres).
# Outside CI a missing PostgreSQL skips its tests loudly; under CI=true it fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export TEST_POSTGRES_URL="$PG_URL"
passed=0
failed=0
failures=()

section() { printf '\n######## %s ########\n' "$*"; }
record() { # name, exit code
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

section "AWS SigV4 test suite (from botocore's source distribution)"
if SIGV4_TESTSUITE_DIR="$(bash scripts/fetch-sigv4-testsuite.sh "$ROOT/target/sigv4-testsuite")"; then
  export SIGV4_TESTSUITE_DIR
  echo "using $SIGV4_TESTSUITE_DIR"
else
  echo "could not fetch the SigV4 test suite" >&2
fi

section "cargo test (unit + integration, SQLite and PostgreSQL)"
set +e
cargo test --locked --all-targets
record "cargo test" $?
set -e
BIN="$ROOT/target/debug/ragnos-vault"
[ -x "$BIN" ] || cargo build --locked --bin ragnos-vault
# `cargo test --all-targets` builds the Rust example only as a test target; examples/run-all.sh
# runs the real binary at target/debug/examples/rust_sdk.
cargo build --locked --example rust_sdk

pg_ok=0
if psql "$PG_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
  pg_ok=1
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is required under CI=true but $PG_URL is unreachable" >&2
  record "postgres available" 1
else
  echo "SKIPPED: compatibility suites on PostgreSQL (no server at $PG_URL)"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_server BACKEND -> sets SERVER_PID, ENDPOINT, WORKDIR, DB_NAME
start_server() {
  WORKDIR="$(mktemp -d)"
  DB_NAME=""
  local url="sqlite://$WORKDIR/vault.db"
  if [ "$1" = postgres ]; then
    DB_NAME="ragnos_compat_$$_$RANDOM"
    psql "$PG_URL" -qc "CREATE DATABASE $DB_NAME" >/dev/null
    url="${PG_URL%/*}/$DB_NAME"
  fi
  local port; port="$(free_port)"
  ENDPOINT="http://127.0.0.1:$port"
  export DATABASE_URL="$url" RAGNOS_DATA_DIR="$WORKDIR"
  RAGNOS_ROOT_ACCESS_KEY_ID=AKIACOMPATROOT000001 RAGNOS_ROOT_SECRET_ACCESS_KEY=compat-root-secret-0000000000000000000 \
  RAGNOS_ROOT_ACCOUNT_ID=123456789012 \
    "$BIN" server --listen "127.0.0.1:$port" >"$WORKDIR/stdout.log" 2>"$WORKDIR/server.log" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "$ENDPOINT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$BIN" admin workspace create other >/dev/null
  local other; other="$("$BIN" admin access-key create --workspace other --role admin)"
  export VAULT_OTHER_ACCESS_KEY_ID; VAULT_OTHER_ACCESS_KEY_ID="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["access_key_id"])' "$other")"
  export VAULT_OTHER_SECRET_ACCESS_KEY; VAULT_OTHER_SECRET_ACCESS_KEY="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["secret_access_key"])' "$other")"
  unset DATABASE_URL RAGNOS_DATA_DIR
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  if [ -n "$DB_NAME" ]; then psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null || true; fi
  rm -rf "$WORKDIR"
}

backends=(sqlite)
[ "$pg_ok" = 1 ] && backends+=(postgres)
for backend in "${backends[@]}"; do
  section "compatibility suites on $backend"
  start_server "$backend"
  set +e
  VAULT_ENDPOINT="$ENDPOINT" AWS_ACCESS_KEY_ID=AKIACOMPATROOT000001 \
    AWS_SECRET_ACCESS_KEY=compat-root-secret-0000000000000000000 AWS_DEFAULT_REGION=us-east-1 \
    VAULT_ACCOUNT_ID=123456789012 bash compat-tests/run.sh
  record "compat suites on $backend" $?
  if [ -x examples/run-all.sh ] && [ "$backend" = sqlite ]; then
    section "client examples on $backend"
    VAULT_ENDPOINT="$ENDPOINT" AWS_ACCESS_KEY_ID=AKIACOMPATROOT000001 \
      AWS_SECRET_ACCESS_KEY=compat-root-secret-0000000000000000000 AWS_DEFAULT_REGION=us-east-1 \
      bash examples/run-all.sh
    record "examples on $backend" $?
  fi
  set -e
  if grep -q "compat-root-secret-0000000000000000000" "$WORKDIR/server.log"; then
    echo "the root secret key appeared in the server log" >&2
    record "no secrets in logs ($backend)" 1
  fi
  stop_server
done

if [ -f compat-tests/test_packaging.py ]; then
  section "packaging checks (Dockerfile, compose, Kubernetes manifests)"
  set +e
  (cd compat-tests && python3 -m pytest test_packaging.py -q)
  record "packaging checks" $?
  set -e
fi

section "summary"
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "test suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
