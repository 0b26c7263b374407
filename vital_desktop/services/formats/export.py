"""`export_labels`: current canonical labels out in any registered format, governed.

Only labels whose usage constraints permit the named use (``training`` by default) leave;
the rest are counted as withheld. Every export is written under a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa

from vital_desktop.core import governance
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.formats.base import ExportItem, ExportSet, TypeSpec, write_atomically
from vital_desktop.services.formats.types import type_spec
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow
from vital_desktop.store.db import Store

_SQL = ("SELECT s.name AS sheet, c.item_ref, c.label_type, c.label_data::VARCHAR AS label_data, c.version, "
        "c.allowed_uses::VARCHAR AS allowed_uses, c.prohibited_uses::VARCHAR AS prohibited_uses, "
        "c.usage_reason, c.data_classification::VARCHAR AS data_classification, c.confidence, c.notes, "
        "c.origin, c.updated_by, c.updated_at, i.image_path, s.image_root, i.metadata::VARCHAR AS item_metadata, "
        "s.classification::VARCHAR AS _sheet_tags "
        "FROM canonical_labels c JOIN sheets s ON s.id = c.sheet_id "
        "LEFT JOIN sheet_items i ON i.sheet_id = c.sheet_id AND i.item_ref = c.item_ref")
INTERNAL_COLUMNS = ("image_root", "item_metadata", "_sheet_tags")


def permits(gate: governance.ExportGate, tags: list[str], allowed: list[str], prohibited: list[str]) -> bool:
    """Whether a label may leave: the site's export gate (``file`` destination, the export's
    use) on its tags -- its own and its sheet's: PHI / EXPORT_CONTROLLED stay home unless the
    site's policy allows them -- and on its usage constraints."""
    return gate.permits(tags, allowed=allowed, prohibited=prohibited)


def split_of(item_ref: str, val_fraction: float) -> str:
    """A stable train/val assignment: the same item lands in the same split on every export."""
    bucket = int.from_bytes(hashlib.sha256(item_ref.encode("utf-8")).digest()[:4], "big") / 2**32
    return "val" if bucket < val_fraction else "train"


def image_size(root: str | None, rel: str | None, metadata: dict) -> tuple[int | None, int | None]:
    """The image's pixel size: from the item's metadata when the index holds it, else its header."""
    width, height = metadata.get("width"), metadata.get("height")
    if isinstance(width, int) and isinstance(height, int):
        return width, height
    if not (root and rel):
        return None, None
    from vital_desktop.services.input_limits import image_size as header_size

    size = header_size(Path(root) / rel)  # a decompression bomb is refused by name, never decoded
    return size if size is not None else (None, None)


def export_labels(
    store: Store, *, actor: User, out: Path | str, fmt: str, sheet: str | None = None, label_type: str | None = None,
    use: str = "training", val_fraction: float = 0.2, with_predictions: bool = True,
) -> dict:
    """Write current labels in format `fmt` to `out` (a file or, for folder formats, a folder)."""
    from vital_desktop.services.formats import FORMATS
    from vital_desktop.services.label_queries import sheet_row as find_sheet

    require(actor, "export_data")
    entry = FORMATS.get(fmt)
    if entry is None or entry.write is None:
        names = [n for n, f in FORMATS.items() if f.write is not None]
        raise ValidationError(f"unknown export format {fmt!r}; use {', '.join(names)}")
    [use] = governance.check_uses([use])
    if not 0 <= val_fraction < 1:
        raise ValidationError("the validation fraction must be at least 0 and below 1")
    with store.read() as s:
        spec = type_spec(s, label_type) if label_type else None
        if entry.kinds:
            if spec is None:
                raise ValidationError(f"{fmt} export needs a label type (--type)")
            if spec.kind not in entry.kinds:
                raise ValidationError(f"{fmt} holds {', '.join(entry.kinds)} labels; {label_type!r} is {spec.kind}")
        where, params = [], []
        sheet_row = find_sheet(s, sheet) if sheet else None
        if sheet_row is not None:
            where.append("c.sheet_id = ?")
            params.append(sheet_row.id)
        if label_type:
            where.append("c.label_type = ?")
            params.append(label_type)
        sql = _SQL + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY s.name, c.item_ref, c.label_type"
        table = query_arrow(s, sql, params)
        predictions = _predictions(s, sheet_row.id if sheet_row else None) if with_predictions and entry.predictions else {}
        from vital_desktop.services.site import export_gate

        gate = export_gate(s, use=use, destination="file")
    keep = [permits(gate, sorted(governance.normalise_tags(t) | governance.normalise_tags(st)), json.loads(a),
                    json.loads(p))
            for a, p, t, st in zip(table.column("allowed_uses").to_pylist(), table.column("prohibited_uses").to_pylist(),
                                   table.column("data_classification").to_pylist(),
                                   table.column("_sheet_tags").to_pylist(), strict=True)]
    withheld = keep.count(False)
    table = table.filter(pa.array(keep, pa.bool_())) if withheld else table
    if spec is None:
        spec = type_spec(store, label_type) if label_type else TypeSpec("", "structured", [], None)
    export = ExportSet(spec=spec, items=[], rows=table.drop_columns(list(INTERNAL_COLUMNS)), predictions=predictions)
    if entry.kinds:
        for r in table.to_pylist():
            metadata = json.loads(r["item_metadata"]) if r["item_metadata"] else {}
            width, height = image_size(r["image_root"], r["image_path"], metadata)
            export.items.append(ExportItem(
                sheet=r["sheet"], item_ref=r["item_ref"], image_path=r["image_path"],
                absolute_path=Path(r["image_root"]) / r["image_path"] if r["image_root"] and r["image_path"] else None,
                width=width, height=height, label_data=json.loads(r["label_data"]),
                split=split_of(r["item_ref"], val_fraction)))
    target = Path(out)
    write_atomically(target, lambda tmp: entry.write(tmp, export))  # type: ignore[misc]
    with store.session() as s:
        audit.record(s, actor, "label.export", str(target), {"format": fmt, "use": use, "labels": table.num_rows,
                                                            "withheld": withheld, "sheet": sheet,
                                                            "label_type": label_type})
    return {"path": str(target), "format": fmt, "labels": table.num_rows, "withheld": withheld, "use": use}


def _predictions(session, sheet_id: str | None) -> dict[str, list[dict]]:
    """The latest prediction of each model for each item (pre-annotations for review tools)."""
    if sheet_id is None:
        return {}
    rows = query_arrow(session, "SELECT item_ref, model_name, model_version, output::VARCHAR AS output, "
                                "predicted_class, confidence FROM predictions WHERE sheet_id = ? "
                                "QUALIFY row_number() OVER (PARTITION BY item_ref, model_id ORDER BY created_at DESC) = 1",
                       [sheet_id]).to_pylist()
    out: dict[str, list[dict]] = {}
    for r in rows:
        r["output"] = json.loads(r["output"]) if r["output"] else {}
        out.setdefault(r["item_ref"], []).append(r)
    return out
