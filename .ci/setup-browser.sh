#!/usr/bin/env bash
# Install Debian's chromium + chromium-driver for tests/test_browser.py when missing.
# Quiet, and never fails the build: without a browser those tests skip with the reason.
set -u
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-browser: no apt-get here; browser tests will skip" >&2
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "setup-browser: not root and no sudo; browser tests will skip" >&2
        exit 0
    fi
fi
log=$(mktemp)
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
        chromium chromium-driver; } >"$log" 2>&1; then
    echo "setup-browser: could not install chromium (browser tests will skip):" >&2
    tail -n 5 "$log" >&2
fi
rm -f "$log"
exit 0
