"""Label conflicts: proposals the write path did not apply (a stale version, another user's or
the hub's different data, a relaxed usage constraint), listed and resolved by an expert.

Accepting applies the whole proposal (data and constraints) through the one write path as the
next version; a proposal that relaxes the label's usage constraints can be accepted only by an
admin or the label's owner.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, PermissionDenied
from vital_desktop.core.ids import iso
from vital_desktop.core.users import User
from vital_desktop.services import label_write
from vital_desktop.services.accounts import require
from vital_desktop.services.label_queries import LabelInfo, label_info, sheet_row
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, LabelConflict


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
    kind: str = ""  # stale | other_user | hub | relaxation
    detail: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _info(c: LabelConflict) -> ConflictInfo:
    return ConflictInfo(c.id, c.label_id, c.sheet_id, c.item_ref, c.label_type, c.current_version, c.proposed_data,
                        c.proposed_by, c.origin, c.status, iso(c.created_at), c.kind or "", c.detail or "")


def list_conflicts(store: Store, *, sheet: str | None = None, status: str = "open") -> list[ConflictInfo]:
    """Conflicts with `status` (open by default), oldest first, optionally of one sheet."""
    with store.read() as s:
        query = sa.select(LabelConflict).where(LabelConflict.status == status)
        if sheet is not None:
            query = query.where(LabelConflict.sheet_id == sheet_row(s, sheet).id)
        return [_info(c) for c in s.scalars(query.order_by(LabelConflict.created_at))]


def _proposal(conflict: LabelConflict, row: CanonicalLabel, actor: User, note: str) -> label_write.LabelRecord:
    def pick(proposed, current):
        return current if proposed is None else proposed

    return label_write.LabelRecord(
        sheet_id=row.sheet_id, item_ref=row.item_ref, label_type=row.label_type, label_data=conflict.proposed_data,
        allowed_uses=list(pick(conflict.proposed_allowed_uses, row.allowed_uses) or []),
        prohibited_uses=list(pick(conflict.proposed_prohibited_uses, row.prohibited_uses) or []),
        usage_reason=pick(conflict.proposed_usage_reason, row.usage_reason) or "",
        confidence=pick(conflict.proposed_confidence, row.confidence),
        notes=pick(conflict.proposed_notes, row.notes) or "", expected_version=row.version,
        reason=note or f"accepted proposal from {conflict.proposed_by} ({conflict.origin})",
    )


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
        if row is None:
            raise NotFoundError(f"the label of conflict {conflict_id!r} was withdrawn; nothing to resolve against")
        if accept:
            [record] = label_write.prepare_records(s, [_proposal(conflict, row, actor, note)])
            current = label_write.Current(
                row.id, row.version, row.label_data, row.created_by, row.updated_by, list(row.allowed_uses or []),
                list(row.prohibited_uses or []), row.usage_reason, list(row.data_classification or []),
                row.confidence, row.notes)
            allowed, prohibited, _ = label_write.effective_uses(record, current)
            loosened = label_write.relaxations(current, allowed, prohibited, record.data_classification)
            if loosened and not label_write.may_relax(actor, current, "site"):
                raise PermissionDenied(
                    f"this proposal relaxes the label's usage constraints ({', '.join(loosened)}); only an admin or "
                    f"the label's owner {row.created_by} may accept it")
            label_write.upsert_records(s, actor, [record], action="resolve")
        label_write.close_conflict(s, actor, conflict_id, "accepted" if accept else "kept_current")
        audit.record(s, actor, "label.conflict_resolved", conflict_id, {"accept": accept, "note": note})
        s.expire_all()
        after = s.get(CanonicalLabel, row.id)
        assert after is not None  # resolving never withdraws the label
        info = label_info(after)
    return info, Changes(labels=True)
