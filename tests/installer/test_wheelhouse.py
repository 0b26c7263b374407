"""setup.sh refuses a wheelhouse older than the lock (it would install an environment missing the
new dependencies, silently, since the project itself is installed --no-deps)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INDEX = ROOT / "scripts" / "wheelhouse_index.py"


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text("utf-8")
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", text,
                                                                  re.MULTILINE)}


def _check(house: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(INDEX), "--check", str(house)], capture_output=True, text=True,
                          check=False)


def test_a_wheelhouse_index_that_covers_the_lock_passes_and_an_older_one_is_named(tmp_path: Path) -> None:
    pins = _pins()
    lines = [f"{name}=={version} --hash=sha256:{'0' * 64}" for name, version in sorted(pins.items())]
    (tmp_path / "requirements.txt").write_text("\n".join(lines) + "\n")
    assert _check(tmp_path).returncode == 0
    name = sorted(pins)[0]
    older = [line for line in lines if not line.startswith(f"{name}==")]
    (tmp_path / "requirements.txt").write_text("\n".join(older) + "\n")
    done = _check(tmp_path)
    assert done.returncode == 1 and name in done.stderr and "scripts/wheelhouse.sh" in done.stderr
