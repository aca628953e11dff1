#!/usr/bin/env bash
# Install what the browser tests (tests/browser.py, tests/test_offline.py) need, from Debian:
#   chromium              -> /usr/bin/chromium, driven by the playwright Python package
#                            through executable_path (Playwright's own browser download is
#                            never used: it cannot be fetched here)
#   fonts-ipafont-gothic  -> a Japanese font, so map labels and screenshots are legible
# Idempotent: does nothing when both are present. Needs root (CI runs as root).
# Called from .ci/run:  bash docs/ci-browser.sh
set -euo pipefail

packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
dpkg-query -W -f='${Status}' fonts-ipafont-gothic 2>/dev/null | grep -q "install ok installed" \
  || packages+=(fonts-ipafont-gothic)

if [ "${#packages[@]}" -eq 0 ]; then
  echo "ci-browser: chromium and fonts-ipafont-gothic already installed"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ci-browser: need root to apt-get install ${packages[*]}" >&2
  exit 1
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
echo "ci-browser: installing ${packages[*]}"
if ! { apt-get update -qq && apt-get install -y -qq -o Dpkg::Use-Pty=0 "${packages[@]}"; } \
  >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "ci-browser: apt-get install ${packages[*]} failed" >&2
  exit 1
fi
# The Debian launcher may print a harmless shell warning about /dev/shm on stderr.
/usr/bin/chromium --version 2>/dev/null
