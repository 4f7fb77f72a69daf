#!/usr/bin/env bash
# Mutation fuzzing of the bundle reader through the CLI: mutates seed bundles at random and feeds each
# mutant to `readersync bundle inspect`, which fully decodes it. A mutant must either be refused (exit code 1,
# one `readersync: error: ...` line) or be accepted; a crash (a signal, a Swift runtime trap, any other exit
# code) or a hang is a bug, and the mutant is kept in the crashes directory to reproduce it.
#
#   Tools/scripts/fuzz-bundles.sh                       # 500 mutants of a bundle made from the test fixture
#   Tools/scripts/fuzz-bundles.sh -n 5000 -s 7 a.bundle # 5000 mutants of your own bundles, RNG seed 7
#   READERSYNC=/path/to/readersync Tools/scripts/fuzz-bundles.sh   # skip the build
#
# Two kinds of mutants, alternating:
#   raw   bit flips, byte overwrites, truncations, insertions, duplicated ranges anywhere in the file. Nearly
#         all stop at the header or payload CRC-32; this exercises the framing and the checksums.
#   deep  the same mutations applied to the *inflated* payload, recompressed, with payloadLength,
#         uncompressedLength, both CRCs fixed up (python3's zlib), so that only the column decoder and the
#         change validation stand in the way. See Schemas/bundle-format.md.
# Needs python3 (for the mutator). Runs in a temporary directory it removes (crashes are copied out first).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ITERATIONS=500
SEED=1
CRASHES="$ROOT/.build/fuzz-crashes"

die() { printf 'fuzz-bundles: %s\n' "$*" >&2; exit 2; }

while getopts "n:s:o:h" opt; do
    case "$opt" in
        n) ITERATIONS="$OPTARG" ;;
        s) SEED="$OPTARG" ;;
        o) CRASHES="$OPTARG" ;;
        h) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "usage: $0 [-n iterations] [-s seed] [-o crash-dir] [seed.bundle ...]" ;;
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
    # A bundle with articles, comments and read state, made through the CLI.
    FIXTURE="$ROOT/Tests/ReaderSyncTests/Fixtures/news-page.json"
    db="$WORK/seed.db"
    "$READERSYNC" init --db "$db" --account alice >/dev/null
    "$READERSYNC" import --db "$db" "$FIXTURE" >/dev/null
    "$READERSYNC" read --db "$db" ap-putin-trump-call-iran-ukraine >/dev/null
    "$READERSYNC" progress --db "$db" trump-netanyahu-to-hold-talks-on-ending-gaza-war 0.4 >/dev/null
    "$READERSYNC" save --db "$db" u-s-stocks-extend-gains-to-conclude-first-half-of-2025 >/dev/null
    "$READERSYNC" comment add --db "$db" ap-putin-trump-call-iran-ukraine "A comment, with unicode: é 日本 🚀" >/dev/null
    "$READERSYNC" bundle export --db "$db" --all --out "$WORK/seed.bundle" >/dev/null
    SEEDS=("$WORK/seed.bundle")
fi
for seed in "${SEEDS[@]}"; do
    "$READERSYNC" bundle inspect "$seed" >/dev/null 2>&1 || die "seed $seed is not a valid bundle to start from"
done

cat >"$WORK/mutate.py" <<'PY'
import random, struct, sys, zlib

def mutate(data, rng):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.randrange(6)
        n = len(data)
        if kind == 0 and n:                      # flip one bit
            data[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1 and n:                    # overwrite a byte with an interesting value
            data[rng.randrange(n)] = rng.choice([0x00, 0x01, 0x7f, 0x80, 0xff, rng.randrange(256)])
        elif kind == 2:                          # truncate
            del data[rng.randrange(n + 1):]
        elif kind == 3:                          # insert random bytes
            at = rng.randrange(n + 1)
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 4 and n:                    # duplicate a range
            a = rng.randrange(n); b = min(n, a + rng.randint(1, 64))
            data[a:a] = data[a:b]
        elif kind == 5 and n:                    # delete a range
            a = rng.randrange(n); del data[a:a + rng.randint(1, 16)]
    return bytes(data)

def deep(bundle, rng):
    header_length = struct.unpack_from("<I", bundle, 10)[0]
    header = bytearray(bundle[:header_length])
    payload = zlib.decompress(bundle[header_length:])
    payload = mutate(payload, rng)
    compressed = zlib.compress(payload, 6)
    change_count = struct.unpack_from("<Q", header, 32)[0]
    # Keep the header plausible (at least 7 bytes per change) so the payload decoder gets its turn.
    uncompressed = max(len(payload), 7 * change_count + 1)
    struct.pack_into("<QQI", header, 40, len(compressed), uncompressed, zlib.crc32(compressed))
    struct.pack_into("<I", header, header_length - 4, zlib.crc32(bytes(header[:header_length - 4])))
    return bytes(header) + compressed

src, dst, seed, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(seed)
data = open(src, "rb").read()
open(dst, "wb").write(deep(data, rng) if mode == "deep" else mutate(data, rng))
PY

mkdir -p "$CRASHES"
refused=0; accepted=0; crashed=0
for ((i = 0; i < ITERATIONS; i++)); do
    seed_file="${SEEDS[$((i % ${#SEEDS[@]}))]}"
    mode=raw; ((i % 2)) && mode=deep
    mutant="$WORK/mutant.bundle"
    python3 "$WORK/mutate.py" "$seed_file" "$mutant" "$((SEED * 1000003 + i))" "$mode"
    set +e
    timeout 20 "$READERSYNC" bundle inspect "$mutant" >"$WORK/out" 2>"$WORK/err"
    code=$?
    set -e
    case "$code" in
        0) accepted=$((accepted + 1)) ;;
        126 | 127) die "cannot run $READERSYNC (exit $code): $(head -c 500 "$WORK/err")" ;;
        1) if grep -q "error:" "$WORK/err"; then refused=$((refused + 1)); else code=-1; fi ;;
    esac
    if [[ "$code" != 0 && "$code" != 1 ]]; then
        crashed=$((crashed + 1))
        keep="$CRASHES/crash-seed$SEED-$i-$mode.bundle"
        cp "$mutant" "$keep"
        printf 'CRASH (exit %s, %s mutant %d): kept %s\n' "$code" "$mode" "$i" "$keep" >&2
        head -c 2000 "$WORK/err" >&2
    fi
done

printf 'fuzz-bundles: %d mutants: %d refused, %d accepted, %d crashed or hung\n' \
    "$ITERATIONS" "$refused" "$accepted" "$crashed"
[[ "$crashed" -eq 0 ]]
