#!/bin/sh
# Playwright cannot download its own browsers on these machines: the e2e suites drive
# Debian's Chromium at /usr/bin/chromium. Install it when it is missing.
set -u
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing Debian's chromium for the browser tests…"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x "$CHROMIUM" ]; then
    echo "error: $CHROMIUM is missing. Install Debian's chromium package (apt-get install chromium) as root; the browser tests need it." >&2
    exit 1
fi
