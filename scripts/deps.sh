#!/usr/bin/env bash
# Installs the Debian 12 packages kagami needs to build, test and benchmark.
# Idempotent: packages already present are not fetched again, so make targets
# can call it every time. Needs root (or sudo) only when something is missing.
set -euo pipefail

build_pkgs="build-essential pkg-config libuv1-dev libhttp-parser-dev liblua5.4-dev
  libsqlite3-dev libjansson-dev zlib1g-dev libpcre2-dev libxml2-dev uthash-dev libssl-dev"
test_pkgs="clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest curl nginx wrk openssl"

# The dashboard's browser test: Debian's Chromium driven by npm
# playwright-core, with fonts for legible screenshots. node and npm may
# come from elsewhere (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package), so they are installed only when absent.
browser_pkgs="chromium fonts-liberation fonts-dejavu-core"

want="$build_pkgs"
case "${1:-build}" in
  build) ;;
  test|all) want="$want $test_pkgs" ;;
  browser)
    want="$want $test_pkgs $browser_pkgs"
    command -v node >/dev/null 2>&1 || want="$want nodejs"
    command -v npm >/dev/null 2>&1 || want="$want npm" ;;
  *) echo "usage: $0 [build|test|all|browser]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
