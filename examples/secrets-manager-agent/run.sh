#!/usr/bin/env bash
# RAGnos Vault behind the AWS Secrets Manager Agent (crate `aws_secretsmanager_agent`), the local
# HTTP cache AWS ships for EC2, ECS, EKS and Lambda. The agent is unmodified; it is pointed at
# RAGnos Vault with the AWS SDK's standard AWS_ENDPOINT_URL setting.
#
# Environment:
#   VAULT_ENDPOINT         default http://127.0.0.1:4000
#   AWS_ACCESS_KEY_ID      an admin access key of a RAGnos Vault workspace (a `write` key cannot delete)
#   AWS_SECRET_ACCESS_KEY  its secret
#   AWS_DEFAULT_REGION     default us-east-1
#   AGENT_BIN              default: aws_secretsmanager_agent on PATH, else ~/.cargo/bin
#
# Writes the agent's config (agent.toml next to this script, with a free port filled in) into a
# temporary directory, creates a uniquely named secret with the aws CLI, starts the agent, reads
# the secret through the agent's HTTP port with the SSRF token header, updates it, reads the new
# value (refreshNow=true) and AWSPREVIOUS, checks that a missing secret comes back as
# ResourceNotFoundException, then stops the agent and force-deletes the secret. Exits non-zero
# on any mismatch.
#
# Without the agent binary it says SKIPPED and exits 0, except under CI=true, where it fails.
#   cargo install --locked aws_secretsmanager_agent && bash examples/secrets-manager-agent/run.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is not set}"
: "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is not set}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_PAGER=""
ENDPOINT="${VAULT_ENDPOINT:-http://127.0.0.1:4000}"
PYTHON="${PYTHON:-python3}"

AGENT="${AGENT_BIN:-$(command -v aws_secretsmanager_agent || true)}"
[ -n "$AGENT" ] || AGENT="$HOME/.cargo/bin/aws_secretsmanager_agent"
if [ ! -x "$AGENT" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "FAIL aws_secretsmanager_agent is not installed (required under CI=true);" \
             "install it with: cargo install --locked aws_secretsmanager_agent" >&2
        exit 1
    fi
    echo "SKIPPED: aws_secretsmanager_agent is not installed" \
         "(cargo install --locked aws_secretsmanager_agent)"
    exit 0
fi

sm() { aws --endpoint-url "$ENDPOINT" secretsmanager "$@"; }

check() { # check WHAT GOT WANT
    if [ "$2" != "$3" ]; then
        echo "FAIL $1: got '$2', want '$3'" >&2
        exit 1
    fi
    echo "ok   $1"
}

# field JSON NAME: print one top-level member of a JSON object (empty if absent).
field() { "$PYTHON" -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("" if v is None else v if isinstance(v,str) else json.dumps(v))' "$1" "$2"; }

work="$(mktemp -d)"
agent_pid=""
NAME="examples/agent/agent-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
created=0
cleanup() {
    if [ -n "$agent_pid" ]; then
        kill "$agent_pid" 2>/dev/null || true
        wait "$agent_pid" 2>/dev/null || true
    fi
    if [ "$created" = 1 ]; then
        sm delete-secret --secret-id "$NAME" --force-delete-without-recovery >/dev/null || true
        echo "deleted $NAME"
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The agent's own settings: a free port, this Region, logs on stdout, and no STS check at
# start-up (see agent.toml: with AWS_ENDPOINT_URL set, that check would go to RAGnos Vault,
# which does not serve STS).
port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
sed -e "s/^http_port = .*/http_port = \"$port\"/" \
    -e "s/^region = .*/region = \"$AWS_DEFAULT_REGION\"/" \
    "$here/agent.toml" >"$work/agent.toml"

FIRST='{"username":"app","password":"agent-first"}'
SECOND='{"username":"app","password":"agent-second"}'
read -r ARN V1 < <(sm create-secret --name "$NAME" --secret-string "$FIRST" \
    --description "Secrets Manager Agent example" --query '[ARN, VersionId]' --output text)
created=1
echo "created $ARN"

# The SSRF token: the agent refuses requests without it in X-Aws-Parameters-Secrets-Token.
# It reads it from AWS_TOKEN (first of its ssrf_env_variables); AWS_SESSION_TOKEN is left
# alone because the SDK would also sign with it.
TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
(cd "$work" && exec env AWS_TOKEN="$TOKEN" AWS_ENDPOINT_URL="$ENDPOINT" \
    "$AGENT" --config "$work/agent.toml" >"$work/agent.out" 2>"$work/agent.err") &
agent_pid=$!
AGENT_URL="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    curl -fsS "$AGENT_URL/ping" >/dev/null 2>&1 && break
    if ! kill -0 "$agent_pid" 2>/dev/null; then
        echo "FAIL the agent exited:" >&2; cat "$work/agent.out" "$work/agent.err" >&2; exit 1
    fi
    sleep 0.1
done
check "agent /ping" "$(curl -fsS "$AGENT_URL/ping")" "healthy"

# get QUERY -> sets BODY and STATUS
get() {
    local out
    out="$(curl -sS -w '\n%{http_code}' -H "X-Aws-Parameters-Secrets-Token: $TOKEN" \
        "$AGENT_URL/secretsmanager/get?$1")"
    STATUS="${out##*$'\n'}"
    BODY="${out%$'\n'*}"
}
enc() { "$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
fail_with_log() { echo "FAIL $1: HTTP $STATUS $BODY" >&2; echo "--- agent log" >&2; cat "$work/agent.out" "$work/agent.err" >&2; exit 1; }

get "secretId=$(enc "$NAME")"
[ "$STATUS" = 200 ] || fail_with_log "GET /secretsmanager/get"
check "agent SecretString" "$(field "$BODY" SecretString)" "$FIRST"
check "agent VersionId" "$(field "$BODY" VersionId)" "$V1"
check "agent ARN" "$(field "$BODY" ARN)" "$ARN"
check "agent Name" "$(field "$BODY" Name)" "$NAME"

# Path style (/v1/NAME) is served from the agent's cache. The agent takes the name from the raw
# path without percent-decoding it, so the name's slashes are sent as they are.
out="$(curl -sS -H "X-Aws-Parameters-Secrets-Token: $TOKEN" "$AGENT_URL/v1/$NAME")"
check "agent /v1/NAME SecretString" "$(field "$out" SecretString)" "$FIRST"

V2="$(sm put-secret-value --secret-id "$NAME" --secret-string "$SECOND" --query VersionId --output text)"
echo "ok   put-secret-value new version $V2"
get "secretId=$(enc "$NAME")&refreshNow=true"
[ "$STATUS" = 200 ] || fail_with_log "GET refreshNow=true"
check "agent refreshNow SecretString" "$(field "$BODY" SecretString)" "$SECOND"
check "agent refreshNow VersionId" "$(field "$BODY" VersionId)" "$V2"
get "secretId=$(enc "$NAME")&versionStage=AWSPREVIOUS"
[ "$STATUS" = 200 ] || fail_with_log "GET versionStage=AWSPREVIOUS"
check "agent AWSPREVIOUS SecretString" "$(field "$BODY" SecretString)" "$FIRST"

# Errors from RAGnos Vault come through with their AWS type, message and status.
get "secretId=$(enc "$NAME-missing")"
check "agent missing secret status" "$STATUS" "400"
check "agent missing secret __type" "$(field "$BODY" __type)" "ResourceNotFoundException"

# The agent itself rejects a request without the token.
check "agent without token" \
    "$(curl -s -o /dev/null -w '%{http_code}' "$AGENT_URL/secretsmanager/get?secretId=$(enc "$NAME")")" "403"

echo "Secrets Manager Agent example: all checks passed"
