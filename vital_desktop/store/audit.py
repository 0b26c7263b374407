"""The append-only, hash-chained audit log.

Each row's hash is ``sha256(prev_hash || canonical JSON of (seq, at, username, action,
target, details))``; the first row chains from `GENESIS`. Editing or deleting any row breaks
the chain at that row (or at the next one), which `verify` reports. Rows are written in the
same transaction as the change they describe, so an action and its audit row stand or fall
together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.ids import utcnow
from vital_desktop.core.users import User
from vital_desktop.store.models import AuditEntry, Setting

GENESIS = "0" * 64
#: The newest row's (seq, hash), kept beside the chain so that deleting the *last* rows (which
#: breaks no link) is detected too.
HEAD_KEY = "audit_head"


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _row_hash(prev_hash: str, seq: int, at: str, username: str, action: str, target: str, details: str) -> str:
    payload = _canonical([seq, at, username, action, target, details])
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


def _at_text(value: Any) -> str:
    return value.isoformat(timespec="microseconds") if hasattr(value, "isoformat") else str(value)


def record(session: Session, actor: User | str, action: str, target: str = "", details: dict | None = None) -> None:
    """Append one audit row inside the caller's transaction."""
    username = actor if isinstance(actor, str) else actor.username
    head = session.get(Setting, HEAD_KEY)
    if head is not None and isinstance(head.value, dict):
        prev_hash = head.value["hash"]
    else:
        last = session.execute(
            sa.select(AuditEntry.seq, AuditEntry.row_hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
        prev_hash = last.row_hash if last else GENESIS
    seq = session.execute(sa.text("SELECT nextval('audit_log_seq')")).scalar_one()
    at = utcnow()
    details_text = _canonical(details or {})
    entry = AuditEntry(
        seq=seq,
        logged_at=at,
        username=username,
        action=action,
        target=target,
        details=details_text,
        prev_hash=prev_hash,
        row_hash=_row_hash(prev_hash, seq, _at_text(at), username, action, target, details_text),
    )
    session.add(entry)
    if head is None:
        session.add(Setting(key=HEAD_KEY, value={"seq": seq, "hash": entry.row_hash}))
    else:
        head.value = {"seq": seq, "hash": entry.row_hash}
        head.updated_at = at
    session.flush()


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    rows: int
    first_broken_seq: int | None
    reason: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "rows": self.rows, "first_broken_seq": self.first_broken_seq, "reason": self.reason}


def verify(session: Session) -> AuditVerification:
    """Walk the chain in order; report the first row whose link or content does not hold."""
    prev_hash = GENESIS
    count = 0
    rows = session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for row in rows:
        count += 1
        if row.prev_hash != prev_hash:
            return AuditVerification(
                False, count, row.seq, f"row {row.seq} does not link to the row before it (a row was removed or edited)"
            )
        expected = _row_hash(prev_hash, row.seq, _at_text(row.logged_at), row.username, row.action, row.target, row.details)
        if expected != row.row_hash:
            return AuditVerification(False, count, row.seq, f"row {row.seq} was edited after it was written")
        prev_hash = row.row_hash
    head = session.get(Setting, HEAD_KEY)
    if head is not None and isinstance(head.value, dict) and head.value.get("hash") != prev_hash:
        return AuditVerification(
            False, count, int(head.value.get("seq", 0)),
            f"the newest rows are missing: the log ends before row {head.value.get('seq')}",
        )
    return AuditVerification(True, count, None, "the audit chain is intact")


def recent(session: Session, limit: int = 100) -> list[dict]:
    rows = session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)).scalars()
    return [
        {"seq": r.seq, "at": _at_text(r.logged_at), "user": r.username, "action": r.action, "target": r.target,
         "details": json.loads(r.details)}
        for r in rows
    ]
