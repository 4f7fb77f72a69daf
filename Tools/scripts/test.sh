#!/usr/bin/env bash
# ReaderSync's test command (what CI runs, through .ci/run): installs the C libraries the build needs if
# any is missing, validates the OpenAPI description, builds everything with its tests, and runs every test
# suite. The exit code is swift test's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# Installs the Debian packages the build and the tests need, if any is missing.
ensure_packages() {
    local missing=() pkg
    command -v dpkg-query >/dev/null 2>&1 || return 0
    for pkg in libsqlite3-dev zlib1g-dev sqlite3; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "test.sh: missing packages ${missing[*]}, and no sudo to install them" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_packages
# The HTTP API description must be a valid OpenAPI 3.1 document (a test also checks every route in it exists).
bash Tools/scripts/validate-openapi.sh
swift build --build-tests
swift test
