"""The decision of the one label write path: what applying a record over the stored label does.

Pure functions (no store): `decide` holds every rule listed in `label_write`'s docstring —
withdrawal checks, expected version, origin, other users, usage-constraint relaxation — so one
save and a million-row import are decided alike. `label_write` applies the decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vital_desktop.core import governance
from vital_desktop.core.errors import ConflictError, NotFoundError
from vital_desktop.core.users import User
from vital_desktop.services.label_records import LabelRecord


@dataclass(frozen=True)
class Current:
    """The stored label a record meets (what `decide` compares against)."""

    id: str
    version: int
    label_data: Any
    created_by: str
    updated_by: str
    allowed_uses: list[str]
    prohibited_uses: list[str]
    usage_reason: str
    data_classification: list[str]
    confidence: str | None
    notes: str
    # What a save returns about the label it left in place (not used by `decide`).
    created_at: Any = None
    updated_at: Any = None
    review_state: str = "ok"
    origin: str = "site"
    label_type_version: str | None = None


@dataclass(frozen=True)
class Decision:
    outcome: str  # create | update | unchanged | conflict | withdraw
    kind: str = ""  # for conflicts: one of CONFLICT_KINDS
    detail: str = ""


def relaxations(cur: Current, allowed: list[str], prohibited: list[str], tags: list[str]) -> list[str]:
    """How the new constraints are looser than the current ones ([] when they are not)."""
    found = [f"allows {u}" for u in sorted(set(allowed) - set(cur.allowed_uses))]
    found += [f"no longer prohibits {u}" for u in sorted(set(cur.prohibited_uses) - set(prohibited))]
    found += [f"drops data classification {t}" for t in sorted(set(cur.data_classification) - set(tags))]
    return found


def may_relax(actor: User, cur: Current, origin: str) -> bool:
    """Only an admin or the label's owner, working at this site, may relax a label's constraints."""
    return origin == "site" and (actor.is_admin or actor.username == cur.created_by)


def effective_uses(rec: LabelRecord, cur: Current | None) -> tuple[list[str], list[str], str]:
    """The constraints a record would store: its own, or (none given) the current label's with
    the sheet's classification applied again."""
    if rec.keep_uses and cur is not None:
        return governance.apply_classification(rec.data_classification, cur.allowed_uses, cur.prohibited_uses,
                                               cur.usage_reason)
    return list(rec.allowed_uses or []), list(rec.prohibited_uses or []), rec.usage_reason


def decide(rec: LabelRecord, cur: Current | None, actor: User, origin: str) -> Decision:
    """What applying `rec` over `cur` does. Pure: the same rules for one save or a million."""
    if rec.withdraw:
        if cur is None:
            raise NotFoundError(f"no {rec.label_type} label for item {rec.item_ref!r} to withdraw")
        if rec.expected_version is not None and rec.expected_version != cur.version:
            raise ConflictError(f"the {rec.label_type} label of {rec.item_ref!r} is at version {cur.version}, not "
                                f"{rec.expected_version}; look at it again before withdrawing it")
        if cur.updated_by != actor.username and rec.expected_version is None and not actor.is_admin:
            raise ConflictError(f"the {rec.label_type} label of {rec.item_ref!r} was last changed by {cur.updated_by}; "
                                "only they or an admin may withdraw it without naming the version seen")
        return Decision("withdraw")
    if cur is None:
        return Decision("create")
    allowed, prohibited, reason = effective_uses(rec, cur)
    same_data = cur.label_data == rec.label_data
    same_rest = (sorted(allowed) == sorted(cur.allowed_uses) and sorted(prohibited) == sorted(cur.prohibited_uses)
                 and reason == cur.usage_reason
                 and rec.confidence == cur.confidence and rec.notes == cur.notes
                 and sorted(rec.data_classification) == sorted(cur.data_classification))
    if same_data and same_rest and not rec.confirm:
        return Decision("unchanged")
    if rec.expected_version is not None and rec.expected_version != cur.version:
        seen = f"version {rec.expected_version}" if rec.expected_version else "no label"
        return Decision("conflict", "stale", f"based on {seen}, but the label is at version {cur.version} "
                                             f"(last changed by {cur.updated_by})")
    saw_current = rec.expected_version is not None and rec.expected_version == cur.version
    if not same_data and origin != "site":
        return Decision("conflict", "hub", f"{origin} label differs from the site's version {cur.version}")
    if not same_data and cur.updated_by != actor.username and not saw_current:
        return Decision("conflict", "other_user", f"differs from version {cur.version} by {cur.updated_by}")
    loosened = relaxations(cur, allowed, prohibited, rec.data_classification)
    if loosened and not may_relax(actor, cur, origin):
        return Decision("conflict", "relaxation", "relaxes usage constraints (" + ", ".join(loosened)
                        + f"); only an admin or the label's owner {cur.created_by} may")
    return Decision("update")
