"""The declarative base and the column helpers every store model uses (see `store/models.py`)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vital_desktop.core.ids import new_id, utcnow

JSONType = sa.JSON


class Base(DeclarativeBase):
    pass


def id_column() -> Mapped[str]:
    """A UUID string primary key (DuckDB through duckdb-engine cannot autoincrement)."""
    return mapped_column(sa.String, primary_key=True, default=new_id)


def now_column() -> Mapped[dt.datetime]:
    """A required timestamp defaulting to now (UTC)."""
    return mapped_column(sa.DateTime, nullable=False, default=utcnow)
