#!/usr/bin/env bash
# Runs every client example that can run on this machine against a live RAGnos Vault.
#
#   VAULT_ENDPOINT=http://127.0.0.1:4000 AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
#     bash examples/run-all.sh
#
# Installs nothing. Prerequisites (CI installs them):
#   pip install -r examples/python/requirements.txt
#   (cd examples/node && npm ci)
# The Rust example is `cargo run --example rust_sdk`; the Secrets Manager Agent example needs
# `cargo install --locked aws_secretsmanager_agent` (skipped without it, except under CI=true);
# Terraform and External Secrets cannot run here (see their READMEs). Exits non-zero if any
# example fails.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is not set}"
: "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is not set}"
export VAULT_ENDPOINT="${VAULT_ENDPOINT:-http://127.0.0.1:4000}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
PYTHON="${PYTHON:-python3}"

if [ ! -d "$here/node/node_modules/@aws-sdk/client-secrets-manager" ]; then
    echo "run-all: examples/node has no node_modules; run 'npm ci' in examples/node first" >&2
fi

passed=0
failed=0
failures=()

run() { # run NAME COMMAND...
    local name="$1"; shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: PASS"
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== $name: FAIL" >&2
    fi
}

run "python boto3" "$PYTHON" "$here/python/boto3_example.py"
run "python aws-secretsmanager-caching" "$PYTHON" "$here/python/caching_example.py"
run "node @aws-sdk/client-secrets-manager" node "$here/node/example.mjs"
run "aws CLI" bash "$here/cli/example.sh"
# Built by `cargo test --all-targets` (or `cargo build --example rust_sdk`).
rust_example="$here/../target/debug/examples/rust_sdk"
if [ -x "$rust_example" ]; then
    run "rust aws-sdk-secretsmanager" "$rust_example"
else
    echo "=== rust aws-sdk-secretsmanager: SKIPPED (build it with: cargo build --example rust_sdk)"
fi
# Installed by .ci/run (cargo install --locked aws_secretsmanager_agent); required under CI=true.
if [ -n "${AGENT_BIN:-}" ] || command -v aws_secretsmanager_agent >/dev/null \
    || [ -x "$HOME/.cargo/bin/aws_secretsmanager_agent" ] || [ "${CI:-}" = "true" ]; then
    run "AWS Secrets Manager Agent" bash "$here/secrets-manager-agent/run.sh"
else
    echo "=== AWS Secrets Manager Agent: SKIPPED (install it with: cargo install --locked aws_secretsmanager_agent)"
fi

if [ "$failed" -ne 0 ]; then
    echo "run-all: failed: ${failures[*]}" >&2
fi
echo "examples: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
