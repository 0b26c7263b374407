"""Identifiers and timestamps (UTC, naive in the store)."""

from __future__ import annotations

import datetime as _dt
import os
import uuid


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> _dt.datetime:
    """Current UTC time without tzinfo (what the store keeps), microsecond precision."""
    return _dt.datetime.now(_dt.UTC).replace(tzinfo=None)


def iso(ts: _dt.datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") + "Z" if ts is not None else None


def new_ids(count: int) -> list[str]:
    """`count` random (version 4) UUID strings at once: bulk paths make millions of them."""
    raw = bytearray(os.urandom(16 * count))
    for offset in range(0, 16 * count, 16):
        raw[offset + 6] = (raw[offset + 6] & 0x0F) | 0x40
        raw[offset + 8] = (raw[offset + 8] & 0x3F) | 0x80
    h = raw.hex()
    return [f"{h[j:j + 8]}-{h[j + 8:j + 12]}-{h[j + 12:j + 16]}-{h[j + 16:j + 20]}-{h[j + 20:j + 32]}"
            for j in range(0, 32 * count, 32)]
