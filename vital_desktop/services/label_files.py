"""Label files: bulk import (CSV, JSONL, Parquet) through the one write path, labels arriving in
hub bundles, and exports of the current labels (csv, jsonl, parquet, COCO)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core import strict_json
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services import label_bulk
from vital_desktop.services.accounts import require
from vital_desktop.services.input_limits import (
    MAX_CELL_CHARS,
    MAX_LABEL_DATA_CHARS,
    mixed_line_endings,
    refuse_long_cells,
)
from vital_desktop.services.label_bulk import split_uses
from vital_desktop.services.label_write import (
    LabelRecord,
    RowErrors,
    UpsertOutcome,
    apply_table,
    prepare_records,
    upsert_records,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import Sheet

#: the export formats (the registry in `services.formats` is the reference; kept for old callers)
EXPORT_FORMATS = ("csv", "jsonl", "parquet", "coco", "yolo", "voc", "labelme", "label-studio", "cvat", "folder")

_split_uses = split_uses


def _read_label_file(path: Path) -> pa.Table | list[dict]:
    """CSV and Parquet as an Arrow table (every CSV cell as text); JSONL as rows."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ValidationError(f"label file {path} does not exist")
    try:
        if suffix == ".csv":
            return _read_csv(path)
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            rows.append(strict_json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ValidationError(f"{path.name} row {number}: not valid JSON ({exc.msg})") from None
                        except ValidationError as exc:
                            raise ValidationError(f"{path.name} row {number}: {exc.message}") from None
            return rows
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
    except UnicodeDecodeError as exc:
        raise ValidationError(f"label file {path.name} is not UTF-8 text: {exc}") from None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValidationError(f"label file {path.name} cannot be read: {exc}") from None
    raise ValidationError(f"label file {path.name}: use .csv, .jsonl or .parquet")


def _read_csv(path: Path) -> pa.Table:
    import pyarrow.csv as pacsv

    with open(path, newline="", encoding="utf-8") as handle:
        first = handle.readline(MAX_CELL_CHARS)
    header = next(csv.reader([first]), [])
    if not header:
        return pa.table({})
    try:
        table = pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        mixed = mixed_line_endings(path)
        if mixed:
            raise ValidationError(f"label file {path.name} mixes Windows (CRLF) and Unix (LF) line endings ({mixed}) "
                                  "and cannot be read as one table; save it again with one kind of line ending") \
                from None
        raise ValidationError(f"label file {path.name} cannot be read: {str(exc).splitlines()[0]}") from None
    refuse_long_cells(table, f"label file {path.name}", first_row=1, limits={"label_data": MAX_LABEL_DATA_CHARS})
    return table


def records_from_rows(
    session: Session, rows: list[dict], *, default_sheet: str | None = None, default_label_type: str | None = None,
    first_row_number: int = 1,
) -> list[LabelRecord]:
    """Turn file rows (sheet, item_ref, label_type, label_data, uses…) into records; bad rows are named."""
    sheets_by_ref: dict[str, str] = {}
    for sheet in session.scalars(sa.select(Sheet)):
        sheets_by_ref[sheet.name] = sheet.id
        sheets_by_ref[sheet.id] = sheet.id
    records = []
    errors = RowErrors()
    for offset, raw in enumerate(rows):
        number = first_row_number + offset
        try:
            if not isinstance(raw, dict):
                raise ValidationError("each row must be an object")
            sheet_ref = raw.get("sheet") or raw.get("sheet_name") or raw.get("sheet_id") or default_sheet
            if not sheet_ref:
                raise ValidationError("no sheet (add a 'sheet' column or pass --sheet)")
            if sheet_ref not in sheets_by_ref:
                raise ValidationError(f"unknown sheet {sheet_ref!r}")
            item_ref = raw.get("item_ref")
            if item_ref is None or str(item_ref).strip() == "":
                raise ValidationError("no item_ref")
            label_type = raw.get("label_type") or default_label_type
            if not label_type:
                raise ValidationError("no label_type (add a column or pass --label-type)")
            data = raw.get("label_data")
            if isinstance(data, str):
                try:
                    data = strict_json.loads(data)
                except json.JSONDecodeError as exc:
                    raise ValidationError(f"label_data is not valid JSON ({exc.msg})") from None
            if data is None:
                raise ValidationError("no label_data")
            records.append(LabelRecord(
                sheet_id=sheets_by_ref[sheet_ref], item_ref=str(item_ref), label_type=str(label_type),
                label_data=data, allowed_uses=_split_uses(raw.get("allowed_uses")),
                prohibited_uses=_split_uses(raw.get("prohibited_uses")), usage_reason=raw.get("usage_reason") or "",
                confidence=(raw.get("confidence") or None), notes=raw.get("notes") or "", row=number,
            ))
        except ValidationError as exc:
            if errors.add(f"row {number}: {exc.message}"):
                break
    errors.raise_if_any()
    return records


def import_labels(
    store: Store, *, actor: User, path: Path | str, sheet: str | None = None, label_type: str | None = None,
    progress: Progress | None = None,
) -> tuple[UpsertOutcome, Changes]:
    """Import a CSV/JSONL/Parquet file of labels in ONE transaction: a bad row refuses the file.

    CSV and text Parquet files are checked vectorised (`label_bulk`); the rest record by record.
    Both end in the one write path."""
    require(actor, "label")
    progress = progress or Progress()
    path = Path(path)
    progress.start(3, f"reading {path.name}")
    content = _read_label_file(path)
    count = content.num_rows if isinstance(content, pa.Table) else len(content)
    if not count:
        raise ValidationError(f"label file {path.name} has no rows")
    progress.set(1, f"checking {count} labels")
    with store.session() as s:
        incoming = None
        if isinstance(content, pa.Table):
            incoming = label_bulk.prepare_table(s, content, default_sheet=sheet, default_label_type=label_type)
        progress.check()
        progress.set(2, f"writing {count} labels")
        if incoming is not None:
            outcome = apply_table(s, actor, incoming, action="import")
        else:
            rows = content.to_pylist() if isinstance(content, pa.Table) else content
            records = prepare_records(s, records_from_rows(s, rows, default_sheet=sheet, default_label_type=label_type))
            outcome = upsert_records(s, actor, records, action="import")
        audit.record(s, actor, "label.import", path.name, {"rows": count, **outcome.to_dict()})
    progress.finish(f"imported {count} labels")
    return outcome, Changes(labels=True)


def apply_incoming_labels(session: Session, actor: User, rows: list[dict], *, origin: str = "hub") -> UpsertOutcome:
    """Labels arriving in a bundle, inside the importer's transaction. Disagreements become conflicts."""
    records = prepare_records(session, records_from_rows(session, rows))
    outcome = upsert_records(session, actor, records, origin=origin, action="import")
    audit.record(session, actor, "label.bundle_import", origin, outcome.to_dict())
    return outcome


def export_labels(store: Store, **kwargs) -> dict:
    """Export current labels; every format lives in `services.formats` (kept here for old callers)."""
    from vital_desktop.services.formats import export_labels as export

    return export(store, **kwargs)


def label_csv_template() -> str:
    """The header a bulk-import CSV needs (shown by the CLI and the GUI's import dialog)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["sheet", "item_ref", "label_type", "label_data", "allowed_uses", "prohibited_uses",
                                 "usage_reason", "confidence", "notes"])
    return buffer.getvalue()
