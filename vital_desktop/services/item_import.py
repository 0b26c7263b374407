"""Sheets of documents or telemetry series: read every file, check it, then write once.

`import_documents` makes one item per PDF / plain-text / Markdown file under a folder (item ref:
the path relative to the folder); `import_telemetry` makes one item per CSV/Parquet file in a
folder, or one per value of a key column of one file. Each file is read, hashed and checked
first; every file that cannot be used is named in one error and nothing is written. The item
index, the extracted text / series (`item_contents`) and the audit row are written in one
transaction. Labels on these items go through the one label write path like any other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, ValidationError
from vital_desktop.core.ids import new_id, new_ids, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services import documents, telemetry
from vital_desktop.services.accounts import require
from vital_desktop.services.item_kinds import DOCUMENT, TELEMETRY, item_kind
from vital_desktop.services.item_text import document_prompt_text, telemetry_prompt_text
from vital_desktop.services.sheet_scan import MAX_REPORTED, check_root, inspect_file
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet

TELEMETRY_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")
#: sheets.metadata_format of the sheets made here
FORMATS = {DOCUMENT: "documents", TELEMETRY: "telemetry"}


@dataclass(frozen=True)
class ItemImportReport:
    """What a document or telemetry import made (the sheet, items, pages, warnings)."""

    sheet: Any  # sheets.SheetInfo
    kind: str
    items: int
    pages: int = 0
    points: int = 0
    warnings: list[str] = field(default_factory=list)  # "item: warning", the first few
    labels: int = 0
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"sheet": self.sheet.to_dict(), "kind": self.kind, "items": self.items, "pages": self.pages,
                "points": self.points, "warnings": self.warnings[:MAX_REPORTED],
                "warning_count": len(self.warnings), "labels": self.labels, "missing_count": 0, "missing": []}


@dataclass
class _Item:
    ref: str
    sha256: str | None
    size: int | None
    metadata: dict[str, Any]
    text: str | None = None
    series: dict[str, Any] | None = None


def list_files(root: Path, suffixes: tuple[str, ...]) -> list[str]:
    """Relative POSIX paths of the files under `root` with one of `suffixes`, sorted; hidden skipped."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            if not name.startswith(".") and Path(name).suffix.lower() in suffixes:
                found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
    return sorted(found)


def _check_new(store: Store, name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError("a sheet needs a name")
    with store.read() as s:
        if s.scalar(sa.select(Sheet.id).where(Sheet.name == name)) is not None:
            raise ConflictError(f"a sheet named {name!r} already exists")
    return name


def _refuse(problems: list[str], what: str) -> None:
    if problems:
        more = f" (and {len(problems) - MAX_REPORTED} more)" if len(problems) > MAX_REPORTED else ""
        raise ValidationError(f"{len(problems)} {what} cannot be imported: " + "; ".join(problems[:MAX_REPORTED]) + more)


def _read_document(root: Path, rel: str) -> _Item:
    facts = inspect_file(root, rel, describe=False)
    if facts.problem or facts.sha256 is None:
        raise ValidationError(f"{rel}: {facts.problem or 'not there'}")
    try:
        doc = documents.extract(root / rel)
    except ValidationError as exc:
        rest = exc.message.removeprefix(f"document {Path(rel).name}")
        raise ValidationError(f"{rel}{rest}" if rest != exc.message else f"{rel}: {exc.message}") from exc
    metadata = {
        "item_kind": DOCUMENT, "file_name": Path(rel).name, "file_path": rel, "format": doc.format,
        "file_size": facts.size, "pages": doc.pages, "chars": doc.chars, "warnings": doc.warnings,
        "truncated": doc.truncated, "document_text": document_prompt_text(doc.text),
    }
    return _Item(rel, facts.sha256, facts.size, metadata, text=doc.text)


def import_documents(
    store: Store, *, actor: User, name: str, folder: Path | str, classification: str | list[str] | None = None,
    description: str = "", progress: Progress | None = None,
) -> tuple[ItemImportReport, Changes]:
    """A sheet of every document (PDF, .txt, .md) under `folder`; see the module docstring."""
    from vital_desktop.services.sheets import parse_classification

    require(actor, "import_sheet")
    progress = progress or Progress()
    name = _check_new(store, name)
    tags = parse_classification(classification)
    root = check_root(folder, "document folder")
    rels = list_files(root, documents.DOCUMENT_SUFFIXES)
    if not rels:
        raise ValidationError(f"{root} holds no documents ({', '.join(documents.DOCUMENT_SUFFIXES)})")
    progress.start(len(rels), f"reading {len(rels)} documents")
    items: list[_Item] = []
    problems: list[str] = []
    for rel in rels:
        progress.check()
        try:
            items.append(_read_document(root, rel))
        except ValidationError as exc:
            problems.append(exc.message)
        progress.advance()
    _refuse(problems, "document(s)")
    warnings = [f"{i.ref}: {w}" for i in items for w in i.metadata["warnings"]]
    report = _write(store, actor, name=name, kind=DOCUMENT, root=root, source="", items=items, tags=tags,
                    description=description, extra_columns=[], audit_details={"folder": str(root)})
    pages = sum(int(i.metadata["pages"]) for i in items)
    progress.finish(f"imported {len(items)} documents ({pages} pages)")
    return ItemImportReport(report, DOCUMENT, len(items), pages=pages, warnings=warnings), Changes(sheets=True)


def _series_item(ref: str, table: pa.Table, *, source: str, file_name: str, time_column: str | None,
                 channels: list[str], descriptive: list[str], sha256: str | None, size: int | None) -> _Item:
    series = telemetry.summarise(table, channels=channels, time_column=time_column, descriptive=descriptive)
    summary = series.summary()
    metadata: dict[str, Any] = {
        **{k: v for k, v in series.fields.items()},
        "item_kind": TELEMETRY, "file_name": file_name, "points": series.points, "channels": channels,
        "time_start": series.time_range[0] if series.time_range else None,
        "time_end": series.time_range[1] if series.time_range else None,
        "telemetry_summary": telemetry_prompt_text(summary, series.fields),
    }
    return _Item(ref, sha256, size, metadata, series={"summary": summary, "plot": series.plot})


def import_telemetry(
    store: Store, *, actor: User, name: str, path: Path | str, group_by: str | None = None,
    time_column: str | None = None, columns: list[str] | None = None, classification: str | list[str] | None = None,
    description: str = "", progress: Progress | None = None,
) -> tuple[ItemImportReport, Changes]:
    """A sheet of telemetry series: one item per file of a folder, or per `group_by` value of one file."""
    from vital_desktop.services.sheets import parse_classification, sha256_file

    require(actor, "import_sheet")
    progress = progress or Progress()
    name = _check_new(store, name)
    tags = parse_classification(classification)
    source = Path(path).expanduser()
    items: list[_Item] = []
    problems: list[str] = []
    descriptive: list[str] = []
    if source.is_dir():
        if group_by:
            raise ValidationError("--group-by groups the rows of one telemetry file; give a file, not a folder")
        root = source.resolve()
        rels = list_files(root, TELEMETRY_SUFFIXES)
        if not rels:
            raise ValidationError(f"{root} holds no telemetry files ({', '.join(TELEMETRY_SUFFIXES)})")
        progress.start(len(rels), f"reading {len(rels)} telemetry files")
        for rel in rels:
            progress.check()
            try:
                facts = inspect_file(root, rel, describe=False)
                if facts.problem:
                    raise ValidationError(f"telemetry file {rel}: {facts.problem}")
                table = telemetry.read_table(root / rel)
                time_col = telemetry.pick_time_column(table, time_column)
                exclude = tuple(c for c in (time_col,) if c)
                channels = telemetry.numeric_columns(table, source=f"telemetry file {rel}", exclude=exclude,
                                                     wanted=columns)
                desc = telemetry.text_columns(table, exclude=[*channels, *exclude])
                descriptive = list(dict.fromkeys([*descriptive, *desc]))
                items.append(_series_item(rel, table, source=rel, file_name=Path(rel).name, time_column=time_col,
                                          channels=channels, descriptive=desc, sha256=facts.sha256, size=facts.size))
            except ValidationError as exc:
                problems.append(exc.message)
            progress.advance()
        _refuse(problems, "telemetry file(s)")
        origin = ""
    else:
        if not source.is_file():
            raise ValidationError(f"telemetry file {source} is not there")
        if not group_by:
            raise ValidationError(f"say which column groups the rows of {source.name} into items (--group-by KEY), "
                                  "or give a folder with one file per item")
        source = source.resolve()
        root = source.parent
        table = telemetry.read_table(source)
        where = f"telemetry file {source.name}"
        index = telemetry.groups(table, group_by, source=where)
        time_col = telemetry.pick_time_column(table, time_column, exclude=(group_by,))
        exclude = tuple(c for c in (group_by, time_col) if c)
        channels = telemetry.numeric_columns(table, source=where, exclude=exclude, wanted=columns)
        descriptive = telemetry.text_columns(table, exclude=[*channels, *exclude])
        digest, size = sha256_file(source), source.stat().st_size
        progress.start(len(index), f"summarising {len(index)} series of {source.name}")
        for key, rows in index.items():
            progress.check()
            items.append(_series_item(key, table.take(pa.array(rows)), source=where, file_name=source.name,
                                      time_column=time_col, channels=channels, descriptive=descriptive,
                                      sha256=digest, size=size))
            items[-1].metadata[group_by] = key
            progress.advance()
        origin = str(source)
    report = _write(store, actor, name=name, kind=TELEMETRY, root=root, source=origin, items=items, tags=tags,
                    description=description, extra_columns=[*([group_by] if group_by else []), *descriptive],
                    audit_details={"path": str(source), "group_by": group_by})
    points = sum(int(i.metadata["points"]) for i in items)
    progress.finish(f"imported {len(items)} telemetry series ({points} readings)")
    return ItemImportReport(report, TELEMETRY, len(items), points=points), Changes(sheets=True)


def _write(store: Store, actor: User, *, name: str, kind: str, root: Path, source: str, items: list[_Item],
           tags: list[str], description: str, extra_columns: list[str], audit_details: dict) -> Any:
    """The sheet row, its items and their contents in one transaction; returns the `SheetInfo`."""
    from vital_desktop.services.sheets import _sheet_info

    sheet_id = new_id()
    columns = list(dict.fromkeys([*extra_columns, *item_kind(kind).columns]))
    rows = pa.table({
        "id": new_ids(len(items)),
        "sheet_id": [sheet_id] * len(items),
        "item_ref": [i.ref for i in items],
        "position": list(range(len(items))),
        "image_path": pa.array([None] * len(items), pa.string()),
        "file_sha256": [i.sha256 for i in items],
        "file_size": pa.array([i.size for i in items], pa.int64()),
        "missing": [False] * len(items),
        "metadata": [json.dumps(i.metadata, ensure_ascii=False, default=str) for i in items],
    })
    now = utcnow()
    contents = pa.table({
        "sheet_id": [sheet_id] * len(items),
        "item_ref": [i.ref for i in items],
        "kind": [kind] * len(items),
        "text": pa.array([i.text for i in items], pa.string()),
        "series": pa.array([None if i.series is None else json.dumps(i.series, default=str) for i in items],
                           pa.string()),
        "created_at": [now] * len(items),
    })
    with store.session() as s:
        sheet = Sheet(id=sheet_id, name=name, description=description, metadata_path=source,
                      metadata_format=FORMATS[kind], image_root=str(root), key_column="item_ref", image_column=None,
                      columns=columns, classification=tags, item_count=len(items), missing_count=0,
                      created_by=actor.username, item_kind=kind)
        s.add(sheet)
        s.flush()
        insert_arrow(s, "sheet_items", rows, casts={"metadata": "JSON"})
        insert_arrow(s, "item_contents", contents, casts={"series": "JSON"})
        audit.record(s, actor, "sheet.import", name, {"items": len(items), "kind": kind, "classification": tags,
                                                        **audit_details})
        return _sheet_info(sheet)
