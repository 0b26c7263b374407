"""The site's side of exchange with the hub: identity (its signing key), the root of trust, the
ledger, and the small helpers the import and export modules share.

Split out of `services.exchange` (which re-exports every public name here)."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey, fingerprint
from vital_desktop.bundles.limits import MAX_ROOT_BYTES
from vital_desktop.bundles.trust import (
    Root,
    load_trusted_root,
)
from vital_desktop.core.errors import ConflictError, ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.users import SYSTEM_USER, User
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    BundleChannelState,
    BundleLedgerEntry,
    Setting,
    TrustKey,
)

SITE_ID_SETTING = "site_id"
ROOT_SETTING = "trust.root"
SITE_KEY_FILE = "site-signing.pem"
SITE_PUBLIC_FILE = "site-signing.pub"
EXPORT_LIFETIME = 365 * 86400
BUNDLE_SUFFIX = ".vbundle"


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


def _ts(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)


def _seconds(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=dt.UTC).timestamp())


def _get_setting(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    return None if row is None else row.value


def _set_setting(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()


def _work_dir(store: Store, prefix: str) -> Path:
    work = store.staging_dir / f"{prefix}-{new_id()}"
    work.mkdir(mode=0o700)
    return work


# --- site identity and root of trust ------------------------------------------------------------


def keys_dir(store: Store) -> Path:
    path = store.home / "keys"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ensure_site_identity(store: Store, site_id: str) -> bool:
    """Create the site's Ed25519 key pair once (private key mode 0600); True if it was created now."""
    folder = keys_dir(store)
    private_path = folder / SITE_KEY_FILE
    if private_path.exists():
        return False
    key = SigningKey.generate()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_pem())
    (folder / SITE_PUBLIC_FILE).write_text(key.public_raw.hex() + "\n", "utf-8")
    with store.session() as s:
        if s.get(TrustKey, key.key_id) is None:
            s.add(TrustKey(key_id=key.key_id, public_key=key.public_raw.hex(), role="site", channels=["exports"],
                           source=f"generated for site {site_id}"))
        audit.record(s, SYSTEM_USER, "site.key_created", site_id, {"key_id": key.key_id})
    return True


def site_key(store: Store) -> SigningKey:
    path = keys_dir(store) / SITE_KEY_FILE
    if not path.exists():
        raise ValidationError("this site has no signing key yet; run `vital init` (or `vital bundle keygen`)")
    return SigningKey.from_pem(path.read_bytes())


@dataclass(frozen=True)
class SiteIdentity:
    site_id: str
    key_id: str
    public_key: str
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def site_identity(store: Store) -> SiteIdentity:
    """What the hub administrator registers: site id and public key (confirm the fingerprint by phone)."""
    with store.read() as s:
        site_id = _get_setting(s, SITE_ID_SETTING)
    if not site_id:
        raise ValidationError("this store has no site id; run `vital init`")
    key = site_key(store)
    return SiteIdentity(site_id, key.key_id, key.public_raw.hex(), fingerprint(key.public_raw))


def _sync_trust_keys(session: Session, root: Root, source: str) -> None:
    """Mirror the root's keys into `trust_keys` (for listing); the signed root stays the authority."""
    now = utcnow()
    seen = set()
    for kid, public in root.root_keys.items():
        seen.add(kid)
        _upsert_key(session, kid, public.hex(), "root", ["truststore"], None, source)
    for kid, info in root.signing_keys.items():
        seen.add(kid)
        _upsert_key(session, kid, info.public.hex(), "channel", sorted(info.channels), _ts(info.expires), source)
    seen.add(root.hub_encryption_key_id)
    _upsert_key(session, root.hub_encryption_key_id, root.hub_encryption_public.hex(), "hub_encryption", ["exports"],
                None, source)
    for row in session.scalars(sa.select(TrustKey).where(TrustKey.role != "site")):
        if row.key_id not in seen and not row.revoked:
            row.revoked = True
            row.revoked_at = now
    for kid in root.revoked:
        revoked = session.get(TrustKey, kid)
        if revoked is not None and not revoked.revoked:
            revoked.revoked, revoked.revoked_at = True, now


def _upsert_key(session: Session, kid: str, public_hex: str, role: str, channels: list[str],
                expires: dt.datetime | None, source: str) -> None:
    row = session.get(TrustKey, kid)
    if row is None:
        session.add(TrustKey(key_id=kid, public_key=public_hex, role=role, channels=channels, expires_at=expires,
                             source=source))
    else:
        row.role, row.channels, row.expires_at = role, channels, expires


@dataclass(frozen=True)
class RootInfo:
    version: int
    name: str
    fingerprints: list[str]
    expires: str
    installed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def root_fingerprints(root: Root) -> list[str]:
    return [fingerprint(public) for _, public in sorted(root.root_keys.items())]


def install_root_of_trust(store: Store, root_json_path: Path | str, *, actor: User = SYSTEM_USER,
                          now: int | None = None) -> RootInfo:
    """Install the hub's root (shipped with the installer). Only once: later roots arrive as truststore bundles."""
    require(actor, "manage_trust")
    path = Path(root_json_path)
    data = path.read_bytes() if path.stat().st_size <= MAX_ROOT_BYTES else b""
    root = load_trusted_root(data, _now(now))
    with store.session() as s:
        current = _get_setting(s, ROOT_SETTING)
        if current is not None:
            if current == data.decode("utf-8"):
                return RootInfo(root.version, root.name, root_fingerprints(root), str(_ts(root.expires)), False)
            raise ConflictError("a root of trust is already installed; a new one must arrive as a truststore bundle")
        _set_setting(s, ROOT_SETTING, data.decode("utf-8"))
        _sync_trust_keys(s, root, f"installed from {path.name}")
        audit.record(s, actor, "trust.root_installed", f"root v{root.version}",
                     {"fingerprints": root_fingerprints(root), "name": root.name})
    return RootInfo(root.version, root.name, root_fingerprints(root), str(_ts(root.expires)), True)


def _load_root(session: Session, now: int, *, allow_expired: bool = False) -> Root:
    text = _get_setting(session, ROOT_SETTING)
    return load_trusted_root(text.encode("utf-8") if isinstance(text, str) else None, now, allow_expired=allow_expired)


def trust_status(store: Store, *, now: int | None = None) -> dict[str, Any]:
    """The installed root (or why it is unusable) and the key table."""
    with store.read() as s:
        try:
            root: Root | None = _load_root(s, _now(now))
            problem = ""
        except BundleRefused as exc:
            root, problem = None, exc.message
        keys = [{"key_id": k.key_id, "role": k.role, "channels": k.channels, "expires_at": k.expires_at,
                 "revoked": k.revoked} for k in s.scalars(sa.select(TrustKey).order_by(TrustKey.role, TrustKey.key_id))]
        channels = [{"channel": c.channel, "epoch": c.epoch, "sequence": c.sequence, "issued_at": c.issued_at,
                     "bundle_id": c.bundle_id} for c in s.scalars(sa.select(BundleChannelState))]
    return {"root": root.describe() if root else None, "fingerprints": root_fingerprints(root) if root else [],
            "problem": problem, "keys": keys, "channels": channels}


# --- ledger ---------------------------------------------------------------------------------------


def ledger(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first: every bundle seen (accepted, refused) and every export written."""
    with store.read() as s:
        rows = s.scalars(sa.select(BundleLedgerEntry).order_by(BundleLedgerEntry.recorded_at.desc()).limit(limit)).all()
        return [{"at": r.recorded_at, "outcome": r.outcome, "direction": r.direction, "channel": r.channel, "epoch": r.epoch,
                 "sequence": r.sequence, "bundle_id": r.bundle_id, "issuer": r.issuer, "reason": r.reason,
                 "code": (r.details or {}).get("code", ""), "file_sha256": r.file_sha256, "by": r.acted_by}
                for r in rows]


