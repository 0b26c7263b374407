"""`rescan_sheet`: bring a sheet's item index up to date with its image folder.

- a new file (or a new row of the metadata file) becomes a new item;
- a file whose content changed (its SHA-256 differs) becomes a new item version, and the
  item's labels are flagged ``content_changed`` — a label is about an image's content and is
  never silently reused for new content;
- a deleted file marks its item missing (a file that comes back unchanged is found again);
- a folder that is not there (a drive unplugged) is a clear error and nothing changes; so is
  a folder that suddenly holds none of the sheet's files (an empty mount point).

Training sheets made before keep their snapshot: Q&A pairs are never touched here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import new_ids, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.sheet_folders import FOLDER_FORMAT, item_table
from vital_desktop.services.sheet_scan import (
    MAX_REPORTED,
    FileFacts,
    check_root,
    inspect_files,
    list_images,
    refuse_problems,
)
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow, raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet, SheetItem


@dataclass(frozen=True)
class RescanReport:
    sheet: str
    new: int
    changed: int
    missing: int
    found_again: int
    unchanged: int
    flagged_labels: int
    new_items: list[str] = field(default_factory=list)
    changed_items: list[str] = field(default_factory=list)
    missing_items: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        return (f"{self.sheet}: {self.new} new, {self.changed} changed ({self.flagged_labels} label(s) flagged for "
                f"review), {self.missing} missing, {self.found_again} found again, {self.unchanged} unchanged")


def _new_metadata_rows(row: Sheet, known: set[str]) -> list[tuple[str, str | None, dict]]:
    """(item ref, image path, metadata) of metadata-file rows that are not items yet."""
    from vital_desktop.services.sheets import _jsonable, read_metadata

    path = Path(row.metadata_path)
    if not path.is_file():
        return []  # the metadata file moved: existing items are still checked
    _, table = read_metadata(path)
    if row.key_column not in table.column_names:
        raise ValidationError(f"{path.name} no longer has the key column {row.key_column!r}")
    out = []
    for record in table.to_pylist():
        key = record.get(row.key_column)
        if key is None or str(key).strip() == "" or str(key) in known:
            continue
        image = record.get(row.image_column) if row.image_column else None
        rel = str(image).strip().replace("\\", "/") if image not in (None, "") else None
        out.append((str(key), rel, _jsonable(record)))
        known.add(str(key))
    return out


def rescan_sheet(store: Store, *, actor: User, sheet: str, progress: Progress | None = None) -> tuple[
        RescanReport, Changes]:
    """Rescan one sheet's images (see the module docstring); every check runs before the one write."""
    from vital_desktop.services import labels
    from vital_desktop.services.sheets import find_sheet

    require(actor, "import_sheet")
    progress = progress or Progress()
    with store.read() as s:
        row = find_sheet(s, sheet)
        sheet_id, name, folder = row.id, row.name, row.metadata_format == FOLDER_FORMAT
        if not row.image_root:
            raise ValidationError(f"sheet {name!r} has no image folder to rescan")
        if (row.item_kind or "image") != "image":  # documents/telemetry: import again (services/item_import)
            raise ValidationError(f"sheet {name!r} holds {row.item_kind} items; rescans read image folders only "
                                  "(import the files again as a new sheet)")
        items = list(s.execute(sa.select(SheetItem.item_ref, SheetItem.image_path, SheetItem.file_sha256,
                                         SheetItem.missing, SheetItem.position).where(SheetItem.sheet_id == sheet_id)))
        new_rows = [] if folder else _new_metadata_rows(row, {i.item_ref for i in items})
        image_root = row.image_root
    root = check_root(image_root, f"the image folder of {name!r}")
    by_path = {i.image_path: i for i in items if i.image_path}
    if folder:
        on_disk = list_images(root)
        present = set(on_disk)
        if not present and any(not i.missing for i in items):
            raise ValidationError(f"{root} holds none of the {len(items)} images of {name!r}; is the right drive "
                                  "mounted? Nothing was changed")
        new_rels = [r for r in on_disk if r not in by_path]
    else:
        new_rels = [rel for _, rel, _ in new_rows if rel]
    existing_rels = list(by_path)
    old_facts = inspect_files(root, existing_rels, progress, describe=False)
    new_facts = inspect_files(root, new_rels, progress, describe=folder)
    refuse_problems(old_facts + new_facts, root)
    if existing_rels and all(f.missing for f in old_facts) and any(not i.missing for i in items):
        raise ValidationError(f"{root} holds none of the {len(existing_rels)} images of {name!r}; is the right drive "
                              "mounted? Nothing was changed")

    changed, gone, back, unchanged = [], [], [], 0
    for f in old_facts:
        item = by_path[f.rel]
        if f.missing:
            if not item.missing:
                gone.append(item.item_ref)
            continue
        if item.file_sha256 is not None and f.sha256 != item.file_sha256:
            changed.append((item.item_ref, f))
        elif item.missing:
            back.append((item.item_ref, f))
        else:
            unchanged += 1
    progress.check()
    # A changed file's header (size, EXIF) is read again only for the few that changed.
    described = {f.rel: f for f in inspect_files(root, [f.rel for _, f in changed], Progress(), describe=True)} \
        if folder else {}
    start = max((i.position for i in items), default=-1) + 1
    now = utcnow()
    with store.session() as s:
        row = find_sheet(s, sheet_id)
        raw = raw_connection(s)
        if folder and new_facts:
            insert_arrow(s, "sheet_items", item_table(sheet_id, new_facts, start), casts={"metadata": "JSON"})
        elif new_rows:
            facts_by_rel = {f.rel: f for f in new_facts}
            rows_facts = [facts_by_rel.get(rel) if rel else None for _, rel, _ in new_rows]
            insert_arrow(s, "sheet_items", pa.table({
                "id": new_ids(len(new_rows)),
                "sheet_id": [sheet_id] * len(new_rows),
                "item_ref": [k for k, _, _ in new_rows],
                "position": list(range(start, start + len(new_rows))),
                "image_path": [rel for _, rel, _ in new_rows],
                "file_sha256": [f.sha256 if f else None for f in rows_facts],
                "file_size": pa.array([f.size if f else None for f in rows_facts], pa.int64()),
                "missing": [bool(rel) and (f is None or f.sha256 is None)
                            for (_, rel, _), f in zip(new_rows, rows_facts, strict=True)],
                "metadata": [json.dumps(m, ensure_ascii=False) for _, _, m in new_rows],
            }), casts={"metadata": "JSON"})
        _update_files(raw, s, sheet_id, [(ref, described.get(f.rel, f)) for ref, f in changed], bump=True, now=now,
                      folder=folder)
        _update_files(raw, s, sheet_id, back, bump=False, now=now, folder=False)
        if gone:
            raw.register("_gone", pa.table({"item_ref": gone}))
            try:
                raw.execute("UPDATE sheet_items SET missing = true WHERE sheet_id = ? AND item_ref IN "
                            "(SELECT item_ref FROM _gone)", [sheet_id])
            finally:
                raw.unregister("_gone")
        flagged = labels.flag_changed_items(s, sheet_id=sheet_id, item_refs=[r for r, _ in changed]) if changed else 0
        total, missing = raw.execute("SELECT count(*), count(*) FILTER (WHERE missing) FROM sheet_items "
                                     "WHERE sheet_id = ?", [sheet_id]).fetchone()
        s.execute(sa.update(Sheet).where(Sheet.id == sheet_id).values(item_count=int(total),
                                                                       missing_count=int(missing), rescanned_at=now))
        new_refs = [f.rel for f in new_facts] if folder else [k for k, _, _ in new_rows]
        report = RescanReport(name, len(new_refs), len(changed), len(gone), len(back), unchanged, flagged,
                              new_refs[:MAX_REPORTED], [r for r, _ in changed][:MAX_REPORTED], gone[:MAX_REPORTED])
        audit.record(s, actor, "sheet.rescan", name, {k: v for k, v in report.to_dict().items()
                                                      if not k.endswith("_items")})
    progress.finish(report.text())
    return report, Changes(sheets=True, labels=bool(flagged))


def _update_files(raw, session, sheet_id: str, entries: list[tuple[str, FileFacts]], *, bump: bool, now,
                  folder: bool) -> None:
    """New hash, size (and, for folder sheets, file metadata) for items; `bump` makes a new item version."""
    if not entries:
        return
    session.flush()
    raw.register("_files", pa.table({
        "item_ref": [r for r, _ in entries], "sha": [f.sha256 for _, f in entries],
        "size": pa.array([f.size for _, f in entries], pa.int64()),
        "meta": [json.dumps(f.metadata, ensure_ascii=False) for _, f in entries],
    }))
    try:
        raw.execute(
            "UPDATE sheet_items SET file_sha256 = f.sha, file_size = f.size, missing = false"
            + (", item_version = coalesce(item_version, 1) + 1, changed_at = ?" if bump else "")
            + (", metadata = CAST(f.meta AS JSON)" if folder else "")
            + " FROM _files f WHERE sheet_items.sheet_id = ? AND sheet_items.item_ref = f.item_ref",
            ([now] if bump else []) + [sheet_id])
    finally:
        raw.unregister("_files")
