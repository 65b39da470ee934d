"""Hooks shared by the boto3 (python/) and aws CLI (cli/) suites.

VAULT_TARGET=moto turns tests marked ``moto_differs`` into non-strict xfails (moto is known
to be wrong there; the assertion itself stays exactly as AWS behaves) and skips ``sigv4``
tests (moto checks no signatures). Against the real server (the default) neither applies.
"""

import os

import pytest

TARGET = os.environ.get("VAULT_TARGET", "vault").strip().lower()
IS_MOTO = TARGET == "moto"


def pytest_collection_modifyitems(config, items):
    if not IS_MOTO:
        return
    for item in items:
        marker = item.get_closest_marker("moto_differs")
        if marker is not None:
            reason = marker.args[0] if marker.args else "moto differs from AWS"
            item.add_marker(pytest.mark.xfail(reason=f"moto differs: {reason}", strict=False))
        if item.get_closest_marker("sigv4") is not None:
            item.add_marker(pytest.mark.skip(reason="moto does not verify SigV4 (VAULT_TARGET=moto)"))


def pytest_report_header(config):
    return [
        "vault compat: endpoint={} region={} target={} account={} other_workspace={}".format(
            os.environ.get("VAULT_ENDPOINT", "http://127.0.0.1:4000"),
            os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            TARGET,
            os.environ.get("VAULT_ACCOUNT_ID") or "(any 12 digits)",
            "yes" if os.environ.get("VAULT_OTHER_ACCESS_KEY_ID") else "no",
        )
    ]
