"""DATA: sheets, their items and the items' extracted content.

Re-exported by `store/models.py` (import them from there; the DuckDB rules that shape every
model are in its docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from vital_desktop.store.models_base import Base, JSONType, id_column, now_column


# --- DATA ----------------------------------------------------------------------------------


class Sheet(Base):
    __tablename__ = "sheets"
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False, unique=True)
    description: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    metadata_path: Mapped[str] = mapped_column(sa.String, nullable=False)
    metadata_format: Mapped[str] = mapped_column(sa.String, nullable=False)
    image_root: Mapped[str | None] = mapped_column(sa.String)
    key_column: Mapped[str] = mapped_column(sa.String, nullable=False)
    image_column: Mapped[str | None] = mapped_column(sa.String)
    columns: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    classification: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    item_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    missing_count: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    rescanned_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    #: what the sheet's items are: image, document or telemetry (services/item_kinds.py)
    item_kind: Mapped[str | None] = mapped_column(sa.String, default="image")


class SheetItem(Base):
    __tablename__ = "sheet_items"
    __table_args__ = (sa.UniqueConstraint("sheet_id", "item_ref", name="uq_sheet_items_key"),)
    id: Mapped[str] = id_column()
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    image_path: Mapped[str | None] = mapped_column(sa.String)
    file_sha256: Mapped[str | None] = mapped_column(sa.String)
    file_size: Mapped[int | None] = mapped_column(sa.BigInteger)
    missing: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=False)
    item_metadata: Mapped[Any] = mapped_column("metadata", JSONType, nullable=False, default=dict)
    #: bumped by a rescan that finds the file's content changed (labels on it are then flagged)
    item_version: Mapped[int | None] = mapped_column(sa.Integer, default=1)
    changed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


class ItemContent(Base):
    """A document item's extracted text or a telemetry item's series, kept so views and prompts
    need not re-read the file (written at import with the item index; services/item_import.py)."""

    __tablename__ = "item_contents"
    sheet_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    item_ref: Mapped[str] = mapped_column(sa.String, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String, nullable=False)
    text: Mapped[str | None] = mapped_column(sa.String)
    series: Mapped[Any] = mapped_column(JSONType)
    created_at: Mapped[dt.datetime] = now_column()
