#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (what CI runs, via .ci/run).
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit $?
export QT_QPA_PLATFORM=offscreen
# Static checks first: ruff (E, F, B, BLE, UP, SIM; pyproject.toml) and mypy over the whole package.
echo "test: ruff" >&2
.venv/bin/ruff check vital_desktop tests benchmarks installer scripts || exit 1
echo "test: mypy" >&2
.venv/bin/mypy vital_desktop || exit 1
# duckdb's bindings print harmless "nanobind: leaked ..." lines at interpreter exit; hide them.
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" 2>&1 \
  | grep --line-buffered -v -E '^(nanobind: | - leaked | - \.\.\. skipped|See https://nanobind)'
exit "${PIPESTATUS[0]}"
