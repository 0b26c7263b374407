"""Reading canonical labels: one label, an item's labels, a label's history, a sheet's labels
and progress. Plain dataclasses out; nothing here writes."""

from __future__ import annotations

import json

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.errors import NotFoundError
from vital_desktop.core.ids import iso
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, CanonicalLabelHistory, Sheet


@dataclass(frozen=True)
class LabelInfo:
    id: str
    sheet_id: str
    item_ref: str
    label_type: str
    label_data: dict
    version: int
    allowed_uses: list[str]
    prohibited_uses: list[str]
    usage_reason: str
    data_classification: list[str]
    confidence: str | None
    notes: str
    review_state: str
    origin: str
    created_by: str
    created_at: str | None
    updated_by: str
    updated_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class LabelVersion:
    version: int
    label_data: dict
    allowed_uses: list[str]
    prohibited_uses: list[str]
    usage_reason: str
    confidence: str | None
    notes: str
    origin: str
    action: str
    reason: str
    changed_by: str
    changed_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)



@dataclass(frozen=True)
class SetLabelResult:
    outcome: str  # created | updated | unchanged | conflict
    label: LabelInfo
    conflict_id: str | None = None

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "label": self.label.to_dict(), "conflict_id": self.conflict_id}



def label_info(row: CanonicalLabel) -> LabelInfo:
    """The plain result of one stored label row."""
    return LabelInfo(
        id=row.id, sheet_id=row.sheet_id, item_ref=row.item_ref, label_type=row.label_type,
        label_data=row.label_data, version=row.version, allowed_uses=list(row.allowed_uses or []),
        prohibited_uses=list(row.prohibited_uses or []), usage_reason=row.usage_reason,
        data_classification=list(row.data_classification or []), confidence=row.confidence, notes=row.notes,
        review_state=row.review_state, origin=row.origin, created_by=row.created_by, created_at=iso(row.created_at),
        updated_by=row.updated_by, updated_at=iso(row.updated_at),
    )


def written_info(row: dict) -> LabelInfo:
    """`label_info` of a label as the write path left it (`UpsertOutcome.written`: JSON columns as text)."""
    return LabelInfo(
        id=row["id"], sheet_id=row["sheet_id"], item_ref=row["item_ref"], label_type=row["label_type"],
        label_data=json.loads(row["label_data"]), version=int(row["version"]),
        allowed_uses=json.loads(row["allowed_uses"]), prohibited_uses=json.loads(row["prohibited_uses"]),
        usage_reason=row["usage_reason"], data_classification=json.loads(row["data_classification"]),
        confidence=row["confidence"], notes=row["notes"], review_state=row["review_state"], origin=row["origin"],
        created_by=row["created_by"], created_at=iso(row["created_at"]), updated_by=row["updated_by"],
        updated_at=iso(row["updated_at"]),
    )


def sheet_row(session: Session, ref: str) -> Sheet:
    """The sheet named (or with the id) `ref`; `NotFoundError` otherwise."""
    return find_sheet(session, ref)


def get_row(session: Session, sheet_id: str, item_ref: str, label_type: str) -> CanonicalLabel | None:
    return session.scalar(sa.select(CanonicalLabel).where(
        CanonicalLabel.sheet_id == sheet_id, CanonicalLabel.item_ref == item_ref, CanonicalLabel.label_type == label_type
    ))



def get_label(store: Store, *, sheet: str, item_ref: str, label_type: str) -> LabelInfo | None:
    with store.read() as s:
        row = get_row(s, sheet_row(s, sheet).id, item_ref, label_type)
        return label_info(row) if row else None


def item_labels(store: Store, *, sheet: str, item_ref: str) -> list[LabelInfo]:
    """Every label type's current label for one item: the composite key made visible."""
    with store.read() as s:
        found = sheet_row(s, sheet)
        rows = s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == found.id, CanonicalLabel.item_ref == item_ref
        ).order_by(CanonicalLabel.label_type))
        return [label_info(r) for r in rows]


def history(store: Store, *, sheet: str, item_ref: str, label_type: str) -> list[LabelVersion]:
    with store.read() as s:
        row = get_row(s, sheet_row(s, sheet).id, item_ref, label_type)
        if row is None:
            raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
        rows = s.scalars(sa.select(CanonicalLabelHistory).where(CanonicalLabelHistory.label_id == row.id)
                         .order_by(CanonicalLabelHistory.version))
        return [LabelVersion(h.version, h.label_data, list(h.allowed_uses or []), list(h.prohibited_uses or []),
                             h.usage_reason, h.confidence, h.notes, h.origin, h.action, h.reason, h.changed_by,
                             iso(h.changed_at)) for h in rows]



# --- sheet-level views -----------------------------------------------------------------------


def labels_for_sheet(store: Store, *, sheet: str, label_type: str | None = None) -> list[LabelInfo]:
    with store.read() as s:
        query = sa.select(CanonicalLabel).where(CanonicalLabel.sheet_id == sheet_row(s, sheet).id)
        if label_type:
            query = query.where(CanonicalLabel.label_type == label_type)
        return [label_info(r) for r in s.scalars(query.order_by(CanonicalLabel.item_ref))]


@dataclass(frozen=True)
class LabelProgress:
    total_items: int
    labeled: int
    conflicting: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def label_type_counts(store: Store, *, sheet: str) -> dict[str, int]:
    """label type name → how many canonical labels of that type the sheet has (most first)."""
    with store.read() as s:
        found = sheet_row(s, sheet)
        rows = s.execute(sa.select(CanonicalLabel.label_type, sa.func.count()).where(
            CanonicalLabel.sheet_id == found.id).group_by(CanonicalLabel.label_type)
            .order_by(sa.func.count().desc(), CanonicalLabel.label_type))
        return {name: int(count) for name, count in rows}


def default_label_type(store: Store, *, sheet: str | None) -> str:
    """The label type a sheet opens with when nobody chose one: the type most of its labels have,
    else the type most labels of the site have, else the site's first published label type by
    name (label types are site data: no name is assumed)."""
    from vital_desktop.services.label_types import list_label_types

    known = list_label_types(store)
    if sheet is not None:
        for name in label_type_counts(store, sheet=sheet):
            if name in known:
                return name
    with store.read() as s:
        site_wide = s.execute(sa.select(CanonicalLabel.label_type).group_by(CanonicalLabel.label_type)
                              .order_by(sa.func.count().desc(), CanonicalLabel.label_type)).scalars().all()
    for name in site_wide:
        if name in known:
            return name
    if not known:
        raise NotFoundError("This site has no label types yet: create one on the Taxonomy page "
                            "(or `vital label types create`).")
    published = [name for name, lt in known.items() if lt.status == "published"]
    return (published or list(known))[0]


def label_progress(store: Store, *, sheet: str, label_type: str) -> LabelProgress:
    """"150 / 500 items labeled" for one sheet and label type."""
    with store.read() as s:
        found = sheet_row(s, sheet)
        labeled, conflicting = s.execute(
            sa.select(sa.func.count(), sa.func.count().filter(CanonicalLabel.review_state == "conflict"))
            .where(CanonicalLabel.sheet_id == found.id, CanonicalLabel.label_type == label_type)
        ).one()
        return LabelProgress(found.item_count, int(labeled), int(conflicting))


def item_status(store: Store, *, sheet: str, label_type: str) -> dict[str, str]:
    """item_ref → 'labeled' | 'conflict' for items that have a label (absent = unlabeled)."""
    with store.read() as s:
        found = sheet_row(s, sheet)
        rows = s.execute(sa.select(CanonicalLabel.item_ref, CanonicalLabel.review_state).where(
            CanonicalLabel.sheet_id == found.id, CanonicalLabel.label_type == label_type))
        return {ref: ("conflict" if state == "conflict" else "labeled") for ref, state in rows}


