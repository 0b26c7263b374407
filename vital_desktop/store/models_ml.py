"""Models, lineage, deployments, the embedding cache, and MONITOR / IMPROVE: predictions,
feedback and alerts.

Re-exported by `store/models.py` (import them from there; the DuckDB rules that shape every
model are in its docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from vital_desktop.store.models_base import Base, JSONType, id_column, now_column


# --- models, lineage, deployments ------------------------------------------------------------


class EmbeddingCache(Base):
    """A backbone's embedding of one image content (float32 little-endian bytes), computed once."""

    __tablename__ = "embedding_cache"
    content_sha256: Mapped[str] = mapped_column(sa.String, primary_key=True)
    backbone_sha256: Mapped[str] = mapped_column(sa.String, primary_key=True)
    dim: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    vector: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)
    # The image's input statistics, so a training run on cached embeddings still has its drift baseline.
    image_mean: Mapped[float | None] = mapped_column(sa.Double)
    image_std: Mapped[float | None] = mapped_column(sa.Double)
    image_width: Mapped[int | None] = mapped_column(sa.Integer)
    image_height: Mapped[int | None] = mapped_column(sa.Integer)
    created_at: Mapped[dt.datetime] = now_column()


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_models_version"),)
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    kind: Mapped[str] = mapped_column(sa.String, nullable=False)
    path: Mapped[str] = mapped_column(sa.String, nullable=False)
    file_sha256: Mapped[str] = mapped_column(sa.String, nullable=False)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    classes: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    card: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="site")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="registered")
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    #: why the model should be retrained ("" when nothing is known against it), e.g. after an
    #: erasure removed labels it learnt from: "trained on erased data — retrain"
    retrain_reason: Mapped[str | None] = mapped_column(sa.String, default="")


class ModelTrainingLineage(Base):
    __tablename__ = "model_training_lineage"
    id: Mapped[str] = id_column()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    training_sheet_id: Mapped[str | None] = mapped_column(sa.String)
    sheet_id: Mapped[str | None] = mapped_column(sa.String)
    template_id: Mapped[str | None] = mapped_column(sa.String)
    template_version: Mapped[str | None] = mapped_column(sa.String)
    qa_pair_ids: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    canonical_labels: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    training_config: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    trained_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    trained_at: Mapped[dt.datetime] = now_column()


class Deployment(Base):
    __tablename__ = "deployments"
    id: Mapped[str] = id_column()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    model_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    target: Mapped[str] = mapped_column(sa.String, nullable=False, default="local")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="active")
    notes: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    activated_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    activated_at: Mapped[dt.datetime] = now_column()
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


# --- MONITOR / IMPROVE ---------------------------------------------------------------------


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[str] = id_column()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    model_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    model_version: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    kind: Mapped[str] = mapped_column(sa.String, nullable=False)
    sheet_id: Mapped[str | None] = mapped_column(sa.String)
    item_ref: Mapped[str | None] = mapped_column(sa.String)
    image_path: Mapped[str | None] = mapped_column(sa.String)
    output: Mapped[Any] = mapped_column(JSONType, nullable=False)
    predicted_class: Mapped[str | None] = mapped_column(sa.String)
    confidence: Mapped[float | None] = mapped_column(sa.Double)
    latency_ms: Mapped[float] = mapped_column(sa.Double, nullable=False)
    image_mean: Mapped[float | None] = mapped_column(sa.Double)
    image_std: Mapped[float | None] = mapped_column(sa.Double)
    image_width: Mapped[int | None] = mapped_column(sa.Integer)
    image_height: Mapped[int | None] = mapped_column(sa.Integer)
    prompt_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    completion_tokens: Mapped[int | None] = mapped_column(sa.Integer)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()


class FeedbackItem(Base):
    __tablename__ = "feedback_items"
    id: Mapped[str] = id_column()
    prediction_id: Mapped[str | None] = mapped_column(sa.String)
    model_id: Mapped[str | None] = mapped_column(sa.String)
    sheet_id: Mapped[str | None] = mapped_column(sa.String)
    item_ref: Mapped[str | None] = mapped_column(sa.String)
    predicted_class: Mapped[str | None] = mapped_column(sa.String)
    corrected_class: Mapped[str | None] = mapped_column(sa.String)
    corrected_label: Mapped[Any] = mapped_column(JSONType)
    comment: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="new")
    canonical_label_id: Mapped[str | None] = mapped_column(sa.String)
    review_note: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    reviewed_by: Mapped[str | None] = mapped_column(sa.String)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    label_type: Mapped[str | None] = mapped_column(sa.String)  # the label type the correction is for


class MonitorAlert(Base):
    __tablename__ = "monitor_alerts"
    id: Mapped[str] = id_column()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    kind: Mapped[str] = mapped_column(sa.String, nullable=False)
    metric: Mapped[str] = mapped_column(sa.String, nullable=False)
    value: Mapped[float | None] = mapped_column(sa.Double)
    threshold: Mapped[float | None] = mapped_column(sa.Double)
    message: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
