#!/bin/sh
# Idempotent: install Debian's chromium (for the dashboard browser test) when it is missing.
# The e2e test drives /usr/bin/chromium with Python playwright; `playwright install` is never used.
set -eu
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
test -x /usr/bin/chromium
