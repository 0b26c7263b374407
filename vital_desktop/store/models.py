"""SQLAlchemy models of the site store (one DuckDB file). Table names follow the seeds.

DuckDB through duckdb-engine has gaps (see shared/STACK-NOTES.md), which shape every model:
- primary keys are UUID strings (or a Sequence), never autoincrement integers;
- floats are `Double` (`Float` would be 32-bit);
- there are no foreign keys: DuckDB refuses to update a JSON column of a referenced row, and
  the services keep references consistent themselves (every write goes through a service);
- lists (allowed uses, classification tags, class names) are JSON arrays.

The models are split by area into `store/models_*.py` (the base and column helpers in
`models_base`) and all re-exported here, so callers import from `store.models` only.

The schema itself is created by the SQL migrations in `store/migrations/`, not by
`create_all`; a test checks that the migrated schema matches these models column by column.
"""

from __future__ import annotations

from vital_desktop.store.models_base import Base, JSONType
from vital_desktop.store.models_site import (
    AuditEntry,
    BundleChannelState,
    BundleLedgerEntry,
    SchemaVersion,
    Setting,
    TrustKey,
    UserRow,
    audit_seq,
)
from vital_desktop.store.models_sheets import (
    ItemContent,
    Sheet,
    SheetItem,
)
from vital_desktop.store.models_generate import (
    LlmCalibration,
    ModelSpeed,
    QAPair,
    Template,
    TemplateEvaluation,
    TemplateOptimisation,
    TrainingSheet,
)
from vital_desktop.store.models_labels import (
    CanonicalLabel,
    CanonicalLabelHistory,
    LabelClaim,
    LabelConflict,
    LabelTypeChange,
    LabelTypeRow,
)
from vital_desktop.store.models_ml import (
    Deployment,
    EmbeddingCache,
    FeedbackItem,
    ModelRow,
    ModelTrainingLineage,
    MonitorAlert,
    Prediction,
)
from vital_desktop.store.models_mc import (
    McDetectorPreset,
    McRun,
    McSourcePreset,
)

__all__ = [
    "Base",
    "JSONType",
    "AuditEntry",
    "BundleChannelState",
    "BundleLedgerEntry",
    "SchemaVersion",
    "Setting",
    "TrustKey",
    "UserRow",
    "audit_seq",
    "ItemContent",
    "Sheet",
    "SheetItem",
    "LlmCalibration",
    "ModelSpeed",
    "QAPair",
    "Template",
    "TemplateEvaluation",
    "TemplateOptimisation",
    "TrainingSheet",
    "CanonicalLabel",
    "CanonicalLabelHistory",
    "LabelClaim",
    "LabelConflict",
    "LabelTypeChange",
    "LabelTypeRow",
    "Deployment",
    "EmbeddingCache",
    "FeedbackItem",
    "ModelRow",
    "ModelTrainingLineage",
    "MonitorAlert",
    "Prediction",
    "McDetectorPreset",
    "McRun",
    "McSourcePreset",
]
