"""Identifiers and timestamps (UTC, naive in the store)."""

from __future__ import annotations

import datetime as _dt
import uuid


def new_id() -> str:
    return str(uuid.uuid4())


def utcnow() -> _dt.datetime:
    """Current UTC time without tzinfo (what the store keeps), microsecond precision."""
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


def iso(ts: _dt.datetime | None) -> str | None:
    return ts.isoformat(timespec="seconds") + "Z" if ts is not None else None
