#!/usr/bin/env bash
# Fetches AWS's SigV4 test suite (Apache-2.0), which ships inside botocore's source distribution
# on PyPI, into DIR and prints the path of its aws4_testsuite directory on stdout.
#
#   export SIGV4_TESTSUITE_DIR="$(scripts/fetch-sigv4-testsuite.sh target/sigv4-testsuite)"
#   cargo test sigv4
#
# BOTOCORE_VERSION picks the sdist (default: the version the verifier was checked against).
# Re-running with the same DIR reuses what is already there.
set -euo pipefail

dest="${1:?usage: $0 DIR}"
version="${BOTOCORE_VERSION:-1.44.8}"
suite_rel="botocore-${version}/tests/unit/auth/aws4_testsuite"
sdist="$dest/botocore-${version}.tar.gz"
mkdir -p "$dest"

if [ ! -d "$dest/$suite_rel" ]; then
    if [ ! -f "$sdist" ]; then
        # pip's own progress goes to stderr so that stdout carries only the path.
        python3 -m pip download --quiet --disable-pip-version-check --no-deps \
            --no-binary :all: "botocore==${version}" -d "$dest" >&2
    fi
    tar -xzf "$sdist" -C "$dest" "$suite_rel"
fi

[ -f "$dest/$suite_rel/get-vanilla/get-vanilla.req" ] || {
    echo "aws4_testsuite not found in $sdist" >&2
    exit 1
}
cd "$dest/$suite_rel" && pwd
