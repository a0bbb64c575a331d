#!/usr/bin/env bash
# Sets a fresh machine up for wgseg: npm packages, then a WebGPU adapter.
# A real GPU is used whenever Dawn finds one; only when it finds none is Mesa's lavapipe (Vulkan on the CPU)
# installed from Debian bookworm-backports (bookworm's own 22.3 is too old for Dawn). Idempotent.
# With --browser it also installs Debian's Chromium for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

want_browser=0
[ "${1:-}" = "--browser" ] && want_browser=1

say() { echo "setup: $*"; }

# `npm install`, not `npm ci`: the lock cannot list deno's binaries for other platforms where the registry lacks them
# (404), and `npm ci` then refuses the lock; `npm install` installs the locked versions and skips those optional ones.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm install --no-audit --no-fund
fi

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
  else return 77
  fi
}

apt_updated=0
apt_install() { # apt_install [apt-get install args...]
  if ! command -v apt-get >/dev/null; then
    say "apt-get is not available on this machine; install the packages by hand: $*"; exit 1
  fi
  if [ $apt_updated = 0 ]; then
    as_root apt-get update -q >/dev/null || { say "cannot run apt-get as root (not root, no passwordless sudo); run this script as root or install: $*"; exit 1; }
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}

if adapter=$(node scripts/probe-adapter.mjs 2>/dev/null); then
  say "$adapter"
else
  say "no WebGPU adapter found: installing Mesa lavapipe (software Vulkan) from bookworm-backports"
  if ! grep -q '^VERSION_CODENAME=bookworm' /etc/os-release 2>/dev/null; then
    say "this is not Debian 12 (bookworm); install a Vulkan driver for your GPU, or Mesa >= 24 for lavapipe, and run again"; exit 1
  fi
  src=/etc/apt/sources.list.d/bookworm-backports.sources
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      | as_root tee "$src" >/dev/null || { say "cannot write $src: run as root"; exit 1; }
  fi
  apt_install -t bookworm-backports mesa-vulkan-drivers libvulkan1
  if adapter=$(node scripts/probe-adapter.mjs 2>/dev/null); then
    say "$adapter"
  else
    say "lavapipe is installed but Dawn still finds no adapter; 'node scripts/probe-adapter.mjs' shows Dawn's messages"; exit 1
  fi
fi

if [ $want_browser = 1 ] && [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium for the browser test"
  apt_install chromium
fi
