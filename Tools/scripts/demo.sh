#!/usr/bin/env bash
# ReaderSync demo: two devices of one account change offline and converge; a bundle is carried by hand to
# another account's replica. Works on a fresh Debian/Ubuntu machine with Swift installed: it installs the
# C libraries it needs, builds `readersync`, and runs everything in a temporary directory it removes at the end.
#
#   Tools/scripts/demo.sh            # run the demo
#   KEEP_DEMO_DIR=1 Tools/scripts/demo.sh   # keep the temporary directory to look around afterwards
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

# MARK: - Output helpers

BOLD=""; DIM=""; RESET=""
if [[ -t 1 ]]; then BOLD=$'\e[1m'; DIM=$'\e[2m'; RESET=$'\e[0m'; fi

step() { printf '\n%s== %s ==%s\n' "$BOLD" "$*" "$RESET"; }
note() { printf '%s%s%s\n' "$DIM" "$*" "$RESET"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# Prints `$ readersync ARGS` as a person would type it (arguments with spaces in quotes).
show_command() {
    local line="readersync" arg
    for arg in "$@"; do
        if [[ "$arg" == *\"* ]]; then line+=" '$arg'"
        elif [[ "$arg" == *[[:space:]]* ]]; then line+=" \"$arg\""; else line+=" $arg"; fi
    done
    printf '%s$ %s%s\n' "$DIM" "$line" "$RESET"
}

# Runs `readersync ARGS`, showing the command first and indenting its output.
rs() {
    show_command "$@"
    "$READERSYNC" "$@" | sed 's/^/  /'
}

# MARK: - Setup: packages and build

source "$ROOT/Tools/scripts/lib.sh"

build() {
    command -v swift >/dev/null 2>&1 || die "swift is not on PATH; install Swift 6.1 or newer from https://swift.org/install"
    local log
    log="$(mktemp)"
    if ! { swift build -c debug --product readersync && swift build -c debug --product readersync-server; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        die "build failed"
    fi
    tail -n 1 "$log"
    rm -f "$log"
    READERSYNC="$(swift build -c debug --show-bin-path)/readersync"
    READERSYNC_SERVER="$(swift build -c debug --show-bin-path)/readersync-server"
    [[ -x "$READERSYNC" ]] || die "the build did not produce $READERSYNC"
    [[ -x "$READERSYNC_SERVER" ]] || die "the build did not produce $READERSYNC_SERVER"
}

# MARK: - The sync server

SERVER_PID=""
stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

# Runs `readersync-server ARGS`, showing the command first and indenting its output.
rss() {
    local line="readersync-server" arg
    for arg in "$@"; do line+=" $arg"; done
    printf '%s$ %s%s\n' "$DIM" "$line" "$RESET"
    "$READERSYNC_SERVER" "$@" | sed 's/^/  /'
}

# The same devices, and bob, sync through the reference server on 127.0.0.1.
server_demo() {
    step "12. The sync server: accounts, articles, serve on 127.0.0.1"
    local alice_token bob_token url
    rss account add alice --db server.db >account-alice.txt
    alice_token="$(awk 'END { print $NF }' account-alice.txt)"
    sed 's/rst_[A-Za-z0-9_-]*/rst_…(token)/' account-alice.txt
    rss account add bob --db server.db >account-bob.txt
    bob_token="$(awk 'END { print $NF }' account-bob.txt)"
    sed 's/rst_[A-Za-z0-9_-]*/rst_…(token)/' account-bob.txt
    rss account list --db server.db
    note "articles come from the operator (and editor accounts); the server publishes the captured page itself:"
    rss import "$FIXTURE" --db server.db
    printf '%s$ readersync-server serve --db server.db --host 127.0.0.1 --port 0 &%s\n' "$DIM" "$RESET"
    "$READERSYNC_SERVER" serve --db server.db --host 127.0.0.1 --port 0 >server.out 2>server.log &
    SERVER_PID=$!
    # The server prints its address once it is bound; wait for that line (bounded).
    for _ in $(seq 1 300); do
        url="$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' server.out | head -n 1)"
        [[ -n "$url" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat server.log >&2; die "the server exited"; }
        sleep 0.1
    done
    [[ -n "$url" ]] || die "the server did not start"
    echo "  listening on $url"

    step "13. Both of alice's devices and bob's tablet sync through the server"
    note "the laptop pushes what the server lacks (token in \$READERSYNC_TOKEN). alice is a reader account, so the"
    note "server refuses the copies of the articles she imported herself; they stay on her devices:"
    export READERSYNC_TOKEN="$alice_token"
    rs sync "$url" --db alice-laptop.db --quiet
    note "the phone, offline meanwhile, saved an article and commented:"
    rs save --db alice-phone.db "$STOCKS"
    rs comment add --db alice-phone.db "$STOCKS" "Sent from the phone, via the server."
    rs sync "$url" --db alice-phone.db --quiet
    rs sync "$url" --db alice-laptop.db --quiet
    note "bob's tablet syncs with bob's token: comments are shared, alice's read state is not:"
    export READERSYNC_TOKEN="$bob_token"
    rs sync "$url" --db bob-tablet.db --quiet
    unset READERSYNC_TOKEN
    rs list --db bob-tablet.db

    "$READERSYNC" dump --db alice-phone.db >phone2.json
    "$READERSYNC" dump --db alice-laptop.db >laptop2.json
    cmp phone2.json laptop2.json || die "alice's devices differ after syncing through the server"
    "$READERSYNC" dump --db bob-tablet.db >bob2.json
    cmp <(sed '/"readStates" :/,$d' phone2.json) <(sed '/"readStates" :/,$d' bob2.json) \
        || die "bob's articles and comments differ from alice's after syncing through the server"
    [[ "$(grep -c '"account" : "alice"' bob2.json || true)" -eq 0 ]] || die "alice's read state reached bob"
    echo "  alice's phone and laptop: identical dumps; bob: the same articles and comments, no read state of alice's"

    step "14. Bob's tablet evicts a body and fetches it back from the server"
    rs evict --db bob-tablet.db "$MAIN"
    export READERSYNC_TOKEN="$bob_token"
    rs fetch-bodies --db bob-tablet.db "$url"
    unset READERSYNC_TOKEN
    "$READERSYNC" show --db bob-tablet.db "$MAIN" >shown.txt
    grep -q "MOSCOW" shown.txt || die "the body did not come back from the server"
    echo "  the body is back, checked against its SHA-256; fetching recorded no change"

    note "SIGTERM: the server finishes what it acknowledged and exits"
    stop_server
}

# MARK: - The demo

step "Setup: packages and build"
ensure_packages
build

if [[ -f "$ROOT/../shared/fixtures/news-page.json" ]]; then
    FIXTURE="$(cd "$ROOT/../shared/fixtures" && pwd)/news-page.json"
else
    FIXTURE="$ROOT/Tests/ReaderSyncTests/Fixtures/news-page.json"
fi
[[ -f "$FIXTURE" ]] || die "cannot find the captured page news-page.json"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/readersync-demo.XXXXXX")"
if [[ -n "${KEEP_DEMO_DIR:-}" ]]; then
    trap 'stop_server; echo; note "demo files kept in $WORK"' EXIT
else
    trap 'stop_server; rm -rf "$WORK"' EXIT
fi
cd "$WORK"
# Commands run in here with relative paths; nothing outside it is touched.
unset READERSYNC_DB READERSYNC_TOKEN
note "working in $WORK"

MAIN=ap-putin-trump-call-iran-ukraine
STOCKS=u-s-stocks-extend-gains-to-conclude-first-half-of-2025
GAZA=trump-netanyahu-to-hold-talks-on-ending-gaza-war

step "1. Two devices of one account: alice's phone and alice's laptop"
rs init --db alice-phone.db --account alice
rs init --db alice-laptop.db --account alice

step "2. The phone imports the captured news page (4 articles)"
rs import --db alice-phone.db "$FIXTURE"
rs list --db alice-phone.db

step "3. First sync: the laptop gets the articles"
rs sync --db alice-phone.db alice-laptop.db

step "4. Both devices change while offline"
note "phone: reads the main story, gets 40% into another one, comments"
rs read --db alice-phone.db "$MAIN"
rs progress --db alice-phone.db "$GAZA" 0.4
PHONE_COMMENT="$(rs comment add --db alice-phone.db "$MAIN" "Sixth call since January, and still no ceasefire.")"
echo "$PHONE_COMMENT"
PHONE_COMMENT="${PHONE_COMMENT##* }"  # "added comment ID": keep the id, for the laptop's reply later
note "laptop: saves the markets piece, reads further into the same story, comments"
rs save --db alice-laptop.db "$STOCKS"
rs progress --db alice-laptop.db "$GAZA" 0.75
rs comment add --db alice-laptop.db "$MAIN" "Worth reading together with the Pentagon weapons pause."

step "5. The feeds now differ"
note "phone:"
rs list --db alice-phone.db
note "laptop:"
rs list --db alice-laptop.db
note "the phone's change log (every mutation, with its hybrid timestamp and origin):"
rs log --db alice-phone.db

step "6. Sync: what moved each way"
rs sync --db alice-laptop.db alice-phone.db

step "7. A reply from the laptop, and one more (small) sync"
rs comment add --db alice-laptop.db "$MAIN" "Agreed, and Kyiv is not at the table." --reply-to "$PHONE_COMMENT"
rs sync --db alice-laptop.db alice-phone.db

step "8. Both devices hold the same state"
rs list --db alice-laptop.db
printf '%s$ readersync show --db alice-phone.db %s | sed -n '"'"'/^Comments/,$p'"'"'%s\n' "$DIM" "$MAIN" "$RESET"
"$READERSYNC" show --db alice-phone.db "$MAIN" | sed -n '/^Comments/,$p' | sed 's/^/  /'
"$READERSYNC" dump --db alice-phone.db >phone.json
"$READERSYNC" dump --db alice-laptop.db >laptop.json
printf '%s$ cmp <(readersync dump --db alice-phone.db) <(readersync dump --db alice-laptop.db)%s\n' "$DIM" "$RESET"
cmp phone.json laptop.json || die "the two devices' dumps differ"
echo "  identical: $(wc -c <phone.json | tr -d ' ') bytes of canonical JSON each"

step "9. Search the captured page, offline"
note "accents and case do not matter; title matches rank first; the snippet marks the match:"
rs search --db alice-laptop.db kremlin
rs search --db alice-laptop.db 'pentagon OR "phone call"' --limit 3
note "a malformed query is one readable line and a non-zero exit:"
printf '%s$ readersync search --db alice-laptop.db '"'"'"phone call'"'"'%s\n' "$DIM" "$RESET"
if "$READERSYNC" search --db alice-laptop.db '"phone call' 2>search-error.txt; then die "a malformed query was accepted"; fi
sed 's/^/  /' search-error.txt

step "10. A storage budget: the laptop evicts bodies, and gets them back from the phone"
note "a tiny budget (1 KB), unread articles protected for 0 days: every body that may go, goes (the saved one stays)"
rs budget set --db alice-laptop.db 1KB --keep-unread 0
rs evict --db alice-laptop.db
printf '%s$ readersync show --db alice-laptop.db %s | head -n 8%s\n' "$DIM" "$MAIN" "$RESET"
"$READERSYNC" show --db alice-laptop.db "$MAIN" | head -n 8 | sed 's/^/  /'
note "the feed and search still have it (found by title, the body is not held):"
rs search --db alice-laptop.db "kremlin official"
note "eviction is not a change: the dumps still agree on everything but which bodies are held."
note "with the budget cleared, a sync with the phone fills the bodies back:"
rs budget clear --db alice-laptop.db
rs sync --db alice-laptop.db alice-phone.db
"$READERSYNC" show --db alice-laptop.db "$MAIN" >shown.txt
grep -q "MOSCOW" shown.txt || die "the body did not come back"
"$READERSYNC" dump --db alice-laptop.db >laptop-back.json
cmp phone.json laptop-back.json || die "the laptop differs from the phone after the bodies came back"
echo "  the body is back: the laptop's dump is again identical to the phone's"

step "11. A bundle carried by hand to another account (bob), who has no network"
rs init --db bob-tablet.db --account bob
note "bob writes what he holds, and hands the file to alice:"
rs knowledge --db bob-tablet.db --out bob.knowledge
note "alice exports exactly what bob lacks; read state stays with alice's account:"
rs bundle export --db alice-laptop.db --for bob.knowledge --out for-bob.bundle
rs bundle inspect for-bob.bundle
note "bob imports it:"
rs bundle import --db bob-tablet.db for-bob.bundle
rs list --db bob-tablet.db
printf '%s$ readersync show --db bob-tablet.db %s | sed -n '"'"'/^Comments/,$p'"'"'%s\n' "$DIM" "$MAIN" "$RESET"
"$READERSYNC" show --db bob-tablet.db "$MAIN" | sed -n '/^Comments/,$p' | sed 's/^/  /'

"$READERSYNC" dump --db bob-tablet.db >bob.json
# The canonical dump's keys are sorted: articles, comments, format, then readStates.
cmp <(sed '/"readStates" :/,$d' phone.json) <(sed '/"readStates" :/,$d' bob.json) \
    || die "bob's articles and comments differ from alice's"
alice_states="$(grep -c '"account" : "alice"' phone.json || true)"
bob_has_alice="$(grep -c '"account" : "alice"' bob.json || true)"
[[ "$bob_has_alice" -eq 0 ]] || die "bob's replica holds alice's read state"
echo "  bob holds the same articles and comments as alice, and none of alice's $alice_states read states"

server_demo

step "Done"
echo "Two devices converged byte for byte; another account got the shared data and none of the private."
