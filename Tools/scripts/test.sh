#!/usr/bin/env bash
# ReaderSync's test command (what CI runs, through .ci/run): installs the C libraries the build needs if
# any is missing, validates the OpenAPI description, builds everything with its tests, and runs every test
# suite, builds the DocC documentation and checks the public API listing, then the benchmark's --quick mode.
# The exit code is the first failure's.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

source "$ROOT/Tools/scripts/lib.sh"

ensure_packages
# The HTTP API description must be a valid OpenAPI 3.1 document (a test also checks every route in it exists).
bash Tools/scripts/validate-openapi.sh
swift build --build-tests
# The connection load tests (thousands of sockets against a server process, with timeout bounds) run on their own
# after the rest: run beside 260 other tests on two cores, their servers starve and the bounds measure the load.
swift test --skip ConnectionTests
swift test --skip-build --filter ConnectionTests
# The library's DocC documentation must build without a warning, and its public API must match
# Schemas/public-api.txt (a change to what apps compile against is a reviewed diff).
bash Tools/scripts/docs.sh
# The benchmark's quick mode, on the debug build just made: it must run end to end; its figures are printed, never
# asserted (the reported figures come from `Tools/scripts/bench.sh` on a release build).
"$(swift build --show-bin-path)/readersync-bench" --quick
