#!/usr/bin/env bash
# Mutation-fuzzes the bundle decoder and apply path on a release build: every mutant must be applied or refused
# with a ReaderSyncError, never crash, and a refused one must leave the replica unchanged.
# Usage: Tools/scripts/fuzz.sh [iterations] [seed]
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product readersync-fuzz --scratch-path .build-release
.build-release/release/readersync-fuzz "${1:-20000}" "${2:-$RANDOM}"
