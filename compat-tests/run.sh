#!/usr/bin/env bash
# Run the real-client compatibility suites against a running RAGnos Vault (or any endpoint that
# speaks the Secrets Manager protocol).
#
#   VAULT_ENDPOINT=http://127.0.0.1:4000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
#   AWS_DEFAULT_REGION=us-east-1 compat-tests/run.sh [python] [cli] [node]
#
# Optional: VAULT_ACCOUNT_ID (assert ARNs carry it), VAULT_OTHER_ACCESS_KEY_ID /
# VAULT_OTHER_SECRET_ACCESS_KEY (isolation tests), VAULT_TARGET=moto (known moto gaps become
# xfail/todo, SigV4 tests are skipped), VAULT_WAIT_SECONDS (default 30: wait for the endpoint),
# PYTHON (default python3), COMPAT_RUN_ID (name prefix; random by default).
# Exits non-zero if any suite fails.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

: "${VAULT_ENDPOINT:?set VAULT_ENDPOINT, e.g. http://127.0.0.1:4000}"
: "${AWS_ACCESS_KEY_ID:?set AWS_ACCESS_KEY_ID}"
: "${AWS_SECRET_ACCESS_KEY:?set AWS_SECRET_ACCESS_KEY}"
export VAULT_ENDPOINT AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export COMPAT_RUN_ID="${COMPAT_RUN_ID:-$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')}"
export PYTHONDONTWRITEBYTECODE=1
PYTHON="${PYTHON:-python3}"

suites=("$@")
[ ${#suites[@]} -eq 0 ] && suites=(python cli node)

section() { printf '\n==================== %s ====================\n' "$*"; }

section "RAGnos Vault compatibility tests"
echo "endpoint=$VAULT_ENDPOINT region=$AWS_DEFAULT_REGION target=${VAULT_TARGET:-vault} run_id=$COMPAT_RUN_ID"
echo "account=${VAULT_ACCOUNT_ID:-(any)} other_workspace=$([ -n "${VAULT_OTHER_ACCESS_KEY_ID:-}" ] && echo yes || echo no) suites=${suites[*]}"

# Wait until the endpoint answers HTTP at all (any status counts: it may be starting up).
wait_s="${VAULT_WAIT_SECONDS:-30}"
if ! "$PYTHON" - "$VAULT_ENDPOINT" "$wait_s" <<'PY'
import sys, time, urllib.request, urllib.error
url, deadline = sys.argv[1].rstrip("/") + "/", time.time() + float(sys.argv[2])
while True:
    try:
        urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=3)
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)
    except Exception as e:  # connection refused, timeout...
        if time.time() > deadline:
            print(f"endpoint {url} not reachable: {e}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.5)
PY
then
  exit 1
fi

needs_python=0
for s in "${suites[@]}"; do [ "$s" = python ] || [ "$s" = cli ] && needs_python=1; done
if [ "$needs_python" = 1 ] && ! { "$PYTHON" -c 'import pytest, boto3' 2>/dev/null && command -v aws >/dev/null; }; then
  section "installing Python requirements (requirements.txt)"
  "$PYTHON" -m pip install -q -r requirements.txt || { echo "pip install failed" >&2; exit 1; }
fi

declare -A result
overall=0

for s in "${suites[@]}"; do
  case "$s" in
    python)
      section "python: pytest + boto3 (python/test_boto3.py)"
      "$PYTHON" -m pytest python -v --tb=short; rc=$? ;;
    cli)
      section "cli: aws CLI v1 (cli/test_awscli.py)"
      "$PYTHON" -m pytest cli -v --tb=short; rc=$? ;;
    node)
      section "node: @aws-sdk/client-secrets-manager (node/test/compat.test.mjs)"
      if ! command -v node >/dev/null; then
        echo "node is not installed" >&2; rc=1
      else
        ( cd node \
          && { [ -d node_modules ] || npm ci --no-audit --no-fund; } \
          && node --test test/compat.test.mjs ); rc=$?
      fi ;;
    *)
      echo "unknown suite '$s' (expected python, cli, node)" >&2; rc=2 ;;
  esac
  result[$s]=$rc
  [ "$rc" -ne 0 ] && overall=1
done

section "summary"
for s in "${suites[@]}"; do
  if [ "${result[$s]}" -eq 0 ]; then echo "  $s: PASS"; else echo "  $s: FAIL (exit ${result[$s]})"; fi
done
exit $overall
