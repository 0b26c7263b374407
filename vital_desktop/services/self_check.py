"""`vital self-check`: can this version of the app run this site? (run by the launcher after an update)

Checks, in order, and never writing the site's store: the app's own libraries import; the store
file, COPIED into a scratch folder, opens and takes this version's migrations (a dry run: the
real file is migrated only when the new version really starts, after the launcher's backup);
the active classifier loads in onnxruntime and the active language model's GGUF header and
vocabulary load in llama.cpp. A check that cannot apply (no store yet, no active model) passes
and says so.
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vital_desktop import __version__
from vital_desktop.core.errors import VitalError

#: What the app needs at run time (every stage's heavy library, and the app's own services).
SELF_CHECK_IMPORTS: tuple[str, ...] = (
    "numpy", "duckdb", "sqlalchemy", "duckdb_engine", "pyarrow.parquet", "onnxruntime", "numba", "cryptography",
    "vital_desktop.services.labels", "vital_desktop.services.training", "vital_desktop.services.exchange",
    "vital_desktop.montecarlo.engine",
)


class SelfCheckFailed(VitalError):
    """The version cannot run this site; the message says which check failed and why."""

    exit_code = 1


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "message": self.message}


def _check_imports(home: Path) -> CheckResult:
    for module in SELF_CHECK_IMPORTS:
        try:
            importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001 - any import failure is the answer
            return CheckResult("imports", False, f"cannot import {module}: {type(exc).__name__}: {str(exc)[:200]}")
    return CheckResult("imports", True, f"{len(SELF_CHECK_IMPORTS)} modules import")


def _copy_store(home: Path, scratch: Path) -> Path | None:
    from vital_desktop.store.db import STORE_FILENAME

    source = home / STORE_FILENAME
    if not source.is_file():
        return None
    scratch.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, scratch / STORE_FILENAME)
    wal = source.with_name(source.name + ".wal")
    if wal.is_file():
        shutil.copy2(wal, scratch / wal.name)
    return scratch


def _check_store(home: Path, scratch: Path) -> CheckResult:
    from vital_desktop.store.db import open_store

    copy = _copy_store(home, scratch / "store")
    if copy is None:
        return CheckResult("store", True, f"no site store in {home} yet; nothing to migrate")
    try:
        store = open_store(copy, create=False, holder="vital self-check (a copy)")
    except VitalError as exc:
        return CheckResult("store", False, f"a copy of the site store does not open or migrate: {exc.message}")
    except Exception as exc:  # noqa: BLE001 - a migration failing on this site's data is the answer
        return CheckResult("store", False, f"a copy of the site store does not migrate: {type(exc).__name__}: "
                                           f"{str(exc)[:300]}")
    try:
        report = store.migration
        with store.engine.connect() as conn:
            users = conn.exec_driver_sql("SELECT count(*) FROM users").scalar()
    finally:
        store.close()
    moved = (f"migrations {report.from_version} -> {report.to_version} ran on a copy"
             if report.to_version != report.from_version else f"schema {report.to_version} is current")
    return CheckResult("store", True, f"the site store opens ({moved}; {users} users)")


def _active_models(home: Path, scratch: Path) -> dict[str, str]:
    store_dir = scratch / "store"
    if not (store_dir / "site.duckdb").is_file():
        return {}
    import duckdb

    with duckdb.connect(str(store_dir / "site.duckdb"), read_only=True) as conn:
        rows = conn.execute("SELECT kind, path FROM models WHERE status = 'active'").fetchall()
    return {str(kind): str(path) for kind, path in rows}


def _check_models(home: Path, scratch: Path) -> CheckResult:
    try:
        active = _active_models(home, scratch)
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return CheckResult("models", False, f"cannot read the active models: {type(exc).__name__}: {str(exc)[:200]}")
    loaded = []
    for kind, path in sorted(active.items()):
        file = Path(path) if Path(path).is_absolute() else home / path
        loader = MODEL_LOADERS.get(kind)
        if loader is None:
            continue
        if not file.is_file():
            return CheckResult("models", False, f"the active {kind} model {file} is missing")
        try:
            loader(file)
        except Exception as exc:  # noqa: BLE001 - a model this version cannot load is the answer
            return CheckResult("models", False, f"the active {kind} model does not load: {type(exc).__name__}: "
                                                f"{str(exc)[:200]}")
        loaded.append(kind)
    if not loaded:
        return CheckResult("models", True, "no active model to load")
    return CheckResult("models", True, f"the active {', '.join(loaded)} model(s) load")


def _load_onnx(path: Path) -> None:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    if not session.get_inputs():
        raise ValueError("the model has no inputs")


def _load_gguf(path: Path) -> None:
    import llama_cpp

    llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


#: How each model kind is loaded (a registry; kinds not listed are not loaded by the self-check).
MODEL_LOADERS: dict[str, Callable[[Path], None]] = {"onnx_classifier": _load_onnx, "onnx_backbone": _load_onnx,
                                                    "gguf": _load_gguf}

#: The checks, in order (a registry, so a stage can add its own).
CHECKS: tuple[Callable[[Path, Path], CheckResult], ...] = (
    lambda home, scratch: _check_imports(home), _check_store, _check_models,
)


def self_check(home: Path) -> dict[str, Any]:
    """Run every check against the site in `home`; raises `SelfCheckFailed` naming the first failure."""
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="vital-self-check-") as scratch:
        for check in CHECKS:
            result = check(home, Path(scratch))
            results.append(result)
            if not result.ok:
                raise SelfCheckFailed(f"self-check of VITAL Desktop {__version__} failed: {result.name}: "
                                      f"{result.message}", details={"checks": [r.to_dict() for r in results]})
    return {"ok": True, "version": __version__, "checks": [r.to_dict() for r in results],
            "text": "\n".join(f"[ok] {r.name}: {r.message}" for r in results)}
