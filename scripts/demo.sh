#!/usr/bin/env bash
# README command 1: set up, create the embedded demo site (once), and open the desktop app on it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export VITAL_HOME="${VITAL_HOME:-$(pwd)/.vital-demo}"
.venv/bin/vital init --demo
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  if command -v xvfb-run >/dev/null 2>&1; then
    echo "demo: no display; running under xvfb-run" >&2
    exec xvfb-run -a .venv/bin/vital-desktop "$@"
  fi
  echo "demo: no display found; starting offscreen (set DISPLAY to see the window)" >&2
  export QT_QPA_PLATFORM=offscreen
fi
exec .venv/bin/vital-desktop "$@"
