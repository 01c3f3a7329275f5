#!/usr/bin/env bash
# make deb-test: the Debian package as a user meets it. Runs lintian
# (errors fail), installs the .deb with apt the way the README says
# (`apt install ./kagami_*.deb`, which pulls the declared dependencies),
# checks the installed binary, example config, unit and man pages, and
# purges the package again, also when a check fails.
# usage: deb_test.sh build/kagami_VERSION_ARCH.deb   (as root)
set -euo pipefail
deb=$(readlink -f "$1")
[ -f "$deb" ] || { echo "deb-test: no package $1" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "deb-test: needs root (it installs the package)" >&2; exit 1; }
if dpkg-query -W -f='${Status}' kagami 2>/dev/null | grep -q 'install ok installed'; then
  echo "deb-test: kagami is installed on this machine already; not replacing it" >&2
  exit 1
fi

echo "== lintian $deb"
lint=$(lintian --tag-display-limit 0 "$deb" 2>&1 | grep -v '^running with root privileges' || true)
[ -z "$lint" ] || echo "$lint"
if echo "$lint" | grep -q '^E: '; then echo "deb-test: lintian errors" >&2; exit 1; fi

export DEBIAN_FRONTEND=noninteractive
purge() { apt-get purge -y -qq kagami >/dev/null 2>&1 || true; }
trap purge EXIT

echo "== apt install $deb"
apt-get install -y -qq --no-install-recommends "$deb" >/dev/null
dpkg-query -W -f='installed ${Package} ${Version}\n' kagami

echo "== the installed files"
/usr/bin/kagami --version | grep -q '^kagami '
/usr/bin/kagami --version
/usr/bin/kagami check /etc/kagami/kagami.lua
for f in /usr/bin/kagami /lib/systemd/system/kagami.service /etc/logrotate.d/kagami \
         /usr/share/man/man1/kagami.1.gz /usr/share/man/man5/kagami.lua.5.gz \
         /usr/share/doc/kagami/examples/from-kage.lua; do
  [ -e "$f" ] || { echo "deb-test: $f missing" >&2; exit 1; }
done
for ex in /usr/share/doc/kagami/examples/*.lua; do /usr/bin/kagami check "$ex"; done
# /etc/kagami/kagami.lua must be a conffile: an upgrade keeps local edits.
dpkg-query -W -f='${Conffiles}\n' kagami | grep -q '/etc/kagami/kagami.lua'
for page in /usr/share/man/man1/kagami.1.gz /usr/share/man/man5/kagami.lua.5.gz; do
  out=$(zcat "$page" | LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z 2>&1)
  [ -z "$out" ] || { echo "deb-test: $page: $out" >&2; exit 1; }
done
if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify --man=no /lib/systemd/system/kagami.service
  echo "systemd-analyze verify: ok"
fi

echo "== apt purge kagami"
trap - EXIT
apt-get purge -y -qq kagami >/dev/null
if [ -e /usr/bin/kagami ] || [ -e /etc/kagami/kagami.lua ]; then
  echo "deb-test: files left after purge" >&2; exit 1
fi
echo "deb-test: ok"
