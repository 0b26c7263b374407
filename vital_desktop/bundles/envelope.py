"""DSSE-style signing: what exactly is signed, and the two envelope encodings.

Every signature is over the DSSE pre-authentication encoding (PAE) of a payload type and the
payload's raw bytes, so a signature for one kind of document can never be replayed as
another kind. A bundle carries its signatures in a fixed-size binary block (no parsing
before verification); a root document travels as a DSSE JSON envelope.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from vital_desktop.bundles import canonical
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey
from vital_desktop.bundles.limits import MAX_ROOT_BYTES, MAX_SIGNATURES

PAYLOAD_TYPE_MANIFEST = "application/vnd.vital.bundle-manifest+json;version=1"
PAYLOAD_TYPE_ROOT = "application/vnd.vital.root+json;version=1"

KEY_ID_BYTES = 32
SIGNATURE_BYTES = 64
SIGNATURE_RECORD_BYTES = KEY_ID_BYTES + SIGNATURE_BYTES


@dataclass(frozen=True)
class Signature:
    key_id: str  # hex of the 32-byte key id
    sig: bytes  # 64 bytes


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what a signature actually covers."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(body), body)


def sign(keys: list[SigningKey], payload_type: str, body: bytes) -> list[Signature]:
    """Sign `body` with each key (one signature per key)."""
    message = pae(payload_type, body)
    return [Signature(k.key_id, k.sign(message)) for k in keys]


def encode_signature_block(signatures: list[Signature]) -> bytes:
    """u16 count, then per signature 32 bytes key id and 64 bytes Ed25519 signature."""
    if len(signatures) > MAX_SIGNATURES:
        raise BundleRefused("signature_count", f"more than {MAX_SIGNATURES} signatures")
    parts = [struct.pack(">H", len(signatures))]
    for signature in signatures:
        key_raw = bytes.fromhex(signature.key_id)
        if len(key_raw) != KEY_ID_BYTES or len(signature.sig) != SIGNATURE_BYTES:
            raise BundleRefused("signature", "malformed signature record")
        parts.append(key_raw + signature.sig)
    return b"".join(parts)


def decode_signature_records(count: int, data: bytes) -> list[Signature]:
    """Split `count` fixed-size records (the caller has already capped `count`)."""
    if len(data) != count * SIGNATURE_RECORD_BYTES:
        raise BundleRefused("truncated", "signature block is truncated")
    out = []
    for index in range(count):
        record = data[index * SIGNATURE_RECORD_BYTES : (index + 1) * SIGNATURE_RECORD_BYTES]
        out.append(Signature(record[:KEY_ID_BYTES].hex(), record[KEY_ID_BYTES:]))
    return out


def encode_json_envelope(payload_type: str, body: bytes, signatures: list[Signature]) -> bytes:
    """A DSSE JSON envelope (used for root documents), itself in canonical JSON."""
    return canonical.dumps(
        {
            "payloadType": payload_type,
            "payload": base64.b64encode(body).decode("ascii"),
            "signatures": [{"keyid": s.key_id, "sig": base64.b64encode(s.sig).decode("ascii")} for s in signatures],
        }
    )


def decode_json_envelope(data: bytes, expected_type: str) -> tuple[bytes, list[Signature]]:
    """Split a DSSE JSON envelope into the payload bytes and signatures; the payload stays unparsed."""
    document = canonical.loads(data, max_bytes=MAX_ROOT_BYTES)
    if not isinstance(document, dict) or set(document) != {"payloadType", "payload", "signatures"}:
        raise BundleRefused("envelope", "not a DSSE envelope (payloadType, payload, signatures)")
    if document["payloadType"] != expected_type:
        raise BundleRefused("envelope", f"envelope holds {str(document['payloadType'])[:80]!r}, not {expected_type!r}")
    raw_signatures = document["signatures"]
    if not isinstance(raw_signatures, list) or len(raw_signatures) > MAX_SIGNATURES:
        raise BundleRefused("signature_count", f"signature list missing or longer than {MAX_SIGNATURES}")
    try:
        body = base64.b64decode(document["payload"], validate=True)
        signatures = []
        for item in raw_signatures:
            if not isinstance(item, dict) or set(item) != {"keyid", "sig"}:
                raise BundleRefused("signature", "malformed signature entry")
            sig = base64.b64decode(item["sig"], validate=True)
            if len(bytes.fromhex(item["keyid"])) != KEY_ID_BYTES or len(sig) != SIGNATURE_BYTES:
                raise BundleRefused("signature", "malformed signature entry")
            signatures.append(Signature(item["keyid"], sig))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise BundleRefused("envelope", f"envelope encoding is broken: {exc}") from exc
    return body, signatures
