#!/usr/bin/env bash
# Property-based fuzzing of the sync server's HTTP API with schemathesis, against Schemas/openapi.yaml: every
# operation gets schema-valid and schema-invalid requests, and every answer must be documented (status, headers,
# problem body) and never a 500. A live `readersync-server serve` runs on 127.0.0.1 (a free port), over a store in
# a temporary directory holding one account and the fixture's articles; both are removed afterwards.
#
#   Tools/scripts/fuzz-api.sh              # 100 examples per operation and phase
#   Tools/scripts/fuzz-api.sh -n 500       # more
#   READERSYNC_SERVER=/path/to/readersync-server Tools/scripts/fuzz-api.sh   # skip the build
#
# Installs schemathesis from PyPI when it is missing. Exits non-zero when schemathesis finds a failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXAMPLES=100
die() { printf 'fuzz-api: %s\n' "$*" >&2; exit 2; }
while getopts "n:h" opt; do
    case "$opt" in
        n) EXAMPLES="$OPTARG" ;;
        h) sed -n '2,11p' "$0"; exit 0 ;;
        *) die "usage: $0 [-n examples]" ;;
    esac
done

python="${PYTHON:-python3}"
if ! command -v schemathesis >/dev/null 2>&1; then
    echo "installing schemathesis" >&2
    "$python" -m pip install --quiet --disable-pip-version-check schemathesis >&2 \
        || "$python" -m pip install --quiet --disable-pip-version-check --break-system-packages schemathesis >&2
fi
if [[ -z "${READERSYNC_SERVER:-}" ]]; then
    (cd "$ROOT" && swift build --product readersync-server >/dev/null) || die "the build failed"
    READERSYNC_SERVER="$ROOT/.build/debug/readersync-server"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

db="$work/server.db"
token="$("$READERSYNC_SERVER" account add fuzzer --role editor --db "$db" | tail -n 1)"
"$READERSYNC_SERVER" import "$ROOT/Tests/ReaderSyncTests/Fixtures/news-page.json" --db "$db" >/dev/null
# Generous push limits: the fuzzer pushes many bundles, and a 429 would hide what it looks for.
"$READERSYNC_SERVER" serve --db "$db" --port 0 --log-level error --max-changes-per-minute 0 >"$work/serve.out" 2>"$work/serve.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q "listening on" "$work/serve.out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || die "the server did not start: $(cat "$work/serve.err")"
    sleep 0.1
done
url="$(sed -n 's/^listening on //p' "$work/serve.out")"
[[ -n "$url" ]] || die "the server did not print its address"

echo "fuzzing $url with $EXAMPLES examples per operation"
# From the temporary directory, so that schemathesis's cache (.schemathesis/) goes away with it.
cd "$work"
SCHEMATHESIS_HOOKS="$ROOT/Tools/scripts/schemathesis-hooks.py" schemathesis --config-file "$ROOT/Tools/scripts/schemathesis.toml" run "$ROOT/Schemas/openapi.yaml" \
    --url "$url" --header "Authorization: Bearer $token" --checks all --max-examples "$EXAMPLES" \
    --seed 1 --request-timeout 30
