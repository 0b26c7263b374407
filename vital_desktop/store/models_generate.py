"""GENERATE: templates, their evaluations and optimisations, model speeds, training sheets, Q&A
pairs and LLM calibrations.

Re-exported by `store/models.py` (import them from there; the DuckDB rules that shape every
model are in its docstring).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from vital_desktop.store.models_base import Base, JSONType, id_column, now_column


# --- GENERATE ------------------------------------------------------------------------------


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_templates_version"),)
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    version: Mapped[str] = mapped_column(sa.String, nullable=False)
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="draft")
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    description: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    system_prompt: Mapped[str] = mapped_column(sa.String, nullable=False)
    user_prompt: Mapped[str] = mapped_column(sa.String, nullable=False)
    input_schema: Mapped[Any] = mapped_column(JSONType, nullable=False)
    output_schema: Mapped[Any] = mapped_column(JSONType, nullable=False)
    few_shot: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    model_ref: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    notes: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    origin: Mapped[str] = mapped_column(sa.String, nullable=False, default="site")
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    published_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    label_type_version: Mapped[str | None] = mapped_column(sa.String)  # the label-type version it is bound to


class TemplateEvaluation(Base):
    """One scoring of a template version against a sheet's evaluation-allowed canonical labels."""

    __tablename__ = "template_evaluations"
    id: Mapped[str] = id_column()
    template_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    template_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    template_version: Mapped[str] = mapped_column(sa.String, nullable=False)
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    sheet_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    model: Mapped[str] = mapped_column(sa.String, nullable=False)  # the language model that answered
    purpose: Mapped[str] = mapped_column(sa.String, nullable=False)  # evaluate | optimise-selection | ...
    items: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    schema_valid_rate: Mapped[float | None] = mapped_column(sa.Double)
    accuracy: Mapped[float | None] = mapped_column(sa.Double)  # mean of the per-field accuracies
    field_accuracy: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    ece: Mapped[float | None] = mapped_column(sa.Double)  # expected calibration error (None: no confidences)
    details: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    seconds: Mapped[float] = mapped_column(sa.Double, nullable=False)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()


class TemplateOptimisation(Base):
    """One prompt-optimisation run: the baseline and the proposed draft's scores side by side."""

    __tablename__ = "template_optimisations"
    id: Mapped[str] = id_column()
    template_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    base_version: Mapped[str] = mapped_column(sa.String, nullable=False)
    proposed_version: Mapped[str | None] = mapped_column(sa.String)  # None: nothing beat the baseline
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    sheet_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    status: Mapped[str] = mapped_column(sa.String, nullable=False)
    baseline: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    optimised: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    candidates: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    budget_seconds: Mapped[float] = mapped_column(sa.Double, nullable=False)
    seconds: Mapped[float] = mapped_column(sa.Double, nullable=False)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()


class ModelSpeed(Base):
    """A language model's prompt and generation speed as measured on this machine."""

    __tablename__ = "model_speeds"
    model_id: Mapped[str] = mapped_column(sa.String, primary_key=True)
    threads: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    model_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    prompt_tokens_per_s: Mapped[float] = mapped_column(sa.Double, nullable=False)
    generated_tokens: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    generation_tokens_per_s: Mapped[float] = mapped_column(sa.Double, nullable=False)
    load_seconds: Mapped[float | None] = mapped_column(sa.Double)
    load_average: Mapped[float | None] = mapped_column(sa.Double)
    measured_at: Mapped[dt.datetime] = now_column()


# --- training sheets and Q&A pairs -----------------------------------------------------------


class TrainingSheet(Base):
    __tablename__ = "training_sheets"
    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(sa.String, nullable=False, unique=True)
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    template_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    template_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    template_version: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    ai_mode: Mapped[str] = mapped_column(sa.String, nullable=False, default="none")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="generating")
    total_items: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    config: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


class QAPair(Base):
    __tablename__ = "qa_pairs"
    __table_args__ = (sa.UniqueConstraint("training_sheet_id", "item_ref", name="uq_qa_pair_item"),)
    id: Mapped[str] = id_column()
    training_sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    position: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    messages: Mapped[Any] = mapped_column(JSONType, nullable=False)
    answer: Mapped[Any] = mapped_column(JSONType)
    raw_output: Mapped[str | None] = mapped_column(sa.String)
    ai_error: Mapped[str | None] = mapped_column(sa.String)
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="unlabeled")
    source: Mapped[str] = mapped_column(sa.String, nullable=False)
    confidence: Mapped[float | None] = mapped_column(sa.Double)
    canonical_label_id: Mapped[str | None] = mapped_column(sa.String)
    canonical_label_version: Mapped[int | None] = mapped_column(sa.Integer)
    allowed_uses: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    prohibited_uses: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    usage_reason: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    data_classification: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    review_reason: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    reviewed_by: Mapped[str | None] = mapped_column(sa.String)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    created_at: Mapped[dt.datetime] = now_column()
    # 0011: a language-model answer's per-field confidence ({field: p}) and the evidence it was given.
    field_confidence: Mapped[Any] = mapped_column(JSONType)
    evidence: Mapped[Any] = mapped_column(JSONType)


class LlmCalibration(Base):
    """The fitted temperature of one enumerated answer field of one template version (0011)."""

    __tablename__ = "llm_calibrations"
    __table_args__ = (sa.UniqueConstraint("template_id", "field", name="uq_llm_calibration_field"),)
    id: Mapped[str] = id_column()
    template_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    template_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    field: Mapped[str] = mapped_column(sa.String, nullable=False)
    temperature: Mapped[float] = mapped_column(sa.Double, nullable=False)
    labels: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    accuracy: Mapped[float | None] = mapped_column(sa.Double)
    ece_before: Mapped[float | None] = mapped_column(sa.Double)
    ece_after: Mapped[float | None] = mapped_column(sa.Double)
    sheet_id: Mapped[str | None] = mapped_column(sa.String)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = now_column()
