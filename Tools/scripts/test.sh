#!/usr/bin/env bash
# ReaderSync's test command (what CI runs, through .ci/run): installs the C libraries the build needs if
# any is missing, validates the OpenAPI description, builds everything with its tests, and runs every test
# suite. The exit code is swift test's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

source "$ROOT/Tools/scripts/lib.sh"

ensure_packages
# The HTTP API description must be a valid OpenAPI 3.1 document (a test also checks every route in it exists).
bash Tools/scripts/validate-openapi.sh
swift build --build-tests
swift test
