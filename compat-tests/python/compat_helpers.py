"""Shared helpers for the boto3 compatibility suite (imported by conftest.py and the tests).

The suite drives a *running* server through unmodified boto3; only the endpoint URL changes.
Everything it needs comes from the environment (see ../README.md):

    VAULT_ENDPOINT            e.g. http://127.0.0.1:4000
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION
    VAULT_ACCOUNT_ID          optional: 12 digits every ARN must carry
    VAULT_OTHER_ACCESS_KEY_ID / VAULT_OTHER_SECRET_ACCESS_KEY
                              optional: a key of a *second* workspace (isolation tests)
    VAULT_TARGET              "vault" (default) or "moto": against moto, SigV4 and isolation
                              tests are skipped and tests marked ``moto_differs`` become
                              non-strict xfails (moto is known to be wrong there).

Every secret gets a unique name under ``compat-<run id>/`` so tests are independent and can
share a server with other runs; each test force-deletes what it created.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.auth
import pytest
import urllib3
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ENDPOINT = os.environ.get("VAULT_ENDPOINT", "http://127.0.0.1:4000").rstrip("/")
REGION = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
ACCESS_KEY_ID = os.environ.get("AWS_ACCESS_KEY_ID", "")
SECRET_ACCESS_KEY = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
SESSION_TOKEN = os.environ.get("AWS_SESSION_TOKEN") or None
ACCOUNT_ID = os.environ.get("VAULT_ACCOUNT_ID") or None
OTHER_ACCESS_KEY_ID = os.environ.get("VAULT_OTHER_ACCESS_KEY_ID") or None
OTHER_SECRET_ACCESS_KEY = os.environ.get("VAULT_OTHER_SECRET_ACCESS_KEY") or None
TARGET = os.environ.get("VAULT_TARGET", "vault").strip().lower()
IS_MOTO = TARGET == "moto"
RUN_ID = os.environ.get("COMPAT_RUN_ID") or uuid.uuid4().hex[:10]
NAME_PREFIX = f"compat-{RUN_ID}"

#: The message AWS sends with every ResourceNotFoundException for an unknown secret.
NOT_FOUND_MSG = "Secrets Manager can't find the specified secret."
#: What AWS answers when an operation touches a secret scheduled for deletion.
MARKED_FOR_DELETION_MSG = (
    "You can't perform this operation on the secret because it was marked for deletion."
)


def arn_pattern(name: str, region: str = REGION, account: str | None = ACCOUNT_ID) -> re.Pattern:
    """The ARN AWS gives a secret: name + '-' + six random characters."""
    acct = re.escape(account) if account else r"\d{12}"
    return re.compile(
        rf"^arn:aws:secretsmanager:{re.escape(region)}:{acct}:secret:{re.escape(name)}-[A-Za-z0-9]{{6}}$"
    )


def error_code(exc: ClientError) -> str:
    return exc.response["Error"]["Code"]


def error_message(exc: ClientError) -> str:
    return exc.response["Error"].get("Message", "")


def require_env() -> None:
    """Stop the whole run early, with a clear message, when no credentials are given."""
    if not ACCESS_KEY_ID or not SECRET_ACCESS_KEY:
        pytest.exit(
            "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY must be set (see compat-tests/README.md)",
            returncode=2,
        )


def make_client(
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    session_token: str | None = SESSION_TOKEN,
    parameter_validation: bool = True,
    region: str = REGION,
):
    """A plain boto3 Secrets Manager client pointed at the server (no retries)."""
    session = boto3.session.Session(
        aws_access_key_id=access_key_id if access_key_id is not None else ACCESS_KEY_ID,
        aws_secret_access_key=secret_access_key if secret_access_key is not None else SECRET_ACCESS_KEY,
        aws_session_token=session_token,
        region_name=region,
    )
    config = Config(
        retries={"max_attempts": 1, "mode": "standard"},
        connect_timeout=5,
        read_timeout=60,
        parameter_validation=parameter_validation,
    )
    return session.client("secretsmanager", endpoint_url=ENDPOINT, config=config)


# --------------------------------------------------------------------------------------------
# Unique names and cleanup
# --------------------------------------------------------------------------------------------


_counter = 0


def unique_name(label: str = "s") -> str:
    """compat-<run>/<label>/<n>: unique per run, never ends in '-XXXXXX' (partial-ARN trap)."""
    global _counter
    _counter += 1
    label = re.sub(r"[^A-Za-z0-9/_+=.@-]", "_", label)[:60].strip("/") or "s"
    return f"{NAME_PREFIX}/{label}/{_counter}"


def force_delete_quietly(client, secret_id: str) -> None:
    try:
        client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    except Exception:  # noqa: BLE001 - cleanup must never fail a test
        pass


@dataclass
class SecretFactory:
    """Creates secrets with unique names and force-deletes them at teardown."""

    client: Any
    label: str
    created: list = field(default_factory=list)

    def name(self, suffix: str = "") -> str:
        n = unique_name(self.label + (f"/{suffix}" if suffix else ""))
        self.created.append(n)
        return n

    def track(self, name: str) -> str:
        self.created.append(name)
        return name

    def create(self, name: str | None = None, client=None, **kwargs) -> dict:
        name = name or self.name()
        if name not in self.created:
            self.created.append(name)
        return (client or self.client).create_secret(Name=name, **kwargs)

    def cleanup(self) -> None:
        for n in self.created:
            force_delete_quietly(self.client, n)


# --------------------------------------------------------------------------------------------
# Raw, SigV4-signed HTTP: for what the SDK cannot (or will not) send
# --------------------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict
    text: str

    @property
    def json(self) -> dict:
        try:
            return json.loads(self.text) if self.text else {}
        except ValueError:
            return {}

    @property
    def error_code(self) -> str:
        """The error code as botocore derives it: __type/code, minus namespace and ':' tail."""
        body = self.json
        code = body.get("__type") or body.get("code") or self.headers.get("x-amzn-errortype") or ""
        code = code.split(":")[0]
        return code.split("#")[-1]

    @property
    def message(self) -> str:
        body = self.json
        return body.get("message") or body.get("Message") or ""


_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))


def raw_call(
    operation: str,
    payload: Any = None,
    *,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    sign: bool = True,
    signing_service: str = "secretsmanager",
    signing_region: str = REGION,
    signed_at: _dt.datetime | None = None,
    body_override: bytes | None = None,
    extra_headers: dict | None = None,
    authorization: str | None = None,
) -> RawResponse:
    """POST / with X-Amz-Target, signed by botocore's own SigV4 signer (unless sign=False)."""
    body = payload if isinstance(payload, (bytes, str)) else json.dumps(payload if payload is not None else {})
    if isinstance(body, str):
        body = body.encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"secretsmanager.{operation}",
    }
    headers.update(extra_headers or {})
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=body, headers=headers)
    if sign:
        creds = Credentials(
            access_key_id if access_key_id is not None else ACCESS_KEY_ID,
            secret_access_key if secret_access_key is not None else SECRET_ACCESS_KEY,
            SESSION_TOKEN if access_key_id is None else None,
        )
        signer = botocore.auth.SigV4Auth(creds, signing_service, signing_region)
        if signed_at is not None:
            original = botocore.auth.get_current_datetime
            botocore.auth.get_current_datetime = lambda *a, **k: signed_at
            try:
                signer.add_auth(req)
            finally:
                botocore.auth.get_current_datetime = original
        else:
            signer.add_auth(req)
    if authorization is not None:
        req.headers["Authorization"] = authorization
    prepared = req.prepare()
    send_body = body_override if body_override is not None else prepared.body
    resp = _http.request(
        "POST", prepared.url, body=send_body, headers=dict(prepared.headers.items()), redirect=False
    )
    return RawResponse(
        status=resp.status,
        headers={k.lower(): v for k, v in resp.headers.items()},
        text=resp.data.decode("utf-8", "replace"),
    )


def call_op(client, operation: str, raw_fallback_payload: dict) -> dict:
    """Use the SDK method if this botocore knows the operation, else a raw signed call.

    ListResourcePolicies is in the 2017-10-17 model since botocore 1.44; older botocore
    (and today's JS SDK) lacks it, so a signed raw request stands in.
    """
    method = re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower()
    if hasattr(client, method):
        return getattr(client, method)(**raw_fallback_payload)
    resp = raw_call(operation, raw_fallback_payload)
    if resp.status >= 300:
        raise ClientError(
            {
                "Error": {"Code": resp.error_code, "Message": resp.message},
                "ResponseMetadata": {"HTTPStatusCode": resp.status, "RequestId": resp.headers.get("x-amzn-requestid", "")},
            },
            operation,
        )
    out = resp.json
    out["ResponseMetadata"] = {"HTTPStatusCode": resp.status, "RequestId": resp.headers.get("x-amzn-requestid", "")}
    return out
