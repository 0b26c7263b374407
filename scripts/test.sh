#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (what CI runs, via .ci/run).
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit $?
export QT_QPA_PLATFORM=offscreen
# duckdb's bindings print harmless "nanobind: leaked ..." lines at interpreter exit; hide them.
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" 2>&1 \
  | grep --line-buffered -v -E '^(nanobind: | - leaked | - \.\.\. skipped|See https://nanobind)'
exit "${PIPESTATUS[0]}"
