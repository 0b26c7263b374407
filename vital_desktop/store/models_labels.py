"""LABEL: label types (versioned site data), canonical labels, their history, conflicts and claims.

Re-exported by `store/models.py` (import them from there; the DuckDB rules that shape every
model are in its docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from vital_desktop.store.models_base import Base, JSONType, id_column, now_column


# --- LABEL: label types (versioned site data) ----------------------------------------------


class LabelTypeRow(Base):
    """One version of a label type; a published version never changes."""

    __tablename__ = "label_types"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_label_types_version"),)
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    version: Mapped[str] = mapped_column(sa.String, nullable=False)
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="draft")
    title: Mapped[str] = mapped_column(sa.String, nullable=False)
    description: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    kind: Mapped[str] = mapped_column(sa.String, nullable=False)
    class_field: Mapped[str | None] = mapped_column(sa.String)
    classes: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    attributes: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    schema: Mapped[Any] = mapped_column(JSONType, nullable=False)
    change_note: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="site")
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    published_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


class LabelTypeChange(Base):
    """One taxonomy change (create, publish, add/rename/merge/split/deprecate a class, import)."""

    __tablename__ = "label_type_changes"
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    from_version: Mapped[str | None] = mapped_column(sa.String)
    to_version: Mapped[str] = mapped_column(sa.String, nullable=False)
    action: Mapped[str] = mapped_column(sa.String, nullable=False)
    details: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    labels_changed: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    labels_flagged: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    changed_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    changed_at: Mapped[dt.datetime] = now_column()


# --- LABEL: canonical labels ---------------------------------------------------------------


class CanonicalLabel(Base):
    """One current label per (sheet_id, item_ref, label_type); every version is in the history."""

    __tablename__ = "canonical_labels"
    __table_args__ = (sa.UniqueConstraint("sheet_id", "item_ref", "label_type", name="uq_canonical_key"),)
    id: Mapped[str] = id_column()
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_data: Mapped[Any] = mapped_column(JSONType, nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=1)
    allowed_uses: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    prohibited_uses: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    usage_reason: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    data_classification: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    confidence: Mapped[str | None] = mapped_column(sa.String)
    notes: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    review_state: Mapped[str] = mapped_column(sa.String, nullable=False, default="ok")
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="site")
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    updated_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    updated_at: Mapped[dt.datetime] = now_column()
    label_type_version: Mapped[str | None] = mapped_column(sa.String)  # the version it was validated against


class CanonicalLabelHistory(Base):
    __tablename__ = "canonical_label_history"
    __table_args__ = (sa.UniqueConstraint("label_id", "version", name="uq_label_history_version"),)
    id: Mapped[str] = id_column()
    label_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    label_data: Mapped[Any] = mapped_column(JSONType, nullable=False)
    allowed_uses: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    prohibited_uses: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    usage_reason: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    data_classification: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    confidence: Mapped[str | None] = mapped_column(sa.String)
    notes: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="site")
    action: Mapped[str] = mapped_column(sa.String, nullable=False)
    reason: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    changed_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    changed_at: Mapped[dt.datetime] = now_column()
    label_type_version: Mapped[str | None] = mapped_column(sa.String)


class LabelConflict(Base):
    """A disagreeing label from another user or a hub bundle, waiting for an expert."""

    __tablename__ = "label_conflicts"
    id: Mapped[str] = id_column()
    label_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    current_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    proposed_data: Mapped[Any] = mapped_column(JSONType, nullable=False)
    proposed_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="site")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="open")
    resolution: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    created_at: Mapped[dt.datetime] = now_column()
    resolved_by: Mapped[str | None] = mapped_column(sa.String)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    # 0004: why it arose and the whole proposal (accepting applies exactly what was proposed)
    kind: Mapped[str | None] = mapped_column(sa.String, default="")
    detail: Mapped[str | None] = mapped_column(sa.String, default="")
    base_version: Mapped[int | None] = mapped_column(sa.Integer)
    proposed_allowed_uses: Mapped[Any] = mapped_column(JSONType)
    proposed_prohibited_uses: Mapped[Any] = mapped_column(JSONType)
    proposed_usage_reason: Mapped[str | None] = mapped_column(sa.String)
    proposed_data_classification: Mapped[Any] = mapped_column(JSONType)
    proposed_confidence: Mapped[str | None] = mapped_column(sa.String)
    proposed_notes: Mapped[str | None] = mapped_column(sa.String)


class LabelClaim(Base):
    __tablename__ = "label_claims"
    __table_args__ = (sa.UniqueConstraint("sheet_id", "item_ref", "label_type", name="uq_label_claim_key"),)
    id: Mapped[str] = id_column()
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    claimed_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    claimed_at: Mapped[dt.datetime] = now_column()
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, nullable=False)
