#!/bin/sh
# Installs the Debian packages that are not installed yet, without their Recommends:
#   scripts/ensure-debian-packages.sh "the Firefox and WebKit browser tests" firefox-esr xvfb …
# Playwright cannot download its own browsers on these machines: the e2e suites drive Debian's
# (e2e/engines/drivers.py says which engine needs which package). As root with apt-get, missing
# packages are installed; otherwise, or when that fails, this says which ones and exits 1.
set -u
PURPOSE=$1
shift
missing=""
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's$missing for $PURPOSE…"
    # Another apt-get may hold the lock for a while (a parallel install): wait for it.
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi
still=""
for package in $missing; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || still="$still $package"
done
if [ -n "$still" ]; then
    echo "error: Debian's$still not installed, and they could not be installed here (that needs root, apt-get and a Debian mirror). Run as root: apt-get install --no-install-recommends$still. $PURPOSE need them." >&2
    exit 1
fi
