"""Labels whose item's image content changed: list them, and confirm those that still hold.

A rescan that finds a file's content changed bumps the item's version and flags its labels
``content_changed`` (a label is about an image's content; it is not silently reused). An
inspector then looks at the new image and either relabels it (an ordinary save through the
write path, which clears the flag) or says the label still holds: `confirm_unchanged` makes a
new version of the label with the same content through the one write path (action
``confirm``; the reason names the item version and file hash it was confirmed for), which
clears the flag. The labeling tool calls these services; `vital label changed` and
`vital label confirm` are the command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.label_queries import sheet_row
from vital_desktop.services.label_records import MAX_ERRORS_REPORTED, LabelRecord, prepare_records
from vital_desktop.services.label_write import upsert_records
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, SheetItem

CONTENT_CHANGED = "content_changed"


@dataclass(frozen=True)
class ChangedLabel:
    """A label waiting for an inspector because its item's image changed."""

    sheet: str
    item_ref: str
    label_type: str
    version: int
    label_data: dict
    item_version: int | None
    image_path: str | None
    changed_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ConfirmOutcome:
    confirmed: int
    conflicts: int
    item_refs: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"confirmed": self.confirmed, "conflicts": self.conflicts, "item_refs": list(self.item_refs)}


def changed_labels(store: Store, *, sheet: str, label_type: str | None = None, limit: int = 1000
                   ) -> list[ChangedLabel]:
    """The sheet's labels flagged ``content_changed`` (oldest change first), with the item's
    current version and image path."""
    with store.read() as s:
        found = sheet_row(s, sheet)
        query = (sa.select(CanonicalLabel, SheetItem.item_version, SheetItem.image_path, SheetItem.changed_at)
                 .join(SheetItem, sa.and_(SheetItem.sheet_id == CanonicalLabel.sheet_id,
                                          SheetItem.item_ref == CanonicalLabel.item_ref))
                 .where(CanonicalLabel.sheet_id == found.id, CanonicalLabel.review_state == CONTENT_CHANGED))
        if label_type:
            query = query.where(CanonicalLabel.label_type == label_type)
        rows = s.execute(query.order_by(SheetItem.changed_at, CanonicalLabel.item_ref).limit(limit)).all()
        return [ChangedLabel(found.name, row.item_ref, row.label_type, row.version, row.label_data, item_version,
                             image, iso(changed)) for row, item_version, image, changed in rows]


def confirm_unchanged(
    store: Store, *, actor: User, sheet: str, label_type: str, item_refs: Iterable[str], reason: str = "",
    expected_versions: dict[str, int] | None = None,
) -> tuple[ConfirmOutcome, Changes]:
    """Confirm that each item's label still holds for its new image content: a new version with
    the same content through the write path (claims, expected version and constraints enforced;
    a label changed by someone since the version seen becomes a conflict), the flag cleared, the
    reason and the item version kept in the history. Refused (nothing written) when an item has
    no label of the type or its label is not flagged ``content_changed``."""
    require(actor, "label")
    refs = list(dict.fromkeys(str(r).strip() for r in item_refs if str(r).strip()))
    if not refs:
        raise ValidationError("name the items whose labels still hold")
    seen = expected_versions or {}
    with store.session() as s:
        found = sheet_row(s, sheet)
        rows = {r.item_ref: r for r in s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == found.id, CanonicalLabel.label_type == label_type,
            CanonicalLabel.item_ref.in_(refs)))}
        items = {ref: (version, sha) for ref, version, sha in s.execute(
            sa.select(SheetItem.item_ref, SheetItem.item_version, SheetItem.file_sha256).where(
                SheetItem.sheet_id == found.id, SheetItem.item_ref.in_(refs)))}
        problems = [f"item {ref!r} has no {label_type} label" for ref in refs if ref not in rows]
        problems += [f"the {label_type} label of {ref!r} is not flagged as changed content (it is "
                     f"{rows[ref].review_state}): nothing to confirm" for ref in refs
                     if ref in rows and rows[ref].review_state != CONTENT_CHANGED]
        if problems:
            shown = problems[:MAX_ERRORS_REPORTED]
            error = NotFoundError if all("has no" in p for p in shown) else ValidationError
            raise error("; ".join(shown), details={"errors": shown})
        records = []
        for ref in refs:
            row = rows[ref]
            version, sha = items.get(ref, (None, None))
            why = (f"confirmed unchanged for item version {version}" + (f" (sha256 {sha[:12]})" if sha else "")
                   + (f": {reason}" if reason else ""))
            records.append(LabelRecord(
                sheet_id=found.id, item_ref=ref, label_type=label_type, label_data=dict(row.label_data),
                confidence=row.confidence, notes=row.notes, expected_version=seen.get(ref, row.version),
                reason=why, confirm=True))
        outcome = upsert_records(s, actor, prepare_records(s, records, sheets=[found]), action="confirm")
        audit.record(s, actor, "label.confirm_unchanged", f"{found.name}/{label_type}",
                     {"items": len(refs), "confirmed": outcome.updated, "conflicts": outcome.conflicts,
                      "reason": reason, "item_refs": refs[:MAX_ERRORS_REPORTED]})
    return ConfirmOutcome(outcome.updated, outcome.conflicts, tuple(refs)), Changes(labels=True)
