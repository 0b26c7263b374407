"""Claims: an expert claims items for a while so two experts never label the same item at once.

Claims expire; expired ones are ignored everywhere and replaced on the next claim. The write
path (`label_write.upsert_records`) refuses every label change on a key someone else holds;
reject and flag in Mode A ask `refuse_if_claimed` the same question.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import label_types
from vital_desktop.services.accounts import require
from vital_desktop.services.label_queries import sheet_row as _sheet_row
from vital_desktop.store import audit
from vital_desktop.store.bulk import insert_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, LabelClaim, Sheet, SheetItem

DEFAULT_CLAIM_MINUTES = 30
MAX_CLAIM_MINUTES = 24 * 60


@dataclass(frozen=True)
class ClaimResult:
    claimed: list[str]
    refused: dict[str, str]  # item_ref → who holds it
    expires_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)




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




def claim_items(
    store: Store,
    *,
    actor: User,
    sheet: str,
    label_type: str,
    item_refs: list[str] | None = None,
    count: int = 10,
    minutes: int = DEFAULT_CLAIM_MINUTES,
) -> tuple[ClaimResult, Changes]:
    """Claim items for `minutes` so no other expert labels them meanwhile.

    With `item_refs`, those items (ones held by someone else are refused, not taken); without,
    the next `count` unlabeled items nobody else holds. Claiming again extends your own claim.
    """
    require(actor, "label")
    label_types.get_label_type(store, label_type)
    if not 1 <= int(minutes) <= MAX_CLAIM_MINUTES:
        raise ValidationError(f"a claim lasts 1 to {MAX_CLAIM_MINUTES} minutes, not {minutes}")
    if item_refs is None and not 1 <= int(count) <= 10_000:
        raise ValidationError(f"claim 1 to 10000 items at a time, not {count}")
    now = utcnow()
    expires = now + dt.timedelta(minutes=int(minutes))
    with store.session() as s:
        sheet_row = _sheet_row(s, sheet)
        live = {c.item_ref: c.claimed_by for c in s.scalars(sa.select(LabelClaim).where(
            LabelClaim.sheet_id == sheet_row.id, LabelClaim.label_type == label_type, LabelClaim.expires_at > now))}
        known = list(s.scalars(sa.select(SheetItem.item_ref).where(SheetItem.sheet_id == sheet_row.id)
                               .order_by(SheetItem.position)))
        refused: dict[str, str] = {}
        if item_refs is not None:
            unknown = [r for r in item_refs if r not in set(known)]
            if unknown:
                raise NotFoundError(f"sheet {sheet_row.name!r} has no item(s) {', '.join(unknown[:10])}")
            wanted = list(dict.fromkeys(item_refs))
            refused = {r: live[r] for r in wanted if r in live and live[r] != actor.username}
            wanted = [r for r in wanted if r not in refused]
        else:
            labeled = set(s.scalars(sa.select(CanonicalLabel.item_ref).where(
                CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type)))
            wanted = [r for r in known if r not in labeled and live.get(r, actor.username) == actor.username][:int(count)]
        if wanted:
            # Expired claims and the actor's own are replaced; the unique key allows one row per item.
            s.execute(sa.delete(LabelClaim).where(
                LabelClaim.sheet_id == sheet_row.id, LabelClaim.label_type == label_type,
                LabelClaim.item_ref.in_(wanted),
                sa.or_(LabelClaim.expires_at <= now, LabelClaim.claimed_by == actor.username)))
            insert_arrow(s, "label_claims", pa.table({
                "id": [new_id() for _ in wanted], "sheet_id": [sheet_row.id] * len(wanted), "item_ref": wanted,
                "label_type": [label_type] * len(wanted), "claimed_by": [actor.username] * len(wanted),
                "claimed_at": [now] * len(wanted), "expires_at": [expires] * len(wanted)}))
            audit.record(s, actor, "label.claim", f"{sheet_row.name}/{label_type}",
                         {"items": len(wanted), "minutes": int(minutes), "refused": len(refused)})
    return ClaimResult(wanted, refused, iso(expires) if wanted else None), Changes(labels=bool(wanted))


def release_claims(
    store: Store, *, actor: User, sheet: str, label_type: str, item_refs: list[str] | None = None
) -> tuple[int, Changes]:
    """Give back your claims (all of them on this sheet and label type unless `item_refs`)."""
    require(actor, "label")
    with store.session() as s:
        sheet_row = _sheet_row(s, sheet)
        query = sa.delete(LabelClaim).where(LabelClaim.sheet_id == sheet_row.id, LabelClaim.label_type == label_type,
                                            LabelClaim.claimed_by == actor.username)
        if item_refs is not None:
            query = query.where(LabelClaim.item_ref.in_(item_refs))
        count = cast(sa.CursorResult, s.execute(query)).rowcount or 0
        if count:
            audit.record(s, actor, "label.release", f"{sheet_row.name}/{label_type}", {"items": count})
    return count, Changes(labels=bool(count))


def list_claims(store: Store, *, sheet: str | None = None, label_type: str | None = None) -> list[dict]:
    """Live claims (expired ones are ignored everywhere and replaced on the next claim)."""
    with store.read() as s:
        query = sa.select(LabelClaim, Sheet.name).join(Sheet, Sheet.id == LabelClaim.sheet_id).where(
            LabelClaim.expires_at > utcnow())
        if sheet:
            query = query.where(LabelClaim.sheet_id == _sheet_row(s, sheet).id)
        if label_type:
            query = query.where(LabelClaim.label_type == label_type)
        return [{"sheet": name, "item_ref": c.item_ref, "label_type": c.label_type, "claimed_by": c.claimed_by,
                 "expires_at": iso(c.expires_at)} for c, name in s.execute(query.order_by(LabelClaim.item_ref))]
