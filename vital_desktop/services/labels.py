"""Canonical labels: one label per (sheet_id, item_ref, label_type), versioned, governed.

This module holds the single-label verbs (set, rollback, withdraw) and re-exports the label
service's public names, which live in modules of one job each:

- `label_write` — THE write path (`prepare_records` + `upsert_records`): claims, expected
  versions, origin rules, usage-constraint relaxation as conflicts, history. Nothing else
  writes the label tables;
- `label_queries` — reading labels, history and progress;
- `label_claims` — claims on items;
- `label_conflicts` — listing and resolving conflicts;
- `label_files` — bulk import, hub bundle labels, exports;
- `label_types` — what a label looks like.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.label_claims import (  # noqa: F401 - re-exported
    claim_holder,
    refuse_if_claimed,
    release_own_claims,
)
from vital_desktop.services.label_conflicts import ConflictInfo, list_conflicts, resolve_conflict  # noqa: F401
from vital_desktop.services.label_files import (  # noqa: F401 - re-exported
    EXPORT_FORMATS,
    apply_incoming_labels,
    export_labels,
    import_labels,
    label_csv_template,
    records_from_rows,
)
from vital_desktop.services.label_queries import (  # noqa: F401 - re-exported
    LabelInfo,
    LabelProgress,
    LabelVersion,
    SetLabelResult,
    get_label,
    get_row,
    history,
    item_labels,
    item_status,
    label_info,
    written_info,
    label_progress,
    labels_for_sheet,
    sheet_row,
)
from vital_desktop.services.label_types import LabelType, get_label_type, validate_label_data  # noqa: F401 - re-exported
from vital_desktop.services.label_types import list_label_types as label_types  # noqa: F401 - re-exported
from vital_desktop.services.label_write import (  # noqa: F401 - re-exported
    CONFIDENCE_LEVELS,
    MAX_ERRORS_REPORTED,
    LabelRecord,
    UpsertOutcome,
    prepare_records,
    upsert_records,
)
from vital_desktop.services.label_write_maintenance import (  # noqa: F401 - re-exported
    ErasedLabels,
    erase_labels,
    flag_changed_items,
    flag_for_review,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, CanonicalLabelHistory, LabelConflict  # noqa: F401

# Old private names other services still use.
_sheet_row = sheet_row
_get_row = get_row
_label_info = label_info


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
    """`set_label` inside the caller's transaction (review approval and feedback use it with
    their own updates). The write path enforces claims, versions and constraints."""
    found = sheet_row(s, sheet)
    sheet_name = found.name  # the write expires the session's objects: no reload for the audit target
    record = LabelRecord(
        sheet_id=found.id, item_ref=item_ref, label_type=label_type, label_data=label_data,
        allowed_uses=list(allowed_uses) if allowed_uses is not None else None,
        prohibited_uses=list(prohibited_uses) if prohibited_uses is not None else None,
        usage_reason=usage_reason, confidence=confidence or None, notes=notes or "",
        expected_version=expected_version, reason=reason,
    )
    [record] = prepare_records(s, [record], sheets=[found])
    outcome = upsert_records(s, actor, [record], origin=origin, action=action)
    kind = ("created" if outcome.created else "updated" if outcome.updated else
            "conflict" if outcome.conflicts else "unchanged")
    written = outcome.written[0]  # the label as the write left it: no read back
    assert written is not None
    if kind != "unchanged":
        audit.record(s, actor, f"label.{kind}", f"{sheet_name}/{item_ref}/{label_type}",
                     {"version": written["version"], "reason": reason, "action": action})
    return SetLabelResult(kind, written_info(written), outcome.conflict_ids[0] if outcome.conflict_ids else None)


def rollback(
    store: Store, *, actor: User, sheet: str, item_ref: str, label_type: str, to_version: int, reason: str = ""
) -> tuple[LabelInfo, Changes]:
    """Make a new version whose content is that of `to_version` (history is never rewritten).
    A rollback that would relax the label's usage constraints, by someone other than an admin
    or the label's owner, becomes a conflict (the returned label is then unchanged)."""
    require(actor, "label")
    with store.session() as s:
        found = sheet_row(s, sheet)
        row = get_row(s, found.id, item_ref, label_type)
        if row is None:
            raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
        old = s.query(CanonicalLabelHistory).filter(
            CanonicalLabelHistory.label_id == row.id, CanonicalLabelHistory.version == to_version).one_or_none()
        if old is None or old.action == "withdraw":
            raise NotFoundError(f"label {item_ref}/{label_type} has no version {to_version} (current: {row.version})")
        if to_version == row.version:
            raise ValidationError(f"version {to_version} is already the current version")
        record = LabelRecord(
            sheet_id=found.id, item_ref=item_ref, label_type=label_type, label_data=old.label_data,
            allowed_uses=list(old.allowed_uses), prohibited_uses=list(old.prohibited_uses),
            usage_reason=old.usage_reason, confidence=old.confidence, notes=old.notes, expected_version=row.version,
            reason=reason or f"rollback to version {to_version}",
        )
        [record] = prepare_records(s, [record])
        outcome = upsert_records(s, actor, [record], action="rollback")
        row = get_row(s, found.id, item_ref, label_type)
        assert row is not None
        audit.record(s, actor, "label.rollback", f"{found.name}/{item_ref}/{label_type}",
                     {"to_version": to_version, "new_version": row.version, "reason": reason,
                      "conflict": bool(outcome.conflicts)})
        info = label_info(row)
    return info, Changes(labels=True)


def withdraw_label(
    store: Store, *, actor: User, sheet: str, item_ref: str, label_type: str, reason: str = "",
    expected_version: int | None = None,
) -> Changes:
    """Remove the current label of one key, keeping its history (the labeling tool's undo of a
    first save: the item becomes unlabeled again). The history gets a 'withdraw' row. Goes
    through the write path: claims and the expected version are enforced."""
    require(actor, "label")
    with store.session() as s:
        found = sheet_row(s, sheet)
        row = get_row(s, found.id, item_ref, label_type)
        if row is None:
            raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
        version = row.version
        record = LabelRecord(sheet_id=found.id, item_ref=item_ref, label_type=label_type, label_data=row.label_data,
                             expected_version=expected_version, reason=reason or "withdrawn", withdraw=True)
        upsert_records(s, actor, [record], action="withdraw")
        audit.record(s, actor, "label.withdraw", f"{found.name}/{item_ref}/{label_type}",
                     {"version": version, "reason": reason})
    return Changes(labels=True)
