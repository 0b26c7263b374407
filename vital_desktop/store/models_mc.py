"""Monte Carlo runs and the detector and source presets.

Re-exported by `store/models.py` (import them from there; the DuckDB rules that shape every
model are in its docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from vital_desktop.store.models_base import Base, JSONType, id_column, now_column


# --- Monte Carlo ---------------------------------------------------------------------------


class McRun(Base):
    __tablename__ = "mc_runs"
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="complete")
    config: Mapped[Any] = mapped_column(JSONType, nullable=False)
    seed: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    histories: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    results: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    spectrum: Mapped[Any] = mapped_column(JSONType)
    engine_version: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    duration_s: Mapped[float | None] = mapped_column(sa.Double)
    exported_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()


class McDetectorPreset(Base):
    """A detector fitted at this site (characterization), usable like a shipped preset."""

    __tablename__ = "mc_detector_presets"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_mc_detector_presets_name"),)
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    detector: Mapped[Any] = mapped_column(JSONType, nullable=False)
    provenance: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()


class McSourcePreset(Base):
    """A source container defined at this site (a lab's own beaker), usable like a shipped preset."""

    __tablename__ = "mc_source_presets"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_mc_source_presets_name"),)
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    source: Mapped[Any] = mapped_column(JSONType, nullable=False)
    provenance: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
