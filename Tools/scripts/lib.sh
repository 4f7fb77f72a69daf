# Shared by demo.sh and test.sh: sourced, not run.

# Installs the Debian packages the build and the tests need (libsqlite3-dev, zlib1g-dev, sqlite3) when any is
# missing: `apt-get update` only then, and through sudo only when not root.
ensure_packages() {
    local missing=() pkg
    command -v dpkg-query >/dev/null 2>&1 || { echo "(not a Debian-based system: make sure SQLite and zlib development files are installed)"; return 0; }
    for pkg in libsqlite3-dev zlib1g-dev sqlite3; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    local sudo=""
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || { echo "missing packages ${missing[*]}, and no sudo to install them" >&2; exit 1; }
        sudo="sudo"
    fi
    echo "installing ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}
