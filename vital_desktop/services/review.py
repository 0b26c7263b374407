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

This module holds the single review actions; listing is in `review_queries`, bulk actions in
`review_bulk`, claims in `label_claims` (all re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, ValidationError
from vital_desktop.core.ids import utcnow
from vital_desktop.core.users import User
from vital_desktop.services import labels, templates
from vital_desktop.services.accounts import require
from vital_desktop.services.label_claims import (  # noqa: F401 - re-exported (Mode B claims)
    DEFAULT_CLAIM_MINUTES,
    MAX_CLAIM_MINUTES,
    ClaimResult,
    claim_items,
    list_claims,
    release_claims,
)
from vital_desktop.services.review_bulk import (  # noqa: F401 - re-exported
    BULK_ACTIONS,
    BulkPreview,
    BulkResult,
    bulk_action,
    preview_bulk,
)
from vital_desktop.services.review_queries import (  # noqa: F401 - re-exported
    ITEM_FILTERS,
    ItemPage,
    ItemStatus,
    PairInfo,
    _context,
    _current_label,
    _pair_info,
    find_pair,
    get_pair,
    item_statuses,
    list_pairs,
    pair_refs,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store


@dataclass(frozen=True)
class ReviewOutcome:
    """What a review action did: the pair after it and, for approvals, the label write."""

    pair: PairInfo
    label_outcome: str | None = None  # created | updated | unchanged | conflict
    label: labels.LabelInfo | None = None

    def to_dict(self) -> dict:
        return {"pair": self.pair.to_dict(), "label_outcome": self.label_outcome,
                "label": self.label.to_dict() if self.label else None}


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
        label_data = templates.check_answer(s, tmpl, final)
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
