"""Parsing and signature plumbing under the trust decisions (IO-free; no policy here).

`bundles/trust.py` decides; these helpers count valid signatures over exact bytes, parse a
root document into a `Root` (its schema and that each key is listed under its own id), and
format what the decisions compare or print (versions, digests, times, the audit-head bytes).
Import them from `bundles.trust`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from vital_desktop.bundles import canonical
from vital_desktop.bundles.envelope import Signature, pae
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import key_id as compute_key_id
from vital_desktop.bundles.keys import public_from_hex, verify_ed25519
from vital_desktop.bundles.limits import MAX_ROOT_BYTES, MAX_SIGNATURES
from vital_desktop.bundles.manifest import validate_schema
from vital_desktop.bundles.trust_types import Root, SigningKeyInfo


def valid_signers(public_keys: Mapping[str, bytes], payload_type: str, body: bytes, signatures: list[Signature]) -> set[str]:
    """Ids of distinct keys in `public_keys` with a valid signature over `body` (each key once)."""
    message = pae(payload_type, body)
    valid: set[str] = set()
    for signature in signatures[:MAX_SIGNATURES]:
        if signature.key_id in valid:
            continue  # a repeated signature never counts twice
        public = public_keys.get(signature.key_id)
        if public is not None and verify_ed25519(public, signature.sig, message):
            valid.add(signature.key_id)
    return valid


def parse_root_payload(body: bytes, envelope: bytes) -> Root:
    """A root document's signed body as a `Root` (schema, key ids and consistency), or `BundleRefused`."""
    document = canonical.loads(body, max_bytes=MAX_ROOT_BYTES, require_canonical=True)
    validate_schema(document, "root.schema.json", "root_schema")
    root_keys: dict[str, bytes] = {}
    for kid, item in document["root_keys"].items():
        public = public_from_hex(item["public"])
        if compute_key_id(public) != kid:
            raise BundleRefused("root_schema", f"root key {kid[:16]}… is listed under the wrong id")
        root_keys[kid] = public
    signing: dict[str, SigningKeyInfo] = {}
    for kid, item in document["signing_keys"].items():
        public = public_from_hex(item["public"])
        if compute_key_id(public) != kid:
            raise BundleRefused("root_schema", f"signing key {kid[:16]}… is listed under the wrong id")
        signing[kid] = SigningKeyInfo(kid, public, frozenset(item["channels"]), item["expires"], item.get("name", ""))
    revoked = frozenset(document["revoked"])
    if revoked & (set(root_keys) | set(signing)):
        raise BundleRefused("root_schema", "a revoked key is also listed as trusted")
    if document["root_threshold"] > len(root_keys):
        raise BundleRefused("root_schema", "the root threshold is higher than the number of root keys")
    hub_key = public_from_hex(document["hub_encryption_key"]["public"])
    if compute_key_id(hub_key) != document["hub_encryption_key"]["key_id"]:
        raise BundleRefused("root_schema", "the hub encryption key is listed under the wrong id")
    if document["expires"] <= document["issued_at"]:
        raise BundleRefused("root_schema", "the root expires before it was issued")
    return Root(
        version=document["version"], name=document["name"], issued_at=document["issued_at"],
        expires=document["expires"], root_keys=root_keys, root_threshold=document["root_threshold"],
        signing_keys=signing, thresholds=dict(document["thresholds"]), revoked=revoked,
        hub_encryption_key_id=document["hub_encryption_key"]["key_id"], hub_encryption_public=hub_key,
        envelope=envelope,
    )


def manifest_digest(manifest_bytes: bytes) -> str:
    """The SHA-256 (hex) of the exact manifest bytes, as the ledger records it."""
    return hashlib.sha256(manifest_bytes).hexdigest()


def parse_version(text: str) -> tuple[int, ...]:
    """A dotted version as a tuple of integers (``0.1.0.dev1`` compares as ``0.1.0``)."""
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece else "0"
        parts.append(int(digits or "0"))
    return tuple(parts + [0] * (3 - len(parts)))


def utc_text(timestamp: int) -> str:
    """A Unix time as readable UTC, for check messages."""
    import datetime as _dt

    return _dt.datetime.fromtimestamp(timestamp, _dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


#: Domain separation of the audit-head signature (the site's `store.audit` signs the same bytes).
AUDIT_HEAD_CONTEXT = "vital-audit-head-v1"


def audit_head_message(seq: int, row_hash: str) -> bytes:
    """The bytes a site key signs for its audit head (sequence number and newest row hash)."""
    return canonical.dumps({"context": AUDIT_HEAD_CONTEXT, "hash": row_hash, "seq": seq})


def is_sha256(value: object) -> bool:
    """Whether `value` is a lower-case hex SHA-256 digest."""
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
