"""Vectorised preparation of a label file for the write path: a million rows checked in DuckDB,
with Python work only per DISTINCT value.

A label file repeats itself: a few label_data values, a few combinations of usage
constraints, one or two sheets. So the rules of `label_records.prepare_records` run here once
per distinct value (parse, finite numbers, schema, canonical JSON; uses and the sheet's
classification), and per-row checks (item exists, key given once, confidence known) are SQL.
The result is an `INCOMING` batch for `label_write.apply_table`: the same rules, the same
messages naming the rows, without a Python object per row. Label types whose shapes must be
checked against each item's image (boxes, polygons, points) take the per-record path.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pyarrow as pa
from sqlalchemy.orm import Session

from vital_desktop.core import governance, strict_json
from vital_desktop.core.errors import ValidationError
from vital_desktop.services import label_types
from vital_desktop.services.label_records import CONFIDENCE_LEVELS, MAX_ERRORS_REPORTED, SHAPE_KINDS
from vital_desktop.services.label_write import INCOMING, _json_list
from vital_desktop.store.bulk import raw_connection

#: Columns a label file may have (others are ignored); all are read as text.
COLUMNS = ("sheet", "sheet_name", "sheet_id", "item_ref", "label_type", "label_data", "allowed_uses",
           "prohibited_uses", "usage_reason", "confidence", "notes")
_views = itertools.count()


def split_uses(value: Any) -> list[str] | None:
    """A uses cell: '' → None (not given); JSON list text; or names separated by , or ;."""
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = strict_json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"uses {text!r} are not a valid JSON list ({exc.msg})") from None
        if not isinstance(parsed, list):
            raise ValidationError(f"uses {text!r} must be a list")
        return [str(v) for v in parsed]
    return [u.strip() for u in text.replace(";", ",").split(",") if u.strip()]


class _Errors:
    """(row, message) pairs from every check; the refusal names the first rows in file order."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []

    def add_rows(self, rows: list[tuple], message) -> None:
        for row in rows:
            self.found.append((int(row[0]), message(*row[1:])))

    def raise_if_any(self) -> None:
        if self.found:
            messages = [f"row {row}: {text}" for row, text in sorted(self.found)[:MAX_ERRORS_REPORTED]]
            raise ValidationError("; ".join(messages), details={"errors": messages})


def _text(table: pa.Table, name: str) -> str:
    """SQL for a text column of the file ('' when the file has no such column)."""
    return f"coalesce(f.\"{name}\", '')" if name in table.column_names else "''"


def prepare_table(
    session: Session, table: pa.Table, *, default_sheet: str | None = None, default_label_type: str | None = None,
    first_row_number: int = 1,
) -> pa.Table | None:
    """The file's rows as an `INCOMING` batch, or None when a label type needs per-item shape
    checks (use the per-record path then). Raises `ValidationError` naming the bad rows."""
    for name in table.column_names:
        if name in COLUMNS and not pa.types.is_string(table.schema.field(name).type) \
                and not pa.types.is_null(table.schema.field(name).type):
            return None  # e.g. Parquet with label_data as a struct: the per-record path reads it
    raw = raw_connection(session)
    session.flush()
    view = f"_label_file_{next(_views)}"
    numbered = table.select([c for c in table.column_names if c in COLUMNS]).append_column(
        "_row", pa.array(np.arange(first_row_number, first_row_number + table.num_rows, dtype=np.int64)))
    raw.register(view, numbered)
    try:
        return _prepare(raw, view, numbered, default_sheet, default_label_type, session, first_row_number)
    finally:
        raw.unregister(view)


def _prepare(raw: Any, view: str, table: pa.Table, default_sheet: str | None, default_label_type: str | None,
             session: Session, first_row_number: int) -> pa.Table | None:
    errors = _Errors()
    sheet_cols = [c for c in ("sheet", "sheet_name", "sheet_id") if c in table.column_names]
    sheet_expr = "coalesce(" + ", ".join([f"nullif(f.\"{c}\", '')" for c in sheet_cols] + ["$default_sheet"]) + ")"
    type_expr = ("coalesce(nullif(f.label_type, ''), $default_type)" if "label_type" in table.column_names
                 else "$default_type")
    params = {"default_sheet": default_sheet, "default_type": default_label_type}
    base = (f"SELECT f._row AS row_number, {sheet_expr} AS sheet_ref, trim({_text(table, 'item_ref')}) AS item_ref, "
            f"{type_expr} AS label_type, f.label_data AS data_text, {_text(table, 'allowed_uses')} AS allowed_text, "
            f"{_text(table, 'prohibited_uses')} AS prohibited_text, {_text(table, 'usage_reason')} AS usage_reason, "
            f"nullif({_text(table, 'confidence')}, '') AS confidence, {_text(table, 'notes')} AS notes "
            f"FROM {view} f") if "label_data" in table.column_names else None
    if base is None:
        raise ValidationError("row 1: no label_data (add a label_data column)")
    raw.execute(f"CREATE TEMP TABLE {view}_rows AS {base}", params)
    rows = f"{view}_rows"
    try:
        limit = MAX_ERRORS_REPORTED
        errors.add_rows(raw.execute(f"SELECT row_number FROM {rows} WHERE sheet_ref IS NULL ORDER BY 1 LIMIT {limit}")
                        .fetchall(), lambda: "no sheet (add a 'sheet' column or pass --sheet)")
        errors.add_rows(raw.execute(f"SELECT row_number FROM {rows} WHERE item_ref = '' ORDER BY 1 LIMIT {limit}")
                        .fetchall(), lambda: "no item_ref")
        errors.add_rows(raw.execute(f"SELECT row_number FROM {rows} WHERE label_type IS NULL ORDER BY 1 "
                                    f"LIMIT {limit}").fetchall(),
                        lambda: "no label_type (add a column or pass --label-type)")
        errors.add_rows(raw.execute(f"SELECT row_number FROM {rows} WHERE data_text IS NULL OR data_text = '' "
                                    f"ORDER BY 1 LIMIT {limit}").fetchall(), lambda: "no label_data")
        errors.add_rows(raw.execute(
            f"SELECT row_number, confidence FROM {rows} WHERE confidence IS NOT NULL AND confidence NOT IN "
            f"({', '.join(repr(c) for c in CONFIDENCE_LEVELS)}) ORDER BY 1 LIMIT {limit}").fetchall(),
            lambda value: f"confidence {value!r} must be one of {', '.join(CONFIDENCE_LEVELS)}")
        errors.raise_if_any()

        sheets = _sheets(raw, rows, errors)
        types = _types(raw, rows, session, errors)
        errors.raise_if_any()
        if any(lt.kind in SHAPE_KINDS for lt in types.values()):
            return None
        data_map = _label_data(raw, rows, types, errors)
        uses_map = _uses(raw, rows, sheets, errors)
        errors.raise_if_any()
        for name, mapping in (("sheets", sheets), ("data", data_map), ("uses", uses_map)):
            raw.register(f"{view}_{name}", mapping["table"])
        try:
            raw.execute(
                f"CREATE TEMP TABLE {view}_ready AS SELECT r.row_number, s.sheet_id, s.sheet_name, r.item_ref, "
                "r.label_type, d.canonical AS label_data, u.allowed_json, u.prohibited_json, u.reason_text, "
                "u.tags_json, u.keep_uses, r.confidence, r.notes "
                f"FROM {rows} r JOIN {view}_sheets s ON s.sheet_ref = r.sheet_ref "
                f"JOIN {view}_data d ON d.label_type = r.label_type AND d.data_text = r.data_text "
                f"JOIN {view}_uses u ON u.sheet_ref = r.sheet_ref AND u.allowed_text = r.allowed_text "
                "AND u.prohibited_text = r.prohibited_text AND u.usage_reason = r.usage_reason")
        finally:
            for name in ("sheets", "data", "uses"):
                raw.unregister(f"{view}_{name}")
        ready = f"{view}_ready"
        try:
            _check_keys(raw, ready, errors)
            errors.raise_if_any()
            return raw.sql(
                f"SELECT (row_number - {int(first_row_number)})::BIGINT AS pos, sheet_id, item_ref, label_type, label_data, "
                "allowed_json AS allowed_uses, prohibited_json AS prohibited_uses, reason_text AS usage_reason, "
                "tags_json AS data_classification, confidence, notes, NULL::BIGINT AS expected_version, "
                "'' AS reason, row_number AS \"row\", false AS withdraw, keep_uses "
                f"FROM {ready} ORDER BY row_number").to_arrow_table().cast(INCOMING)
        finally:
            raw.execute(f"DROP TABLE {ready}")
    finally:
        raw.execute(f"DROP TABLE {rows}")


def _sheets(raw: Any, rows: str, errors: _Errors) -> dict:
    """sheet name or id → (id, name, classification tags)."""
    known: dict[str, tuple[str, str, list[str]]] = {}
    for sheet_id, name, tags in raw.execute("SELECT id, name, classification::VARCHAR FROM sheets").fetchall():
        entry = (sheet_id, name, json.loads(tags) if tags else [])
        known[name] = entry
        known[sheet_id] = entry
    refs = [r[0] for r in raw.execute(f"SELECT DISTINCT sheet_ref FROM {rows} WHERE sheet_ref IS NOT NULL").fetchall()]
    for ref in refs:
        if ref not in known:
            errors.add_rows(raw.execute(f"SELECT min(row_number) FROM {rows} WHERE sheet_ref = ?", [ref]).fetchall(),
                            lambda ref=ref: f"unknown sheet {ref!r}")
    good = [r for r in refs if r in known]
    return {"table": pa.table({"sheet_ref": good, "sheet_id": [known[r][0] for r in good],
                               "sheet_name": [known[r][1] for r in good]}, schema=pa.schema(
        [("sheet_ref", pa.string()), ("sheet_id", pa.string()), ("sheet_name", pa.string())])),
        "tags": {r: known[r][2] for r in good}}


def _types(raw: Any, rows: str, session: Session, errors: _Errors) -> dict[str, Any]:
    found = {}
    for (name,) in raw.execute(f"SELECT DISTINCT label_type FROM {rows} WHERE label_type IS NOT NULL").fetchall():
        try:
            found[name] = label_types.get_label_type(session, name)
        except ValidationError as exc:
            errors.add_rows(raw.execute(f"SELECT min(row_number) FROM {rows} WHERE label_type = ?", [name]).fetchall(),
                            lambda message=exc.message: message)
    return found


def _label_data(raw: Any, rows: str, types: dict[str, Any], errors: _Errors) -> dict:
    """Each distinct (label_type, label_data text): parsed, checked, canonical JSON."""
    out_type, out_text, out_canon = [], [], []
    distinct = raw.execute(f"SELECT label_type, data_text, min(row_number) FROM {rows} "
                           "WHERE data_text IS NOT NULL AND data_text <> '' GROUP BY ALL").fetchall()
    for label_type, text, first_row in distinct:
        try:
            try:
                data = strict_json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"label_data is not valid JSON ({exc.msg})") from None
            if not isinstance(data, dict):
                raise ValidationError("label_data must be a JSON object")
            canonical = strict_json.canonical_json(data, what="label_data")
            label_types.check_label_data(types[label_type], data)
        except ValidationError as exc:
            errors.add_rows([(first_row,)], lambda message=exc.message: message)
            continue
        out_type.append(label_type)
        out_text.append(text)
        out_canon.append(canonical)
    return {"table": pa.table({"label_type": out_type, "data_text": out_text, "canonical": out_canon},
                              schema=pa.schema([("label_type", pa.string()), ("data_text", pa.string()),
                                                ("canonical", pa.string())]))}


def _uses(raw: Any, rows: str, sheets: dict, errors: _Errors) -> dict:
    """Each distinct (sheet, allowed, prohibited, reason): the effective constraints."""
    columns: dict[str, list] = {k: [] for k in ("sheet_ref", "allowed_text", "prohibited_text", "usage_reason",
                                                "allowed_json", "prohibited_json", "reason_text", "tags_json",
                                                "keep_uses")}
    distinct = raw.execute(f"SELECT sheet_ref, allowed_text, prohibited_text, usage_reason, min(row_number) "
                           f"FROM {rows} WHERE sheet_ref IS NOT NULL GROUP BY ALL").fetchall()
    for sheet_ref, allowed_text, prohibited_text, reason, first_row in distinct:
        if sheet_ref not in sheets["tags"]:
            continue
        tags = sheets["tags"][sheet_ref]
        try:
            allowed, prohibited = split_uses(allowed_text), split_uses(prohibited_text)
            eff_allowed, eff_prohibited, eff_reason = governance.apply_classification(tags, allowed, prohibited, reason)
        except ValidationError as exc:
            errors.add_rows([(first_row,)], lambda message=exc.message: message)
            continue
        for key, value in (("sheet_ref", sheet_ref), ("allowed_text", allowed_text),
                           ("prohibited_text", prohibited_text), ("usage_reason", reason),
                           ("allowed_json", _json_list(eff_allowed)), ("prohibited_json", _json_list(eff_prohibited)),
                           ("reason_text", eff_reason), ("tags_json", _json_list(tags)),
                           ("keep_uses", allowed is None and prohibited is None and not reason)):
            columns[key].append(value)
    schema = pa.schema([(k, pa.bool_() if k == "keep_uses" else pa.string()) for k in columns])
    return {"table": pa.table(columns, schema=schema)}


def _check_keys(raw: Any, ready: str, errors: _Errors) -> None:
    """Every item exists in its sheet; no key is given twice."""
    limit = MAX_ERRORS_REPORTED
    errors.add_rows(raw.execute(
        f"SELECT r.row_number, r.sheet_name, r.item_ref FROM {ready} r ANTI JOIN sheet_items i "
        f"ON i.sheet_id = r.sheet_id AND i.item_ref = r.item_ref ORDER BY 1 LIMIT {limit}").fetchall(),
        lambda sheet, item: f"sheet {sheet!r} has no item {item!r}")
    errors.add_rows(raw.execute(
        f"SELECT row_number, item_ref, label_type, first_row FROM (SELECT row_number, item_ref, label_type, "
        "min(row_number) OVER (PARTITION BY sheet_id, item_ref, label_type) AS first_row "
        f"FROM {ready}) WHERE row_number > first_row ORDER BY 1 LIMIT {limit}").fetchall(),
        lambda item, label_type, first: f"duplicate label for item {item!r} ({label_type}), first given on row {first}")
