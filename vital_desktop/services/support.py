"""Support bundles: what an airgapped site can carry out to let us diagnose a fault.

`write_support_bundle` writes one zip: the site log (every error a user saw, with its
traceback), the app's and its libraries' versions, the platform, the store's schema version
and table sizes, the audit chain's verification result, and the site settings with anything
secret left out. It holds **no label content**: log messages are redacted of JSON objects and
quoted values (where label data, notes and class names would appear), and no table rows are
included. The archive is written to a temporary name beside the target and renamed, so a
half-written file never looks like a bundle.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop import __version__
from vital_desktop.core import sitelog
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.users import User
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import Base, Setting

#: Libraries whose versions matter when diagnosing a fault.
PACKAGES = ("PySide6-Essentials", "SQLAlchemy", "duckdb", "duckdb-engine", "pyarrow", "numpy", "numba",
            "onnx", "onnxruntime", "llama_cpp_python", "scikit-learn", "skl2onnx", "cryptography", "pillow",
            "jsonschema", "pyqtgraph")
#: Setting keys never copied out (keys, passwords, tokens, private material).
_SECRET_KEY = re.compile(r"(secret|password|passwd|private|token|key|credential)", re.IGNORECASE)
_JSON_OBJECT = re.compile(r"\{[^{}]*\}")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True)
class SupportBundle:
    path: str
    files: tuple[str, ...]
    log_entries: int
    bytes: int

    def to_dict(self) -> dict:
        return {"path": self.path, "files": list(self.files), "log_entries": self.log_entries, "bytes": self.bytes}


def redact(text: str) -> str:
    """A log line without the content it may quote: JSON objects and quoted values go."""
    text = _JSON_OBJECT.sub("{…}", text)
    return _QUOTED.sub("'…'", text)


def _versions() -> dict[str, Any]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return {"vital_desktop": __version__, "python": sys.version.split()[0], "platform": platform.platform(),
            "machine": platform.machine(), "cpu_count": os.cpu_count(), "frozen": bool(getattr(sys, "frozen", False)),
            "packages": found}


def _store_statistics(store: Store) -> dict[str, Any]:
    counts = {}
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)
    return {"schema_version": store.migration.to_version or None, "file_bytes": store.path.stat().st_size,
            "rows": counts}


def _settings(store: Store) -> dict[str, Any]:
    with store.read() as s:
        rows = s.scalars(sa.select(Setting)).all()
        return {r.key: ("(withheld)" if _SECRET_KEY.search(r.key) else r.value) for r in rows}


def write_support_bundle(store: Store, *, actor: User, out: Path | str) -> SupportBundle:
    """Write the diagnostics archive to `out` (a .zip file; its folder must exist or be creatable).

    Any signed-in user may write one: it holds no label content, and an inspector who met a
    fault is the one who should be able to send it.
    """
    out = Path(out)
    if out.suffix.lower() != ".zip":
        out = out.with_suffix(".zip") if out.suffix else out / "vital-support.zip"
    # A way out of the site that carries no label content at all (no rows, redacted log): there
    # is nothing in it for the usage constraints to allow or refuse.
    entries = [dict(e) for e in sitelog.read_entries(store.home)]
    for entry in entries:
        entry.pop("context", None)
        if "message" in entry:
            entry["message"] = redact(str(entry["message"]))
        if "traceback" in entry:
            entry["traceback"] = "\n".join(redact(line) for line in str(entry["traceback"]).splitlines())
    from vital_desktop.services.site import verify_audit

    verification = verify_audit(store).to_dict()
    manifest = {
        "kind": "vital-support-bundle",
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_by": actor.username,
        "versions": _versions(),
        "store": _store_statistics(store),
        "audit": verification,
        "settings": _settings(store),
        "label_content": False,
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
    except OSError as exc:
        raise ValidationError(f"cannot write the support bundle to {out.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    files = ("manifest.json", "log.jsonl")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
            archive.writestr("log.jsonl", "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries))
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ValidationError(f"cannot write the support bundle {out}: {exc.strerror or exc}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with store.session() as s:
        audit.record(s, actor, "support.bundle", out.name, {"log_entries": len(entries)})
    return SupportBundle(str(out), files, len(entries), out.stat().st_size)
