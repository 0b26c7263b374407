#!/usr/bin/env bash
# README command 2: set up, then run the whole test suite (what CI runs, via .ci/run).
#   ./scripts/test.sh                      ruff, mypy and the whole suite
#   ./scripts/test.sh tests/foundation -x  the same checks, pytest gets the arguments as given
# The suite runs in parallel worker processes (pytest-xdist; one per core, at least 2; a whole test
# file stays in one worker, so a file's tests keep their order and its fixtures). VITAL_TEST_WORKERS=0
# runs it in this one process instead (or pass `-n 0`: the last -n given wins).
# mypy runs beside the suite, which rarely keeps both cores busy to the end; its result is printed
# when it finishes, and the command fails if ruff, mypy or any test fails.
set -uo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh || exit $?
export QT_QPA_PLATFORM=offscreen
echo "test: ruff" >&2
.venv/bin/ruff check vital_desktop tests benchmarks installer scripts || exit 1

mypy_log=$(mktemp)
trap 'rm -f "$mypy_log" "$mypy_log.rc"' EXIT
(
  .venv/bin/mypy vital_desktop >"$mypy_log" 2>&1
  rc=$?
  echo "$rc" >"$mypy_log.rc"
  if [ "$rc" = 0 ]; then
    echo "test: mypy: $(tail -n 1 "$mypy_log")" >&2
  else
    echo "test: mypy FAILED:" >&2
    cat "$mypy_log" >&2
  fi
) &
mypy_pid=$!

cores=$(nproc 2>/dev/null || echo 2)
workers=${VITAL_TEST_WORKERS:-$(( cores > 2 ? cores : 2 ))}
parallel=()
if [ "$workers" != 0 ]; then
  parallel=(-n "$workers" --dist loadfile)
fi
echo "test: mypy (beside the tests) and pytest (${workers} workers)" >&2
# duckdb's bindings print harmless "nanobind: leaked ..." lines at interpreter exit; hide them.
.venv/bin/python -m pytest -q -p no:cacheprovider "${parallel[@]}" "$@" 2>&1 \
  | grep --line-buffered -v -E '^(nanobind: | - leaked | - \.\.\. skipped|See https://nanobind)'
tests_rc=${PIPESTATUS[0]}
wait "$mypy_pid"
mypy_rc=$(cat "$mypy_log.rc" 2>/dev/null || echo 1)
if [ "$mypy_rc" != 0 ]; then
  echo "test: FAILED: mypy found errors (listed above)" >&2
  [ "$tests_rc" = 0 ] && exit 1
fi
exit "$tests_rc"
