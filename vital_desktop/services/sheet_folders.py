"""Sheets from bare image folders: no metadata file needed, one item per image file.

The item ref is the file's path relative to the folder (POSIX separators), so it is the same
on every machine that mounts the folder. Each item's metadata comes from the file itself
(size, format, pixel size, EXIF capture time, camera, orientation); a metadata file can be
joined later (`join_metadata`). A folder-per-class layout (``DIR/<class>/*.png``) can create
labels of a chosen label type in the same transaction, through the one label write path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, ValidationError
from vital_desktop.core.ids import new_id, new_ids
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.sheet_scan import (
    IMAGE_SUFFIXES,
    MAX_REPORTED,
    FileFacts,
    check_root,
    inspect_files,
    list_images,
    refuse_problems,
)
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet, SheetItem

FOLDER_FORMAT = "folder"  # sheets.metadata_format of a sheet made from a bare folder
FOLDER_COLUMNS = ["file_name", "file_size", "format", "width", "height", "captured_at", "camera", "orientation"]


def item_table(sheet_id: str, facts: list[FileFacts], start: int = 0) -> pa.Table:
    """The `sheet_items` rows for inspected files (item ref = relative path)."""
    return pa.table({
        "id": new_ids(len(facts)),
        "sheet_id": [sheet_id] * len(facts),
        "item_ref": [f.rel for f in facts],
        "position": list(range(start, start + len(facts))),
        "image_path": [f.rel for f in facts],
        "file_sha256": [f.sha256 for f in facts],
        "file_size": pa.array([f.size for f in facts], pa.int64()),
        "missing": [f.sha256 is None for f in facts],
        "metadata": [f.metadata_json or json.dumps(f.metadata, ensure_ascii=False) for f in facts],
    })


def class_of(rel: str) -> str | None:
    """The class a folder-per-class layout gives a file: its first folder (None at the top level)."""
    parts = PurePosixPath(rel).parts
    return parts[0] if len(parts) >= 2 else None


def _class_records(session, sheet_id: str, rels: list[str], label_type: str, spec) -> list:
    from vital_desktop.services import labels
    from vital_desktop.services.formats.base import ImageLabels, data_from_image

    records = []
    for rel in rels:
        cls = class_of(rel)
        assert cls is not None
        data = data_from_image(spec, ImageLabels(rel, rel, classes=[cls]))
        records.append(labels.LabelRecord(sheet_id=sheet_id, item_ref=rel, label_type=label_type, label_data=data,
                                          reason="class from the image's folder"))
    return records


def _check_class_layout(rels: list[str], label_type: str, store: Store):
    from vital_desktop.services.formats.base import CLASS_KINDS, ImageLabels
    from vital_desktop.services.formats.importer import unknown_classes
    from vital_desktop.services.formats.types import type_spec

    with store.read() as s:
        spec = type_spec(s, label_type)
    if spec.kind not in CLASS_KINDS:
        raise ValidationError(f"class folders make classification labels; {label_type!r} is {spec.kind}")
    loose = [r for r in rels if class_of(r) is None]
    if loose:
        raise ValidationError(f"{len(loose)} image(s) are not inside a class folder: {', '.join(loose[:MAX_REPORTED])}")
    unknown_classes(spec, [ImageLabels(r, r, classes=[class_of(r) or ""]) for r in rels], False)
    return spec


def import_folder(
    store: Store, *, actor: User, name: str, image_root: Path | str, classification: list[str],
    description: str = "", class_label_type: str | None = None, progress: Progress | None = None,
):
    """Make a sheet of every image under `image_root` (see the module docstring)."""
    from vital_desktop.services import labels
    from vital_desktop.services.sheets import ImportReport, _sheet_info

    require(actor, "import_sheet")
    if class_label_type:
        require(actor, "label")
    progress = progress or Progress()
    with store.read() as s:
        if s.scalar(sa.select(Sheet.id).where(Sheet.name == name)) is not None:
            raise ConflictError(f"a sheet named {name!r} already exists")
    root = check_root(image_root)
    rels = list_images(root)
    if not rels:
        raise ValidationError(f"{root} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    spec = _check_class_layout(rels, class_label_type, store) if class_label_type else None
    facts = inspect_files(root, rels, progress)
    refuse_problems(facts, root)
    sheet_id = new_id()
    created = 0
    with store.session() as s:
        sheet = Sheet(id=sheet_id, name=name, description=description, metadata_path="", metadata_format=FOLDER_FORMAT,
                      image_root=str(root), key_column="item_ref", image_column="image_path",
                      columns=list(FOLDER_COLUMNS), classification=classification, item_count=len(facts),
                      missing_count=0, created_by=actor.username)
        s.add(sheet)
        s.flush()
        insert_arrow(s, "sheet_items", item_table(sheet_id, facts), casts={"metadata": "JSON"})
        if spec is not None and class_label_type:
            records = labels.prepare_records(s, _class_records(s, sheet_id, rels, class_label_type, spec))
            created = labels.upsert_records(s, actor, records, action="import").created
        audit.record(s, actor, "sheet.import", name, {"items": len(facts), "folder": str(root),
                                                        "classification": classification,
                                                        "class_labels": created, "label_type": class_label_type})
        info = _sheet_info(sheet)
    progress.finish(f"imported {len(facts)} items")
    return ImportReport(info, len(facts), [], labels=created), Changes(sheets=True, labels=bool(created))


@dataclass(frozen=True)
class JoinReport:
    sheet: str
    joined: int
    without_row: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def join_metadata(
    store: Store, *, actor: User, sheet: str, metadata_path: Path | str, key_column: str,
) -> tuple[JoinReport, Changes]:
    """Join a metadata file's columns into a sheet's items, matching the key to the item ref
    (the relative path) or, when unique, the file name. Unknown keys are refused, named."""
    from vital_desktop.services.sheets import find_sheet, _jsonable, read_metadata

    require(actor, "import_sheet")
    path = Path(metadata_path).expanduser().resolve()
    fmt, table = read_metadata(path)
    if key_column not in table.column_names:
        raise ValidationError(f"key column {key_column!r} is not in {path.name}; its columns are: "
                              f"{', '.join(table.column_names)}")
    with store.read() as s:
        row = find_sheet(s, sheet)
        items = {ref: meta or {} for ref, meta in s.execute(
            sa.select(SheetItem.item_ref, SheetItem.item_metadata).where(SheetItem.sheet_id == row.id))}
    by_name: dict[str, list[str]] = {}
    for ref in items:
        by_name.setdefault(PurePosixPath(ref).name, []).append(ref)
    updates: dict[str, dict] = {}
    unknown: list[str] = []
    for number, record in enumerate(table.to_pylist(), start=2):
        key = str(record.get(key_column) or "").strip().replace("\\", "/")
        ref = key if key in items else (by_name.get(key, [None])[0] if len(by_name.get(key, [])) == 1 else None)
        if ref is None:
            unknown.append(f"row {number} ({key or 'empty'})")
            continue
        updates[ref] = {**items[ref], **{k: _jsonable(v) for k, v in record.items() if k != key_column}}
    if unknown:
        raise ValidationError(f"{path.name}: {len(unknown)} row(s) match no item of {sheet!r}: "
                              + ", ".join(unknown[:MAX_REPORTED]))
    with store.session() as s:
        row = find_sheet(s, sheet)
        keys = pa.table({"k_ref": list(updates), "k_meta": [json.dumps(v, ensure_ascii=False)
                                                            for v in updates.values()]})
        from vital_desktop.store.bulk import raw_connection

        s.flush()
        raw = raw_connection(s)
        raw.register("_join_meta", keys)
        try:
            raw.execute("UPDATE sheet_items SET metadata = CAST(j.k_meta AS JSON) FROM _join_meta j "
                        "WHERE sheet_items.sheet_id = ? AND sheet_items.item_ref = j.k_ref", [row.id])
        finally:
            raw.unregister("_join_meta")
        row.metadata_path = str(path)
        if row.metadata_format != FOLDER_FORMAT:
            row.metadata_format = fmt
        row.columns = list(dict.fromkeys([*(row.columns or []), *[c for c in table.column_names if c != key_column]]))
        audit.record(s, actor, "sheet.join_metadata", row.name, {"metadata": str(path), "joined": len(updates)})
    return JoinReport(sheet, len(updates), len(items) - len(updates)), Changes(sheets=True)
