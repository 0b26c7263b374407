"""Canonical labels: one label per (sheet_id, item_ref, label_type), versioned, governed.

Every write — a single save from the labeling tool, a review approval, a bulk file import,
labels arriving in a hub bundle — goes through one mechanism, `upsert_records`, inside the
caller's transaction:

- a new key gets version 1;
- the same data again is a no-op (constraints may still change: that is a new version);
- different data from the same user (or from a user who saw the current version, given as
  ``expected_version``) becomes the next version;
- different data from another user who did not see the current version, or from a hub
  bundle, is *not* applied: it is recorded as a conflict and the label is marked for review.

Every version is copied to `canonical_label_history` with who, when, what action and why.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core import governance
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, new_ids, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.label_types import LabelType, get_label_type, validate_label_data  # noqa: F401 - re-exported
from vital_desktop.services.label_types import list_label_types as label_types  # noqa: F401 - re-exported
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow, query_arrow, raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    CanonicalLabel,
    CanonicalLabelHistory,
    LabelClaim,
    LabelConflict,
    Sheet,
    SheetItem,
)

CONFIDENCE_LEVELS = ("high", "medium", "low")
EXPORT_FORMATS = ("csv", "jsonl", "parquet", "coco")
MAX_ERRORS_REPORTED = 10


# Label types live in services/label_types; the names above are re-exported from here so existing
# callers (labels.get_label_type, labels.LabelType, ...) keep working.

def _canon(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- plain results ---------------------------------------------------------------------------


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
class UpsertOutcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    label_ids: tuple[str, ...] = ()
    conflict_ids: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged,
                "conflicts": self.conflicts}


@dataclass(frozen=True)
class SetLabelResult:
    outcome: str  # created | updated | unchanged | conflict
    label: LabelInfo
    conflict_id: str | None = None

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "label": self.label.to_dict(), "conflict_id": self.conflict_id}


@dataclass
class LabelRecord:
    """One label to write, already resolved to a sheet id (see `upsert_records`)."""

    sheet_id: str
    item_ref: str
    label_type: str
    label_data: dict
    allowed_uses: list[str] | None = None
    prohibited_uses: list[str] | None = None
    usage_reason: str = ""
    confidence: str | None = None
    notes: str = ""
    expected_version: int | None = None
    reason: str = ""
    row: int | None = None  # position in an input file, for error messages
    data_classification: list[str] = field(default_factory=list)
    data_text: str = ""  # canonical JSON of label_data, set by `prepare_records`


def _label_info(row: CanonicalLabel) -> LabelInfo:
    return LabelInfo(
        id=row.id, sheet_id=row.sheet_id, item_ref=row.item_ref, label_type=row.label_type,
        label_data=row.label_data, version=row.version, allowed_uses=list(row.allowed_uses or []),
        prohibited_uses=list(row.prohibited_uses or []), usage_reason=row.usage_reason,
        data_classification=list(row.data_classification or []), confidence=row.confidence, notes=row.notes,
        review_state=row.review_state, origin=row.origin, created_by=row.created_by, created_at=iso(row.created_at),
        updated_by=row.updated_by, updated_at=iso(row.updated_at),
    )


# --- the one write mechanism -----------------------------------------------------------------


def _where(record: LabelRecord) -> str:
    return f"row {record.row}: " if record.row is not None else ""


class _RowErrors:
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


def prepare_records(session: Session, records: list[LabelRecord]) -> list[LabelRecord]:
    """Validate every record (item exists, schema, uses, confidence, no duplicate keys) and
    apply the sheet's classification. Raises `ValidationError` naming the first bad rows."""
    sheet_rows = {r.id: r for r in session.scalars(sa.select(Sheet).where(Sheet.id.in_({x.sheet_id for x in records})))}
    known_items: dict[str, set[str]] = {}
    for sheet_id in sheet_rows:
        query = sa.select(SheetItem.item_ref).where(SheetItem.sheet_id == sheet_id)
        if len(records) <= 500:  # a few labels: look up just their items, not the whole sheet
            query = query.where(SheetItem.item_ref.in_({r.item_ref for r in records if r.sheet_id == sheet_id}))
        known_items[sheet_id] = set(session.scalars(query))
    errors = _RowErrors()
    validated: set[tuple[str, str]] = set()
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
            get_label_type(rec.label_type)
            if not isinstance(rec.label_data, dict):
                raise ValidationError("label_data must be a JSON object")
            text = _canon(rec.label_data)
            if (rec.label_type, text) not in validated:  # labels repeat a lot: validate each distinct one once
                validate_label_data(rec.label_type, rec.label_data)
                validated.add((rec.label_type, text))
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
    return prepared


def upsert_records(
    session: Session, actor: User, records: list[LabelRecord], *, origin: str = "site", action: str = "set"
) -> UpsertOutcome:
    """Apply prepared records inside the caller's transaction (see the module docstring)."""
    if not records:
        return UpsertOutcome()
    now = utcnow()
    raw = raw_connection(session)
    session.flush()
    columns = ("c.id, c.version, c.label_data::VARCHAR, c.updated_by, c.allowed_uses::VARCHAR, "
               "c.prohibited_uses::VARCHAR, c.usage_reason, c.confidence, c.notes")
    if len(records) <= 32:
        # A save from the labeling tool: a direct keyed query beats registering an Arrow table.
        existing = []
        for pos, r in enumerate(records):
            row = raw.execute(
                f"SELECT {columns} FROM canonical_labels c WHERE c.sheet_id = ? AND c.item_ref = ? AND c.label_type = ?",
                [r.sheet_id, r.item_ref, r.label_type]).fetchall()
            if row:
                existing.append((pos, *row[0]))
    else:
        keys = pa.table({
            "k_sheet": [r.sheet_id for r in records],
            "k_item": [r.item_ref for r in records],
            "k_type": [r.label_type for r in records],
            "k_pos": list(range(len(records))),
        })
        raw.register("_label_keys", keys)
        try:
            existing = raw.execute(
                f"SELECT k.k_pos, {columns} FROM _label_keys k JOIN canonical_labels c "
                "ON c.sheet_id = k.k_sheet AND c.item_ref = k.k_item AND c.label_type = k.k_type"
            ).fetchall()
        finally:
            raw.unregister("_label_keys")
    by_pos = {row[0]: row for row in existing}

    new_rows: list[dict] = []
    history_rows: list[dict] = []
    updates: list[dict] = []
    conflicts: list[dict] = []
    unchanged = 0
    label_ids: list[str] = []
    fresh_ids = iter(new_ids(2 * len(records)))
    for pos, rec in enumerate(records):
        data_text = rec.data_text or _canon(rec.label_data)
        current = by_pos.get(pos)
        if current is None:
            label_id = next(fresh_ids)
            row = _row_values(rec, label_id, 1, data_text, actor.username, origin, now)
            new_rows.append({**row, "created_by": actor.username, "created_at": now, "review_state": "ok"})
            history_rows.append(_history_values(rec, label_id, 1, data_text, actor.username, origin, now, "create",
                                                next(fresh_ids)))
            label_ids.append(label_id)
            continue
        _, label_id, version, cur_data, cur_by, cur_allowed, cur_prohibited, cur_reason, cur_conf, cur_notes = current
        label_ids.append(label_id)
        same_data = json.loads(cur_data) == rec.label_data
        same_rest = (
            json.loads(cur_allowed) == rec.allowed_uses and json.loads(cur_prohibited) == rec.prohibited_uses
            and cur_reason == rec.usage_reason and cur_conf == rec.confidence and cur_notes == rec.notes
        )
        if same_data and same_rest:
            unchanged += 1
            continue
        saw_current = rec.expected_version is not None and rec.expected_version == version
        from_elsewhere = origin != "site" or (cur_by != actor.username and not saw_current)
        stale = rec.expected_version is not None and rec.expected_version != version
        if not same_data and (from_elsewhere or stale):
            conflicts.append({
                "id": new_id(), "label_id": label_id, "sheet_id": rec.sheet_id, "item_ref": rec.item_ref,
                "label_type": rec.label_type, "current_version": version, "proposed_data": data_text,
                "proposed_by": actor.username, "origin": origin, "status": "open", "resolution": "",
                "created_at": now,
            })
            continue
        new_version = version + 1
        updates.append(_row_values(rec, label_id, new_version, data_text, actor.username, origin, now))
        history_rows.append(_history_values(rec, label_id, new_version, data_text, actor.username, origin, now,
                                            action if action != "set" else "update", next(fresh_ids)))

    json_casts = {c: "JSON" for c in ("label_data", "allowed_uses", "prohibited_uses", "data_classification")}
    if new_rows:
        insert_arrow(session, "canonical_labels", pa.Table.from_pylist(new_rows), casts=json_casts)
    if updates:
        table = pa.Table.from_pylist(updates)
        raw.register("_label_updates", table)
        try:
            raw.execute(
                "UPDATE canonical_labels SET label_data = u.label_data::JSON, version = u.version, "
                "allowed_uses = u.allowed_uses::JSON, prohibited_uses = u.prohibited_uses::JSON, "
                "usage_reason = u.usage_reason, data_classification = u.data_classification::JSON, "
                "confidence = u.confidence, notes = u.notes, origin = u.origin, review_state = 'ok', "
                "updated_by = u.updated_by, updated_at = u.updated_at "
                "FROM _label_updates u WHERE canonical_labels.id = u.id"
            )
        finally:
            raw.unregister("_label_updates")
    if history_rows:
        insert_arrow(session, "canonical_label_history", pa.Table.from_pylist(history_rows), casts=json_casts)
    if conflicts:
        insert_arrow(session, "label_conflicts", pa.Table.from_pylist(conflicts), casts={"proposed_data": "JSON"})
        ids = pa.table({"id": [c["label_id"] for c in conflicts]})
        raw.register("_conflict_ids", ids)
        try:
            raw.execute("UPDATE canonical_labels SET review_state = 'conflict' WHERE id IN (SELECT id FROM _conflict_ids)")
        finally:
            raw.unregister("_conflict_ids")
    session.expire_all()
    return UpsertOutcome(
        created=len(new_rows), updated=len(updates), unchanged=unchanged, conflicts=len(conflicts),
        label_ids=tuple(label_ids), conflict_ids=tuple(c["id"] for c in conflicts),
    )


@functools.lru_cache(maxsize=256)
def _json_list_cached(items: tuple[str, ...]) -> str:
    return json.dumps(list(items))


def _json_list(items: list[str] | None) -> str:
    return _json_list_cached(tuple(items or ()))


def _row_values(rec: LabelRecord, label_id: str, version: int, data_text: str, by: str, origin: str, now) -> dict:
    return {
        "id": label_id, "sheet_id": rec.sheet_id, "item_ref": rec.item_ref, "label_type": rec.label_type,
        "label_data": data_text, "version": version, "allowed_uses": _json_list(rec.allowed_uses),
        "prohibited_uses": _json_list(rec.prohibited_uses), "usage_reason": rec.usage_reason,
        "data_classification": _json_list(rec.data_classification), "confidence": rec.confidence,
        "notes": rec.notes, "origin": origin, "updated_by": by, "updated_at": now,
    }


def _history_values(rec: LabelRecord, label_id: str, version: int, data_text: str, by: str, origin: str, now,
                    action: str, history_id: str) -> dict:
    return {
        "id": history_id, "label_id": label_id, "sheet_id": rec.sheet_id, "item_ref": rec.item_ref,
        "label_type": rec.label_type, "version": version, "label_data": data_text,
        "allowed_uses": _json_list(rec.allowed_uses), "prohibited_uses": _json_list(rec.prohibited_uses),
        "usage_reason": rec.usage_reason, "data_classification": _json_list(rec.data_classification),
        "confidence": rec.confidence, "notes": rec.notes, "origin": origin, "action": action, "reason": rec.reason,
        "changed_by": by, "changed_at": now,
    }


def _sheet_row(session: Session, ref: str) -> Sheet:
    row = session.scalar(sa.select(Sheet).where(sa.or_(Sheet.name == ref, Sheet.id == ref)))
    if row is None:
        raise NotFoundError(f"no sheet named {ref!r}")
    return row


def _get_row(session: Session, sheet_id: str, item_ref: str, label_type: str) -> CanonicalLabel | None:
    return session.scalar(sa.select(CanonicalLabel).where(
        CanonicalLabel.sheet_id == sheet_id, CanonicalLabel.item_ref == item_ref, CanonicalLabel.label_type == label_type
    ))


# --- claims: two experts never label the same item at once -------------------------------------


def claim_holder(s: Session, actor: User, sheet_id: str, item_ref: str, label_type: str) -> LabelClaim | None:
    """The live claim someone else holds on this key, if any."""
    return s.scalar(sa.select(LabelClaim).where(
        LabelClaim.sheet_id == sheet_id, LabelClaim.item_ref == item_ref, LabelClaim.label_type == label_type,
        LabelClaim.expires_at > utcnow(), LabelClaim.claimed_by != actor.username))


def refuse_if_claimed(s: Session, actor: User, sheet_id: str, item_ref: str, label_type: str) -> None:
    claim = claim_holder(s, actor, sheet_id, item_ref, label_type)
    if claim is not None:
        raise ConflictError(
            f"item {item_ref!r} ({label_type}) is claimed by {claim.claimed_by} until "
            f"{iso(claim.expires_at)}; wait for the claim to expire or ask them to release it"
        )


def release_own_claims(s: Session, actor: User, sheet_id: str, item_refs: Iterable[str], label_type: str) -> None:
    refs = list(item_refs)
    if refs:
        s.execute(sa.delete(LabelClaim).where(
            LabelClaim.sheet_id == sheet_id, LabelClaim.label_type == label_type, LabelClaim.item_ref.in_(refs),
            LabelClaim.claimed_by == actor.username))


# --- single-label verbs ----------------------------------------------------------------------


def set_label(
    store: Store,
    *,
    actor: User,
    sheet: str,
    item_ref: str,
    label_type: str,
    label_data: dict,
    allowed_uses: Iterable[str] | None = None,
    prohibited_uses: Iterable[str] | None = None,
    usage_reason: str = "",
    confidence: str | None = None,
    notes: str = "",
    reason: str = "",
    expected_version: int | None = None,
    action: str = "set",
) -> tuple[SetLabelResult, Changes]:
    """Save one canonical label; returns what happened (created/updated/unchanged/conflict)."""
    require(actor, "label")
    with store.session() as s:
        result = set_label_in_session(
            s, actor, sheet=sheet, item_ref=item_ref, label_type=label_type, label_data=label_data,
            allowed_uses=allowed_uses, prohibited_uses=prohibited_uses, usage_reason=usage_reason,
            confidence=confidence, notes=notes, reason=reason, expected_version=expected_version, action=action,
        )
    return result, Changes(labels=True)


def set_label_in_session(
    s: Session, actor: User, *, sheet: str, item_ref: str, label_type: str, label_data: dict,
    allowed_uses: Iterable[str] | None = None, prohibited_uses: Iterable[str] | None = None, usage_reason: str = "",
    confidence: str | None = None, notes: str = "", reason: str = "", expected_version: int | None = None,
    action: str = "set", origin: str = "site",
) -> SetLabelResult:
    """`set_label` inside the caller's transaction (review approval uses it with its pair update).

    Every single-label write passes here, so claims are enforced here: a live claim by another
    expert refuses the write; the actor's own claim on the item is released by it.
    """
    sheet_row = _sheet_row(s, sheet)
    refuse_if_claimed(s, actor, sheet_row.id, item_ref, label_type)
    record = LabelRecord(
        sheet_id=sheet_row.id, item_ref=item_ref, label_type=label_type, label_data=label_data,
        allowed_uses=list(allowed_uses) if allowed_uses is not None else None,
        prohibited_uses=list(prohibited_uses) if prohibited_uses is not None else None,
        usage_reason=usage_reason, confidence=confidence or None, notes=notes or "",
        expected_version=expected_version, reason=reason,
    )
    [record] = prepare_records(s, [record])
    outcome = upsert_records(s, actor, [record], origin=origin, action=action)
    kind = ("created" if outcome.created else "updated" if outcome.updated else
            "conflict" if outcome.conflicts else "unchanged")
    release_own_claims(s, actor, sheet_row.id, [item_ref], label_type)
    row = _get_row(s, sheet_row.id, item_ref, label_type)
    assert row is not None
    if kind != "unchanged":
        audit.record(s, actor, f"label.{kind}", f"{sheet_row.name}/{item_ref}/{label_type}",
                     {"version": row.version, "reason": reason, "action": action})
    return SetLabelResult(kind, _label_info(row), outcome.conflict_ids[0] if outcome.conflict_ids else None)


def get_label(store: Store, *, sheet: str, item_ref: str, label_type: str) -> LabelInfo | None:
    with store.read() as s:
        row = _get_row(s, _sheet_row(s, sheet).id, item_ref, label_type)
        return _label_info(row) if row else None


def item_labels(store: Store, *, sheet: str, item_ref: str) -> list[LabelInfo]:
    """Every label type's current label for one item: the composite key made visible."""
    with store.read() as s:
        sheet_row = _sheet_row(s, sheet)
        rows = s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.item_ref == item_ref
        ).order_by(CanonicalLabel.label_type))
        return [_label_info(r) for r in rows]


def history(store: Store, *, sheet: str, item_ref: str, label_type: str) -> list[LabelVersion]:
    with store.read() as s:
        row = _get_row(s, _sheet_row(s, sheet).id, item_ref, label_type)
        if row is None:
            raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
        rows = s.scalars(sa.select(CanonicalLabelHistory).where(CanonicalLabelHistory.label_id == row.id)
                         .order_by(CanonicalLabelHistory.version))
        return [LabelVersion(h.version, h.label_data, list(h.allowed_uses or []), list(h.prohibited_uses or []),
                             h.usage_reason, h.confidence, h.notes, h.origin, h.action, h.reason, h.changed_by,
                             iso(h.changed_at)) for h in rows]


def rollback(
    store: Store, *, actor: User, sheet: str, item_ref: str, label_type: str, to_version: int, reason: str = ""
) -> tuple[LabelInfo, Changes]:
    """Make a new version whose content is that of `to_version` (history is never rewritten)."""
    require(actor, "label")
    with store.session() as s:
        sheet_row = _sheet_row(s, sheet)
        row = _get_row(s, sheet_row.id, item_ref, label_type)
        if row is None:
            raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
        old = s.scalar(sa.select(CanonicalLabelHistory).where(
            CanonicalLabelHistory.label_id == row.id, CanonicalLabelHistory.version == to_version))
        if old is None:
            raise NotFoundError(f"label {item_ref}/{label_type} has no version {to_version} (current: {row.version})")
        if to_version == row.version:
            raise ValidationError(f"version {to_version} is already the current version")
        record = LabelRecord(
            sheet_id=sheet_row.id, item_ref=item_ref, label_type=label_type, label_data=old.label_data,
            allowed_uses=list(old.allowed_uses), prohibited_uses=list(old.prohibited_uses),
            usage_reason=old.usage_reason, confidence=old.confidence, notes=old.notes, expected_version=row.version,
            reason=reason or f"rollback to version {to_version}",
        )
        [record] = prepare_records(s, [record])
        upsert_records(s, actor, [record], action="rollback")
        row = _get_row(s, sheet_row.id, item_ref, label_type)
        assert row is not None
        audit.record(s, actor, "label.rollback", f"{sheet_row.name}/{item_ref}/{label_type}",
                     {"to_version": to_version, "new_version": row.version, "reason": reason})
        info = _label_info(row)
    return info, Changes(labels=True)


def withdraw_label(
    store: Store, *, actor: User, sheet: str, item_ref: str, label_type: str, reason: str = ""
) -> Changes:
    """Remove the current label of one key, keeping its history (the labeling tool's undo of a
    first save: the item becomes unlabeled again). The history gets a 'withdraw' row."""
    require(actor, "label")
    with store.session() as s:
        sheet_row = _sheet_row(s, sheet)
        row = _get_row(s, sheet_row.id, item_ref, label_type)
        if row is None:
            raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
        s.add(CanonicalLabelHistory(
            id=new_id(), label_id=row.id, sheet_id=row.sheet_id, item_ref=row.item_ref, label_type=row.label_type,
            version=row.version + 1, label_data=row.label_data, allowed_uses=list(row.allowed_uses or []),
            prohibited_uses=list(row.prohibited_uses or []), usage_reason=row.usage_reason,
            data_classification=list(row.data_classification or []), confidence=row.confidence, notes=row.notes,
            origin="site", action="withdraw", reason=reason or "withdrawn", changed_by=actor.username,
            changed_at=utcnow(),
        ))
        s.delete(row)
        audit.record(s, actor, "label.withdraw", f"{sheet_row.name}/{item_ref}/{label_type}",
                     {"version": row.version, "reason": reason})
    return Changes(labels=True)


# --- conflicts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConflictInfo:
    id: str
    label_id: str
    sheet_id: str
    item_ref: str
    label_type: str
    current_version: int
    proposed_data: dict
    proposed_by: str
    origin: str
    status: str
    created_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def list_conflicts(store: Store, *, sheet: str | None = None, status: str = "open") -> list[ConflictInfo]:
    with store.read() as s:
        query = sa.select(LabelConflict).where(LabelConflict.status == status)
        if sheet is not None:
            query = query.where(LabelConflict.sheet_id == _sheet_row(s, sheet).id)
        return [ConflictInfo(c.id, c.label_id, c.sheet_id, c.item_ref, c.label_type, c.current_version,
                             c.proposed_data, c.proposed_by, c.origin, c.status, iso(c.created_at))
                for c in s.scalars(query.order_by(LabelConflict.created_at))]


def resolve_conflict(
    store: Store, *, actor: User, conflict_id: str, accept: bool, note: str = ""
) -> tuple[LabelInfo, Changes]:
    """Accept (the proposal becomes the next version) or keep the current label."""
    require(actor, "review")
    with store.session() as s:
        conflict = s.get(LabelConflict, conflict_id)
        if conflict is None or conflict.status != "open":
            raise NotFoundError(f"no open label conflict {conflict_id!r}")
        row = s.get(CanonicalLabel, conflict.label_id)
        assert row is not None
        if accept:
            record = LabelRecord(
                sheet_id=row.sheet_id, item_ref=row.item_ref, label_type=row.label_type,
                label_data=conflict.proposed_data, allowed_uses=list(row.allowed_uses),
                prohibited_uses=list(row.prohibited_uses), usage_reason=row.usage_reason,
                confidence=row.confidence, notes=row.notes, expected_version=row.version,
                reason=note or f"accepted proposal from {conflict.proposed_by} ({conflict.origin})",
            )
            [record] = prepare_records(s, [record])
            upsert_records(s, actor, [record], action="resolve")
        conflict.status = "resolved"
        conflict.resolution = "accepted" if accept else "kept_current"
        conflict.resolved_by = actor.username
        conflict.resolved_at = utcnow()
        s.flush()
        still_open = s.scalar(sa.select(sa.func.count()).select_from(LabelConflict).where(
            LabelConflict.label_id == row.id, LabelConflict.status == "open"))
        s.execute(sa.update(CanonicalLabel).where(CanonicalLabel.id == row.id).values(
            review_state="conflict" if still_open else "ok"))
        audit.record(s, actor, "label.conflict_resolved", conflict_id, {"accept": accept, "note": note})
        s.expire_all()
        info = _label_info(s.get(CanonicalLabel, row.id))
    return info, Changes(labels=True)


# --- sheet-level views -----------------------------------------------------------------------


def labels_for_sheet(store: Store, *, sheet: str, label_type: str | None = None) -> list[LabelInfo]:
    with store.read() as s:
        query = sa.select(CanonicalLabel).where(CanonicalLabel.sheet_id == _sheet_row(s, sheet).id)
        if label_type:
            query = query.where(CanonicalLabel.label_type == label_type)
        return [_label_info(r) for r in s.scalars(query.order_by(CanonicalLabel.item_ref))]


@dataclass(frozen=True)
class LabelProgress:
    total_items: int
    labeled: int
    conflicting: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def label_progress(store: Store, *, sheet: str, label_type: str) -> LabelProgress:
    """"150 / 500 items labeled" for one sheet and label type."""
    with store.read() as s:
        sheet_row = _sheet_row(s, sheet)
        labeled, conflicting = s.execute(
            sa.select(sa.func.count(), sa.func.count().filter(CanonicalLabel.review_state == "conflict"))
            .where(CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type)
        ).one()
        return LabelProgress(sheet_row.item_count, int(labeled), int(conflicting))


def item_status(store: Store, *, sheet: str, label_type: str) -> dict[str, str]:
    """item_ref → 'labeled' | 'conflict' for items that have a label (absent = unlabeled)."""
    with store.read() as s:
        sheet_row = _sheet_row(s, sheet)
        rows = s.execute(sa.select(CanonicalLabel.item_ref, CanonicalLabel.review_state).where(
            CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type))
        return {ref: ("conflict" if state == "conflict" else "labeled") for ref, state in rows}


# --- bulk import / export ----------------------------------------------------------------------


def _split_uses(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [u.strip() for u in text.replace(";", ",").split(",") if u.strip()]


def _read_label_file(path: Path) -> list[dict]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ValidationError(f"label file {path} does not exist")
    try:
        if suffix == ".csv":
            with open(path, newline="", encoding="utf-8") as handle:
                return list(csv.DictReader(handle))
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            with open(path, encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        try:
                            rows.append(json.loads(line))
                        except json.JSONDecodeError as exc:
                            raise ValidationError(f"row {number}: not valid JSON ({exc.msg})") from None
            return rows
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
    except UnicodeDecodeError as exc:
        raise ValidationError(f"label file {path.name} is not UTF-8 text: {exc}") from None
    raise ValidationError(f"label file {path.name}: use .csv, .jsonl or .parquet")


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
    errors = _RowErrors()
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
                    data = json.loads(data)
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
    """Import a CSV/JSONL/Parquet file of labels in ONE transaction: a bad row refuses the file."""
    require(actor, "label")
    progress = progress or Progress()
    path = Path(path)
    progress.start(3, f"reading {path.name}")
    rows = _read_label_file(path)
    if not rows:
        raise ValidationError(f"label file {path.name} has no rows")
    progress.set(1, f"checking {len(rows)} labels")
    with store.session() as s:
        records = records_from_rows(s, rows, default_sheet=sheet, default_label_type=label_type)
        records = prepare_records(s, records)
        progress.check()
        progress.set(2, f"writing {len(records)} labels")
        outcome = upsert_records(s, actor, records, action="import")
        audit.record(s, actor, "label.import", path.name, {"rows": len(rows), **outcome.to_dict()})
    progress.finish(f"imported {len(records)} labels")
    return outcome, Changes(labels=True)


def apply_incoming_labels(session: Session, actor: User, rows: list[dict], *, origin: str = "hub") -> UpsertOutcome:
    """Labels arriving in a bundle, inside the importer's transaction. Disagreements become conflicts."""
    records = prepare_records(session, records_from_rows(session, rows))
    outcome = upsert_records(session, actor, records, origin=origin, action="import")
    audit.record(session, actor, "label.bundle_import", origin, outcome.to_dict())
    return outcome


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename: no half-written exports."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(path.parent, os.W_OK):
        raise ValidationError(f"cannot write to {path.parent}: permission denied")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_labels(
    store: Store, *, actor: User, out: Path | str, fmt: str, sheet: str | None = None, label_type: str | None = None,
) -> dict:
    """Export current labels as csv, jsonl, parquet or COCO (localization labels only)."""
    require(actor, "export_data")
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"unknown export format {fmt!r}; use {', '.join(EXPORT_FORMATS)}")
    if fmt == "coco" and label_type not in (None, "localization"):
        raise ValidationError("COCO export holds localization labels only (use --label-type localization)")
    if fmt == "coco":
        label_type = "localization"
    with store.read() as s:
        where, params = [], []
        if sheet:
            where.append("c.sheet_id = ?")
            params.append(_sheet_row(s, sheet).id)
        if label_type:
            where.append("c.label_type = ?")
            params.append(label_type)
        sql = ("SELECT s.name AS sheet, c.item_ref, c.label_type, c.label_data::VARCHAR AS label_data, c.version, "
               "c.allowed_uses::VARCHAR AS allowed_uses, c.prohibited_uses::VARCHAR AS prohibited_uses, "
               "c.usage_reason, c.data_classification::VARCHAR AS data_classification, c.confidence, c.notes, "
               "c.origin, c.updated_by, c.updated_at, i.image_path, s.image_root "
               "FROM canonical_labels c JOIN sheets s ON s.id = c.sheet_id "
               "LEFT JOIN sheet_items i ON i.sheet_id = c.sheet_id AND i.item_ref = c.item_ref"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY s.name, c.item_ref, c.label_type")
        table = query_arrow(s, sql, params)
    rows = table.to_pylist()

    def write(tmp: Path) -> None:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            pq.write_table(table.drop_columns(["image_root"]), tmp)
        elif fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as handle:
                for r in rows:
                    out_row = {k: v for k, v in r.items() if k != "image_root"}
                    for key in ("label_data", "allowed_uses", "prohibited_uses", "data_classification"):
                        out_row[key] = json.loads(out_row[key])
                    out_row["updated_at"] = iso(out_row["updated_at"])
                    handle.write(json.dumps(out_row, ensure_ascii=False) + "\n")
        elif fmt == "csv":
            with open(tmp, "w", newline="", encoding="utf-8") as handle:
                columns = [c for c in table.column_names if c != "image_root"]
                writer = csv.DictWriter(handle, fieldnames=columns)
                writer.writeheader()
                for r in rows:
                    writer.writerow({k: (iso(v) if k == "updated_at" else v) for k, v in r.items() if k in columns})
        else:
            _write_coco(tmp, rows)

    _atomic_write(Path(out), write)
    return {"path": str(out), "format": fmt, "labels": len(rows)}


def _write_coco(tmp: Path, rows: list[dict]) -> None:
    from PIL import Image

    categories = get_label_type("localization").schema["properties"]["boxes"]["items"]["properties"]["label"]["enum"]
    cat_ids = {name: i + 1 for i, name in enumerate(categories)}
    images, annotations = [], []
    for image_id, r in enumerate(rows, start=1):
        width = height = None
        if r["image_root"] and r["image_path"]:
            try:
                with Image.open(Path(r["image_root"]) / r["image_path"]) as img:
                    width, height = img.size
            except OSError:
                pass
        images.append({"id": image_id, "file_name": r["image_path"] or r["item_ref"], "width": width, "height": height,
                       "vital_item_ref": r["item_ref"], "vital_sheet": r["sheet"]})
        for box in json.loads(r["label_data"]).get("boxes", []):
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": cat_ids[box["label"]],
                "bbox": [box["x"], box["y"], box["width"], box["height"]], "area": box["width"] * box["height"],
                "iscrowd": 0,
            })
    coco = {"info": {"description": "VITAL Desktop canonical localization labels"}, "images": images,
            "annotations": annotations, "categories": [{"id": i, "name": n} for n, i in cat_ids.items()]}
    tmp.write_text(json.dumps(coco, indent=1), encoding="utf-8")


def label_csv_template() -> str:
    """The header a bulk-import CSV needs (shown by the CLI and the GUI's import dialog)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["sheet", "item_ref", "label_type", "label_data", "allowed_uses", "prohibited_uses",
                                 "usage_reason", "confidence", "notes"])
    return buffer.getvalue()
