"""The aws CLI (v1) against RAGnos Vault: `aws --endpoint-url $VAULT_ENDPOINT secretsmanager ...`.

Every test runs the real `aws` executable as a subprocess with `--output json` and only the
endpoint overridden, the way a user would. Environment: see ../README.md (same contract as the
boto3 suite). Secrets are named `compat-<run id>/cli/...` and force-deleted after each test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import uuid

import pytest

ENDPOINT = os.environ.get("VAULT_ENDPOINT", "http://127.0.0.1:4000").rstrip("/")
REGION = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
ACCOUNT_ID = os.environ.get("VAULT_ACCOUNT_ID") or None
RUN_ID = os.environ.get("COMPAT_RUN_ID") or uuid.uuid4().hex[:10]
AWS = os.environ.get("AWS_CLI") or shutil.which("aws")
NOT_FOUND_MSG = "Secrets Manager can't find the specified secret."
TERRAFORM_TOKEN = "terraform-20261129212737000000000001"

pytestmark = pytest.mark.skipif(AWS is None, reason="aws CLI not installed (pip install -r requirements.txt)")


def cli_env(**overrides) -> dict:
    env = dict(os.environ)
    env.update(
        AWS_PAGER="",
        AWS_DEFAULT_OUTPUT="json",
        AWS_MAX_ATTEMPTS="1",
        # never read a developer's ~/.aws profile: credentials come from the env contract only
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    env.pop("AWS_PROFILE", None)
    env.update(overrides)
    return env


def run_aws(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [AWS, "--endpoint-url", ENDPOINT, "--region", REGION, "--output", "json", "secretsmanager", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env or cli_env(), timeout=120)


def aws(*args: str) -> dict:
    """Run a command that must succeed; return its parsed JSON output ({} when it prints none)."""
    proc = run_aws(*args)
    if proc.returncode != 0:
        pytest.fail(f"aws {' '.join(args)} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def aws_error(code: str, *args: str, env: dict | None = None) -> str:
    """Run a command that must fail with this AWS error code; return stderr."""
    proc = run_aws(*args, env=env)
    assert proc.returncode in (254, 255), f"exit {proc.returncode}: {proc.stdout} {proc.stderr}"
    assert f"({code})" in proc.stderr, proc.stderr
    return proc.stderr


def arn_re(name: str) -> re.Pattern:
    acct = re.escape(ACCOUNT_ID) if ACCOUNT_ID else r"\d{12}"
    return re.compile(rf"^arn:aws:secretsmanager:{re.escape(REGION)}:{acct}:secret:{re.escape(name)}-[A-Za-z0-9]{{6}}$")


class Names:
    """Unique names for one test, force-deleted afterwards."""

    counter = 0

    def __init__(self, label: str):
        self.label = re.sub(r"[^A-Za-z0-9/_+=.@-]", "_", label)[:50]
        self.created: list[str] = []

    def __call__(self, suffix: str = "") -> str:
        Names.counter += 1
        name = f"compat-{RUN_ID}/cli/{self.label}/{Names.counter}" + (f"/{suffix}" if suffix else "")
        self.created.append(name)
        return name

    def cleanup(self):
        for name in self.created:
            run_aws("delete-secret", "--secret-id", name, "--force-delete-without-recovery")


@pytest.fixture
def names(request):
    n = Names(request.node.originalname or request.node.name)
    yield n
    n.cleanup()


def stages(secret_id: str) -> dict:
    desc = aws("describe-secret", "--secret-id", secret_id)
    return {k: sorted(v) for k, v in (desc.get("VersionIdsToStages") or {}).items()}


# ------------------------------------------------------------------------------------------


def test_cli_is_v1():
    proc = subprocess.run([AWS, "--version"], capture_output=True, text=True)
    assert (proc.stdout + proc.stderr).startswith("aws-cli/1."), proc.stdout + proc.stderr


def test_create_and_get_secret_value(names):
    name = names()
    created = aws(
        "create-secret", "--name", name, "--secret-string", '{"user":"admin"}',
        "--description", "from the cli", "--tags", "Key=env,Value=dev",
    )
    assert created["Name"] == name
    assert arn_re(name).match(created["ARN"]), created["ARN"]
    got = aws("get-secret-value", "--secret-id", name)
    assert got["SecretString"] == '{"user":"admin"}'
    assert got["VersionId"] == created["VersionId"]
    assert got["VersionStages"] == ["AWSCURRENT"]
    assert got["ARN"] == created["ARN"]
    by_arn = aws("get-secret-value", "--secret-id", created["ARN"])
    assert by_arn["SecretString"] == '{"user":"admin"}'


# moto differs: moto keeps unlabelled versions in DescribeSecret VersionIdsToStages
@pytest.mark.moto_differs("moto keeps unlabelled versions in DescribeSecret VersionIdsToStages")
def test_put_secret_value_and_list_versions(names):
    name = names()
    v1 = aws("create-secret", "--name", name, "--secret-string", "v1")["VersionId"]
    put = aws("put-secret-value", "--secret-id", name, "--secret-string", "v2", "--client-request-token", TERRAFORM_TOKEN)
    assert put["VersionId"] == TERRAFORM_TOKEN
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert stages(name) == {v1: ["AWSPREVIOUS"], TERRAFORM_TOKEN: ["AWSCURRENT"]}
    v3 = aws("put-secret-value", "--secret-id", name, "--secret-string", "v3")["VersionId"]
    assert stages(name) == {TERRAFORM_TOKEN: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]}

    listed = aws("list-secret-version-ids", "--secret-id", name)
    assert {v["VersionId"] for v in listed["Versions"]} == {TERRAFORM_TOKEN, v3}
    everything = aws("list-secret-version-ids", "--secret-id", name, "--include-deprecated")
    assert {v["VersionId"] for v in everything["Versions"]} == {v1, TERRAFORM_TOKEN, v3}

    prev = aws("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")
    assert prev["SecretString"] == "v2"
    old = aws("get-secret-value", "--secret-id", name, "--version-id", v1)
    assert old["SecretString"] == "v1"


# moto differs: after moving AWSCURRENT, moto's GetSecretValue still returns the old current value
@pytest.mark.moto_differs("after moving AWSCURRENT, moto's GetSecretValue still returns the old current value")
def test_update_secret_version_stage(names):
    name = names()
    v1 = aws("create-secret", "--name", name, "--secret-string", "v1")["VersionId"]
    v2 = aws("put-secret-value", "--secret-id", name, "--secret-string", "v2")["VersionId"]
    aws("update-secret-version-stage", "--secret-id", name, "--version-stage", "AWSCURRENT",
        "--move-to-version-id", v1, "--remove-from-version-id", v2)
    assert aws("get-secret-value", "--secret-id", name)["SecretString"] == "v1"
    aws("update-secret-version-stage", "--secret-id", name, "--version-stage", "BLUE", "--move-to-version-id", v2)
    assert "BLUE" in stages(name)[v2]
    aws("update-secret-version-stage", "--secret-id", name, "--version-stage", "BLUE", "--remove-from-version-id", v2)
    assert "BLUE" not in stages(name).get(v2, [])


def test_update_secret(names):
    name = names()
    v1 = aws("create-secret", "--name", name, "--secret-string", "v1", "--description", "old")["VersionId"]
    upd = aws("update-secret", "--secret-id", name, "--description", "new", "--secret-string", "v2")
    assert upd["Name"] == name
    assert upd["VersionId"] != v1
    desc = aws("describe-secret", "--secret-id", name)
    assert desc["Description"] == "new"
    assert desc["VersionIdsToStages"][upd["VersionId"]] == ["AWSCURRENT"]
    assert desc["VersionIdsToStages"][v1] == ["AWSPREVIOUS"]


def test_list_secrets_with_filters(names):
    a, b = names("alpha"), names("beta")
    aws("create-secret", "--name", a, "--secret-string", "x", "--tags", "Key=team,Value=core")
    aws("create-secret", "--name", b, "--secret-string", "y", "--description", "Beta thing")
    prefix = f"compat-{RUN_ID}/cli/"
    out = aws("list-secrets", "--filters", f"Key=name,Values={prefix}", "Key=tag-key,Values=team")
    found = {e["Name"] for e in out["SecretList"]}
    assert a in found and b not in found
    out = aws("list-secrets", "--filters", f"Key=name,Values={b}")
    entry = next(e for e in out["SecretList"] if e["Name"] == b)
    assert entry["Description"] == "Beta thing"
    assert list(entry["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]


def test_list_secrets_pagination(names):
    created = {names(f"p{i}") for i in range(3)}
    for n in created:
        aws("create-secret", "--name", n, "--secret-string", "v")
    prefix = os.path.commonprefix(sorted(created))
    # the CLI follows NextToken itself; page-size 1 forces one request per secret
    out = aws("list-secrets", "--page-size", "1", "--filters", f"Key=name,Values={prefix}")
    listed = [e["Name"] for e in out["SecretList"] if e["Name"] in created]
    assert sorted(listed) == sorted(created)
    first = aws("list-secrets", "--max-items", "1", "--page-size", "1", "--filters", f"Key=name,Values={prefix}")
    assert len(first["SecretList"]) == 1
    assert first.get("NextToken")


def test_tag_and_untag_resource(names):
    name = names()
    aws("create-secret", "--name", name, "--secret-string", "v", "--tags", "Key=a,Value=1")
    aws("tag-resource", "--secret-id", name, "--tags", "Key=b,Value=2", "Key=a,Value=3")
    tags = {t["Key"]: t["Value"] for t in aws("describe-secret", "--secret-id", name)["Tags"]}
    assert tags == {"a": "3", "b": "2"}
    aws("untag-resource", "--secret-id", name, "--tag-keys", "a", "not-there")
    tags = {t["Key"]: t["Value"] for t in aws("describe-secret", "--secret-id", name)["Tags"]}
    assert tags == {"b": "2"}


def test_get_random_password():
    out = aws("get-random-password", "--password-length", "24", "--exclude-punctuation", "--require-each-included-type")
    pw = out["RandomPassword"]
    assert len(pw) == 24 and pw.isalnum()
    assert any(c.isdigit() for c in pw) and any(c.islower() for c in pw) and any(c.isupper() for c in pw)


def test_batch_get_secret_value(names):
    a, b = names("a"), names("b")
    aws("create-secret", "--name", a, "--secret-string", "A")
    aws("create-secret", "--name", b, "--secret-string", "B")
    missing = f"compat-{RUN_ID}/cli/missing/{uuid.uuid4().hex[:8]}"
    out = aws("batch-get-secret-value", "--secret-id-list", a, b, missing)
    assert {v["Name"]: v["SecretString"] for v in out["SecretValues"]} == {a: "A", b: "B"}
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [(missing, "ResourceNotFoundException")]


# moto differs: moto ignores BlockPublicPolicy and has not implemented ValidateResourcePolicy
@pytest.mark.moto_differs("moto ignores BlockPublicPolicy and has not implemented ValidateResourcePolicy")
def test_resource_policy_commands(names, tmp_path):
    name = names()
    arn = aws("create-secret", "--name", name, "--secret-string", "v")["ARN"]
    account = arn.split(":")[4]
    doc = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                       "Action": "secretsmanager:GetSecretValue", "Resource": "*"}],
    }
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps(doc))
    assert aws("validate-resource-policy", "--resource-policy", f"file://{policy}")["PolicyValidationPassed"] is True
    put = aws("put-resource-policy", "--secret-id", name, "--resource-policy", f"file://{policy}", "--block-public-policy")
    assert put["ARN"] == arn
    got = aws("get-resource-policy", "--secret-id", name)
    assert json.loads(got["ResourcePolicy"]) == doc
    public = tmp_path / "public.json"
    doc["Statement"][0]["Principal"] = "*"
    public.write_text(json.dumps(doc))
    aws_error("PublicPolicyException", "put-resource-policy", "--secret-id", name,
              "--resource-policy", f"file://{public}", "--block-public-policy")
    aws("delete-resource-policy", "--secret-id", name)
    assert "ResourcePolicy" not in aws("get-resource-policy", "--secret-id", name)


def test_secret_binary_fileb(names, tmp_path):
    name = names()
    blob = bytes(range(256))
    path = tmp_path / "secret.bin"
    path.write_bytes(blob)
    aws("create-secret", "--name", name, "--secret-binary", f"fileb://{path}")
    got = aws("get-secret-value", "--secret-id", name)
    assert "SecretString" not in got
    assert base64.b64decode(got["SecretBinary"]) == blob  # the CLI prints blobs base64-encoded


def test_delete_and_restore_secret(names):
    name = names()
    aws("create-secret", "--name", name, "--secret-string", "keep")
    deleted = aws("delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
    assert deleted["Name"] == name and deleted["DeletionDate"]
    aws_error("InvalidRequestException", "get-secret-value", "--secret-id", name)
    assert aws("describe-secret", "--secret-id", name).get("DeletedDate")
    restored = aws("restore-secret", "--secret-id", name)
    assert restored["Name"] == name
    assert "DeletedDate" not in aws("describe-secret", "--secret-id", name)
    assert aws("get-secret-value", "--secret-id", name)["SecretString"] == "keep"


def test_force_delete_secret(names):
    name = names()
    aws("create-secret", "--name", name, "--secret-string", "bye")
    aws("delete-secret", "--secret-id", name, "--force-delete-without-recovery")
    aws_error("ResourceNotFoundException", "describe-secret", "--secret-id", name)


def test_unknown_secret_error(names):
    stderr = aws_error("ResourceNotFoundException", "get-secret-value", "--secret-id", names("missing"))
    assert NOT_FOUND_MSG in stderr
    assert "GetSecretValue operation" in stderr


def test_duplicate_create_error(names):
    name = names()
    aws("create-secret", "--name", name, "--secret-string", "v")
    stderr = aws_error("ResourceExistsException", "create-secret", "--name", name, "--secret-string", "v")
    assert f"The operation failed because the secret {name} already exists." in stderr


@pytest.mark.sigv4
def test_unknown_access_key_error():
    env = cli_env(AWS_ACCESS_KEY_ID="AKIA" + uuid.uuid4().hex[:16].upper(), AWS_SECRET_ACCESS_KEY="x" * 40)
    env.pop("AWS_SESSION_TOKEN", None)
    aws_error("UnrecognizedClientException", "list-secrets", env=env)


@pytest.mark.sigv4
def test_wrong_secret_key_error():
    aws_error("InvalidSignatureException", "list-secrets", env=cli_env(AWS_SECRET_ACCESS_KEY="wrong" + "x" * 35))
