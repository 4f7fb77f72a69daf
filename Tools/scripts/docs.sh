#!/usr/bin/env bash
# Builds the DocC documentation of the ReaderSync library (warnings are errors: every link must resolve), and
# checks the public API listing in Schemas/public-api.txt against the library's symbol graph.
#   Tools/scripts/docs.sh            build the docs into .build/docs, fail if the listing differs
#   Tools/scripts/docs.sh --update   rewrite Schemas/public-api.txt after a reviewed change of the public API
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
update=false
[[ "${1:-}" == "--update" ]] && update=true

# The public API listing, from the symbol graph of public symbols.
graphs="$(mktemp -d)"
trap 'rm -rf "$graphs"' EXIT
swift package dump-symbol-graph --minimum-access-level public >/dev/null
bin="$(swift build --show-bin-path)"
source_dir="$(dirname "$bin")/symbolgraph"
[[ -d "$source_dir" ]] || source_dir="$bin/../symbolgraph"
cp "$source_dir"/ReaderSync*.symbols.json "$graphs"/
python3 Tools/scripts/public-api.py "$graphs" ReaderSync > "$graphs/public-api.txt"
if $update; then
    cp "$graphs/public-api.txt" Schemas/public-api.txt
    echo "Schemas/public-api.txt: $(grep -vc '^#' Schemas/public-api.txt) declarations"
elif ! diff -u Schemas/public-api.txt "$graphs/public-api.txt"; then
    echo "the public API differs from Schemas/public-api.txt (above): review the change, then run Tools/scripts/docs.sh --update" >&2
    exit 1
else
    echo "public API: $(grep -vc '^#' Schemas/public-api.txt) declarations, as listed in Schemas/public-api.txt"
fi

# The documentation: DocC catalog Sources/ReaderSync/ReaderSync.docc plus every /// comment.
swift package --allow-writing-to-directory .build/docs generate-documentation --target ReaderSync \
    --warnings-as-errors --output-path .build/docs --disable-indexing --transform-for-static-hosting
echo "documentation: .build/docs (open index.html through a web server, e.g. python3 -m http.server)"
