"""The site's own tables: schema version, settings, accounts, the audit log, and the bundle
ledger, channel states and trust keys.

Re-exported by `store/models.py` (import them from there; the DuckDB rules that shape every
model are in its docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from vital_desktop.store.models_base import Base, JSONType, id_column, now_column


# --- site, accounts, audit ---------------------------------------------------------------


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(sa.String, nullable=False)
    applied_at: Mapped[dt.datetime] = now_column()


class Setting(Base):
    """Site-wide settings (site id, thresholds, active model choices…) as JSON values."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(sa.String, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime] = now_column()


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = id_column()
    username: Mapped[str] = mapped_column(sa.String, nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    role: Mapped[str] = mapped_column(sa.String, nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String, nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    created_at: Mapped[dt.datetime] = now_column()


audit_seq = sa.Sequence("audit_log_seq")


class AuditEntry(Base):
    """Append-only, hash-chained: `row_hash = sha256(prev_hash || canonical(row))`."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(sa.BigInteger, audit_seq, primary_key=True, server_default=audit_seq.next_value())
    logged_at: Mapped[dt.datetime] = now_column()
    username: Mapped[str] = mapped_column(sa.String, nullable=False)
    action: Mapped[str] = mapped_column(sa.String, nullable=False)
    target: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    details: Mapped[str] = mapped_column(sa.String, nullable=False, default="{}")
    prev_hash: Mapped[str] = mapped_column(sa.String, nullable=False)
    row_hash: Mapped[str] = mapped_column(sa.String, nullable=False)


# --- bundles and trust -----------------------------------------------------------------------


class BundleLedgerEntry(Base):
    """Every bundle seen, accepted or refused, and why; and every export written."""

    __tablename__ = "bundle_ledger"
    id: Mapped[str] = id_column()
    bundle_id: Mapped[str | None] = mapped_column(sa.String)
    file_sha256: Mapped[str | None] = mapped_column(sa.String)
    direction: Mapped[str] = mapped_column(sa.String, nullable=False, default="hub_to_site")
    channel: Mapped[str | None] = mapped_column(sa.String)
    epoch: Mapped[int | None] = mapped_column(sa.BigInteger)
    sequence: Mapped[int | None] = mapped_column(sa.BigInteger)
    issuer: Mapped[str | None] = mapped_column(sa.String)
    issued_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    outcome: Mapped[str] = mapped_column(sa.String, nullable=False)
    reason: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    details: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    source_path: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    acted_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    recorded_at: Mapped[dt.datetime] = now_column()


class BundleChannelState(Base):
    """The newest accepted (epoch, sequence, issued_at) per channel: rollback/freeze defence."""

    __tablename__ = "bundle_channels"
    channel: Mapped[str] = mapped_column(sa.String, primary_key=True)
    epoch: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    sequence: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    issued_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    bundle_id: Mapped[str | None] = mapped_column(sa.String)
    manifest_sha256: Mapped[str | None] = mapped_column(sa.String)
    updated_at: Mapped[dt.datetime] = now_column()


class TrustKey(Base):
    __tablename__ = "trust_keys"
    key_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    public_key: Mapped[str] = mapped_column(sa.String, nullable=False)
    role: Mapped[str] = mapped_column(sa.String, nullable=False)
    channels: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    expires_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    revoked: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    source: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    added_at: Mapped[dt.datetime] = now_column()
