#!/usr/bin/env bash
# Installs the Debian 12 packages kagami needs to build, test and benchmark.
# Idempotent: packages already present are not fetched again, so make targets
# can call it every time. Needs root (or sudo) only when something is missing.
set -euo pipefail

build_pkgs="build-essential pkg-config libuv1-dev libhttp-parser-dev liblua5.4-dev
  libsqlite3-dev libjansson-dev zlib1g-dev libpcre2-dev libxml2-dev uthash-dev libssl-dev
  libpq-dev"
test_pkgs="clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest curl nginx wrk openssl
  groff-base systemd postgresql-15"
# Building and checking the Debian package (make deb, make deb-test).
deb_pkgs="debhelper dpkg-dev fakeroot lintian groff-base python3 systemd"

# The dashboard's browser test: Debian's Chromium driven by npm
# playwright-core, with fonts for legible screenshots. node and npm may
# come from elsewhere (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package), so they are installed only when absent.
browser_pkgs="chromium fonts-liberation fonts-dejavu-core"

want="$build_pkgs"
case "${1:-build}" in
  build) ;;
  demo) want="$want python3" ;;
  test|all) want="$want $test_pkgs" ;;
  deb) want="$want $deb_pkgs" ;;
  browser)
    want="$want $test_pkgs $browser_pkgs"
    command -v node >/dev/null 2>&1 || want="$want nodejs"
    command -v npm >/dev/null 2>&1 || want="$want npm" ;;
  *) echo "usage: $0 [build|demo|test|all|browser|deb]" >&2; exit 2 ;;
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
# Packages installed for building and testing must not start services:
# Debian's nginx would otherwise start a system nginx on port 80 (and
# PostgreSQL a cluster). The tests start what they need themselves, as an
# unprivileged user. A policy-rc.d saying 101 ("not allowed") does that,
# unless the machine already has one of its own.
policy=/usr/sbin/policy-rc.d
own_policy=""
if [ ! -e "$policy" ]; then
  own_policy=1
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod 755 "$policy"
  trap '$sudo rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
[ -z "$own_policy" ] || { $sudo rm -f "$policy"; trap - EXIT; }
