#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian's `chromium` and
# `chromium-driver`) for the operator console's browser test
# (tests/tests/console.rs, docs/console.md) when they are missing.
#
# Without them the test skips with a message. CAIRN_REQUIRE_BROWSER=1 (set
# by .ci/run) makes a failed install an error here, and the test fails
# instead of skipping.
set -uo pipefail

have() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }

if have; then
    exit 0
fi

fail() {
    if [ "${CAIRN_REQUIRE_BROWSER:-0}" = "1" ]; then
        echo "ensure-browser: $1 (CAIRN_REQUIRE_BROWSER=1: the console browser test needs them)" >&2
        exit 1
    fi
    echo "ensure-browser: $1; the console browser test will skip" >&2
    exit 0
}

command -v apt-get >/dev/null 2>&1 || fail "chromium/chromedriver not found and apt-get is not available"
SUDO=""
if [ "$(id -u)" != "0" ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || fail "chromium/chromedriver not found and not root (install: apt-get install chromium chromium-driver)"
    SUDO="sudo -n"
fi
echo "ensure-browser: installing chromium chromium-driver with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1; then
    $SUDO apt-get update >/dev/null 2>&1 || true
    $SUDO apt-get install -y --no-install-recommends chromium chromium-driver >&2 || fail "apt-get install chromium chromium-driver failed"
fi
have || fail "chromium/chromedriver still not on PATH after installing"
echo "ensure-browser: $(chromium --version 2>/dev/null), $(chromedriver --version 2>/dev/null | head -c 60)" >&2
