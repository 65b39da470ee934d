#!/usr/bin/env python3
"""RAGnos Vault with the unmodified AWS SDK for Python (boto3).

The only change from code that talks to AWS is ``endpoint_url``.

Environment:
  VAULT_ENDPOINT         default http://127.0.0.1:4000
  AWS_ACCESS_KEY_ID      an admin access key of a RAGnos Vault workspace (a `write` key cannot delete)
  AWS_SECRET_ACCESS_KEY  its secret
  AWS_DEFAULT_REGION     default us-east-1

Creates a uniquely named secret, reads it, updates it, reads the new value and AWSPREVIOUS,
then force-deletes it. Exits non-zero on any mismatch.

  pip install boto3
  python3 examples/python/boto3_example.py
"""

import os
import sys
import uuid

import boto3
from botocore.exceptions import ClientError


def check(what, got, want):
    if got != want:
        print(f"FAIL {what}: got {got!r}, want {want!r}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {what}")


def main():
    endpoint = os.environ.get("VAULT_ENDPOINT") or "http://127.0.0.1:4000"
    region = os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if not os.environ.get(var):
            print(f"error: {var} is not set", file=sys.stderr)
            return 2

    client = boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )

    name = f"examples/python/boto3-{uuid.uuid4().hex[:12]}"
    first = '{"username":"app","password":"first-value"}'
    second = '{"username":"app","password":"second-value"}'

    created = client.create_secret(Name=name, SecretString=first, Description="boto3 example")
    print(f"created {created['ARN']}")
    try:
        check("CreateSecret Name", created["Name"], name)
        v1 = created["VersionId"]

        got = client.get_secret_value(SecretId=name)
        check("GetSecretValue SecretString", got["SecretString"], first)
        check("GetSecretValue VersionId", got["VersionId"], v1)
        check("GetSecretValue has AWSCURRENT", "AWSCURRENT" in got["VersionStages"], True)

        put = client.put_secret_value(SecretId=name, SecretString=second)
        v2 = put["VersionId"]
        check("PutSecretValue new version", v2 != v1, True)
        check("PutSecretValue VersionStages", put["VersionStages"], ["AWSCURRENT"])

        got = client.get_secret_value(SecretId=name)
        check("GetSecretValue (AWSCURRENT) after update", got["SecretString"], second)
        check("GetSecretValue (AWSCURRENT) VersionId", got["VersionId"], v2)

        prev = client.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
        check("GetSecretValue (AWSPREVIOUS)", prev["SecretString"], first)
        check("GetSecretValue (AWSPREVIOUS) VersionId", prev["VersionId"], v1)

        # Lookup by the full ARN works as well as by name.
        by_arn = client.get_secret_value(SecretId=created["ARN"])
        check("GetSecretValue by ARN", by_arn["SecretString"], second)
    finally:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        print(f"deleted {name}")

    try:
        client.get_secret_value(SecretId=name)
    except ClientError as err:
        check("GetSecretValue after force delete", err.response["Error"]["Code"], "ResourceNotFoundException")
    else:
        check("GetSecretValue after force delete", "found", "ResourceNotFoundException")

    print("boto3 example: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
