#!/usr/bin/env bash
# Create .venv and install takeback with its test/demo extras.  Installs the
# system packages the vpdq reference needs to build (Debian/Ubuntu) when they
# are missing and we are allowed to (root or passwordless sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
pkg-config --exists libavcodec libavformat libswscale libavfilter libavdevice 2>/dev/null \
  || need_apt+=(libavcodec-dev libavformat-dev libavdevice-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev)
# PostgreSQL server binaries (initdb, pg_ctl): the store/API tests start a throwaway server from them.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 || need_apt+=(postgresql)
# Debian's chromium: the browser tests drive it with Playwright (never `playwright install`).
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if ((${#need_apt[@]})) && command -v apt-get >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  echo "installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" \
    || echo "warning: could not install ${need_apt[*]}; the vpdq reference tests will be skipped"
fi

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]" || {
  echo "full dev install failed (vpdq needs ffmpeg headers to build); installing without the vpdq reference"
  .venv/bin/python -m pip install -q -e ".[demo]" pytest pytest-timeout hypothesis ruff pdqhash
}
