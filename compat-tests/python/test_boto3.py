"""boto3 against RAGnos Vault: the AWS Secrets Manager API as unmodified clients see it.

Each test is about one behaviour, creates its own uniquely named secrets and removes them.
Expected behaviour is AWS's (../../shared/AWS-PROTOCOL.md, the API reference, real-AWS
recordings), never an emulator's. Where moto disagrees the test keeps AWS's behaviour and carries
``@pytest.mark.moto_differs(...)`` (plus a ``# moto differs:`` note); that marker only matters
when VAULT_TARGET=moto.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import string
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from compat_helpers import (
    ACCOUNT_ID,
    MARKED_FOR_DELETION_MSG,
    NAME_PREFIX,
    NOT_FOUND_MSG,
    OTHER_ACCESS_KEY_ID,
    OTHER_SECRET_ACCESS_KEY,
    REGION,
    arn_pattern,
    call_op,
    error_code,
    error_message,
    force_delete_quietly,
    make_client,
    unique_name,
)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TERRAFORM_TOKEN = "terraform-20261129212737000000000001"
ESO_TOKEN = "00000000-0000-0000-0000-000000000001"
PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def assert_recent(value, tolerance=dt.timedelta(minutes=15)):
    """A parsed timestamp close to now: catches milliseconds sent as seconds and vice versa."""
    assert isinstance(value, dt.datetime), f"not a datetime: {value!r}"
    assert value.tzinfo is not None
    assert abs(now_utc() - value) < tolerance, f"{value} is not close to now ({now_utc()})"


def version_stages(sm, secret_id) -> dict:
    """DescribeSecret VersionIdsToStages, labels sorted (absent map means no versions)."""
    d = sm.describe_secret(SecretId=secret_id)
    return {k: sorted(v) for k, v in (d.get("VersionIdsToStages") or {}).items()}


def list_versions(sm, secret_id, include_deprecated=False, **kw) -> dict:
    """ListSecretVersionIds, all pages, as {VersionId: sorted labels}."""
    out, token = {}, None
    for _ in range(100):
        args = dict(SecretId=secret_id, IncludeDeprecated=include_deprecated, **kw)
        if token:
            args["NextToken"] = token
        resp = sm.list_secret_version_ids(**args)
        for v in resp.get("Versions", []):
            assert v["VersionId"] not in out, "version listed twice"
            out[v["VersionId"]] = sorted(v.get("VersionStages") or [])
        token = resp.get("NextToken")
        if not token:
            return out
    raise AssertionError("ListSecretVersionIds never stopped paginating")


def list_secrets_all(sm, max_pages=200, **kw) -> list:
    """ListSecrets following NextToken; pages may legitimately be short or empty."""
    out, token = [], None
    for _ in range(max_pages):
        args = dict(kw)
        if token:
            args["NextToken"] = token
        resp = sm.list_secrets(**args)
        out.extend(resp.get("SecretList", []))
        token = resp.get("NextToken")
        if not token:
            return out
    raise AssertionError("ListSecrets never stopped paginating")


def listed_names(sm, **kw) -> list:
    return [e["Name"] for e in list_secrets_all(sm, **kw)]


def tags_dict(tags) -> dict:
    return {t["Key"]: t["Value"] for t in (tags or [])}


def expect_error(fn, code, message=None, contains=None, **kwargs):
    """Call fn(**kwargs), require a ClientError with this code (and message); return it."""
    with pytest.raises(ClientError) as ei:
        fn(**kwargs)
    err = ei.value
    assert error_code(err) == code, f"expected {code}, got {error_code(err)}: {error_message(err)}"
    if message is not None:
        assert error_message(err) == message
    if contains is not None:
        assert contains in error_message(err), error_message(err)
    return err


def partial_arn(arn: str) -> str:
    return arn[:-7]  # drop "-XXXXXX"


def policy_for(arn: str, principal=None) -> str:
    account = arn.split(":")[4]
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": principal if principal is not None else {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
            ],
        }
    )


# ------------------------------------------------------------------------------------------
# CreateSecret / GetSecretValue basics, ARNs, response metadata
# ------------------------------------------------------------------------------------------


def test_create_secret_returns_arn_name_and_version(secrets):
    name = secrets.name()
    resp = secrets.create(name, SecretString="hunter2")
    assert resp["Name"] == name
    assert arn_pattern(name).match(resp["ARN"]), resp["ARN"]
    assert 32 <= len(resp["VersionId"]) <= 64
    meta = resp["ResponseMetadata"]
    assert meta["HTTPStatusCode"] == 200
    assert meta["RequestId"], "x-amzn-RequestId must be set"


def test_arn_uses_configured_account_and_request_region(secrets):
    resp = secrets.create(SecretString="v")
    parts = resp["ARN"].split(":")
    assert parts[:3] == ["arn", "aws", "secretsmanager"]
    assert parts[3] == REGION
    assert re.fullmatch(r"\d{12}", parts[4])
    if ACCOUNT_ID:
        assert parts[4] == ACCOUNT_ID
    assert parts[5] == "secret"


def test_get_secret_value_string(sm, secrets):
    created = secrets.create(SecretString='{"user":"admin","pass":"p@ss"}')
    got = sm.get_secret_value(SecretId=created["Name"])
    assert got["ARN"] == created["ARN"]
    assert got["Name"] == created["Name"]
    assert got["VersionId"] == created["VersionId"]
    assert got["SecretString"] == '{"user":"admin","pass":"p@ss"}'
    assert "SecretBinary" not in got
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert_recent(got["CreatedDate"])


def test_secret_string_unicode_round_trip(sm, secrets):
    value = "päss—wörd ✓ 秘密 \n\t\"quoted\""
    created = secrets.create(SecretString=value)
    assert sm.get_secret_value(SecretId=created["ARN"])["SecretString"] == value


def test_secret_binary_round_trip(sm, secrets):
    blob = bytes(range(256)) + b"\x00\xff\x00"
    created = secrets.create(SecretBinary=blob)
    got = sm.get_secret_value(SecretId=created["Name"])
    assert got["SecretBinary"] == blob
    assert "SecretString" not in got
    # and a binary PutSecretValue on top
    sm.put_secret_value(SecretId=created["Name"], SecretBinary=b"\x01\x02")
    assert sm.get_secret_value(SecretId=created["Name"])["SecretBinary"] == b"\x01\x02"


def test_create_without_value_creates_no_version(sm, secrets):
    created = secrets.create(Description="metadata only")
    assert "VersionId" not in created
    desc = sm.describe_secret(SecretId=created["Name"])
    assert not desc.get("VersionIdsToStages")  # ESO relies on this being empty/absent
    assert list_versions(sm, created["Name"], include_deprecated=True) == {}
    expect_error(sm.get_secret_value, "ResourceNotFoundException", SecretId=created["Name"])


def test_put_value_into_empty_secret_becomes_awscurrent(sm, secrets):
    created = secrets.create()
    put = sm.put_secret_value(SecretId=created["Name"], SecretString="first", ClientRequestToken=ESO_TOKEN)
    assert put["VersionId"] == ESO_TOKEN
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert version_stages(sm, created["Name"]) == {ESO_TOKEN: ["AWSCURRENT"]}


def test_create_duplicate_name_is_resource_exists(sm, secrets):
    name = secrets.name()
    secrets.create(name, SecretString="a")
    expect_error(
        sm.create_secret,
        "ResourceExistsException",
        message=f"The operation failed because the secret {name} already exists.",
        Name=name,
        SecretString="b",
    )


@pytest.mark.parametrize(
    "op",
    [
        "get_secret_value",
        "describe_secret",
        # moto differs: ListSecretVersionIds echoes the SecretId back as "ARN"
        pytest.param("list_secret_version_ids", marks=pytest.mark.moto_differs("ARN field echoes SecretId")),
    ],
)
def test_lookup_by_name_full_arn_and_partial_arn(sm, secrets, op):
    created = secrets.create(SecretString="lookup")
    for secret_id in (created["Name"], created["ARN"], partial_arn(created["ARN"])):
        resp = getattr(sm, op)(SecretId=secret_id)
        assert resp["ARN"] == created["ARN"], secret_id
        assert resp["Name"] == created["Name"], secret_id


def test_arn_with_wrong_suffix_is_not_found(sm, secrets):
    created = secrets.create(SecretString="x")
    wrong = created["ARN"][:-6] + ("ZZZZZZ" if not created["ARN"].endswith("ZZZZZZ") else "YYYYYY")
    expect_error(sm.describe_secret, "ResourceNotFoundException", message=NOT_FOUND_MSG, SecretId=wrong)


# a well-formed policy, so that policy validation cannot come before the secret lookup
VALID_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)

NOT_FOUND_CALLS = {
    "get_secret_value": {},
    "describe_secret": {},
    "put_secret_value": {"SecretString": "x"},
    "update_secret": {"Description": "x"},
    "delete_secret": {"RecoveryWindowInDays": 7},
    "restore_secret": {},
    "tag_resource": {"Tags": [{"Key": "k", "Value": "v"}]},
    "untag_resource": {"TagKeys": ["k"]},
    "list_secret_version_ids": {},
    "update_secret_version_stage": {"VersionStage": "CUSTOM", "MoveToVersionId": "a" * 32},
    "get_resource_policy": {},
    "put_resource_policy": {"ResourcePolicy": VALID_POLICY},
    "delete_resource_policy": {},
}


@pytest.mark.parametrize(
    "op",
    [
        # moto differs: ListSecretVersionIds on an unknown secret crashes (HTTP 500)
        pytest.param(op, marks=pytest.mark.moto_differs("HTTP 500")) if op == "list_secret_version_ids" else op
        for op in sorted(NOT_FOUND_CALLS)
    ],
)
def test_unknown_secret_is_resource_not_found(sm, op):
    missing = unique_name("missing")
    err = expect_error(
        getattr(sm, op), "ResourceNotFoundException", message=NOT_FOUND_MSG, SecretId=missing, **NOT_FOUND_CALLS[op]
    )
    assert err.response["ResponseMetadata"]["RequestId"]


# moto differs: moto answers ResourceNotFoundException with HTTP 404; AWS uses 400 for every error
@pytest.mark.moto_differs("moto answers ResourceNotFoundException with HTTP 404; AWS uses 400 for every error")
def test_errors_are_http_400_with_request_id(sm):
    err = expect_error(sm.describe_secret, "ResourceNotFoundException", SecretId=unique_name("missing"))
    assert err.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.response["ResponseMetadata"]["RequestId"]


def test_timestamps_parse_as_recent_datetimes(sm, secrets):
    created = secrets.create(SecretString="t", Description="ts")
    desc = sm.describe_secret(SecretId=created["ARN"])
    assert_recent(desc["CreatedDate"])
    assert_recent(desc["LastChangedDate"])
    versions = sm.list_secret_version_ids(SecretId=created["ARN"])["Versions"]
    assert_recent(versions[0]["CreatedDate"])
    entries = list_secrets_all(sm, Filters=[{"Key": "name", "Values": [created["Name"]]}])
    entry = next(e for e in entries if e["Name"] == created["Name"])
    assert_recent(entry["CreatedDate"])
    assert_recent(entry["LastChangedDate"])


def test_describe_secret_metadata(sm, secrets):
    created = secrets.create(
        SecretString="v", Description="the description", Tags=[{"Key": "env", "Value": "prod"}]
    )
    desc = sm.describe_secret(SecretId=created["Name"])
    assert desc["ARN"] == created["ARN"]
    assert desc["Name"] == created["Name"]
    assert desc["Description"] == "the description"
    assert tags_dict(desc["Tags"]) == {"env": "prod"}
    assert desc["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
    assert "DeletedDate" not in desc
    assert "SecretString" not in desc and "SecretBinary" not in desc
    assert not desc.get("RotationEnabled", False)


# moto differs: moto sends Content-Type text/html on success
@pytest.mark.moto_differs("moto sends Content-Type text/html on success")
def test_raw_response_is_aws_json(raw, secrets):
    created = secrets.create(SecretString="raw")
    resp = raw("DescribeSecret", {"SecretId": created["Name"]})
    assert resp.status == 200
    assert resp.headers.get("content-type", "").startswith("application/x-amz-json-1.1")
    assert resp.headers.get("x-amzn-requestid")
    body = resp.json
    assert body["ARN"] == created["ARN"]
    assert isinstance(body["CreatedDate"], (int, float)), "timestamps are epoch-second numbers"


# moto differs: moto answers ResourceNotFoundException with HTTP 404
@pytest.mark.moto_differs("moto answers ResourceNotFoundException with HTTP 404")
def test_raw_error_body_has_type_and_message(raw):
    resp = raw("GetSecretValue", {"SecretId": unique_name("missing")})
    assert resp.status == 400
    assert resp.error_code == "ResourceNotFoundException"
    assert resp.message == NOT_FOUND_MSG


# moto differs: moto answers unknown targets with an unrelated (S3) 200 response
@pytest.mark.moto_differs("moto answers unknown targets with an unrelated (S3) 200 response")
def test_unknown_operation_is_rejected(raw):
    resp = raw("NoSuchOperation", {})
    assert resp.status == 400
    assert resp.error_code == "UnknownOperationException"


# moto differs: moto generates a VersionId when the token is missing
@pytest.mark.moto_differs("moto generates a VersionId when the token is missing")
def test_raw_create_without_client_request_token_is_invalid_request(raw, secrets):
    name = secrets.name()
    resp = raw("CreateSecret", {"Name": name, "SecretString": "no token"})
    assert resp.status == 400
    assert resp.error_code == "InvalidRequestException"
    assert resp.message == "You must provide a ClientRequestToken value. We recommend a UUID-type value."


# ------------------------------------------------------------------------------------------
# Versions and staging labels
# ------------------------------------------------------------------------------------------


# moto differs: moto keeps unlabelled versions in DescribeSecret VersionIdsToStages
@pytest.mark.moto_differs("moto keeps unlabelled versions in DescribeSecret VersionIdsToStages")
def test_put_secret_value_moves_current_and_previous(sm, secrets):
    name = secrets.create(SecretString="v1", ClientRequestToken="a" * 32)["Name"]
    p2 = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken="b" * 32)
    assert p2["VersionId"] == "b" * 32
    assert p2["VersionStages"] == ["AWSCURRENT"]
    assert p2["Name"] == name and p2["ARN"]
    assert version_stages(sm, name) == {"a" * 32: ["AWSPREVIOUS"], "b" * 32: ["AWSCURRENT"]}

    sm.put_secret_value(SecretId=name, SecretString="v3", ClientRequestToken="c" * 32)
    # v1 lost AWSPREVIOUS: it has no label any more, so DescribeSecret omits it
    assert version_stages(sm, name) == {"b" * 32: ["AWSPREVIOUS"], "c" * 32: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v3"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "v2"


def test_old_versions_stay_readable_by_version_id(sm, secrets):
    name = secrets.create(SecretString="v1", ClientRequestToken="a" * 32)["Name"]
    sm.put_secret_value(SecretId=name, SecretString="v2")
    sm.put_secret_value(SecretId=name, SecretString="v3")
    old = sm.get_secret_value(SecretId=name, VersionId="a" * 32)
    assert old["SecretString"] == "v1"
    assert not old.get("VersionStages")


# moto differs: moto's ListSecretVersionIds returns the SecretId as ARN and lists deprecated versions
@pytest.mark.moto_differs("moto's ListSecretVersionIds returns the SecretId as ARN and lists deprecated versions")
def test_list_secret_version_ids_hides_deprecated_unless_asked(sm, secrets):
    name = secrets.create(SecretString="v1", ClientRequestToken="a" * 32)["Name"]
    sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken="b" * 32)
    sm.put_secret_value(SecretId=name, SecretString="v3", ClientRequestToken="c" * 32)
    resp = sm.list_secret_version_ids(SecretId=name)
    assert resp["Name"] == name and arn_pattern(name).match(resp["ARN"])
    assert list_versions(sm, name) == {"b" * 32: ["AWSPREVIOUS"], "c" * 32: ["AWSCURRENT"]}
    assert list_versions(sm, name, include_deprecated=True) == {
        "a" * 32: [],
        "b" * 32: ["AWSPREVIOUS"],
        "c" * 32: ["AWSCURRENT"],
    }


# moto differs: moto ignores MaxResults on ListSecretVersionIds
@pytest.mark.moto_differs("moto ignores MaxResults on ListSecretVersionIds")
def test_list_secret_version_ids_paginates(sm, secrets):
    name = secrets.create(SecretString="v0")["Name"]
    for i in range(4):
        sm.put_secret_value(SecretId=name, SecretString=f"v{i + 1}", VersionStages=[f"L{i}"])
    seen, token, pages = [], None, 0
    while True:
        args = {"SecretId": name, "MaxResults": 2}
        if token:
            args["NextToken"] = token
        page = sm.list_secret_version_ids(**args)
        pages += 1
        assert len(page["Versions"]) <= 2
        seen += [v["VersionId"] for v in page["Versions"]]
        token = page.get("NextToken")
        if not token or pages > 20:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert pages >= 3


def test_get_secret_value_by_version_id_and_stage(sm, secrets):
    name = secrets.create(SecretString="v1", ClientRequestToken="a" * 32)["Name"]
    sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken="b" * 32)
    assert sm.get_secret_value(SecretId=name, VersionId="a" * 32)["SecretString"] == "v1"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSCURRENT")["SecretString"] == "v2"
    both = sm.get_secret_value(SecretId=name, VersionId="a" * 32, VersionStage="AWSPREVIOUS")
    assert both["SecretString"] == "v1"
    assert both["VersionStages"] == ["AWSPREVIOUS"]


def test_get_secret_value_with_mismatched_version_and_stage(sm, secrets):
    name = secrets.create(SecretString="v1", ClientRequestToken="a" * 32)["Name"]
    sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken="b" * 32)
    expect_error(
        sm.get_secret_value,
        "InvalidRequestException",
        message="You provided a VersionStage that is not associated to the provided VersionId.",
        SecretId=name,
        VersionId="a" * 32,
        VersionStage="AWSCURRENT",
    )


# moto differs: moto sends the generic not-found message instead of the staging-label one
@pytest.mark.moto_differs("moto sends the generic not-found message instead of the staging-label one")
def test_get_awsprevious_when_absent_is_not_found(sm, secrets):
    name = secrets.create(SecretString="only")["Name"]
    expect_error(
        sm.get_secret_value,
        "ResourceNotFoundException",
        message="Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS",
        SecretId=name,
        VersionStage="AWSPREVIOUS",
    )


def test_get_unknown_version_id_is_not_found(sm, secrets):
    name = secrets.create(SecretString="v")["Name"]
    expect_error(sm.get_secret_value, "ResourceNotFoundException", SecretId=name, VersionId="f" * 36)


def test_put_with_custom_version_stages_leaves_awscurrent(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    put = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["SAMPLESTAGE0", "SAMPLESTAGE1"])
    assert sorted(put["VersionStages"]) == ["SAMPLESTAGE0", "SAMPLESTAGE1"]
    assert sm.get_secret_value(SecretId=name)["VersionId"] == v1
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"
    assert version_stages(sm, name) == {v1: ["AWSCURRENT"], put["VersionId"]: ["SAMPLESTAGE0", "SAMPLESTAGE1"]}
    assert sm.get_secret_value(SecretId=name, VersionStage="SAMPLESTAGE1")["SecretString"] == "v2"


def test_put_with_awscurrent_in_version_stages_moves_previous(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    put = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["AWSCURRENT", "BLUE"])
    assert version_stages(sm, name) == {v1: ["AWSPREVIOUS"], put["VersionId"]: ["AWSCURRENT", "BLUE"]}


# moto differs: moto keeps unlabelled versions in DescribeSecret VersionIdsToStages
@pytest.mark.moto_differs("moto keeps unlabelled versions in DescribeSecret VersionIdsToStages")
def test_custom_label_is_on_one_version_only(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    p2 = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["BLUE"])
    p3 = sm.put_secret_value(SecretId=name, SecretString="v3", VersionStages=["BLUE"])
    # BLUE moved to v3; v2 lost its only label and is deprecated
    assert version_stages(sm, name) == {v1: ["AWSCURRENT"], p3["VersionId"]: ["BLUE"]}
    assert p2["VersionId"] in list_versions(sm, name, include_deprecated=True)


def test_update_secret_with_value_moves_labels(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    upd = sm.update_secret(SecretId=name, SecretString="v2", Description="now with v2")
    assert upd["ARN"] == created["ARN"] and upd["Name"] == name
    v2 = upd["VersionId"]
    assert v2 != v1
    assert version_stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"
    assert sm.describe_secret(SecretId=name)["Description"] == "now with v2"


def test_update_secret_metadata_only_creates_no_version(sm, secrets):
    created = secrets.create(SecretString="v1", Description="old")
    upd = sm.update_secret(SecretId=created["Name"], Description="new")
    assert "VersionId" not in upd
    assert sm.describe_secret(SecretId=created["Name"])["Description"] == "new"
    assert version_stages(sm, created["Name"]) == {created["VersionId"]: ["AWSCURRENT"]}


def test_update_secret_value_on_empty_secret(sm, secrets):
    created = secrets.create(Description="empty")
    upd = sm.update_secret(SecretId=created["Name"], SecretString="first", ClientRequestToken=TERRAFORM_TOKEN)
    assert upd["VersionId"] == TERRAFORM_TOKEN
    assert version_stages(sm, created["Name"]) == {TERRAFORM_TOKEN: ["AWSCURRENT"]}


def test_update_secret_version_stage_attaches_free_label(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2")["VersionId"]
    resp = sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", MoveToVersionId=v1)
    assert resp["ARN"] == created["ARN"] and resp["Name"] == name
    # labels are added to the version's existing list
    assert version_stages(sm, name) == {v1: ["AWSPREVIOUS", "BLUE"], v2: ["AWSCURRENT"]}


# moto differs: moto lets a label held elsewhere be attached without RemoveFromVersionId
@pytest.mark.moto_differs("moto lets a label held elsewhere be attached without RemoveFromVersionId")
def test_update_secret_version_stage_requires_remove_from_when_label_is_elsewhere(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["BLUE"])["VersionId"]
    expect_error(
        sm.update_secret_version_stage,
        "InvalidParameterException",
        contains="RemoveFromVersionId",
        SecretId=name,
        VersionStage="BLUE",
        MoveToVersionId=v1,
    )
    assert version_stages(sm, name) == {v1: ["AWSCURRENT"], v2: ["BLUE"]}  # unchanged


def test_update_secret_version_stage_rejects_wrong_remove_from(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["BLUE"])["VersionId"]
    v3 = sm.put_secret_value(SecretId=name, SecretString="v3", VersionStages=["GREEN"])["VersionId"]
    expect_error(
        sm.update_secret_version_stage,
        "InvalidParameterException",
        SecretId=name,
        VersionStage="BLUE",
        MoveToVersionId=v1,
        RemoveFromVersionId=v3,
    )
    assert version_stages(sm, name)[v2] == ["BLUE"]


# moto differs: moto keeps unlabelled versions in DescribeSecret VersionIdsToStages
@pytest.mark.moto_differs("moto keeps unlabelled versions in DescribeSecret VersionIdsToStages")
def test_update_secret_version_stage_moves_custom_label(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["BLUE"])["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", MoveToVersionId=v1, RemoveFromVersionId=v2)
    assert version_stages(sm, name) == {v1: ["AWSCURRENT", "BLUE"]}
    assert list_versions(sm, name, include_deprecated=True)[v2] == []


# moto differs: after moving AWSCURRENT, moto's GetSecretValue still returns the old current value
@pytest.mark.moto_differs("after moving AWSCURRENT, moto's GetSecretValue still returns the old current value")
def test_moving_awscurrent_moves_awsprevious(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2")["VersionId"]
    assert version_stages(sm, name) == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    # roll back: AWSCURRENT to v1; AWSPREVIOUS follows to v2, the version it was taken from
    sm.update_secret_version_stage(SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=v1, RemoveFromVersionId=v2)
    assert version_stages(sm, name) == {v1: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v1"
    assert sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "v2"


def test_moving_awscurrent_without_remove_from_fails(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2")["VersionId"]
    expect_error(
        sm.update_secret_version_stage,
        "InvalidParameterException",
        message=(
            "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently "
            f"attached to version {v2}, so you must explicitly reference that version in RemoveFromVersionId."
        ),
        SecretId=name,
        VersionStage="AWSCURRENT",
        MoveToVersionId=v1,
    )


def test_update_secret_version_stage_removes_label(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", MoveToVersionId=v1)
    sm.update_secret_version_stage(SecretId=name, VersionStage="BLUE", RemoveFromVersionId=v1)
    assert version_stages(sm, name) == {v1: ["AWSCURRENT"]}


# moto differs: moto lists deprecated versions without IncludeDeprecated
@pytest.mark.moto_differs("moto lists deprecated versions without IncludeDeprecated")
def test_removing_last_label_deprecates_version(sm, secrets):
    created = secrets.create(SecretString="v1")
    name = created["Name"]
    v2 = sm.put_secret_value(SecretId=name, SecretString="v2", VersionStages=["ONLY"])["VersionId"]
    sm.update_secret_version_stage(SecretId=name, VersionStage="ONLY", RemoveFromVersionId=v2)
    assert v2 not in list_versions(sm, name)
    assert list_versions(sm, name, include_deprecated=True)[v2] == []
    assert v2 not in version_stages(sm, name)


# moto differs: moto lets AWSCURRENT be removed outright
@pytest.mark.moto_differs("moto lets AWSCURRENT be removed outright")
def test_awscurrent_cannot_be_removed(sm, secrets):
    created = secrets.create(SecretString="v1")
    expect_error(
        sm.update_secret_version_stage,
        "InvalidParameterException",
        SecretId=created["Name"],
        VersionStage="AWSCURRENT",
        RemoveFromVersionId=created["VersionId"],
    )
    assert version_stages(sm, created["Name"]) == {created["VersionId"]: ["AWSCURRENT"]}


# ------------------------------------------------------------------------------------------
# ClientRequestToken: VersionId and idempotency
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [TERRAFORM_TOKEN, ESO_TOKEN, "x" * 64], ids=["terraform", "eso", "64-chars"])
def test_client_request_token_becomes_version_id(sm, secrets, token):
    created = secrets.create(SecretString="v", ClientRequestToken=token)
    assert created["VersionId"] == token
    assert sm.get_secret_value(SecretId=created["Name"], VersionId=token)["SecretString"] == "v"
    assert list_versions(sm, created["Name"]) == {token: ["AWSCURRENT"]}


def test_sdk_generated_token_is_the_version_id(sm, secrets):
    created = secrets.create(SecretString="v")
    # boto3 filled ClientRequestToken with a UUID4; the server must use it as the VersionId
    assert UUID_RE.match(created["VersionId"]), created["VersionId"]
    put = sm.put_secret_value(SecretId=created["Name"], SecretString="v2")
    assert UUID_RE.match(put["VersionId"]), put["VersionId"]


def test_create_secret_replay_same_token_same_value_is_idempotent(sm, secrets):
    name = secrets.name()
    first = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=TERRAFORM_TOKEN)
    again = sm.create_secret(Name=name, SecretString="same", ClientRequestToken=TERRAFORM_TOKEN)
    assert again["ARN"] == first["ARN"]
    assert again["VersionId"] == first["VersionId"] == TERRAFORM_TOKEN
    assert list_versions(sm, name, include_deprecated=True) == {TERRAFORM_TOKEN: ["AWSCURRENT"]}


def test_create_secret_replay_same_token_different_value_fails(sm, secrets):
    name = secrets.name()
    sm.create_secret(Name=name, SecretString="one", ClientRequestToken=ESO_TOKEN)
    expect_error(sm.create_secret, "ResourceExistsException", Name=name, SecretString="two", ClientRequestToken=ESO_TOKEN)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "one"


def test_put_secret_value_replay_is_idempotent(sm, secrets):
    created = secrets.create(SecretString="v1")
    name, v1 = created["Name"], created["VersionId"]
    token = str(uuid.uuid4())
    a = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=token)
    b = sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=token)
    assert a["VersionId"] == b["VersionId"] == token
    # no new version and no second label shift (v1 keeps AWSPREVIOUS)
    assert list_versions(sm, name, include_deprecated=True) == {v1: ["AWSPREVIOUS"], token: ["AWSCURRENT"]}


def test_put_secret_value_same_token_different_value_fails(sm, secrets):
    created = secrets.create(SecretString="v1")
    name = created["Name"]
    token = TERRAFORM_TOKEN
    sm.put_secret_value(SecretId=name, SecretString="v2", ClientRequestToken=token)
    expect_error(
        sm.put_secret_value,
        "ResourceExistsException",
        message=(
            f"You can't use ClientRequestToken {token} because that value is already in use "
            f"for a version of secret {created['ARN']}."
        ),
        SecretId=name,
        SecretString="different",
        ClientRequestToken=token,
    )
    assert sm.get_secret_value(SecretId=name, VersionId=token)["SecretString"] == "v2"


def test_put_secret_value_with_create_token_and_same_value_is_noop(sm, secrets):
    created = secrets.create(SecretString="v1", ClientRequestToken=ESO_TOKEN)
    put = sm.put_secret_value(SecretId=created["Name"], SecretString="v1", ClientRequestToken=ESO_TOKEN)
    assert put["VersionId"] == ESO_TOKEN
    assert list_versions(sm, created["Name"], include_deprecated=True) == {ESO_TOKEN: ["AWSCURRENT"]}


def test_update_secret_replay_same_token_same_value(sm, secrets):
    created = secrets.create(SecretString="v1")
    token = str(uuid.uuid4())
    a = sm.update_secret(SecretId=created["Name"], SecretString="v2", ClientRequestToken=token)
    b = sm.update_secret(SecretId=created["Name"], SecretString="v2", ClientRequestToken=token)
    assert a["VersionId"] == b["VersionId"] == token
    assert len(list_versions(sm, created["Name"], include_deprecated=True)) == 2


def test_update_secret_used_token_different_value_fails(sm, secrets):
    created = secrets.create(SecretString="v1")
    token = str(uuid.uuid4())
    sm.update_secret(SecretId=created["Name"], SecretString="v2", ClientRequestToken=token)
    expect_error(
        sm.update_secret, "ResourceExistsException", SecretId=created["Name"], SecretString="v3", ClientRequestToken=token
    )


# moto differs: InvalidParameterException; AWS reports model-constraint violations as ValidationException
@pytest.mark.moto_differs("moto uses InvalidParameterException")
def test_client_request_token_shorter_than_32_is_rejected(sm_novalidate, secrets):
    expect_error(
        sm_novalidate.create_secret,
        "ValidationException",
        Name=secrets.name(),
        SecretString="v",
        ClientRequestToken="t" * 31,
    )


# ------------------------------------------------------------------------------------------
# Deletion lifecycle
# ------------------------------------------------------------------------------------------


def test_delete_secret_default_window_is_30_days(sm, secrets):
    created = secrets.create(SecretString="v")
    before = now_utc()
    resp = sm.delete_secret(SecretId=created["Name"])
    assert resp["ARN"] == created["ARN"] and resp["Name"] == created["Name"]
    expected = before + dt.timedelta(days=30)
    assert abs(resp["DeletionDate"] - expected) < dt.timedelta(minutes=10), resp["DeletionDate"]


def test_delete_secret_with_7_day_window(sm, secrets):
    created = secrets.create(SecretString="v")
    resp = sm.delete_secret(SecretId=created["ARN"], RecoveryWindowInDays=7)
    expected = now_utc() + dt.timedelta(days=7)
    assert abs(resp["DeletionDate"] - expected) < dt.timedelta(minutes=10), resp["DeletionDate"]


@pytest.mark.parametrize("days", [6, 31])
def test_delete_secret_window_outside_7_to_30_is_rejected(sm, secrets, days):
    created = secrets.create(SecretString="v")
    expect_error(sm.delete_secret, "InvalidParameterException", SecretId=created["Name"], RecoveryWindowInDays=days)
    assert "DeletedDate" not in sm.describe_secret(SecretId=created["Name"])


def test_delete_secret_window_and_force_together_is_rejected(sm, secrets):
    created = secrets.create(SecretString="v")
    expect_error(
        sm.delete_secret,
        "InvalidParameterException",
        SecretId=created["Name"],
        RecoveryWindowInDays=7,
        ForceDeleteWithoutRecovery=True,
    )
    assert sm.get_secret_value(SecretId=created["Name"])["SecretString"] == "v"


# moto differs: moto's message is '...currently marked deleted.'
@pytest.mark.moto_differs("moto's message is '...currently marked deleted.'")
def test_get_secret_value_of_scheduled_secret_is_invalid_request(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.delete_secret(SecretId=created["Name"], RecoveryWindowInDays=7)
    err = expect_error(sm.get_secret_value, "InvalidRequestException", contains="marked for deletion", SecretId=created["Name"])
    assert error_message(err) == MARKED_FOR_DELETION_MSG


SCHEDULED_REFUSALS = {
    "put_secret_value": {"SecretString": "x"},
    "update_secret": {"Description": "x"},
    "tag_resource": {"Tags": [{"Key": "k", "Value": "v"}]},
    "untag_resource": {"TagKeys": ["k"]},
}


@pytest.mark.parametrize("op", sorted(SCHEDULED_REFUSALS))
# moto differs: moto accepts PutSecretValue/TagResource/UntagResource on a scheduled secret; its UpdateSecret message carries a botocore-style prefix
@pytest.mark.moto_differs("moto accepts PutSecretValue/TagResource/UntagResource on a scheduled secret; its UpdateSecret message carries a botocore-style prefix")
def test_writes_to_scheduled_secret_are_invalid_request(sm, secrets, op):
    created = secrets.create(SecretString="v", Tags=[{"Key": "k", "Value": "v"}])
    sm.delete_secret(SecretId=created["Name"], RecoveryWindowInDays=7)
    expect_error(
        getattr(sm, op), "InvalidRequestException", message=MARKED_FOR_DELETION_MSG, SecretId=created["Name"], **SCHEDULED_REFUSALS[op]
    )


def test_describe_scheduled_secret_shows_deleted_date(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.delete_secret(SecretId=created["Name"], RecoveryWindowInDays=7)
    desc = sm.describe_secret(SecretId=created["Name"])
    assert desc["ARN"] == created["ARN"]
    assert isinstance(desc["DeletedDate"], dt.datetime)


def test_list_secrets_hides_scheduled_unless_include_planned_deletion(sm, secrets):
    created = secrets.create(SecretString="v")
    name = created["Name"]
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    flt = [{"Key": "name", "Values": [name]}]
    assert name not in listed_names(sm, Filters=flt)
    entries = list_secrets_all(sm, Filters=flt, IncludePlannedDeletion=True)
    entry = next(e for e in entries if e["Name"] == name)
    assert isinstance(entry["DeletedDate"], dt.datetime)


# moto differs: moto answers ResourceExistsException
@pytest.mark.moto_differs("moto answers ResourceExistsException")
def test_create_with_name_of_scheduled_secret_is_invalid_request(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.delete_secret(SecretId=created["Name"], RecoveryWindowInDays=7)
    expect_error(
        sm.create_secret,
        "InvalidRequestException",
        message="You can't create this secret because a secret with this name is already scheduled for deletion.",
        Name=created["Name"],
        SecretString="again",
    )


def test_restore_secret_cancels_deletion(sm, secrets):
    created = secrets.create(SecretString="keep me")
    name = created["Name"]
    sm.delete_secret(SecretId=name)
    resp = sm.restore_secret(SecretId=name)
    assert resp["ARN"] == created["ARN"] and resp["Name"] == name
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "keep me"
    assert name in listed_names(sm, Filters=[{"Key": "name", "Values": [name]}])
    sm.put_secret_value(SecretId=name, SecretString="writable again")


def test_force_delete_removes_secret_immediately(sm, secrets):
    created = secrets.create(SecretString="v")
    resp = sm.delete_secret(SecretId=created["Name"], ForceDeleteWithoutRecovery=True)
    assert resp["ARN"] == created["ARN"] and resp["Name"] == created["Name"]
    assert isinstance(resp["DeletionDate"], dt.datetime)
    expect_error(sm.describe_secret, "ResourceNotFoundException", message=NOT_FOUND_MSG, SecretId=created["Name"])
    expect_error(sm.get_secret_value, "ResourceNotFoundException", SecretId=created["ARN"])
    assert created["Name"] not in listed_names(
        sm, Filters=[{"Key": "name", "Values": [created["Name"]]}], IncludePlannedDeletion=True
    )


def test_force_delete_of_scheduled_secret(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.delete_secret(SecretId=created["Name"], RecoveryWindowInDays=7)
    sm.delete_secret(SecretId=created["Name"], ForceDeleteWithoutRecovery=True)
    expect_error(sm.describe_secret, "ResourceNotFoundException", SecretId=created["Name"])


def test_force_delete_nonexistent_secret_succeeds(sm):
    resp = sm.delete_secret(SecretId=unique_name("never-existed"), ForceDeleteWithoutRecovery=True)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_force_delete_already_deleted_secret_succeeds(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.delete_secret(SecretId=created["Name"], ForceDeleteWithoutRecovery=True)
    again = sm.delete_secret(SecretId=created["Name"], ForceDeleteWithoutRecovery=True)
    assert again["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "DeletionDate" in again


def test_recreate_after_force_delete_gets_new_arn(sm, secrets):
    name = secrets.name()
    first = sm.create_secret(Name=name, SecretString="one")
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    # AWS deletes asynchronously and tells callers to retry; allow a short back-off
    deadline = time.monotonic() + 15
    while True:
        try:
            second = sm.create_secret(Name=name, SecretString="two")
            break
        except ClientError as e:
            if error_code(e) != "InvalidRequestException" or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    assert second["ARN"] != first["ARN"]
    assert arn_pattern(name).match(second["ARN"])
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"
    expect_error(sm.describe_secret, "ResourceNotFoundException", SecretId=first["ARN"])


def test_restore_unknown_secret_is_not_found(sm):
    expect_error(sm.restore_secret, "ResourceNotFoundException", SecretId=unique_name("missing"))


# ------------------------------------------------------------------------------------------
# ListSecrets: filters, pagination, sorting
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(sm):
    """Three secrets under one unique prefix, read-only for the filter tests."""
    prefix = unique_name("corpus")
    specs = {
        "alpha": dict(
            Name=f"{prefix}/alpha-db",
            Description="Alpha database password",
            Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "payments"}],
            SecretString="a",
        ),
        "beta": dict(
            Name=f"{prefix}/beta-api",
            Description="Beta API key",
            Tags=[{"Key": "env", "Value": "dev"}, {"Key": "owner", "Value": "bob"}],
            SecretString="b",
        ),
        "gamma": dict(
            Name=f"{prefix}/Gamma-cache",
            Description="gamma cache token",
            Tags=[{"Key": "Environment", "Value": "Prod-eu"}],
            SecretString="c",
        ),
    }
    for spec in specs.values():
        sm.create_secret(**spec)
    names = {k: v["Name"] for k, v in specs.items()}
    yield {"prefix": prefix, "names": names, "all": set(names.values())}
    for n in names.values():
        force_delete_quietly(sm, n)


def filtered(sm, corpus, filters) -> set:
    """Names the filters select, restricted to the corpus (the server may be shared)."""
    return set(listed_names(sm, Filters=filters)) & corpus["all"]


def picks(corpus, *keys) -> set:
    return {corpus["names"][k] for k in keys}


def test_list_filter_name_prefix(sm, corpus):
    assert filtered(sm, corpus, [{"Key": "name", "Values": [corpus["prefix"]]}]) == corpus["all"]
    assert filtered(sm, corpus, [{"Key": "name", "Values": [corpus["prefix"] + "/al"]}]) == picks(corpus, "alpha")


def test_list_filter_name_is_case_sensitive(sm, corpus):
    assert filtered(sm, corpus, [{"Key": "name", "Values": [corpus["prefix"] + "/gamma"]}]) == set()
    assert filtered(sm, corpus, [{"Key": "name", "Values": [corpus["prefix"] + "/Gamma"]}]) == picks(corpus, "gamma")


def test_list_filter_values_are_ored(sm, corpus):
    values = [corpus["prefix"] + "/alpha", corpus["prefix"] + "/beta"]
    assert filtered(sm, corpus, [{"Key": "name", "Values": values}]) == picks(corpus, "alpha", "beta")


def test_list_filter_description_prefix_case_insensitive(sm, corpus):
    f = [{"Key": "name", "Values": [corpus["prefix"]]}, {"Key": "description", "Values": ["ALPHA data"]}]
    assert filtered(sm, corpus, f) == picks(corpus, "alpha")
    f = [{"Key": "name", "Values": [corpus["prefix"]]}, {"Key": "description", "Values": ["Gamma"]}]
    assert filtered(sm, corpus, f) == picks(corpus, "gamma")


def test_list_filter_tag_key(sm, corpus):
    base = {"Key": "name", "Values": [corpus["prefix"]]}
    assert filtered(sm, corpus, [base, {"Key": "tag-key", "Values": ["env"]}]) == picks(corpus, "alpha", "beta")
    assert filtered(sm, corpus, [base, {"Key": "tag-key", "Values": ["Env"]}]) == picks(corpus, "gamma")
    assert filtered(sm, corpus, [base, {"Key": "tag-key", "Values": ["tea"]}]) == picks(corpus, "alpha")


def test_list_filter_tag_value(sm, corpus):
    base = {"Key": "name", "Values": [corpus["prefix"]]}
    assert filtered(sm, corpus, [base, {"Key": "tag-value", "Values": ["prod"]}]) == picks(corpus, "alpha")
    assert filtered(sm, corpus, [base, {"Key": "tag-value", "Values": ["Prod"]}]) == picks(corpus, "gamma")
    assert filtered(sm, corpus, [base, {"Key": "tag-value", "Values": ["bo"]}]) == picks(corpus, "beta")


def test_list_filter_negation(sm, corpus):
    base = {"Key": "name", "Values": [corpus["prefix"]]}
    assert filtered(sm, corpus, [base, {"Key": "description", "Values": ["!beta"]}]) == picks(corpus, "alpha", "gamma")
    f = [{"Key": "tag-key", "Values": ["env"]}, {"Key": "name", "Values": ["!" + corpus["prefix"] + "/beta"]}]
    assert filtered(sm, corpus, f) == picks(corpus, "alpha")


def test_list_filter_all(sm, corpus):
    base = {"Key": "name", "Values": [corpus["prefix"]]}
    assert filtered(sm, corpus, [base, {"Key": "all", "Values": ["CACHE"]}]) == picks(corpus, "gamma")
    assert filtered(sm, corpus, [base, {"Key": "all", "Values": ["payments"]}]) == picks(corpus, "alpha")


def test_list_entries_carry_versions_tags_and_description(sm, corpus):
    name = corpus["names"]["alpha"]
    entry = next(e for e in list_secrets_all(sm, Filters=[{"Key": "name", "Values": [name]}]) if e["Name"] == name)
    assert arn_pattern(name).match(entry["ARN"])
    assert entry["Description"] == "Alpha database password"
    assert tags_dict(entry["Tags"]) == {"env": "prod", "team": "payments"}
    stages = entry["SecretVersionsToStages"]
    assert list(stages.values()) == [["AWSCURRENT"]]
    assert "VersionIdsToStages" not in entry
    assert "SecretString" not in entry


def test_list_secrets_pagination_covers_every_item_once(sm, secrets):
    prefix = unique_name("page")
    names = {secrets.create(name=f"{prefix}/{i:02d}", SecretString=str(i))["Name"] for i in range(5)}
    seen, token, pages = [], None, 0
    while True:
        args = {"MaxResults": 2, "Filters": [{"Key": "name", "Values": [prefix + "/"]}]}
        if token:
            args["NextToken"] = token
        page = sm.list_secrets(**args)
        pages += 1
        assert len(page["SecretList"]) <= 2
        seen += [e["Name"] for e in page["SecretList"]]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 50
    assert sorted(seen) == sorted(names), "every secret exactly once"
    assert pages >= 3


def test_list_secrets_paginator(sm, secrets):
    prefix = unique_name("paginator")
    names = {secrets.create(name=f"{prefix}/{i}", SecretString="v")["Name"] for i in range(3)}
    pages = sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": [prefix + "/"]}], PaginationConfig={"PageSize": 1}
    )
    seen = [e["Name"] for page in pages for e in page["SecretList"]]
    assert sorted(seen) == sorted(names)


# moto differs: moto ignores SortBy/SortOrder
@pytest.mark.moto_differs("moto ignores SortBy/SortOrder")
def test_list_secrets_sort_by_name(sm, secrets):
    prefix = unique_name("sortname")
    names = [secrets.create(name=f"{prefix}/{c}", SecretString="v")["Name"] for c in ("b", "c", "a")]
    f = [{"Key": "name", "Values": [prefix + "/"]}]
    asc = [n for n in listed_names(sm, Filters=f, SortBy="name", SortOrder="asc") if n in names]
    desc = [n for n in listed_names(sm, Filters=f, SortBy="name", SortOrder="desc") if n in names]
    assert asc == sorted(names)
    assert desc == sorted(names, reverse=True)


# moto differs: moto ignores SortBy/SortOrder
@pytest.mark.moto_differs("moto ignores SortBy/SortOrder")
def test_list_secrets_sort_by_created_date(sm, secrets):
    prefix = unique_name("sortdate")
    names = []
    for c in ("z", "a", "m"):
        names.append(secrets.create(name=f"{prefix}/{c}", SecretString="v")["Name"])
        time.sleep(1.05)
    f = [{"Key": "name", "Values": [prefix + "/"]}]
    asc = [n for n in listed_names(sm, Filters=f, SortBy="created-date", SortOrder="asc") if n in names]
    desc = [n for n in listed_names(sm, Filters=f, SortBy="created-date", SortOrder="desc") if n in names]
    assert asc == names
    assert desc == names[::-1]


def test_list_secrets_unknown_filter_key_is_validation_error(sm_novalidate):
    expect_error(sm_novalidate.list_secrets, "ValidationException", Filters=[{"Key": "colour", "Values": ["x"]}])


# ------------------------------------------------------------------------------------------
# Limits and input validation
# ------------------------------------------------------------------------------------------


def test_secret_string_of_65536_bytes_is_accepted(sm, secrets):
    value = "x" * 65536
    created = secrets.create(SecretString=value)
    assert sm.get_secret_value(SecretId=created["Name"])["SecretString"] == value


def test_secret_binary_of_65536_bytes_is_accepted(sm, secrets):
    value = bytes(i % 251 for i in range(65536))
    created = secrets.create(SecretBinary=value)
    assert sm.get_secret_value(SecretId=created["Name"])["SecretBinary"] == value


# moto differs: moto accepts oversize values
@pytest.mark.moto_differs("moto accepts oversize values")
def test_secret_string_of_65537_bytes_is_rejected(sm_novalidate, secrets):
    name = secrets.name()
    expect_error(sm_novalidate.create_secret, "ValidationException", Name=name, SecretString="x" * 65537)


# moto differs: moto accepts oversize binary values
@pytest.mark.moto_differs("moto accepts oversize binary values")
def test_secret_binary_of_65537_bytes_is_rejected(sm_novalidate, secrets):
    created = secrets.create(SecretString="v")
    expect_error(sm_novalidate.put_secret_value, "ValidationException", SecretId=created["Name"], SecretBinary=b"\x00" * 65537)


@pytest.mark.parametrize("bad", ["with space", "hash#tag", "star*"])
# moto differs: moto accepts or reports invalid names differently
@pytest.mark.moto_differs("moto accepts or reports invalid names differently")
def test_invalid_name_characters_are_rejected(sm, secrets, bad):
    name = f"{NAME_PREFIX}/{bad}"
    secrets.track(name)
    expect_error(
        sm.create_secret,
        "ValidationException",
        message="Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
        Name=name,
        SecretString="v",
    )


def test_all_allowed_name_characters_work(sm, secrets):
    name = secrets.name() + "/Az09/_+=.@-x"
    created = secrets.create(name, SecretString="v")
    assert created["Name"] == name
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    assert sm.get_secret_value(SecretId=created["ARN"])["Name"] == name


# moto differs: moto does not enforce the 512-character name limit
@pytest.mark.moto_differs("moto does not enforce the 512-character name limit")
def test_name_longer_than_512_is_rejected(sm_novalidate, secrets):
    name = (NAME_PREFIX + "/" + "n" * 600)[:513]
    secrets.track(name)
    expect_error(sm_novalidate.create_secret, "ValidationException", Name=name, SecretString="v")


# moto differs: moto accepts SecretString and SecretBinary together
@pytest.mark.moto_differs("moto accepts SecretString and SecretBinary together")
def test_string_and_binary_together_are_rejected(sm, secrets):
    name = secrets.name()
    expect_error(sm.create_secret, "InvalidParameterException", Name=name, SecretString="s", SecretBinary=b"b")


# ------------------------------------------------------------------------------------------
# BatchGetSecretValue
# ------------------------------------------------------------------------------------------


def test_batch_get_by_id_list_with_a_missing_secret(sm, secrets):
    a = secrets.create(SecretString="A")
    b = secrets.create(SecretBinary=b"\x00B")
    missing = unique_name("missing")
    resp = sm.batch_get_secret_value(SecretIdList=[a["Name"], b["ARN"], missing])
    values = {v["Name"]: v for v in resp["SecretValues"]}
    assert set(values) == {a["Name"], b["Name"]}
    assert values[a["Name"]]["SecretString"] == "A"
    assert values[a["Name"]]["ARN"] == a["ARN"]
    assert values[a["Name"]]["VersionId"] == a["VersionId"]
    assert values[a["Name"]]["VersionStages"] == ["AWSCURRENT"]
    assert_recent(values[a["Name"]]["CreatedDate"])
    assert values[b["Name"]]["SecretBinary"] == b"\x00B"
    errors = resp.get("Errors", [])
    assert len(errors) == 1
    assert errors[0]["SecretId"] == missing
    assert errors[0]["ErrorCode"] == "ResourceNotFoundException"


def test_batch_get_by_filters_paginates(sm, secrets):
    prefix = unique_name("batch")
    expected = {}
    for i in range(5):
        c = secrets.create(name=f"{prefix}/{i}", SecretString=f"value-{i}")
        expected[c["Name"]] = f"value-{i}"
    seen, token, pages = {}, None, 0
    while True:
        args = {"Filters": [{"Key": "name", "Values": [prefix + "/"]}], "MaxResults": 2}
        if token:
            args["NextToken"] = token
        page = sm.batch_get_secret_value(**args)
        pages += 1
        assert len(page["SecretValues"]) <= 2
        for v in page["SecretValues"]:
            assert v["Name"] not in seen, "returned twice"
            seen[v["Name"]] = v["SecretString"]
        token = page.get("NextToken")
        if not token:
            break
        assert pages < 50
    assert seen == expected
    assert pages >= 3


# ------------------------------------------------------------------------------------------
# GetRandomPassword
# ------------------------------------------------------------------------------------------


def test_random_password_default_is_32_printable_chars(sm):
    resp = sm.get_random_password()
    pw = resp["RandomPassword"]
    assert len(pw) == 32
    assert all(c in string.ascii_letters + string.digits + PUNCTUATION for c in pw)
    assert sm.get_random_password()["RandomPassword"] != pw


@pytest.mark.parametrize(
    "option, forbidden",
    [
        ("ExcludeNumbers", string.digits),
        ("ExcludePunctuation", PUNCTUATION),
        ("ExcludeUppercase", string.ascii_uppercase),
        ("ExcludeLowercase", string.ascii_lowercase),
    ],
)
def test_random_password_exclusions(sm, option, forbidden):
    pw = sm.get_random_password(PasswordLength=200, **{option: True})["RandomPassword"]
    assert len(pw) == 200
    assert not set(pw) & set(forbidden)
    assert " " not in pw


def test_random_password_exclude_characters(sm):
    excluded = "abcdefABCDEF012345!@#"  # leaves every character type some members
    pw = sm.get_random_password(PasswordLength=300, ExcludeCharacters=excluded)["RandomPassword"]
    assert len(pw) == 300
    assert not set(pw) & set(excluded)


def test_random_password_require_each_included_type(sm):
    for _ in range(10):
        pw = sm.get_random_password(PasswordLength=4, RequireEachIncludedType=True)["RandomPassword"]
        assert any(c in string.ascii_lowercase for c in pw)
        assert any(c in string.ascii_uppercase for c in pw)
        assert any(c in string.digits for c in pw)
        assert any(c in PUNCTUATION for c in pw)


def test_random_password_include_space(sm):
    pw = sm.get_random_password(
        PasswordLength=5, IncludeSpace=True, RequireEachIncludedType=True, ExcludePunctuation=True
    )["RandomPassword"]
    assert " " in pw


def test_random_password_max_length(sm):
    assert len(sm.get_random_password(PasswordLength=4096)["RandomPassword"]) == 4096


@pytest.mark.parametrize("length", [0, 4097])
# moto differs: moto reports bad password lengths with other codes (InvalidParameterException / a garbled ValidationException)
@pytest.mark.moto_differs("moto reports bad password lengths with other codes (InvalidParameterException / a garbled ValidationException)")
def test_random_password_length_out_of_range(sm_novalidate, length):
    expect_error(sm_novalidate.get_random_password, "ValidationException", PasswordLength=length)


# ------------------------------------------------------------------------------------------
# Resource policies
# ------------------------------------------------------------------------------------------


def test_resource_policy_put_get_delete(sm, secrets):
    created = secrets.create(SecretString="v")
    doc = policy_for(created["ARN"])
    put = sm.put_resource_policy(SecretId=created["Name"], ResourcePolicy=doc)
    assert put["ARN"] == created["ARN"] and put["Name"] == created["Name"]
    got = sm.get_resource_policy(SecretId=created["Name"])
    assert got["ARN"] == created["ARN"] and got["Name"] == created["Name"]
    assert json.loads(got["ResourcePolicy"]) == json.loads(doc)
    deleted = sm.delete_resource_policy(SecretId=created["ARN"])
    assert deleted["ARN"] == created["ARN"] and deleted["Name"] == created["Name"]
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=created["Name"])


def test_get_resource_policy_without_policy(sm, secrets):
    created = secrets.create(SecretString="v")
    got = sm.get_resource_policy(SecretId=created["Name"])
    assert got["ARN"] == created["ARN"] and got["Name"] == created["Name"]
    assert "ResourcePolicy" not in got


# moto differs: moto has not implemented ListResourcePolicies
@pytest.mark.moto_differs("moto has not implemented ListResourcePolicies")
def test_list_resource_policies(sm, secrets):
    created = secrets.create(SecretString="v")
    listed = call_op(sm, "ListResourcePolicies", {"SecretId": created["Name"]})
    assert listed["ResourcePolicies"] == []
    sm.put_resource_policy(SecretId=created["Name"], ResourcePolicy=policy_for(created["ARN"]))
    listed = call_op(sm, "ListResourcePolicies", {"SecretId": created["Name"]})
    assert listed["ResourcePolicies"] == [{"PolicyName": "default"}]
    sm.delete_resource_policy(SecretId=created["Name"])
    assert call_op(sm, "ListResourcePolicies", {"SecretId": created["Name"]})["ResourcePolicies"] == []


# moto differs: moto has not implemented ListResourcePolicies
@pytest.mark.moto_differs("moto has not implemented ListResourcePolicies")
def test_list_resource_policies_unknown_secret(sm):
    with pytest.raises(ClientError) as ei:
        call_op(sm, "ListResourcePolicies", {"SecretId": unique_name("missing")})
    assert error_code(ei.value) == "ResourceNotFoundException"


# moto differs: moto ignores BlockPublicPolicy
@pytest.mark.moto_differs("moto ignores BlockPublicPolicy")
def test_block_public_policy_rejects_wildcard_principal(sm, secrets):
    created = secrets.create(SecretString="v")
    expect_error(
        sm.put_resource_policy,
        "PublicPolicyException",
        SecretId=created["Name"],
        ResourcePolicy=policy_for(created["ARN"], principal="*"),
        BlockPublicPolicy=True,
    )
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=created["Name"])


def test_public_policy_is_allowed_when_not_blocked(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.put_resource_policy(SecretId=created["Name"], ResourcePolicy=policy_for(created["ARN"], principal="*"))
    assert "ResourcePolicy" in sm.get_resource_policy(SecretId=created["Name"])


# moto differs: moto stores any policy text
@pytest.mark.moto_differs("moto stores any policy text")
@pytest.mark.parametrize("doc", ["{not json", '{"Version": "2012-10-17"}', "[]"], ids=["syntax", "no-statement", "array"])
def test_malformed_policy_is_rejected(sm, secrets, doc):
    created = secrets.create(SecretString="v")
    expect_error(sm.put_resource_policy, "MalformedPolicyDocumentException", SecretId=created["Name"], ResourcePolicy=doc)


# moto differs: moto has not implemented ValidateResourcePolicy (HTTP 500)
@pytest.mark.moto_differs("moto has not implemented ValidateResourcePolicy (HTTP 500)")
def test_validate_resource_policy_passes(sm, secrets):
    created = secrets.create(SecretString="v")
    doc = policy_for(created["ARN"])
    resp = sm.validate_resource_policy(ResourcePolicy=doc)
    assert resp["PolicyValidationPassed"] is True
    assert not resp.get("ValidationErrors")
    resp = sm.validate_resource_policy(SecretId=created["Name"], ResourcePolicy=doc)
    assert resp["PolicyValidationPassed"] is True


# moto differs: moto has not implemented ValidateResourcePolicy (HTTP 500)
@pytest.mark.moto_differs("moto has not implemented ValidateResourcePolicy (HTTP 500)")
def test_validate_resource_policy_flags_public_policy(sm, secrets):
    created = secrets.create(SecretString="v")
    resp = sm.validate_resource_policy(ResourcePolicy=policy_for(created["ARN"], principal="*"))
    assert resp["PolicyValidationPassed"] is False


# moto differs: moto has not implemented ValidateResourcePolicy (HTTP 500)
@pytest.mark.moto_differs("moto has not implemented ValidateResourcePolicy (HTTP 500)")
def test_validate_resource_policy_malformed(sm):
    expect_error(sm.validate_resource_policy, "MalformedPolicyDocumentException", ResourcePolicy="{not json")


# moto differs: moto ignores PolicyName
@pytest.mark.moto_differs("moto ignores PolicyName")
def test_named_policies_are_listed_default_first(raw, secrets):
    # The 2017-10-17 model (botocore 1.44) names policies; ListResourcePolicies lists
    # `default` first, then the others alphabetically.
    created = secrets.create(SecretString="v")
    for name in ["zeta", "default", "alpha"]:
        resp = raw(
            "PutResourcePolicy",
            {"SecretId": created["Name"], "ResourcePolicy": policy_for(created["ARN"]), "PolicyName": name},
        )
        assert resp.status == 200, resp.text
    listed = raw("ListResourcePolicies", {"SecretId": created["Name"]})
    assert listed.status == 200
    assert [p["PolicyName"] for p in listed.json["ResourcePolicies"]] == ["default", "alpha", "zeta"]


# ------------------------------------------------------------------------------------------
# Tags
# ------------------------------------------------------------------------------------------


def test_tag_and_untag_resource(sm, secrets):
    created = secrets.create(SecretString="v", Tags=[{"Key": "env", "Value": "dev"}, {"Key": "keep", "Value": "1"}])
    name = created["Name"]
    resp = sm.tag_resource(SecretId=name, Tags=[{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "core"}])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert tags_dict(sm.describe_secret(SecretId=name)["Tags"]) == {"env": "prod", "keep": "1", "team": "core"}
    sm.untag_resource(SecretId=created["ARN"], TagKeys=["env", "not-there"])
    assert tags_dict(sm.describe_secret(SecretId=name)["Tags"]) == {"keep": "1", "team": "core"}


def test_untag_absent_keys_is_not_an_error(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.untag_resource(SecretId=created["Name"], TagKeys=["nope", "also-nope"])
    assert not sm.describe_secret(SecretId=created["Name"]).get("Tags")


def test_untag_all_tags(sm, secrets):
    created = secrets.create(SecretString="v", Tags=[{"Key": "a", "Value": "1"}])
    sm.untag_resource(SecretId=created["Name"], TagKeys=["a"])
    assert not sm.describe_secret(SecretId=created["Name"]).get("Tags")


def test_tag_with_empty_value(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.tag_resource(SecretId=created["Name"], Tags=[{"Key": "flag", "Value": ""}])
    assert tags_dict(sm.describe_secret(SecretId=created["Name"])["Tags"]) == {"flag": ""}


def test_tags_are_visible_in_list_secrets(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.tag_resource(SecretId=created["Name"], Tags=[{"Key": "owner", "Value": "alice"}])
    entry = next(
        e for e in list_secrets_all(sm, Filters=[{"Key": "tag-key", "Values": ["owner"]}, {"Key": "name", "Values": [created["Name"]]}])
        if e["Name"] == created["Name"]
    )
    assert tags_dict(entry["Tags"]) == {"owner": "alice"}


# ------------------------------------------------------------------------------------------
# SigV4 (moto verifies no signatures: skipped there)
# ------------------------------------------------------------------------------------------


@pytest.mark.sigv4
def test_wrong_secret_key_is_invalid_signature():
    bad = make_client(secret_access_key="wrong" + "x" * 35)
    expect_error(bad.list_secrets, "InvalidSignatureException")


@pytest.mark.sigv4
def test_unknown_access_key_is_unrecognized_client():
    bad = make_client(access_key_id="AKIA" + uuid.uuid4().hex[:16].upper(), session_token=None)
    expect_error(bad.list_secrets, "UnrecognizedClientException")


@pytest.mark.sigv4
def test_unsigned_request_is_missing_authentication_token(raw):
    resp = raw("ListSecrets", {}, sign=False)
    assert resp.status in (400, 403)
    assert resp.error_code == "MissingAuthenticationTokenException"


@pytest.mark.sigv4
def test_malformed_authorization_header_is_incomplete_signature(raw):
    resp = raw("ListSecrets", {}, sign=False, authorization="AWS4-HMAC-SHA256 garbage")
    assert resp.status in (400, 403)
    assert resp.error_code == "IncompleteSignatureException"


@pytest.mark.sigv4
def test_expired_signature_is_rejected(raw):
    signed_at = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=15)
    resp = raw("ListSecrets", {}, signed_at=signed_at)
    assert resp.error_code == "InvalidSignatureException"


@pytest.mark.sigv4
def test_body_changed_after_signing_is_rejected(raw, secrets):
    signed = json.dumps({"SecretId": unique_name("a")}).encode()
    sent = json.dumps({"SecretId": unique_name("b")}).encode()
    assert len(signed) == len(sent)
    resp = raw("DescribeSecret", signed, body_override=sent)
    assert resp.error_code == "InvalidSignatureException"


@pytest.mark.sigv4
def test_credential_scoped_to_another_service_is_rejected(raw):
    resp = raw("ListSecrets", {}, signing_service="kms")
    assert resp.status >= 400
    assert resp.error_code in ("InvalidSignatureException", "IncompleteSignatureException")


# ------------------------------------------------------------------------------------------
# Workspace isolation (needs a second workspace's key; skipped otherwise and on moto)
# ------------------------------------------------------------------------------------------


ISOLATION_CALLS = {
    "get_secret_value": {},
    "describe_secret": {},
    "put_secret_value": {"SecretString": "evil"},
    "update_secret": {"Description": "evil"},
    "delete_secret": {"RecoveryWindowInDays": 7},
    "tag_resource": {"Tags": [{"Key": "evil", "Value": "1"}]},
    "untag_resource": {"TagKeys": ["k"]},
    "list_secret_version_ids": {},
    "get_resource_policy": {},
    "put_resource_policy": {"ResourcePolicy": VALID_POLICY},
    "restore_secret": {},
}


@pytest.mark.other_workspace
@pytest.mark.parametrize("op", sorted(ISOLATION_CALLS))
def test_other_workspace_cannot_touch_our_secret(sm, other_sm, secrets, op):
    created = secrets.create(SecretString="ours", Tags=[{"Key": "k", "Value": "v"}])
    for secret_id in (created["Name"], created["ARN"], partial_arn(created["ARN"])):
        # exactly what a nonexistent secret gets: existence must not leak
        expect_error(
            getattr(other_sm, op), "ResourceNotFoundException", message=NOT_FOUND_MSG, SecretId=secret_id, **ISOLATION_CALLS[op]
        )
    # nothing changed on our side
    desc = sm.describe_secret(SecretId=created["Name"])
    assert "DeletedDate" not in desc
    assert tags_dict(desc["Tags"]) == {"k": "v"}
    assert sm.get_secret_value(SecretId=created["Name"])["SecretString"] == "ours"


@pytest.mark.other_workspace
def test_other_workspace_force_delete_behaves_as_for_a_nonexistent_secret(sm, other_sm, secrets):
    created = secrets.create(SecretString="ours")
    ours = other_sm.delete_secret(SecretId=created["Name"], ForceDeleteWithoutRecovery=True)
    nobody = other_sm.delete_secret(SecretId=unique_name("nobody"), ForceDeleteWithoutRecovery=True)
    assert ours["ResponseMetadata"]["HTTPStatusCode"] == nobody["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert sm.get_secret_value(SecretId=created["Name"])["SecretString"] == "ours"


@pytest.mark.other_workspace
def test_other_workspace_list_and_batch_do_not_show_our_secret(sm, other_sm, secrets):
    created = secrets.create(SecretString="ours")
    flt = [{"Key": "name", "Values": [created["Name"]]}]
    assert created["Name"] not in listed_names(other_sm, Filters=flt, IncludePlannedDeletion=True)
    resp = other_sm.batch_get_secret_value(SecretIdList=[created["ARN"]])
    assert resp["SecretValues"] == []
    assert [e["ErrorCode"] for e in resp["Errors"]] == ["ResourceNotFoundException"]
    assert other_sm.batch_get_secret_value(Filters=flt)["SecretValues"] == []


@pytest.mark.other_workspace
def test_other_workspace_has_its_own_namespace(sm, other_sm, secrets):
    created = secrets.create(SecretString="ours")
    try:
        theirs = other_sm.create_secret(Name=created["Name"], SecretString="theirs")
        assert theirs["ARN"] != created["ARN"]
        assert other_sm.get_secret_value(SecretId=created["Name"])["SecretString"] == "theirs"
        assert sm.get_secret_value(SecretId=created["Name"])["SecretString"] == "ours"
        # and our ARN stays unknown to them even though they own the same name
        expect_error(other_sm.describe_secret, "ResourceNotFoundException", SecretId=created["ARN"])
    finally:
        force_delete_quietly(other_sm, created["Name"])


# ------------------------------------------------------------------------------------------
# Rotation (no Lambda runs on the server: configuration and schedule only)
# ------------------------------------------------------------------------------------------

ROTATION_LAMBDA = "arn:aws:lambda:us-east-1:111122223333:function:rotate-db"
NO_LAMBDA_MSG = "No Lambda rotation function ARN is associated with this secret."
REPLICA_ONLY_MSG = "Operation not permitted on a replica secret. Call must be made in primary secret's region."
# Two Regions other than the one under test, for replicas.
REPLICA_REGIONS = [r for r in ("eu-west-1", "ap-southeast-2", "us-west-2") if r != REGION][:2]


def test_rotate_secret_without_a_function_is_invalid_request(sm, secrets):
    created = secrets.create(SecretString="v")
    expect_error(sm.rotate_secret, "InvalidRequestException", message=NO_LAMBDA_MSG, SecretId=created["Name"])
    assert "RotationEnabled" not in sm.describe_secret(SecretId=created["Name"])


@pytest.mark.moto_differs("moto invokes (and so needs) a real Lambda function")
def test_rotate_secret_stores_configuration_and_schedule(sm, secrets):
    created = secrets.create(SecretString="v")
    resp = sm.rotate_secret(
        SecretId=created["Name"],
        ClientRequestToken=TERRAFORM_TOKEN,
        RotationLambdaARN=ROTATION_LAMBDA,
        RotationRules={"AutomaticallyAfterDays": 30},
        RotateImmediately=False,
    )
    assert (resp["ARN"], resp["Name"], resp["VersionId"]) == (created["ARN"], created["Name"], TERRAFORM_TOKEN)
    desc = sm.describe_secret(SecretId=created["Name"])
    assert desc["RotationEnabled"] is True
    assert desc["RotationLambdaARN"] == ROTATION_LAMBDA
    assert desc["RotationRules"] == {"AutomaticallyAfterDays": 30}
    assert dt.timedelta(days=29) < desc["NextRotationDate"] - now_utc() < dt.timedelta(days=31)
    # no rotation function ran: still the one version, no AWSPENDING
    assert version_stages(sm, created["Name"]) == {created["VersionId"]: ["AWSCURRENT"]}


@pytest.mark.moto_differs("moto invokes (and so needs) a real Lambda function")
def test_cancel_rotate_secret_keeps_function_and_rules(sm, secrets):
    created = secrets.create(SecretString="v")
    sm.rotate_secret(
        SecretId=created["Name"],
        RotationLambdaARN=ROTATION_LAMBDA,
        RotationRules={"ScheduleExpression": "rate(10 days)", "Duration": "2h"},
    )
    resp = sm.cancel_rotate_secret(SecretId=created["Name"])
    assert resp["ARN"] == created["ARN"]
    assert "VersionId" not in resp
    desc = sm.describe_secret(SecretId=created["Name"])
    assert desc["RotationEnabled"] is False
    assert desc["RotationLambdaARN"] == ROTATION_LAMBDA
    assert desc["RotationRules"] == {"ScheduleExpression": "rate(10 days)", "Duration": "2h"}
    assert "NextRotationDate" not in desc


@pytest.mark.moto_differs("moto does not check RotationRules")
def test_rotation_frequency_and_schedule_expression_together_are_rejected(sm, secrets):
    created = secrets.create(SecretString="v")
    expect_error(
        sm.rotate_secret,
        "InvalidParameterException",
        message="You cannot specify both rotation frequency and schedule expression together.",
        SecretId=created["Name"],
        RotationLambdaARN=ROTATION_LAMBDA,
        RotationRules={"AutomaticallyAfterDays": 7, "ScheduleExpression": "rate(7 days)"},
    )
    assert "RotationEnabled" not in sm.describe_secret(SecretId=created["Name"])


def test_raw_rotate_without_client_request_token_is_invalid_parameter(raw, secrets):
    # RotateSecret says InvalidParameterException where Create/Put/Update say InvalidRequestException.
    created = secrets.create(SecretString="v")
    resp = raw("RotateSecret", {"SecretId": created["Name"], "RotationLambdaARN": ROTATION_LAMBDA})
    assert resp.status == 400
    assert resp.error_code == "InvalidParameterException"
    assert resp.message == "You must provide a ClientRequestToken value. We recommend a UUID-type value."


# ------------------------------------------------------------------------------------------
# Multi-Region replication (replicas live in other Regions of the same workspace)
# ------------------------------------------------------------------------------------------


def remove_replicas_quietly(sm, secret_id):
    try:
        regions = [s["Region"] for s in sm.describe_secret(SecretId=secret_id).get("ReplicationStatus", [])]
        if regions:
            sm.remove_regions_from_replication(SecretId=secret_id, RemoveReplicaRegions=regions)
    except ClientError:
        pass


def test_replica_has_the_primary_versions_and_follows_its_writes(sm, secrets):
    region = REPLICA_REGIONS[0]
    replica_sm = make_client(region=region)
    created = secrets.create(SecretString="v1", Description="replicated")
    name = created["Name"]
    try:
        resp = sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": region}])
        assert resp["ARN"] == created["ARN"]
        assert [(s["Region"], s["Status"]) for s in resp["ReplicationStatus"]] == [(region, "InSync")]

        replica_arn = created["ARN"].replace(f":{REGION}:", f":{region}:")
        got = replica_sm.get_secret_value(SecretId=name)
        assert (got["ARN"], got["SecretString"], got["VersionId"]) == (replica_arn, "v1", created["VersionId"])
        assert got["VersionStages"] == ["AWSCURRENT"]
        replica_desc = replica_sm.describe_secret(SecretId=replica_arn)
        assert replica_desc["PrimaryRegion"] == REGION
        assert replica_desc["Description"] == "replicated"
        primary_desc = sm.describe_secret(SecretId=name)
        assert primary_desc["PrimaryRegion"] == REGION
        assert [s["Region"] for s in primary_desc["ReplicationStatus"]] == [region]

        # a write to the primary is on the replica when it returns
        put = sm.put_secret_value(SecretId=name, SecretString="v2")
        got = replica_sm.get_secret_value(SecretId=name)
        assert (got["SecretString"], got["VersionId"]) == ("v2", put["VersionId"])

        # the replica is read-only
        expect_error(replica_sm.put_secret_value, "InvalidParameterException", message=REPLICA_ONLY_MSG, SecretId=name, SecretString="x")
        expect_error(replica_sm.delete_secret, "InvalidParameterException", message=REPLICA_ONLY_MSG, SecretId=name)
        # and the primary cannot be deleted while it has replicas
        expect_error(
            sm.delete_secret,
            "InvalidParameterException",
            message=f"You can't delete secret {created['ARN']} that still has replica regions [{region}].",
            SecretId=name,
            ForceDeleteWithoutRecovery=True,
        )

        # primary-region filter, seen from the replica's Region
        entries = list_secrets_all(replica_sm, Filters=[{"Key": "name", "Values": [name]}, {"Key": "primary-region", "Values": [REGION]}])
        assert [(e["Name"], e["PrimaryRegion"]) for e in entries] == [(name, REGION)]
    finally:
        remove_replicas_quietly(sm, name)


@pytest.mark.moto_differs("moto words the Failed StatusMessage differently")
def test_replicating_onto_a_taken_name_fails_unless_forced(sm, secrets):
    region = REPLICA_REGIONS[0]
    replica_sm = make_client(region=region)
    created = secrets.create(SecretString="primary")
    name = created["Name"]
    replica_sm.create_secret(Name=name, SecretString="standalone")
    try:
        resp = sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": region}])
        status = resp["ReplicationStatus"][0]
        assert (status["Status"], status["StatusMessage"]) == ("Failed", "Secret with this name already exists in this region")
        assert replica_sm.get_secret_value(SecretId=name)["SecretString"] == "standalone"

        resp = sm.replicate_secret_to_regions(SecretId=name, AddReplicaRegions=[{"Region": region}], ForceOverwriteReplicaSecret=True)
        assert resp["ReplicationStatus"][0]["Status"] == "InSync"
        assert replica_sm.get_secret_value(SecretId=name)["SecretString"] == "primary"
    finally:
        remove_replicas_quietly(sm, name)
        force_delete_quietly(replica_sm, name)


def test_replicating_to_the_own_region_is_invalid(sm, secrets):
    created = secrets.create(SecretString="v")
    expect_error(
        sm.replicate_secret_to_regions,
        "InvalidParameterException",
        message="Invalid replica region.",
        SecretId=created["Name"],
        AddReplicaRegions=[{"Region": REGION}],
    )


def test_create_secret_with_replicas_then_remove_them(sm, secrets):
    name = secrets.name()
    created = sm.create_secret(Name=name, SecretString="v", AddReplicaRegions=[{"Region": r} for r in REPLICA_REGIONS])
    try:
        assert sorted((s["Region"], s["Status"]) for s in created["ReplicationStatus"]) == sorted((r, "InSync") for r in REPLICA_REGIONS)
        removed = sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[REPLICA_REGIONS[1]])
        assert [s["Region"] for s in removed["ReplicationStatus"]] == [REPLICA_REGIONS[0]]
        expect_error(make_client(region=REPLICA_REGIONS[1]).describe_secret, "ResourceNotFoundException", SecretId=name)
        assert make_client(region=REPLICA_REGIONS[0]).get_secret_value(SecretId=name)["SecretString"] == "v"
    finally:
        remove_replicas_quietly(sm, name)


def test_stop_replication_promotes_the_replica(sm, secrets):
    region = REPLICA_REGIONS[0]
    replica_sm = make_client(region=region)
    created = secrets.create(SecretString="v", AddReplicaRegions=[{"Region": region}])
    name = created["Name"]
    replica_arn = created["ARN"].replace(f":{REGION}:", f":{region}:")
    try:
        assert replica_sm.stop_replication_to_replica(SecretId=replica_arn)["ARN"] == replica_arn
        assert "PrimaryRegion" not in replica_sm.describe_secret(SecretId=name)
        assert "ReplicationStatus" not in sm.describe_secret(SecretId=name)
        replica_sm.put_secret_value(SecretId=name, SecretString="standalone now")
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "v"
    finally:
        remove_replicas_quietly(sm, name)
        force_delete_quietly(replica_sm, name)


@pytest.mark.other_workspace
def test_other_workspace_cannot_see_or_touch_replicas(sm, other_sm, secrets):
    region = REPLICA_REGIONS[0]
    created = secrets.create(SecretString="ours", AddReplicaRegions=[{"Region": region}])
    other_replica_sm = make_client(OTHER_ACCESS_KEY_ID, OTHER_SECRET_ACCESS_KEY, session_token=None, region=region)
    replica_arn = created["ARN"].replace(f":{REGION}:", f":{region}:")
    try:
        for secret_id in (created["Name"], replica_arn):
            expect_error(other_replica_sm.describe_secret, "ResourceNotFoundException", message=NOT_FOUND_MSG, SecretId=secret_id)
            expect_error(other_replica_sm.stop_replication_to_replica, "ResourceNotFoundException", message=NOT_FOUND_MSG, SecretId=secret_id)
        expect_error(
            other_sm.remove_regions_from_replication,
            "ResourceNotFoundException",
            message=NOT_FOUND_MSG,
            SecretId=created["ARN"],
            RemoveReplicaRegions=[region],
        )
        assert make_client(region=region).get_secret_value(SecretId=created["Name"])["SecretString"] == "ours"
    finally:
        remove_replicas_quietly(sm, created["Name"])


def test_cross_account_replication_is_refused_without_a_grant(sm, secrets):
    # Cross-account = another workspace; it would have to grant AcceptCrossAccountReplication
    # through a resource policy, which is not enforced yet, so none can.
    created = secrets.create(SecretString="v")
    own_account = created["ARN"].split(":")[4]
    other_account = "444455556666" if own_account != "444455556666" else "555566667777"
    replica = f"arn:aws:secretsmanager:{REGION}:{other_account}:secret:replica-abcdef"
    with pytest.raises(ClientError) as ei:
        call_op(sm, "AssociateCrossAccountReplica", {"SecretId": created["Name"], "CrossAccountReplicaARN": replica})
    assert error_code(ei.value) == "AccessDeniedException"
    assert "secretsmanager:AcceptCrossAccountReplication" in error_message(ei.value)
    with pytest.raises(ClientError) as ei:
        call_op(sm, "DisassociateCrossAccountReplica", {"SecretId": created["Name"], "CrossAccountReplicaARN": replica})
    assert error_code(ei.value) == "InvalidRequestException"
