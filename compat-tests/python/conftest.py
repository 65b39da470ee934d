"""Fixtures for the boto3 compatibility suite (helpers live in compat_helpers.py)."""

from __future__ import annotations

from typing import Callable

import pytest

from compat_helpers import (
    IS_MOTO,
    OTHER_ACCESS_KEY_ID,
    OTHER_SECRET_ACCESS_KEY,
    RawResponse,
    SecretFactory,
    make_client,
    raw_call,
    require_env,
)


@pytest.fixture(scope="session")
def sm():
    """The main client (botocore validates parameters client-side, as users have it)."""
    require_env()
    return make_client()


@pytest.fixture(scope="session")
def sm_novalidate():
    """Same credentials, but botocore's client-side validation off: for server-side limit checks."""
    require_env()
    return make_client(parameter_validation=False)


@pytest.fixture(scope="session")
def other_sm():
    """A client for a second workspace, when the runner provides one."""
    if IS_MOTO:
        pytest.skip("isolation tests need a real multi-workspace server (VAULT_TARGET=moto)")
    if not OTHER_ACCESS_KEY_ID or not OTHER_SECRET_ACCESS_KEY:
        pytest.skip("VAULT_OTHER_ACCESS_KEY_ID / VAULT_OTHER_SECRET_ACCESS_KEY not set")
    return make_client(OTHER_ACCESS_KEY_ID, OTHER_SECRET_ACCESS_KEY, session_token=None)


@pytest.fixture
def secrets(sm, request):
    """Creates uniquely named secrets for one test and force-deletes them afterwards."""
    factory = SecretFactory(sm, request.node.originalname or request.node.name)
    yield factory
    factory.cleanup()


@pytest.fixture
def new_name(secrets):
    """A fresh unique name (registered for cleanup)."""
    return secrets.name


@pytest.fixture(scope="session")
def raw() -> Callable[..., RawResponse]:
    """raw(operation, payload, **opts): a SigV4-signed POST / the SDK would not send."""
    require_env()
    return raw_call
