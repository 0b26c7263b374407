"""SQLAlchemy models of the site store (one DuckDB file). Table names follow the seeds.

DuckDB through duckdb-engine has gaps (see shared/STACK-NOTES.md), which shape this file:
- primary keys are UUID strings (or a Sequence), never autoincrement integers;
- floats are `Double` (`Float` would be 32-bit);
- there are no foreign keys: DuckDB refuses to update a JSON column of a referenced row, and
  the services keep references consistent themselves (every write goes through a service);
- lists (allowed uses, classification tags, class names) are JSON arrays.

The schema itself is created by the SQL migrations in `store/migrations/`, not by
`create_all`; a test checks that the migrated schema matches these models column by column.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vital_desktop.core.ids import new_id, utcnow

JSONType = sa.JSON


class Base(DeclarativeBase):
    pass


def _id() -> Mapped[str]:
    return mapped_column(sa.String, primary_key=True, default=new_id)


def _now() -> Mapped[dt.datetime]:
    return mapped_column(sa.DateTime, nullable=False, default=utcnow)


# --- site, accounts, audit ---------------------------------------------------------------


class SchemaVersion(Base):
    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(sa.String, nullable=False)
    applied_at: Mapped[dt.datetime] = _now()


class Setting(Base):
    """Site-wide settings (site id, thresholds, active model choices…) as JSON values."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(sa.String, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONType)
    updated_at: Mapped[dt.datetime] = _now()


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[str] = _id()
    username: Mapped[str] = mapped_column(sa.String, nullable=False, unique=True)
    display_name: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    role: Mapped[str] = mapped_column(sa.String, nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String, nullable=False)
    active: Mapped[bool] = mapped_column(sa.Boolean, nullable=False, default=True)
    created_at: Mapped[dt.datetime] = _now()


audit_seq = sa.Sequence("audit_log_seq")


class AuditEntry(Base):
    """Append-only, hash-chained: `row_hash = sha256(prev_hash || canonical(row))`."""

    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(sa.BigInteger, audit_seq, primary_key=True, server_default=audit_seq.next_value())
    logged_at: Mapped[dt.datetime] = _now()
    username: Mapped[str] = mapped_column(sa.String, nullable=False)
    action: Mapped[str] = mapped_column(sa.String, nullable=False)
    target: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    details: Mapped[str] = mapped_column(sa.String, nullable=False, default="{}")
    prev_hash: Mapped[str] = mapped_column(sa.String, nullable=False)
    row_hash: Mapped[str] = mapped_column(sa.String, nullable=False)


# --- DATA ----------------------------------------------------------------------------------


class Sheet(Base):
    __tablename__ = "sheets"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    rescanned_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    #: what the sheet's items are: image, document or telemetry (services/item_kinds.py)
    item_kind: Mapped[str | None] = mapped_column(sa.String, default="image")


class SheetItem(Base):
    __tablename__ = "sheet_items"
    __table_args__ = (sa.UniqueConstraint("sheet_id", "item_ref", name="uq_sheet_items_key"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()


# --- GENERATE ------------------------------------------------------------------------------


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_templates_version"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    published_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    label_type_version: Mapped[str | None] = mapped_column(sa.String)  # the label-type version it is bound to


class TemplateEvaluation(Base):
    """One scoring of a template version against a sheet's evaluation-allowed canonical labels."""

    __tablename__ = "template_evaluations"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()


class TemplateOptimisation(Base):
    """One prompt-optimisation run: the baseline and the proposed draft's scores side by side."""

    __tablename__ = "template_optimisations"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()


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
    measured_at: Mapped[dt.datetime] = _now()


# --- LABEL: label types (versioned site data) ----------------------------------------------


class LabelTypeRow(Base):
    """One version of a label type; a published version never changes."""

    __tablename__ = "label_types"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_label_types_version"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    published_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


class LabelTypeChange(Base):
    """One taxonomy change (create, publish, add/rename/merge/split/deprecate a class, import)."""

    __tablename__ = "label_type_changes"
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    from_version: Mapped[str | None] = mapped_column(sa.String)
    to_version: Mapped[str] = mapped_column(sa.String, nullable=False)
    action: Mapped[str] = mapped_column(sa.String, nullable=False)
    details: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    labels_changed: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    labels_flagged: Mapped[int] = mapped_column(sa.Integer, nullable=False, default=0)
    changed_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    changed_at: Mapped[dt.datetime] = _now()


# --- LABEL: canonical labels ---------------------------------------------------------------


class CanonicalLabel(Base):
    """One current label per (sheet_id, item_ref, label_type); every version is in the history."""

    __tablename__ = "canonical_labels"
    __table_args__ = (sa.UniqueConstraint("sheet_id", "item_ref", "label_type", name="uq_canonical_key"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    updated_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    updated_at: Mapped[dt.datetime] = _now()
    label_type_version: Mapped[str | None] = mapped_column(sa.String)  # the version it was validated against


class CanonicalLabelHistory(Base):
    __tablename__ = "canonical_label_history"
    __table_args__ = (sa.UniqueConstraint("label_id", "version", name="uq_label_history_version"),)
    id: Mapped[str] = _id()
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
    changed_at: Mapped[dt.datetime] = _now()
    label_type_version: Mapped[str | None] = mapped_column(sa.String)


class LabelConflict(Base):
    """A disagreeing label from another user or a hub bundle, waiting for an expert."""

    __tablename__ = "label_conflicts"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
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
    id: Mapped[str] = _id()
    sheet_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    item_ref: Mapped[str] = mapped_column(sa.String, nullable=False)
    label_type: Mapped[str] = mapped_column(sa.String, nullable=False)
    claimed_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    claimed_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime] = mapped_column(sa.DateTime, nullable=False)


# --- training sheets and Q&A pairs -----------------------------------------------------------


class TrainingSheet(Base):
    __tablename__ = "training_sheets"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    completed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


class QAPair(Base):
    __tablename__ = "qa_pairs"
    __table_args__ = (sa.UniqueConstraint("training_sheet_id", "item_ref", name="uq_qa_pair_item"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    # 0011: a language-model answer's per-field confidence ({field: p}) and the evidence it was given.
    field_confidence: Mapped[Any] = mapped_column(JSONType)
    evidence: Mapped[Any] = mapped_column(JSONType)


class LlmCalibration(Base):
    """The fitted temperature of one enumerated answer field of one template version (0011)."""

    __tablename__ = "llm_calibrations"
    __table_args__ = (sa.UniqueConstraint("template_id", "field", name="uq_llm_calibration_field"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()


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
    created_at: Mapped[dt.datetime] = _now()


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_models_version"),)
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    #: why the model should be retrained ("" when nothing is known against it), e.g. after an
    #: erasure removed labels it learnt from: "trained on erased data — retrain"
    retrain_reason: Mapped[str | None] = mapped_column(sa.String, default="")


class ModelTrainingLineage(Base):
    __tablename__ = "model_training_lineage"
    id: Mapped[str] = _id()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False, index=True)
    training_sheet_id: Mapped[str | None] = mapped_column(sa.String)
    sheet_id: Mapped[str | None] = mapped_column(sa.String)
    template_id: Mapped[str | None] = mapped_column(sa.String)
    template_version: Mapped[str | None] = mapped_column(sa.String)
    qa_pair_ids: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    canonical_labels: Mapped[Any] = mapped_column(JSONType, nullable=False, default=list)
    training_config: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    trained_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    trained_at: Mapped[dt.datetime] = _now()


class Deployment(Base):
    __tablename__ = "deployments"
    id: Mapped[str] = _id()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    model_name: Mapped[str] = mapped_column(sa.String, nullable=False)
    target: Mapped[str] = mapped_column(sa.String, nullable=False, default="local")
    status: Mapped[str] = mapped_column(sa.String, nullable=False, default="active")
    notes: Mapped[str] = mapped_column(sa.String, nullable=False, default="")
    activated_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    activated_at: Mapped[dt.datetime] = _now()
    deactivated_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)


# --- MONITOR / IMPROVE ---------------------------------------------------------------------


class Prediction(Base):
    __tablename__ = "predictions"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()


class FeedbackItem(Base):
    __tablename__ = "feedback_items"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()
    reviewed_by: Mapped[str | None] = mapped_column(sa.String)
    reviewed_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    label_type: Mapped[str | None] = mapped_column(sa.String)  # the label type the correction is for


class MonitorAlert(Base):
    __tablename__ = "monitor_alerts"
    id: Mapped[str] = _id()
    model_id: Mapped[str] = mapped_column(sa.String, nullable=False)
    kind: Mapped[str] = mapped_column(sa.String, nullable=False)
    metric: Mapped[str] = mapped_column(sa.String, nullable=False)
    value: Mapped[float | None] = mapped_column(sa.Double)
    threshold: Mapped[float | None] = mapped_column(sa.Double)
    message: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = _now()


# --- Monte Carlo ---------------------------------------------------------------------------


class McRun(Base):
    __tablename__ = "mc_runs"
    id: Mapped[str] = _id()
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
    created_at: Mapped[dt.datetime] = _now()


class McDetectorPreset(Base):
    """A detector fitted at this site (characterization), usable like a shipped preset."""

    __tablename__ = "mc_detector_presets"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_mc_detector_presets_name"),)
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    detector: Mapped[Any] = mapped_column(JSONType, nullable=False)
    provenance: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = _now()


class McSourcePreset(Base):
    """A source container defined at this site (a lab's own beaker), usable like a shipped preset."""

    __tablename__ = "mc_source_presets"
    __table_args__ = (sa.UniqueConstraint("name", name="uq_mc_source_presets_name"),)
    id: Mapped[str] = _id()
    name: Mapped[str] = mapped_column(sa.String, nullable=False)
    source: Mapped[Any] = mapped_column(JSONType, nullable=False)
    provenance: Mapped[Any] = mapped_column(JSONType, nullable=False, default=dict)
    created_by: Mapped[str] = mapped_column(sa.String, nullable=False)
    created_at: Mapped[dt.datetime] = _now()


# --- bundles and trust -----------------------------------------------------------------------


class BundleLedgerEntry(Base):
    """Every bundle seen, accepted or refused, and why; and every export written."""

    __tablename__ = "bundle_ledger"
    id: Mapped[str] = _id()
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
    recorded_at: Mapped[dt.datetime] = _now()


class BundleChannelState(Base):
    """The newest accepted (epoch, sequence, issued_at) per channel: rollback/freeze defence."""

    __tablename__ = "bundle_channels"
    channel: Mapped[str] = mapped_column(sa.String, primary_key=True)
    epoch: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    sequence: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)
    issued_at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    bundle_id: Mapped[str | None] = mapped_column(sa.String)
    manifest_sha256: Mapped[str | None] = mapped_column(sa.String)
    updated_at: Mapped[dt.datetime] = _now()


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
    added_at: Mapped[dt.datetime] = _now()
