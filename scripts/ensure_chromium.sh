#!/usr/bin/env bash
# The browser tests drive Debian's Chromium through Playwright (Playwright's own browser download
# does not work offline). Install it when missing and we are allowed to; otherwise those tests skip
# and say why.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    echo "Installing Debian's chromium for the browser tests…"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
    echo "warning: /usr/bin/chromium is missing and cannot be installed here (need root + apt-get);" \
         "the browser tests will be skipped" >&2
fi
