"""LABEL: expert review of Q&A pairs (Mode A) and canonical labeling of sheet items (Mode B).

Mode A works on a training sheet's pairs: approve (the pair becomes ``labeled`` and its answer
becomes — or versions — the item's canonical label, in the same transaction), edit then
approve (the edited answer must validate against the template's output schema AND the label
type, or nothing is written), reject or flag with a reason, and bulk approve/reject by a
confidence threshold after a preview count.

Mode B works on a sheet's items per label type: list them with their label status, claim a
batch so two experts do not label the same item at once (claims expire), and set labels.
A label on an item someone else holds a live claim on is refused. A disagreeing label for an
existing key from another user becomes a conflict (`labels.upsert_records`), shown here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import generate, labels, templates
from vital_desktop.services.accounts import require
from vital_desktop.services.label_claims import (  # noqa: F401 - re-exported (Mode B claims)
    DEFAULT_CLAIM_MINUTES,
    MAX_CLAIM_MINUTES,
    ClaimResult,
    claim_items,
    list_claims,
    release_claims,
)
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow, raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, LabelClaim, QAPair, Sheet, SheetItem, Template, TrainingSheet

BULK_ACTIONS = ("approve", "reject")
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
class ReviewOutcome:
    """What a review action did: the pair after it and, for approvals, the label write."""

    pair: PairInfo
    label_outcome: str | None = None  # created | updated | unchanged | conflict
    label: labels.LabelInfo | None = None

    def to_dict(self) -> dict:
        return {"pair": self.pair.to_dict(), "label_outcome": self.label_outcome,
                "label": self.label.to_dict() if self.label else None}


@dataclass(frozen=True)
class BulkPreview:
    action: str
    threshold: float
    count: int
    sample: list[str]
    skipped_claimed: int
    skipped_invalid: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class BulkResult:
    action: str
    threshold: float
    done: int
    conflicts: int
    labels_created: int
    labels_updated: int
    skipped_claimed: int
    skipped_invalid: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


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


# --- Mode A: single actions -----------------------------------------------------------------------


def approve(
    store: Store,
    *,
    actor: User,
    pair_id: str,
    answer: dict | None = None,
    notes: str = "",
    confidence: str | None = None,
    allowed_uses: Iterable[str] | None = None,
    prohibited_uses: Iterable[str] | None = None,
    usage_reason: str = "",
) -> tuple[ReviewOutcome, Changes]:
    """Approve a pair (its pre-label, or the edited `answer`): one transaction marks it ``labeled``
    and creates or versions the item's canonical label. An answer that fails the template's output
    schema or the label type is a `ValidationError` and nothing is written.

    The approval is based on the label version the pair was generated from (none for an AI
    pre-label): if the item's canonical label is newer — an expert labelled it in the labeling
    tool since — the write becomes a label conflict, never a silent new version, and the pair is
    flagged with the reason. The outcome carries the item's current canonical label."""
    require(actor, "review")
    edited = answer is not None
    with store.session() as s:
        pair, ts, tmpl, sheet = _context(s, pair_id)
        if pair.status == "labeled":
            how = ("pre-approved from its canonical label" if pair.source == "canonical" and not pair.reviewed_by
                   else f"approved by {pair.reviewed_by}")
            raise ConflictError(f"pair for item {pair.item_ref!r} is already labeled ({how}); change the canonical "
                                "label itself to correct it")
        final = answer if edited else pair.answer
        if final is None:
            raise ValidationError(f"pair for item {pair.item_ref!r} has no pre-label to approve"
                                  + (f" (the AI failed: {pair.ai_error})" if pair.ai_error else "")
                                  + "; give the answer (edit then approve)")
        label_data = templates.check_answer(tmpl, final)
        result = labels.set_label_in_session(
            s, actor, sheet=sheet.id, item_ref=pair.item_ref, label_type=ts.label_type, label_data=label_data,
            allowed_uses=allowed_uses, prohibited_uses=prohibited_uses, usage_reason=usage_reason,
            confidence=confidence, notes=notes, reason=f"approved in review of training sheet {ts.name!r}",
            action="review", expected_version=pair.canonical_label_version or 0,
        )
        now = utcnow()
        if result.outcome == "conflict":
            pair.status = "flagged"  # not "unlabeled": the item has a newer label that disagrees
            pair.review_reason = (f"approval conflicts with canonical label v{result.label.version} by "
                                  f"{result.label.updated_by}; resolve label conflict {result.conflict_id}")
        else:
            label = result.label
            pair.status = "labeled"
            pair.answer = final
            pair.source = "expert" if edited else pair.source
            pair.canonical_label_id = label.id
            pair.canonical_label_version = label.version
            pair.allowed_uses = label.allowed_uses
            pair.prohibited_uses = label.prohibited_uses
            pair.usage_reason = label.usage_reason
            pair.data_classification = label.data_classification
            pair.review_reason = ""
        pair.reviewed_by = actor.username
        pair.reviewed_at = now
        s.flush()
        audit.record(s, actor, "review.edit_approve" if edited else "review.approve", f"{ts.name}/{pair.item_ref}",
                     {"label_outcome": result.outcome, "label_version": result.label.version})
        outcome = ReviewOutcome(_pair_info(pair, _current_label(s, sheet.id, pair.item_ref, ts.label_type)),
                                result.outcome, result.label)
    return outcome, Changes(pairs=True, labels=True)


def edit_and_approve(store: Store, *, actor: User, pair_id: str, answer: dict, **kwargs: Any
                     ) -> tuple[ReviewOutcome, Changes]:
    """Correct the answer, then approve it (see `approve`)."""
    if not isinstance(answer, dict):
        raise ValidationError("the edited answer must be a JSON object")
    return approve(store, actor=actor, pair_id=pair_id, answer=answer, **kwargs)


def _set_status(store: Store, actor: User, pair_id: str, status: str, reason: str) -> tuple[ReviewOutcome, Changes]:
    require(actor, "review")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(f"say why (a reason is required to {'reject' if status == 'rejected' else 'flag'} a pair)")
    with store.session() as s:
        pair, ts, _, sheet = _context(s, pair_id)
        if pair.status == "labeled":
            raise ConflictError(f"pair for item {pair.item_ref!r} is labeled; correct its canonical label instead")
        labels.refuse_if_claimed(s, actor, sheet.id, pair.item_ref, ts.label_type)
        pair.status = status
        pair.review_reason = reason
        pair.reviewed_by = actor.username
        pair.reviewed_at = utcnow()
        s.flush()
        audit.record(s, actor, f"review.{'reject' if status == 'rejected' else 'flag'}", f"{ts.name}/{pair.item_ref}",
                     {"reason": reason})
        info = _pair_info(pair, _current_label(s, sheet.id, pair.item_ref, ts.label_type))
    return ReviewOutcome(info), Changes(pairs=True)


def reject(store: Store, *, actor: User, pair_id: str, reason: str) -> tuple[ReviewOutcome, Changes]:
    """Not good enough for training: excluded until someone approves it."""
    return _set_status(store, actor, pair_id, "rejected", reason)


def flag(store: Store, *, actor: User, pair_id: str, reason: str) -> tuple[ReviewOutcome, Changes]:
    """Route to a senior expert."""
    return _set_status(store, actor, pair_id, "flagged", reason)


# --- Mode A: bulk ----------------------------------------------------------------------------------


def _check_bulk(action: str, threshold: float) -> None:
    if action not in BULK_ACTIONS:
        raise ValidationError(f"unknown bulk action {action!r}; use {', '.join(BULK_ACTIONS)}")
    if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise ValidationError(f"the confidence threshold must be between 0 and 1, got {threshold!r}")


def _bulk_candidates(s: Session, actor: User, ts: TrainingSheet, tmpl: Template, action: str, threshold: float
                     ) -> tuple[list[tuple[str, str, Any, dict | None, int]], int, int]:
    """Pairs a bulk action would touch: (pair id, item_ref, answer, label data, base label version),
    and the skipped counts.

    Approve: unlabeled pairs with a valid pre-label and confidence >= threshold. Reject: unlabeled
    pairs with confidence < threshold. Items someone else has claimed are skipped.
    """
    compare = ">=" if action == "approve" else "<"
    rows = query_arrow(s, (
        "SELECT q.id, q.item_ref, q.answer::VARCHAR AS answer, q.canonical_label_version AS base, "
        "EXISTS (SELECT 1 FROM label_claims c WHERE c.sheet_id = ? AND c.item_ref = q.item_ref AND c.label_type = ? "
        "AND c.expires_at > ? AND c.claimed_by <> ?) AS claimed "
        f"FROM qa_pairs q WHERE q.training_sheet_id = ? AND q.status = 'unlabeled' AND q.confidence {compare} ? "
        "ORDER BY q.position"), [ts.sheet_id, ts.label_type, utcnow(), actor.username, ts.id, float(threshold)],
    ).to_pylist()
    chosen = []
    claimed = invalid = 0
    for row in rows:
        if row["claimed"]:
            claimed += 1
            continue
        answer = json.loads(row["answer"]) if row["answer"] is not None else None
        data = None
        if action == "approve":
            try:
                data = templates.check_answer(tmpl, answer)
            except ValidationError:
                invalid += 1
                continue
        chosen.append((row["id"], row["item_ref"], answer, data, int(row["base"] or 0)))
    return chosen, claimed, invalid


def preview_bulk(store: Store, *, actor: User, training_sheet: str, action: str, threshold: float) -> BulkPreview:
    """How many pairs `bulk_action` would touch now (show this before asking to confirm)."""
    _check_bulk(action, threshold)
    with store.read() as s:
        ts = _training_sheet(s, training_sheet)
        tmpl = s.get(Template, ts.template_id)
        chosen, claimed, invalid = _bulk_candidates(s, actor, ts, tmpl, action, threshold)
    return BulkPreview(action, float(threshold), len(chosen), [c[1] for c in chosen[:10]], claimed, invalid)


def bulk_action(
    store: Store,
    *,
    actor: User,
    training_sheet: str,
    action: str,
    threshold: float,
    expected_count: int | None = None,
    reason: str = "",
) -> tuple[BulkResult, Changes]:
    """Approve (confidence >= threshold) or reject (confidence < threshold) unlabeled pairs at once.

    Pass the preview's count as `expected_count`: if the set changed since (someone reviewed
    meanwhile), `ConflictError` and nothing is written. Approvals write canonical labels through
    the same bulk path as label imports, in the same transaction as the pair updates.
    """
    require(actor, "review")
    _check_bulk(action, threshold)
    if action == "reject" and not (reason or "").strip():
        reason = f"bulk reject: confidence below {threshold}"
    with store.session() as s:
        ts = _training_sheet(s, training_sheet)
        tmpl = s.get(Template, ts.template_id)
        chosen, claimed, invalid = _bulk_candidates(s, actor, ts, tmpl, action, threshold)
        if expected_count is not None and expected_count != len(chosen):
            raise ConflictError(f"the preview counted {expected_count} pairs but {len(chosen)} match now; "
                                "preview again before confirming")
        now = utcnow()
        created = updated = conflicts = 0
        if action == "reject":
            updates = pa.table({"id": [c[0] for c in chosen]})
            _update_pairs(s, updates, "status = 'rejected', review_reason = ?, reviewed_by = ?, reviewed_at = ?",
                          [reason, actor.username, now])
            done = len(chosen)
        else:
            records = [labels.LabelRecord(sheet_id=ts.sheet_id, item_ref=item, label_type=ts.label_type, label_data=data,
                                          expected_version=base,
                                          reason=f"bulk approved in review of training sheet {ts.name!r}")
                       for _, item, _, data, base in chosen]
            records = labels.prepare_records(s, records) if records else []
            outcome = labels.upsert_records(s, actor, records, action="review")
            created, updated, conflicts = outcome.created, outcome.updated, outcome.conflicts
            conflicted_items: set[str] = set()
            if outcome.conflict_ids:
                conflicted_items = set(s.scalars(sa.select(CanonicalLabel.item_ref).where(
                    CanonicalLabel.id.in_(s.scalars(sa.select(labels.LabelConflict.label_id).where(
                        labels.LabelConflict.id.in_(outcome.conflict_ids)))))))
            good = [c for c in chosen if c[1] not in conflicted_items]
            updates = pa.table({"id": [c[0] for c in good], "item_ref": [c[1] for c in good]})
            raw = raw_connection(s)
            s.flush()
            raw.register("_approved", updates)
            try:
                raw.execute(
                    "UPDATE qa_pairs SET status = 'labeled', canonical_label_id = c.id, "
                    "canonical_label_version = c.version, allowed_uses = c.allowed_uses, "
                    "prohibited_uses = c.prohibited_uses, usage_reason = c.usage_reason, "
                    "data_classification = c.data_classification, review_reason = '', reviewed_by = ?, reviewed_at = ? "
                    "FROM _approved a JOIN canonical_labels c ON c.item_ref = a.item_ref AND c.sheet_id = ? "
                    "AND c.label_type = ? WHERE qa_pairs.id = a.id",
                    [actor.username, now, ts.sheet_id, ts.label_type])
            finally:
                raw.unregister("_approved")
            if conflicted_items:
                _update_pairs(s, pa.table({"id": [c[0] for c in chosen if c[1] in conflicted_items]}),
                              "status = 'flagged', "
                              "review_reason = 'bulk approval conflicts with the current canonical label', "
                              "reviewed_by = ?, reviewed_at = ?", [actor.username, now])
            done = len(good)
        s.expire_all()
        audit.record(s, actor, f"review.bulk_{action}", ts.name,
                     {"threshold": threshold, "done": done, "conflicts": conflicts, "skipped_claimed": claimed,
                      "skipped_invalid": invalid})
    return (BulkResult(action, float(threshold), done, conflicts, created, updated, claimed, invalid),
            Changes(pairs=True, labels=action == "approve"))


def _update_pairs(s: Session, ids: pa.Table, assignments: str, params: list) -> None:
    if ids.num_rows == 0:
        return
    raw = raw_connection(s)
    s.flush()
    raw.register("_pair_ids", ids)
    try:
        raw.execute(f"UPDATE qa_pairs SET {assignments} WHERE id IN (SELECT id FROM _pair_ids)", params)
    finally:
        raw.unregister("_pair_ids")


# --- Mode B: items and labels -----------------------------------------------------------------------


def item_statuses(
    store: Store, *, sheet: str, label_type: str, status: str = "all", offset: int = 0, limit: int | None = 100,
    actor: User | None = None,
) -> ItemPage:
    """A sheet's items with their label status for one label type (unlabeled / labeled / conflicting)
    and live claims, filtered and paged; `counts` covers the whole sheet."""
    if status not in ITEM_FILTERS:
        raise ValidationError(f"unknown filter {status!r}; use {', '.join(ITEM_FILTERS)}")
    labels.get_label_type(label_type)
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


def label_item(
    store: Store,
    *,
    actor: User,
    sheet: str,
    item_ref: str,
    label_type: str,
    label_data: dict,
    notes: str = "",
    confidence: str | None = None,
    allowed_uses: Iterable[str] | None = None,
    prohibited_uses: Iterable[str] | None = None,
    usage_reason: str = "",
    expected_version: int | None = None,
) -> tuple[labels.SetLabelResult, Changes]:
    """Mode B: set an item's canonical label directly (validated against the label type), refused
    while another expert holds a claim on it; the actor's own claim is released."""
    require(actor, "label")
    with store.session() as s:
        sheet_row = labels._sheet_row(s, sheet)
        result = labels.set_label_in_session(
            s, actor, sheet=sheet_row.id, item_ref=item_ref, label_type=label_type, label_data=label_data,
            allowed_uses=allowed_uses, prohibited_uses=prohibited_uses, usage_reason=usage_reason,
            confidence=confidence, notes=notes, expected_version=expected_version,
        )
    return result, Changes(labels=True)
