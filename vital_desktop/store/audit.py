"""The append-only, hash-chained audit log with a signed head.

Each row's hash is ``sha256(prev_hash || canonical JSON of (seq, at, username, action,
target, details))``; the first row chains from `GENESIS`; sequence numbers are contiguous
(each row takes the head's number + 1). The head -- the newest row's (seq, hash) -- is kept
beside the chain and, once the site has its signing key (``keys/site-signing.pem``, outside
the store file), signed with it (Ed25519 over `head_message`). `verify` fails on an edited or
removed row, a gap in the numbers, a missing or malformed head, a head that does not match
the newest row, and a head whose signature does not verify with the site's key -- so someone
holding only the store file can neither cut the log (delete every row and the head) nor
rewrite it consistently (they cannot sign the new head). Every site->hub export carries the
signed head (`signed_head`), so the hub can tell a rewritten chain from a continued one.

Rows are written in the same transaction as the change they describe, so an action and its
audit row stand or fall together.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from vital_desktop.core.errors import PermissionDenied
from vital_desktop.core.ids import utcnow
from vital_desktop.core.users import SYSTEM_USER, User, is_genuine
from vital_desktop.store.bulk import raw_connection
from vital_desktop.store.models import AuditEntry, Setting, UserRow

GENESIS = "0" * 64
#: The newest row's (seq, hash), kept beside the chain so that deleting the *last* rows (which
#: breaks no link) is detected too.
HEAD_KEY = "audit_head"
#: The site's Ed25519 signing key, relative to the site folder (created by `vital init`).
SITE_KEY_PATH = Path("keys") / "site-signing.pem"
HEAD_CONTEXT = "vital-audit-head-v1"


def head_message(seq: int, row_hash: str) -> bytes:
    """The exact bytes the site key signs for a head (also what the hub checks)."""
    return _canonical({"context": HEAD_CONTEXT, "seq": int(seq), "hash": row_hash}).encode("utf-8")


def _home(session: Session) -> Path | None:
    database = session.get_bind().engine.url.database  # an Engine or a Connection: both have .engine
    return Path(database).parent if database and database != ":memory:" else None


_KEY_CACHE: dict[str, tuple[float, Ed25519PrivateKey]] = {}


def site_private_key(home: Path | None) -> Ed25519PrivateKey | None:
    """The site's signing key from ``home/keys/site-signing.pem``, or None before `vital init` made it."""
    if home is None:
        return None
    path = home / SITE_KEY_PATH
    try:
        mtime = os.stat(path).st_mtime
    except OSError:
        return None
    cached = _KEY_CACHE.get(str(path))
    if cached is not None and cached[0] == mtime:
        return cached[1]
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        return None
    _KEY_CACHE[str(path)] = (mtime, key)
    return key


def _public_raw(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _signed_head_value(home: Path | None, seq: int, row_hash: str) -> dict[str, Any]:
    value: dict[str, Any] = {"seq": seq, "hash": row_hash}
    key = site_private_key(home)
    if key is not None:
        value["key_id"] = hashlib.sha256(_public_raw(key)).hexdigest()
        value["signature"] = key.sign(head_message(seq, row_hash)).hex()
    return value


def verify_head_signature(public_raw: bytes, head: dict[str, Any]) -> bool:
    """True if `head` ({seq, hash, signature}) carries a valid signature by `public_raw`."""
    try:
        signature = bytes.fromhex(str(head["signature"]))
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, head_message(int(head["seq"]),
                                                                                     str(head["hash"])))
        return True
    except (InvalidSignature, KeyError, ValueError, TypeError):
        return False


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _row_hash(prev_hash: str, seq: int, at: str, username: str, action: str, target: str, details: str) -> str:
    payload = _canonical([seq, at, username, action, target, details])
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


def _at_text(value: Any) -> str:
    return value.isoformat(timespec="microseconds") if hasattr(value, "isoformat") else str(value)


def check_actor(session: Session, actor: User) -> None:
    """Refuse an acting user the accounts service did not issue, or whose account is gone,
    disabled, renamed or now has another role (checked inside the change's own transaction)."""
    if actor is SYSTEM_USER:
        return
    if not is_genuine(actor):
        raise PermissionDenied("the acting user is not signed in (this user object was not issued by sign-in)")
    row = session.get(UserRow, actor.id)
    if row is None or row.username != actor.username:
        raise PermissionDenied(f"the account {actor.username!r} does not exist on this site")
    if not row.active:
        raise PermissionDenied(f"the account {actor.username!r} is disabled")
    if row.role != actor.role.value:
        raise PermissionDenied(f"the role of {actor.username!r} changed to {row.role}; sign in again")


def record(session: Session, actor: User | str, action: str, target: str = "", details: dict | None = None) -> None:
    """Append one audit row inside the caller's transaction.

    `actor` is a signed-in `User` (checked against the accounts table: see `check_actor`), or a
    plain name for events with no signed-in user (``"anonymous"`` for failed sign-ins).
    """
    if isinstance(actor, str):
        username = actor
    else:
        check_actor(session, actor)
        username = actor.username
    # Plain statements on the session's connection (every save writes one row: the ORM's
    # statement building costs more than the statements), after flushing what the caller has.
    session.flush()
    raw = raw_connection(session)
    found = raw.execute("SELECT value::VARCHAR FROM settings WHERE key = ?", [HEAD_KEY]).fetchall()
    head = json.loads(found[0][0]) if found else None
    if isinstance(head, dict):
        prev_hash, seq = head["hash"], int(head["seq"]) + 1
    else:
        last = raw.execute("SELECT seq, row_hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchall()
        prev_hash, seq = (last[0][1], int(last[0][0]) + 1) if last else (GENESIS, 1)
    at = utcnow()
    details_text = _canonical(details or {})
    row_hash = _row_hash(prev_hash, seq, _at_text(at), username, action, target, details_text)
    raw.execute("INSERT INTO audit_log (seq, logged_at, username, action, target, details, prev_hash, row_hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [seq, at, username, action, target, details_text, prev_hash, row_hash])
    value = json.dumps(_signed_head_value(_home(session), seq, row_hash))
    if found:
        raw.execute("UPDATE settings SET value = ?::JSON, updated_at = ? WHERE key = ?", [value, at, HEAD_KEY])
    else:
        raw.execute("INSERT INTO settings (key, value, updated_at) VALUES (?, ?::JSON, ?)", [HEAD_KEY, value, at])
    loaded = session.identity_map.get(session.identity_key(Setting, HEAD_KEY))
    if loaded is not None:  # a head this session read before: read it again when asked
        session.expire(loaded)


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    rows: int
    first_broken_seq: int | None
    reason: str

    def to_dict(self) -> dict:
        return {"ok": self.ok, "rows": self.rows, "first_broken_seq": self.first_broken_seq, "reason": self.reason}


def _has_history(session: Session) -> bool:
    """Whether this store has ever been used (so an empty log means a cut one)."""
    if session.scalar(sa.select(sa.func.count()).select_from(UserRow)):
        return True
    return session.get(Setting, "site_id") is not None


def verify(session: Session) -> AuditVerification:
    """Walk the chain in order; report the first row whose number, link or content does not
    hold, then check the head: present, well formed, matching the newest row, and signed by
    the site key whenever the site has one."""
    prev_hash = GENESIS
    prev_seq = 0
    count = 0
    rows = session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq)).scalars()
    for row in rows:
        count += 1
        if row.seq != prev_seq + 1:
            return AuditVerification(
                False, count, row.seq, f"row {row.seq} follows row {prev_seq}: rows "
                f"{prev_seq + 1}..{row.seq - 1} are missing (a gap in the sequence numbers)")
        if row.prev_hash != prev_hash:
            return AuditVerification(
                False, count, row.seq, f"row {row.seq} does not link to the row before it (a row was removed or edited)"
            )
        expected = _row_hash(prev_hash, row.seq, _at_text(row.logged_at), row.username, row.action, row.target, row.details)
        if expected != row.row_hash:
            return AuditVerification(False, count, row.seq, f"row {row.seq} was edited after it was written")
        prev_hash, prev_seq = row.row_hash, row.seq
    head_row = session.get(Setting, HEAD_KEY)
    head = head_row.value if head_row is not None else None
    if head is None:
        if count or _has_history(session):
            return AuditVerification(False, count, prev_seq + 1 if count else 1,
                                     "the audit head is missing (the log was cut or its head removed)")
        return AuditVerification(True, 0, None, "the audit log is empty (a new store)")
    if not isinstance(head, dict) or not isinstance(head.get("seq"), int) or not isinstance(head.get("hash"), str):
        return AuditVerification(False, count, None, "the audit head is malformed")
    if head["seq"] != prev_seq or head["hash"] != prev_hash:
        if head["seq"] > prev_seq:
            return AuditVerification(False, count, head["seq"],
                                     f"the newest rows are missing: the log ends before row {head['seq']}")
        return AuditVerification(False, count, head["seq"], "the audit head does not match the newest row")
    key = site_private_key(_home(session))
    if "signature" in head or key is not None:
        if key is None:
            return AuditVerification(False, count, head["seq"], "the audit head is signed, but the site key "
                                     f"({SITE_KEY_PATH}) is missing, so its signature cannot be checked")
        if "signature" not in head:
            return AuditVerification(False, count, head["seq"], "the audit head is not signed by the site key")
        if not verify_head_signature(_public_raw(key), head):
            return AuditVerification(False, count, head["seq"],
                                     "the audit head's signature does not verify with the site key "
                                     "(the log was rewritten without the key)")
        return AuditVerification(True, count, None, "the audit chain is intact and its head is signed by the site key")
    return AuditVerification(True, count, None, "the audit chain is intact (head unsigned: this site has no key yet)")


def signed_head(session: Session) -> dict[str, Any] | None:
    """The current head ({seq, hash, key_id, signature}) for an export to the hub; None if empty."""
    head = session.get(Setting, HEAD_KEY)
    return dict(head.value) if head is not None and isinstance(head.value, dict) else None


def recent(session: Session, limit: int = 100) -> list[dict]:
    rows = session.execute(sa.select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit)).scalars()
    return [
        {"seq": r.seq, "at": _at_text(r.logged_at), "user": r.username, "action": r.action, "target": r.target,
         "details": json.loads(r.details)}
        for r in rows
    ]
