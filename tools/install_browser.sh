#!/usr/bin/env bash
# Install what the browser test (tests/test_browser.py) needs: Debian's Chromium at
# /usr/bin/chromium, and fonts for a readable page. Never a downloaded browser.
#
# Usage:
#   tools/install_browser.sh                    install it when /usr/bin/chromium is missing
#   tools/install_browser.sh --command          print the command that installs it
#   tools/install_browser.sh --chromium PATH    look for the browser at PATH instead
#
# With apt-get (Debian, Ubuntu) it installs as root, or through `sudo -n` when sudo needs
# no password. Otherwise it prints the one command to run and exits 0: setup goes on,
# and the browser test fails with that same command in its message.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
PACKAGES="chromium fonts-liberation fonts-dejavu-core"
COMMAND="sudo apt-get update && sudo apt-get install -y --no-install-recommends $PACKAGES"

while [ $# -gt 0 ]; do
    case "$1" in
        --command)
            echo "$COMMAND"
            exit 0
            ;;
        --chromium)
            CHROMIUM=$2
            shift 2
            ;;
        *)
            echo "install_browser.sh: unknown argument '$1' (expected --command or --chromium PATH)" >&2
            exit 2
            ;;
    esac
done

if [ -x "$CHROMIUM" ]; then
    echo "browser: $CHROMIUM is there"
    exit 0
fi

advise() {
    echo "browser: $CHROMIUM is missing ($1). The browser test needs it; install it with:"
    echo "    $COMMAND"
    exit 0
}

command -v apt-get > /dev/null || advise "no apt-get here: on another system, install Chromium at $CHROMIUM"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
    SUDO=(sudo -n)
else
    advise "installing it needs root, and sudo asks for a password"
fi

echo "browser: installing $PACKAGES with apt-get"
# shellcheck disable=SC2086  # PACKAGES is a list of words
if ! "${SUDO[@]}" apt-get update -q \
    || ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends $PACKAGES; then
    echo "browser: apt-get could not install $PACKAGES (these are Debian's package names)" >&2
    exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
    echo "browser: apt-get installed $PACKAGES, but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "browser: $CHROMIUM installed"
