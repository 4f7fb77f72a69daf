#!/usr/bin/env bash
# Mutation-fuzzes the bundle decoder and apply path on a release build: format-2 bundles made by random replicas
# and the committed format-1 bundle, mutated raw, inside the header (header CRC repaired) and inside the compressed
# payload (payload and header CRCs repaired). Every mutant must be applied or refused with a ReaderSyncError, never
# crash, and a refused one must leave the replica unchanged. See Tools/Fuzz/Sources/readersync-fuzz/main.swift.
# Usage: Tools/scripts/fuzz.sh [iterations] [seed]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product readersync-fuzz --scratch-path .build-release
.build-release/release/readersync-fuzz "${1:-20000}" "${2:-$RANDOM}" Tests/ReaderSyncTests/Fixtures/v1/tobob-v1.bundle
