"""The trust modules stay IO-free (contract 4: every trust decision in bundles/trust.py, IO-free).

`trust.py` decides; `trust_types.py` and `trust_parse.py` hold its records and parsing. None of
them may read files, the clock, the environment or the store, and every name callers use is
importable from `bundles.trust`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import vital_desktop.bundles.trust as trust

BUNDLES = Path(trust.__file__).resolve().parent
TRUST_MODULES = sorted(BUNDLES.glob("trust*.py"))
FORBIDDEN_IMPORTS = {"os", "io", "pathlib", "shutil", "time", "socket", "subprocess", "tempfile", "sqlalchemy",
                     "vital_desktop.store", "vital_desktop.services"}
FORBIDDEN_CALLS = {"open", "now", "utcnow", "time", "getenv", "read_bytes", "read_text", "write_bytes", "write_text"}


def _io_uses(path: Path, source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        for name in names:
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS):
                found.append(f"{path.name}:{node.lineno} imports {name}")
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in FORBIDDEN_CALLS:
                found.append(f"{path.name}:{node.lineno} calls {called}()")
    return found


def test_the_trust_modules_do_no_io() -> None:
    assert {p.name for p in TRUST_MODULES} >= {"trust.py", "trust_types.py", "trust_parse.py"}
    problems = [p for path in TRUST_MODULES for p in _io_uses(path, path.read_text("utf-8"))]
    assert problems == []


def test_the_io_check_sees_io() -> None:
    planted = "import os\nfrom pathlib import Path\nimport datetime\nx = datetime.datetime.now()\nopen('f')\n"
    assert len(_io_uses(Path("planted.py"), planted)) == 4


def _defined(path: Path) -> set[str]:
    """The public names a module defines at top level (functions, classes, constants)."""
    names = set()
    for node in ast.parse(path.read_text("utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_")}


def test_every_trust_name_is_importable_from_bundles_trust() -> None:
    for name in ("trust.py", "trust_types.py", "trust_parse.py"):
        defined = _defined(BUNDLES / name)
        assert defined and defined <= set(trust.__all__), sorted(defined - set(trust.__all__))
    assert all(hasattr(trust, name) for name in trust.__all__)
