"""LABEL, Mode A in bulk: approve (confidence >= threshold) or reject (below) unlabeled pairs
after a preview count. Approvals write canonical labels through the one write path, each based
on the label version its pair was generated from, in the same transaction as the pair updates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import utcnow
from vital_desktop.core.users import User
from vital_desktop.services import labels, templates
from vital_desktop.services.accounts import require
from vital_desktop.services.review_queries import _training_sheet
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow, raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, Template, TrainingSheet

BULK_ACTIONS = ("approve", "reject")


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


# --- Mode A: bulk ----------------------------------------------------------------------------------


def _check_bulk(action: str, threshold: float) -> None:
    if action not in BULK_ACTIONS:
        raise ValidationError(f"unknown bulk action {action!r}; use {', '.join(BULK_ACTIONS)}")
    if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
        raise ValidationError(f"the confidence threshold must be between 0 and 1, got {threshold!r}")


def _template_of(s: Session, ts: TrainingSheet) -> Template:
    tmpl = s.get(Template, ts.template_id)
    if tmpl is None:
        raise NotFoundError(f"the template of training sheet {ts.name!r} no longer exists")
    return tmpl


def _confidence_sql(field: str | None) -> tuple[str, list[Any]]:
    """The confidence a bulk action compares: the pair's, or one field's (language-model pairs keep one per
    enumerated field in ``field_confidence``)."""
    if field is None:
        return "q.confidence", []
    if not isinstance(field, str) or not field.strip():
        raise ValidationError("name the answer field whose confidence to use (--field)")
    return "TRY_CAST(json_extract_string(q.field_confidence, ?) AS DOUBLE)", ["$." + json.dumps(field.strip())]


def _bulk_candidates(s: Session, actor: User, ts: TrainingSheet, tmpl: Template, action: str, threshold: float,
                     field: str | None = None) -> tuple[list[tuple[str, str, Any, dict | None, int]], int, int]:
    """Pairs a bulk action would touch: (pair id, item_ref, answer, label data, base label version),
    and the skipped counts.

    Approve: unlabeled pairs with a valid pre-label and confidence >= threshold. Reject: unlabeled
    pairs with confidence < threshold. Items someone else has claimed are skipped.
    """
    compare = ">=" if action == "approve" else "<"
    confidence, confidence_params = _confidence_sql(field)
    rows = query_arrow(s, (
        "SELECT q.id, q.item_ref, q.answer::VARCHAR AS answer, q.canonical_label_version AS base, "
        "EXISTS (SELECT 1 FROM label_claims c WHERE c.sheet_id = ? AND c.item_ref = q.item_ref AND c.label_type = ? "
        "AND c.expires_at > ? AND c.claimed_by <> ?) AS claimed "
        f"FROM qa_pairs q WHERE q.training_sheet_id = ? AND q.status = 'unlabeled' AND {confidence} {compare} ? "
        "ORDER BY q.position"), [ts.sheet_id, ts.label_type, utcnow(), actor.username, ts.id, *confidence_params,
                                 float(threshold)],
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
                data = templates.check_answer(s, tmpl, answer)
            except ValidationError:
                invalid += 1
                continue
        chosen.append((row["id"], row["item_ref"], answer, data, int(row["base"] or 0)))
    return chosen, claimed, invalid


def preview_bulk(store: Store, *, actor: User, training_sheet: str, action: str, threshold: float,
                 field: str | None = None) -> BulkPreview:
    """How many pairs `bulk_action` would touch now (show this before asking to confirm)."""
    _check_bulk(action, threshold)
    with store.read() as s:
        ts = _training_sheet(s, training_sheet)
        tmpl = _template_of(s, ts)
        chosen, claimed, invalid = _bulk_candidates(s, actor, ts, tmpl, action, threshold, field)
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
    field: str | None = None,
) -> tuple[BulkResult, Changes]:
    """Approve (confidence >= threshold) or reject (confidence < threshold) unlabeled pairs at once.

    Pass the preview's count as `expected_count`: if the set changed since (someone reviewed
    meanwhile), `ConflictError` and nothing is written. Approvals write canonical labels through
    the same bulk path as label imports, in the same transaction as the pair updates.
    `field` compares one answer field's confidence instead of the pair's (language-model pairs).
    """
    require(actor, "review")
    _check_bulk(action, threshold)
    if action == "reject" and not (reason or "").strip():
        reason = f"bulk reject: confidence below {threshold}"
    with store.session() as s:
        ts = _training_sheet(s, training_sheet)
        tmpl = _template_of(s, ts)
        chosen, claimed, invalid = _bulk_candidates(s, actor, ts, tmpl, action, threshold, field)
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
            records = [labels.LabelRecord(sheet_id=ts.sheet_id, item_ref=item, label_type=ts.label_type, label_data=data or {},
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
