#!/bin/sh
# Installs a Debian package when the program it provides is missing:
#   scripts/ensure-debian-tool.sh /usr/bin/chromium chromium "the browser tests"
# Playwright cannot download its own browsers on these machines, so the e2e suites drive Debian's
# Chromium; the benchmarks drive Debian's wrk; tests/test_proxy.py runs Debian's nginx.
set -u
PROGRAM=$1
PACKAGE=$2
PURPOSE=${3:-this target}
[ -x "$PROGRAM" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's $PACKAGE for $PURPOSE…"
    # Another apt-get may hold the lock for a while (a parallel install): wait for it.
    apt-get -o DPkg::Lock::Timeout=600 update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$PACKAGE" >/dev/null
fi
if [ ! -x "$PROGRAM" ]; then
    echo "error: $PROGRAM is missing. Install Debian's $PACKAGE package (apt-get install $PACKAGE) as root; $PURPOSE needs it." >&2
    exit 1
fi
