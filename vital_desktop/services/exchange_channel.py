"""The bundle channels' states: the newest (epoch, sequence) each channel accepted or wrote.

Bundle import, application updates and site exports all keep `bundle_channels` through
these two helpers, inside the transaction that records the bundle in the ledger.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.manifest import Manifest
from vital_desktop.core.ids import utcnow
from vital_desktop.store.models import BundleChannelState


def require_unmoved(session: Session, manifest: Manifest, what: str = "the channel") -> BundleChannelState | None:
    """The channel's state re-read inside the transaction; refused (``rollback``) when the channel
    accepted this version or a newer one since the trust decision."""
    row = session.get(BundleChannelState, manifest.channel)
    if row is not None and (row.epoch, row.sequence) >= (manifest.epoch, manifest.sequence):
        raise BundleRefused("rollback", f"{what} moved on while this bundle was being checked")
    return row


def advance(session: Session, row: BundleChannelState | None, channel: str, *, epoch: int, sequence: int,
            issued_at: dt.datetime | None, bundle_id: str | None, manifest_sha256: str | None) -> BundleChannelState:
    """Record the channel's newest bundle on `row` (its current state; None: the channel is new)."""
    if row is None:
        row = BundleChannelState(channel=channel)
        session.add(row)
    row.epoch, row.sequence, row.issued_at = epoch, sequence, issued_at
    row.bundle_id, row.manifest_sha256, row.updated_at = bundle_id, manifest_sha256, utcnow()
    return row
