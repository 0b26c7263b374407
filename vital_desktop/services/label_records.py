"""What a label change is (`LabelRecord`) and its validation (`prepare_records`): the first half
of the one write path (`label_write.upsert_records` is the second).

Validation names the bad rows (up to ten at once) and changes nothing: the item exists, the
label data is a JSON object of finite numbers that fits its label type, shapes lie inside the
item's image, uses and confidence are known, no key is given twice. The sheet's data
classification is applied to the record's usage constraints here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core import governance
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.strict_json import canonical_json
from vital_desktop.services import label_types
from vital_desktop.store.bulk import raw_connection
from vital_desktop.store.models import Sheet, SheetItem

CONFIDENCE_LEVELS = ("high", "medium", "low")
MAX_ERRORS_REPORTED = 10
#: Label kinds whose shapes are checked against the item's image size (core/geometry).
SHAPE_KINDS = frozenset({"boxes", "polygons", "points"})


@dataclass
class LabelRecord:
    """One label change to apply, already resolved to a sheet id (see `upsert_records`)."""

    sheet_id: str
    item_ref: str
    label_type: str
    label_data: dict
    allowed_uses: list[str] | None = None
    prohibited_uses: list[str] | None = None
    usage_reason: str = ""
    confidence: str | None = None
    notes: str = ""
    expected_version: int | None = None  # the version the author saw; 0 = saw no label
    reason: str = ""
    row: int | None = None  # position in an input file, for error messages
    data_classification: list[str] = field(default_factory=list)
    data_text: str = ""  # canonical JSON of label_data, set by `prepare_records`
    withdraw: bool = False  # remove the current label (history keeps a 'withdraw' row)
    keep_uses: bool = False  # no constraints given: keep the current label's (set by `prepare_records`)
    #: the label-type version to validate against and record (None: the latest published one);
    #: an import with --add-classes names the draft it added the classes to
    label_type_version: str | None = None
    #: a new version even when nothing differs: an expert confirms the label still holds for an
    #: item whose image content changed (rescan flagged it ``content_changed``)
    confirm: bool = False


def _where(record: LabelRecord) -> str:
    return f"row {record.row}: " if record.row is not None else ""


class RowErrors:
    """Collects per-row problems of a bulk input so one refusal names several bad rows at once."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def add(self, message: str) -> bool:
        """Record a problem; True once enough are collected to stop looking."""
        self.messages.append(message)
        return len(self.messages) >= MAX_ERRORS_REPORTED

    def raise_if_any(self) -> None:
        if self.messages:
            raise ValidationError("; ".join(self.messages), details={"errors": self.messages})


# --- validation --------------------------------------------------------------------------------


def prepare_records(session: Session, records: list[LabelRecord], *, sheets: list[Sheet] | None = None
                    ) -> list[LabelRecord]:
    """Validate every record (item exists, schema, finite numbers, shapes inside the image, uses,
    confidence, no duplicate keys) and apply the sheet's classification. Raises `ValidationError`
    naming the first bad rows (up to ten). `sheets`: the records' sheet rows, if the caller has
    them already (saves a query per save)."""
    wanted = {x.sheet_id for x in records}
    given = {r.id: r for r in sheets or () if r.id in wanted}
    sheet_rows = given if set(given) == wanted else {
        r.id: r for r in session.scalars(sa.select(Sheet).where(Sheet.id.in_(wanted)))}
    known_items: dict[str, set[str]] = {}
    if len(records) == 1 and sheet_rows:  # a save: one plain keyed query (no ORM statement to build)
        session.flush()
        rec = records[0]
        known_items[rec.sheet_id] = {r[0] for r in raw_connection(session).execute(
            "SELECT item_ref FROM sheet_items WHERE sheet_id = ? AND item_ref = ?",
            [rec.sheet_id, rec.item_ref]).fetchall()}
    for sheet_id in sheet_rows if not known_items else ():
        query = sa.select(SheetItem.item_ref).where(SheetItem.sheet_id == sheet_id)
        if len(records) <= 500:  # a few labels: look up just their items, not the whole sheet
            query = query.where(SheetItem.item_ref.in_({r.item_ref for r in records if r.sheet_id == sheet_id}))
        known_items[sheet_id] = set(session.scalars(query))
    errors = RowErrors()
    types: dict[str, Any] = {}  # label type name → the version its records are validated against
    versioned: dict[tuple[str, str | None], Any] = {}
    validated: set[tuple[str, str | None, str]] = set()
    seen: dict[tuple[str, str, str], int | None] = {}
    policies: dict[tuple, tuple[list[str], list[str], str]] = {}  # constraints repeat: compute each once
    prepared = []
    for rec in records:
        try:
            sheet = sheet_rows.get(rec.sheet_id)
            if sheet is None:
                raise ValidationError(f"unknown sheet id {rec.sheet_id}")
            if rec.item_ref not in known_items[rec.sheet_id]:
                raise ValidationError(f"sheet {sheet.name!r} has no item {rec.item_ref!r}")
            type_key = (rec.label_type, rec.label_type_version)
            if type_key not in versioned:
                versioned[type_key] = label_types.get_label_type(session, rec.label_type, rec.label_type_version)
            lt = types[rec.label_type] = versioned[type_key]
            rec.label_type_version = lt.version  # validated against it: the write path records it
            if not isinstance(rec.label_data, dict):
                raise ValidationError("label_data must be a JSON object")
            text = canonical_json(rec.label_data, what="label_data")
            if (*type_key, text) not in validated:  # labels repeat a lot: validate each distinct one once
                label_types.check_label_data(lt, rec.label_data)
                validated.add((*type_key, text))
            if rec.confidence is not None and rec.confidence not in CONFIDENCE_LEVELS:
                raise ValidationError(f"confidence {rec.confidence!r} must be one of {', '.join(CONFIDENCE_LEVELS)}")
            key = (rec.sheet_id, rec.item_ref, rec.label_type)
            if key in seen:
                first = seen[key]
                raise ValidationError(
                    f"duplicate label for item {rec.item_ref!r} ({rec.label_type})"
                    + (f", first given on row {first}" if first is not None else "")
                )
            seen[key] = rec.row
            tags = tuple(sheet.classification or [])
            rec.keep_uses = rec.allowed_uses is None and rec.prohibited_uses is None and not rec.usage_reason
            policy_key = (tags, None if rec.allowed_uses is None else tuple(rec.allowed_uses),
                          None if rec.prohibited_uses is None else tuple(rec.prohibited_uses), rec.usage_reason)
            if policy_key not in policies:
                policies[policy_key] = governance.apply_classification(
                    tags, rec.allowed_uses, rec.prohibited_uses, rec.usage_reason)
            allowed, prohibited, reason = policies[policy_key]
            # Records are this module's own working objects: fill them in place (a copy per
            # record costs seconds at a million labels).
            rec.allowed_uses, rec.prohibited_uses, rec.usage_reason = allowed, prohibited, reason
            rec.data_classification, rec.data_text = list(tags), text
            prepared.append(rec)
        except ValidationError as exc:
            if errors.add(f"{_where(rec)}{exc.message}"):
                break
    errors.raise_if_any()
    _check_geometry(session, sheet_rows, types, prepared, errors)
    errors.raise_if_any()
    return prepared


def _check_geometry(session: Session, sheets: dict[str, Sheet], types: dict[str, Any], records: list[LabelRecord],
                    errors: RowErrors) -> None:
    """Boxes, polygons and points must lie inside the item's image (its size read from the file header)."""
    shaped = [r for r in records if getattr(types[r.label_type], "kind", "") in SHAPE_KINDS]
    if not shaped:
        return
    from vital_desktop.core.geometry import check_shapes

    paths: dict[tuple[str, str], str | None] = {}
    for sheet_id in {r.sheet_id for r in shaped}:
        refs = {r.item_ref for r in shaped if r.sheet_id == sheet_id}
        for ref, image in session.execute(sa.select(SheetItem.item_ref, SheetItem.image_path).where(
                SheetItem.sheet_id == sheet_id, SheetItem.item_ref.in_(refs))):
            paths[(sheet_id, ref)] = image
    for rec in shaped:
        size = _image_size(sheets[rec.sheet_id].image_root, paths.get((rec.sheet_id, rec.item_ref)))
        if size is None:
            continue  # no readable image (a bare metadata sheet): nothing to check against
        try:
            check_shapes(rec.label_data, size[0], size[1], where=f"{_where(rec)}item {rec.item_ref!r}")
        except ValidationError as exc:
            if errors.add(exc.message):
                return


def _image_size(root: str | None, image: str | None) -> tuple[int, int] | None:
    if not root or not image:
        return None
    return _image_size_cached(str(root), str(image))


@functools.lru_cache(maxsize=4096)
def _image_size_cached(root: str, image: str) -> tuple[int, int] | None:
    from pathlib import Path

    from vital_desktop.services.input_limits import image_size

    return image_size(Path(root) / image)  # the header only; a decompression bomb is refused by name
