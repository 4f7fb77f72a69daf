#!/usr/bin/env bash
# Mutation fuzzing of the bundle reader through the CLI, with a second implementation as the oracle: mutates seed
# bundles at random and feeds each mutant to `readersync bundle inspect`, which fully decodes it, and to
# Tools/Fuzz/rsbundle.py, a reader written from Schemas/bundle-format.md alone. A mutant must either be refused
# (exit code 1, one `readersync: error: ...` line) or be accepted; a crash (a signal, a Swift runtime trap, any other
# exit code) or a hang is a bug. And both readers must agree: both accept, or both refuse with the same message —
# a disagreement is a bug in ReaderSync, in the spec, or in the reference, and the mutant is kept to find out which.
#
#   Tools/scripts/fuzz-bundles.sh                       # 600 mutants of a CLI-made format-2 bundle and the
#                                                       # committed format-1 bundle
#   Tools/scripts/fuzz-bundles.sh -n 5000 -s 7 a.bundle # 5000 mutants of your own bundles, RNG seed 7
#   READERSYNC=/path/to/readersync Tools/scripts/fuzz-bundles.sh   # skip the build
#   Tools/scripts/fuzz-bundles.sh -x                    # no oracle: crashes and hangs only
#
# Three kinds of mutants, in turn (Tools/Fuzz/rsbundle.py mutate):
#   raw     bit flips, byte overwrites, truncations, insertions, duplicated and deleted runs, 8-byte fields set to
#           all ones, 0, 2^63 or 2^32, anywhere in the file. Nearly all stop at the header or payload CRC-32.
#   repair  the same mutations inside the header's fields, then the payload length, the uncompressed length and
#           both CRCs recomputed: the header's own checks decide.
#   deep    the same mutations applied to the *inflated* payload, recompressed (zlib level 1, 6 or 9), lengths and
#           CRCs fixed up, so that only the column decoder and the change checks stand in the way.
# Needs python3. Runs in a temporary directory it removes (crashes and disagreements are copied out first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ITERATIONS=600
SEED=1
CRASHES="$ROOT/.build/fuzz-crashes"
ORACLE=1
REFERENCE="$ROOT/Tools/Fuzz/rsbundle.py"

die() { printf 'fuzz-bundles: %s\n' "$*" >&2; exit 2; }

while getopts "n:s:o:xh" opt; do
    case "$opt" in
        n) ITERATIONS="$OPTARG" ;;
        s) SEED="$OPTARG" ;;
        o) CRASHES="$OPTARG" ;;
        x) ORACLE=0 ;;
        h) sed -n '2,24p' "$0"; exit 0 ;;
        *) die "usage: $0 [-n iterations] [-s seed] [-o crash-dir] [-x] [seed.bundle ...]" ;;
    esac
done
shift $((OPTIND - 1))

command -v python3 >/dev/null 2>&1 || die "python3 is needed for the mutator"
if [[ -z "${READERSYNC:-}" ]]; then
    log="$(mktemp)"
    if ! (cd "$ROOT" && swift build -c debug --product readersync >"$log" 2>&1); then
        cat "$log" >&2
        rm -f "$log"
        die "build failed"
    fi
    rm -f "$log"
    READERSYNC="$(cd "$ROOT" && swift build -c debug --show-bin-path)/readersync"
fi
[[ -x "$READERSYNC" ]] || die "no readersync binary at $READERSYNC"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# A private copy, so a rebuild of the shared binary during the run cannot interfere ("text file busy").
cp "$READERSYNC" "$WORK/readersync"
READERSYNC="$WORK/readersync"

SEEDS=("$@")
if [[ ${#SEEDS[@]} -eq 0 ]]; then
    # A format-2 bundle with articles, comments and read state, made through the CLI; and the format-1 fixture.
    FIXTURE="$ROOT/Tests/ReaderSyncTests/Fixtures/news-page.json"
    db="$WORK/seed.db"
    "$READERSYNC" init --db "$db" --account alice >/dev/null
    "$READERSYNC" import --db "$db" "$FIXTURE" >/dev/null
    "$READERSYNC" read --db "$db" ap-putin-trump-call-iran-ukraine >/dev/null
    "$READERSYNC" progress --db "$db" trump-netanyahu-to-hold-talks-on-ending-gaza-war 0.4 >/dev/null
    "$READERSYNC" save --db "$db" u-s-stocks-extend-gains-to-conclude-first-half-of-2025 >/dev/null
    "$READERSYNC" comment add --db "$db" ap-putin-trump-call-iran-ukraine "A comment, with unicode: é 日本 🚀" >/dev/null
    "$READERSYNC" progress --db "$db" ap-putin-trump-call-iran-ukraine 0.75 >/dev/null
    "$READERSYNC" bundle export --db "$db" --all --out "$WORK/seed.bundle" >/dev/null
    SEEDS=("$WORK/seed.bundle" "$ROOT/Tests/ReaderSyncTests/Fixtures/v1/tobob-v1.bundle")
fi
for seed in "${SEEDS[@]}"; do
    "$READERSYNC" bundle inspect "$seed" >/dev/null 2>&1 || die "seed $seed is not a valid bundle to start from"
    if [[ "$ORACLE" -eq 1 ]] && ! python3 "$REFERENCE" inspect "$seed" >/dev/null; then
        die "the reference refuses seed $seed: $(python3 "$REFERENCE" inspect "$seed" | head -1)"
    fi
done

mkdir -p "$CRASHES"
refused=0; accepted=0; crashed=0; agreed=0; disagreed=0
declare -A by_mode
for ((i = 0; i < ITERATIONS; i++)); do
    seed_file="${SEEDS[$((i % ${#SEEDS[@]}))]}"
    modes=(raw repair deep)
    mode="${modes[$(((i / ${#SEEDS[@]}) % 3))]}"
    mutant="$WORK/mutant.bundle"
    python3 "$REFERENCE" mutate "$seed_file" "$mutant" "$((SEED * 1000003 + i))" "$mode"
    set +e
    timeout 20 "$READERSYNC" bundle inspect "$mutant" >"$WORK/out" 2>"$WORK/err"
    code=$?
    set -e
    case "$code" in
        0) accepted=$((accepted + 1)); by_mode[$mode-accepted]=$((${by_mode[$mode-accepted]:-0} + 1)) ;;
        126 | 127) die "cannot run $READERSYNC (exit $code): $(head -c 500 "$WORK/err")" ;;
        1) if grep -q "^readersync: error: " "$WORK/err"; then
               refused=$((refused + 1)); by_mode[$mode-refused]=$((${by_mode[$mode-refused]:-0} + 1))
           else
               code=-1
           fi ;;
    esac
    if [[ "$code" != 0 && "$code" != 1 ]]; then
        crashed=$((crashed + 1))
        keep="$CRASHES/crash-seed$SEED-$i-$mode.bundle"
        cp "$mutant" "$keep"
        printf 'CRASH (exit %s, %s mutant %d): kept %s\n' "$code" "$mode" "$i" "$keep" >&2
        head -c 2000 "$WORK/err" >&2
        continue
    fi
    if [[ "$ORACLE" -eq 1 ]]; then
        if [[ "$code" == 0 ]]; then mine="accepted"; else mine="$(sed -n 's/^readersync: error: //p' "$WORK/err" | head -1)"; fi
        set +e
        theirs="$(python3 "$REFERENCE" inspect "$mutant" 2>&1)"
        reference_code=$?
        set -e
        if [[ "$reference_code" == 0 ]]; then theirs="accepted"; else theirs="${theirs#error: }"; fi
        if [[ "$mine" == "$theirs" ]]; then
            agreed=$((agreed + 1))
        else
            disagreed=$((disagreed + 1))
            keep="$CRASHES/disagreement-seed$SEED-$i-$mode.bundle"
            cp "$mutant" "$keep"
            printf 'DISAGREEMENT (%s mutant %d, kept %s)\n  readersync: %s\n  reference:  %s\n' \
                "$mode" "$i" "$keep" "$mine" "$(head -c 400 <<<"$theirs")" >&2
        fi
    fi
done

printf 'fuzz-bundles: %d mutants: %d refused, %d accepted, %d crashed or hung\n' \
    "$ITERATIONS" "$refused" "$accepted" "$crashed"
for mode in raw repair deep; do
    printf '  %-6s %d refused, %d accepted\n' "$mode" "${by_mode[$mode-refused]:-0}" "${by_mode[$mode-accepted]:-0}"
done
if [[ "$ORACLE" -eq 1 ]]; then
    printf '  oracle (Tools/Fuzz/rsbundle.py): %d agreed, %d disagreed\n' "$agreed" "$disagreed"
fi
[[ "$crashed" -eq 0 && "$disagreed" -eq 0 ]]
