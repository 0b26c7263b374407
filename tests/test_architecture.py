"""Layer contracts (import-linter, configured in pyproject.toml): no Qt below the ui package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_import_without_qt() -> None:
    code = ("import sys, vital_desktop.services.labels, vital_desktop.services.sheets, vital_desktop.cli; "
            "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_ui_pages_never_reach_for_the_store() -> None:
    """Pages read and write through the operation layer (`context.query` / `context.change`, whose
    functions get an `OpEnv` named `op`); only the layer itself holds the store. The sign-in dialog
    is the one exception: it authenticates before there is a window or an operation layer."""
    import ast

    allowed = {"operations.py", "context.py", "login.py"}
    offenders = []
    for path in sorted((ROOT / "vital_desktop" / "ui").glob("*.py")):
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ("store", "_store"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("op", "env"):
                    continue
                offenders.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []
