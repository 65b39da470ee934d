#!/usr/bin/env python3
"""RAGnos Vault with AWS's client-side cache, ``aws-secretsmanager-caching`` (PyPI).

The cache never asks for AWSCURRENT directly: it calls DescribeSecret, picks the VersionId
whose ``VersionIdsToStages`` entry holds the wanted stage, then calls
GetSecretValue(SecretId, VersionId). This example checks that chain end to end, including
that a PutSecretValue is picked up once the cached metadata expires.

Environment:
  VAULT_ENDPOINT         default http://127.0.0.1:4000
  AWS_ACCESS_KEY_ID      an admin access key of a RAGnos Vault workspace (a `write` key cannot delete)
  AWS_SECRET_ACCESS_KEY  its secret
  AWS_DEFAULT_REGION     default us-east-1

  pip install boto3 aws-secretsmanager-caching
  python3 examples/python/caching_example.py
"""

import os
import sys
import time
import uuid

import botocore.config
import botocore.session
from aws_secretsmanager_caching import SecretCache, SecretCacheConfig

REFRESH_SECONDS = 1


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

    # The same kind of client SecretCache builds for itself, plus the endpoint override.
    client = botocore.session.get_session().create_client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        config=botocore.config.Config(user_agent_extra=f"AwsSecretCache/{SecretCache.__version__}"),
    )

    # Record which operations the cache sends, to show it goes through DescribeSecret.
    calls = []

    def record(model, params, **_):
        calls.append((model.name, params.get("VersionId"), params.get("VersionStage")))

    client.meta.events.register("provide-client-params.secretsmanager.*", record)

    name = f"examples/python/caching-{uuid.uuid4().hex[:12]}"
    first = "cached-first-value"
    second = "cached-second-value"

    created = client.create_secret(Name=name, SecretString=first)
    v1 = created["VersionId"]
    print(f"created {created['ARN']}")
    try:
        # A cache with the default refresh interval (an hour) ...
        cache = SecretCache(config=SecretCacheConfig(), client=client)
        # ... and one that refreshes its metadata every REFRESH_SECONDS.
        fast = SecretCache(config=SecretCacheConfig(secret_refresh_interval=REFRESH_SECONDS), client=client)

        calls.clear()
        check("cache: AWSCURRENT", cache.get_secret_string(name), first)
        check(
            "cache: resolved AWSCURRENT through DescribeSecret then GetSecretValue(VersionId)",
            calls,
            [("DescribeSecret", None, None), ("GetSecretValue", v1, None)],
        )
        calls.clear()
        check("cache: second read is served from the cache", cache.get_secret_string(name), first)
        check("cache: no request for a cached read", calls, [])
        check("fast cache: AWSCURRENT", fast.get_secret_string(name), first)

        put = client.put_secret_value(SecretId=name, SecretString=second)
        v2 = put["VersionId"]
        print(f"put new version {v2}")

        # Until its metadata expires, a cache keeps serving the version it resolved (by design).
        check("cache: still the cached value right after the update", cache.get_secret_string(name), first)

        print(f"waiting {REFRESH_SECONDS}s for the fast cache's refresh interval")
        time.sleep(REFRESH_SECONDS + 0.5)
        calls.clear()
        check("fast cache: AWSCURRENT after refresh", fast.get_secret_string(name), second)
        check(
            "fast cache: refresh resolved the new AWSCURRENT version",
            calls,
            [("DescribeSecret", None, None), ("GetSecretValue", v2, None)],
        )
        check("fast cache: AWSPREVIOUS after refresh", fast.get_secret_string(name, "AWSPREVIOUS"), first)

        # An explicit refresh (it sleeps a few seconds of jitter first) goes the same way.
        check("cache: refresh_secret_now", cache.refresh_secret_now(name), True)
        check("cache: AWSCURRENT after refresh_secret_now", cache.get_secret_string(name), second)
    finally:
        client.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
        print(f"deleted {name}")

    print("caching example: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
