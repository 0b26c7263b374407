"""Today's tabular formats: one row per label (sheet, item_ref, label_type, label_data, uses…).

They hold labels of any kind. Import goes through `labels.records_from_rows` (rows already
name their item and type); export writes the governed rows as they are.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import iso
from vital_desktop.services.formats.base import ExportSet, Format, ImageLabels

_JSON_COLUMNS = ("label_data", "allowed_uses", "prohibited_uses", "data_classification")


def write_parquet(target: Path, export: ExportSet) -> None:
    import pyarrow.parquet as pq

    pq.write_table(export.rows, target)


def write_jsonl(target: Path, export: ExportSet) -> None:
    with open(target, "w", encoding="utf-8") as handle:
        for row in export.rows.to_pylist():
            for key in _JSON_COLUMNS:
                row[key] = json.loads(row[key])
            row["updated_at"] = iso(row["updated_at"])
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe (shown as text)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def write_csv(target: Path, export: ExportSet) -> None:
    columns = export.rows.column_names
    with open(target, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in export.rows.to_pylist():
            writer.writerow({k: (iso(v) if k == "updated_at" else spreadsheet_safe(v)) for k, v in row.items()})




def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def is_label_table(path: Path) -> bool:
    """A CSV whose rows are whole labels (a ``label_data`` column), not an image → class list."""
    return path.suffix.lower() == ".csv" and "label_data" in _header(path)


def _detect_suffix(*suffixes: str):
    return lambda path: path.is_file() and path.suffix.lower() in suffixes


FORMATS = [
    Format("csv", "CSV: one label per row (a label_data column), or image → class", write=write_csv, rows=True,
           read=lambda path: read_class_csv(path), detect=_detect_suffix(".csv"), prefers_rows=is_label_table,
           read_kinds=("classification", "multilabel")),
    Format("jsonl", "JSON lines, one label per row", write=write_jsonl, rows=True,
           detect=_detect_suffix(".jsonl", ".ndjson")),
    Format("parquet", "Parquet, one label per row", write=write_parquet, rows=True, detect=_detect_suffix(".parquet")),
]


_IMAGE_COLUMNS = ("image", "image_path", "file", "file_name", "filename", "path", "item_ref")
_CLASS_COLUMNS = ("label", "class", "category", "class_name", "labels", "classes")


def read_class_csv(path: Path) -> list[ImageLabels]:
    """An image → class CSV: an image column and a class column (several classes separated by ';')."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{path.name} is not UTF-8 text: {exc.reason}") from None
    except csv.Error as exc:
        raise ValidationError(f"{path.name} is not a readable CSV: {exc}") from None
    if not rows:
        raise ValidationError(f"{path.name} has no rows")
    header = {h.strip().lower(): h for h in rows[0] if h}
    image_col = next((header[c] for c in _IMAGE_COLUMNS if c in header), None)
    class_col = next((header[c] for c in _CLASS_COLUMNS if c in header), None)
    if image_col is None or class_col is None:
        raise ValidationError(f"{path.name}: an image → class CSV needs an image column ({', '.join(_IMAGE_COLUMNS)}) "
                              f"and a class column ({', '.join(_CLASS_COLUMNS)}); it has {', '.join(rows[0])}")
    out = []
    for number, row in enumerate(rows, start=2):
        where = f"{path.name} row {number}"
        image = (row.get(image_col) or "").strip()
        if not image:
            raise ValidationError(f"{where}: no image")
        classes = [c.strip() for c in (row.get(class_col) or "").split(";") if c.strip()]
        out.append(ImageLabels(image, where, classes=classes))
    return out
