#!/usr/bin/env bash
# Build the one-folder installer payload (dist/vital/) with PyInstaller, then smoke-test it:
# the frozen `vital` creates a demo site, and the frozen `vital-desktop` opens its main window.
set -euo pipefail
cd "$(dirname "$0")"
../scripts/setup.sh
../.venv/bin/pip install -q "pyinstaller>=6"
rm -rf build dist
../.venv/bin/pyinstaller --noconfirm --log-level WARN vital.spec
../.venv/bin/python smoke_test.py dist/vital
