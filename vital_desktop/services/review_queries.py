"""LABEL, reading: Mode A's pairs (each with the item's canonical label now, shown beside the AI
answer) and Mode B's items with their label status and claims. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import generate, labels
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, LabelClaim, QAPair, Sheet, SheetItem, Template, TrainingSheet

ITEM_FILTERS = ("all", "unlabeled", "labeled", "conflicting")


# --- plain results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PairInfo:
    id: str
    training_sheet_id: str
    item_ref: str
    position: int
    messages: list
    answer: Any
    raw_output: str | None
    ai_error: str | None
    status: str
    source: str
    confidence: float | None
    canonical_label_id: str | None
    canonical_label_version: int | None
    allowed_uses: list[str]
    prohibited_uses: list[str]
    usage_reason: str
    data_classification: list[str]
    review_reason: str
    reviewed_by: str | None
    reviewed_at: str | None
    current_label_version: int | None = None  # the item's canonical label now (may be newer than the pair's)
    label_conflict: bool = False  # the item's canonical label has an open conflict
    current_label_data: dict | None = None  # that label's data, to show beside the AI answer
    current_label_by: str | None = None  # who last changed it

    @property
    def pre_approved(self) -> bool:
        return self.status == "labeled" and self.source == "canonical" and self.reviewed_by is None

    def to_dict(self) -> dict:
        return {**self.__dict__, "pre_approved": self.pre_approved}


@dataclass(frozen=True)
class ItemStatus:
    item_ref: str
    position: int
    image_path: str | None
    status: str  # unlabeled | labeled | conflicting
    claimed_by: str | None
    claim_expires_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ItemPage:
    items: list[ItemStatus]
    total: int  # items matching the filter
    counts: dict[str, int] = field(default_factory=dict)  # unlabeled / labeled / conflicting over the sheet

    def to_dict(self) -> dict:
        return {"items": [i.to_dict() for i in self.items], "total": self.total, "counts": self.counts}


# --- helpers ------------------------------------------------------------------------------------


def _pair_info(row: QAPair, current: tuple | None = None) -> PairInfo:
    """The pair, with `current` = (version, review_state, label_data, updated_by) of the item's
    canonical label now, if it has one."""
    return PairInfo(
        id=row.id, training_sheet_id=row.training_sheet_id, item_ref=row.item_ref, position=row.position,
        messages=row.messages, answer=row.answer, raw_output=row.raw_output, ai_error=row.ai_error,
        status=row.status, source=row.source, confidence=row.confidence, canonical_label_id=row.canonical_label_id,
        canonical_label_version=row.canonical_label_version, allowed_uses=list(row.allowed_uses or []),
        prohibited_uses=list(row.prohibited_uses or []), usage_reason=row.usage_reason,
        data_classification=list(row.data_classification or []), review_reason=row.review_reason,
        reviewed_by=row.reviewed_by, reviewed_at=iso(row.reviewed_at),
        current_label_version=current[0] if current else None,
        label_conflict=bool(current and current[1] == "conflict"),
        current_label_data=current[2] if current else None,
        current_label_by=current[3] if current else None,
    )


def _context(s: Session, pair_id: str) -> tuple[QAPair, TrainingSheet, Template, Sheet]:
    pair = s.get(QAPair, pair_id)
    if pair is None:
        raise NotFoundError(f"no Q&A pair with id {pair_id!r}")
    ts = s.get(TrainingSheet, pair.training_sheet_id)
    tmpl = s.get(Template, ts.template_id) if ts else None
    sheet = s.get(Sheet, ts.sheet_id) if ts else None
    if ts is None or tmpl is None or sheet is None:
        raise NotFoundError(f"the training sheet, template or sheet of pair {pair_id!r} no longer exists")
    return pair, ts, tmpl, sheet


def _current_label(s: Session, sheet_id: str, item_ref: str, label_type: str) -> tuple | None:
    row = s.execute(sa.select(CanonicalLabel.version, CanonicalLabel.review_state, CanonicalLabel.label_data,
                              CanonicalLabel.updated_by).where(
        CanonicalLabel.sheet_id == sheet_id, CanonicalLabel.item_ref == item_ref,
        CanonicalLabel.label_type == label_type)).first()
    return (int(row[0]), row[1], row[2], row[3]) if row else None


def _training_sheet(s: Session, ref: str) -> TrainingSheet:
    return generate._find_training_sheet(s, ref)


# --- Mode A: listing ----------------------------------------------------------------------------


def list_pairs(
    store: Store,
    *,
    training_sheet: str,
    status: str | None = None,
    source: str | None = None,
    min_confidence: float | None = None,
    max_confidence: float | None = None,
    conflicting: bool = False,
    item_refs: list[str] | None = None,
    offset: int = 0,
    limit: int | None = 100,
) -> list[PairInfo]:
    """A page of pairs in item order, with each item's current canonical label version and conflicts."""
    if status is not None and status not in generate.PAIR_STATUSES:
        raise ValidationError(f"unknown pair status {status!r}; use {', '.join(generate.PAIR_STATUSES)}")
    with store.read() as s:
        ts = _training_sheet(s, training_sheet)
        query = (
            sa.select(QAPair, CanonicalLabel.version, CanonicalLabel.review_state, CanonicalLabel.label_data,
                      CanonicalLabel.updated_by)
            .outerjoin(CanonicalLabel, sa.and_(CanonicalLabel.sheet_id == ts.sheet_id,
                                               CanonicalLabel.item_ref == QAPair.item_ref,
                                               CanonicalLabel.label_type == ts.label_type))
            .where(QAPair.training_sheet_id == ts.id)
        )
        if status:
            query = query.where(QAPair.status == status)
        if source:
            query = query.where(QAPair.source == source)
        if min_confidence is not None:
            query = query.where(QAPair.confidence >= min_confidence)
        if max_confidence is not None:
            query = query.where(QAPair.confidence < max_confidence)
        if conflicting:
            query = query.where(CanonicalLabel.review_state == "conflict")
        if item_refs is not None:
            query = query.where(QAPair.item_ref.in_(item_refs))
        query = query.order_by(QAPair.position).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        return [_pair_info(p, (v, st, data, by) if v is not None else None) for p, v, st, data, by in s.execute(query)]


def pair_refs(store: Store, *, training_sheet: str, status: str | tuple[str, ...] | None = None) -> list[str]:
    """Item refs of a training sheet's pairs in order (with a status filter, one status or
    several, e.g. everything that needs review): cheap, so the review page can page through
    100,000 pairs and find a deep-linked item's position."""
    statuses = (status,) if isinstance(status, str) else tuple(status or ())
    for one in statuses:
        if one not in generate.PAIR_STATUSES:
            raise ValidationError(f"unknown pair status {one!r}; use {', '.join(generate.PAIR_STATUSES)}")
    with store.read() as s:
        ts = _training_sheet(s, training_sheet)
        query = sa.select(QAPair.item_ref).where(QAPair.training_sheet_id == ts.id)
        if statuses:
            query = query.where(QAPair.status.in_(statuses))
        return list(s.scalars(query.order_by(QAPair.position)))


def get_pair(store: Store, pair_id: str) -> PairInfo:
    with store.read() as s:
        pair, ts, _, _ = _context(s, pair_id)
        return _pair_info(pair, _current_label(s, ts.sheet_id, pair.item_ref, ts.label_type))


def find_pair(store: Store, *, training_sheet: str, item_ref: str) -> PairInfo:
    """The pair of one item in a training sheet (the CLI names pairs this way)."""
    with store.read() as s:
        ts = _training_sheet(s, training_sheet)
        pair = s.scalar(sa.select(QAPair).where(QAPair.training_sheet_id == ts.id, QAPair.item_ref == item_ref))
        if pair is None:
            raise NotFoundError(f"training sheet {ts.name!r} has no pair for item {item_ref!r}")
        return _pair_info(pair, _current_label(s, ts.sheet_id, pair.item_ref, ts.label_type))


# --- Mode B: items and labels -----------------------------------------------------------------------


def item_statuses(
    store: Store, *, sheet: str, label_type: str, status: str = "all", offset: int = 0, limit: int | None = 100,
    actor: User | None = None,
) -> ItemPage:
    """A sheet's items with their label status for one label type (unlabeled / labeled / conflicting)
    and live claims, filtered and paged; `counts` covers the whole sheet."""
    if status not in ITEM_FILTERS:
        raise ValidationError(f"unknown filter {status!r}; use {', '.join(ITEM_FILTERS)}")
    labels.get_label_type(store, label_type)
    states = labels.item_status(store, sheet=sheet, label_type=label_type)
    with store.read() as s:
        sheet_row = labels._sheet_row(s, sheet)
        items = s.execute(sa.select(SheetItem.item_ref, SheetItem.position, SheetItem.image_path)
                          .where(SheetItem.sheet_id == sheet_row.id).order_by(SheetItem.position)).all()
        claims = {c.item_ref: c for c in s.scalars(sa.select(LabelClaim).where(
            LabelClaim.sheet_id == sheet_row.id, LabelClaim.label_type == label_type, LabelClaim.expires_at > utcnow()))}
    names = {"labeled": "labeled", "conflict": "conflicting"}
    counts = {"unlabeled": 0, "labeled": 0, "conflicting": 0}
    matching = []
    for ref, position, image in items:
        state = names.get(states.get(ref, ""), "unlabeled")
        counts[state] += 1
        if status == "all" or state == status:
            matching.append((ref, position, image, state))
    page = matching[offset: offset + limit if limit is not None else None]
    out = [ItemStatus(ref, position, image, state, claims[ref].claimed_by if ref in claims else None,
                      iso(claims[ref].expires_at) if ref in claims else None) for ref, position, image, state in page]
    return ItemPage(out, len(matching), counts)
