#!/usr/bin/env bash
# Runs the benchmarks on a release build. Figures are ratios against baselines measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product readersync-bench --scratch-path .build-release
.build-release/release/readersync-bench "$@"
