#!/usr/bin/env bash
# RAGnos Vault with the unmodified aws CLI (v1 or v2). The only change is --endpoint-url.
#
# Environment:
#   VAULT_ENDPOINT         default http://127.0.0.1:4000
#   AWS_ACCESS_KEY_ID      an admin access key of a RAGnos Vault workspace (a `write` key cannot delete)
#   AWS_SECRET_ACCESS_KEY  its secret
#   AWS_DEFAULT_REGION     default us-east-1
#
# Creates a uniquely named secret, reads it, updates it, reads the new value and AWSPREVIOUS,
# then force-deletes it. Exits non-zero on any mismatch. Needs only `aws` (no jq).
#
#   pip install awscli && bash examples/cli/example.sh
set -euo pipefail

: "${AWS_ACCESS_KEY_ID:?AWS_ACCESS_KEY_ID is not set}"
: "${AWS_SECRET_ACCESS_KEY:?AWS_SECRET_ACCESS_KEY is not set}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_PAGER=""            # aws CLI v2: never page output
ENDPOINT="${VAULT_ENDPOINT:-http://127.0.0.1:4000}"

sm() { aws --endpoint-url "$ENDPOINT" secretsmanager "$@"; }

check() { # check WHAT GOT WANT
    if [ "$2" != "$3" ]; then
        echo "FAIL $1: got '$2', want '$3'" >&2
        exit 1
    fi
    echo "ok   $1"
}

NAME="examples/cli/awscli-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
FIRST='{"username":"app","password":"first-value"}'
SECOND='{"username":"app","password":"second-value"}'

read -r ARN V1 < <(sm create-secret --name "$NAME" --secret-string "$FIRST" \
    --description "aws CLI example" --query '[ARN, VersionId]' --output text)
echo "created $ARN"

cleanup() {
    sm delete-secret --secret-id "$NAME" --force-delete-without-recovery >/dev/null
    echo "deleted $NAME"
}
trap cleanup EXIT

check "get-secret-value SecretString" \
    "$(sm get-secret-value --secret-id "$NAME" --query SecretString --output text)" "$FIRST"
check "get-secret-value VersionId" \
    "$(sm get-secret-value --secret-id "$NAME" --query VersionId --output text)" "$V1"

V2="$(sm put-secret-value --secret-id "$NAME" --secret-string "$SECOND" --query VersionId --output text)"
[ "$V2" != "$V1" ] || { echo "FAIL put-secret-value: same VersionId $V2" >&2; exit 1; }
echo "ok   put-secret-value new version $V2"

check "get-secret-value (AWSCURRENT) after update" \
    "$(sm get-secret-value --secret-id "$NAME" --query SecretString --output text)" "$SECOND"
check "get-secret-value (AWSCURRENT) VersionId" \
    "$(sm get-secret-value --secret-id "$NAME" --query VersionId --output text)" "$V2"
check "get-secret-value (AWSPREVIOUS)" \
    "$(sm get-secret-value --secret-id "$NAME" --version-stage AWSPREVIOUS --query SecretString --output text)" "$FIRST"
check "get-secret-value (AWSPREVIOUS) VersionId" \
    "$(sm get-secret-value --secret-id "$NAME" --version-stage AWSPREVIOUS --query VersionId --output text)" "$V1"
check "describe-secret VersionIdsToStages[V2]" \
    "$(sm describe-secret --secret-id "$ARN" --query "VersionIdsToStages.\"$V2\" | join(',', @)" --output text)" "AWSCURRENT"

trap - EXIT
cleanup

if ERR="$(sm get-secret-value --secret-id "$NAME" 2>&1)"; then
    echo "FAIL get-secret-value after force delete: still readable" >&2
    exit 1
fi
case "$ERR" in
    *ResourceNotFoundException*) echo "ok   get-secret-value after force delete: ResourceNotFoundException" ;;
    *) echo "FAIL get-secret-value after force delete: $ERR" >&2; exit 1 ;;
esac

echo "aws CLI example: all checks passed"
