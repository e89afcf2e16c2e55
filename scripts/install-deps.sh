#!/usr/bin/env bash
# install-deps.sh - installs the Debian packages seek needs, only those missing.
#
#   scripts/install-deps.sh build   compiler and libraries to build seek
#   scripts/install-deps.sh test    plus what the tests use (numpy and jinja2 for /usr/bin/python3)
#
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
set -euo pipefail

build_pkgs=(gcc make libc6-dev)
test_pkgs=(python3 python3-numpy python3-jinja2)

case "${1:-build}" in
    build) want=("${build_pkgs[@]}") ;;
    test) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
    *) echo "usage: $0 build|test" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    echo "installing: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
    echo "seek needs these Debian packages: ${missing[*]}" >&2
    echo "run: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
