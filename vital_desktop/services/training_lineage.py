"""Lineage of trained models (which labels and pairs each learnt from) and comparing versions
on the same held-out items."""


from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso
from vital_desktop.core.progress import Progress
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    CanonicalLabel,
    ModelRow,
    ModelTrainingLineage,
    Sheet,
    SheetItem,
    Template,
    TrainingSheet,
)

from vital_desktop.services.sheets import find_sheet
from vital_desktop.services.training_gate import (
    _class_field,
    decide,
    held_out_metrics,
    label_status,
    resolve_label_type,
    resolve_model,
)


# --- lineage ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageSource:
    training_sheet_id: str | None
    training_sheet: str | None
    sheet_id: str | None
    sheet: str | None
    template_id: str | None
    template: str | None
    template_version: str | None
    qa_pair_ids: list[str]
    canonical_labels: list[dict]
    training_config: dict
    trained_by: str
    trained_at: str | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Lineage:
    model_id: str
    name: str
    version: int
    created_at: str | None
    held_out_accuracy: float | None
    sources: tuple[LineageSource, ...]

    def label_versions(self) -> dict[str, int]:
        """canonical label id → version this model learnt from."""
        return {entry["id"]: entry["version"] for src in self.sources for entry in src.canonical_labels if entry.get("id")}

    def to_dict(self) -> dict:
        data = dict(self.__dict__)
        data["sources"] = [src.to_dict() for src in self.sources]
        data["label_count"] = len(self.label_versions())
        return data


def lineage(store: Store, *, model: str) -> Lineage:
    """Model → training sheet(s) → Q&A pairs → canonical label ids and versions → template → config."""
    with store.read() as s:
        row = resolve_model(s, model)
        sources = []
        for entry in s.scalars(sa.select(ModelTrainingLineage).where(ModelTrainingLineage.model_id == row.id)
                               .order_by(ModelTrainingLineage.trained_at)):
            ts = s.get(TrainingSheet, entry.training_sheet_id) if entry.training_sheet_id else None
            sheet = s.get(Sheet, entry.sheet_id) if entry.sheet_id else None
            template = s.get(Template, entry.template_id) if entry.template_id else None
            sources.append(LineageSource(
                training_sheet_id=entry.training_sheet_id, training_sheet=ts.name if ts else None,
                sheet_id=entry.sheet_id, sheet=sheet.name if sheet else None, template_id=entry.template_id,
                template=template.name if template else None, template_version=entry.template_version,
                qa_pair_ids=list(entry.qa_pair_ids or []), canonical_labels=list(entry.canonical_labels or []),
                training_config=dict(entry.training_config or {}), trained_by=entry.trained_by,
                trained_at=iso(entry.trained_at),
            ))
        accuracy = held_out_metrics(row.card or {}).get("accuracy")
        return Lineage(row.id, row.name, row.version, iso(row.created_at), accuracy, tuple(sources))


@dataclass(frozen=True)
class LabelUse:
    model_id: str
    name: str
    version: int
    label_id: str
    item_ref: str | None
    label_version_used: int | None
    current_label_version: int | None

    @property
    def stale(self) -> bool:
        """The label changed after this model learnt from it."""
        return self.current_label_version is not None and self.label_version_used != self.current_label_version

    def to_dict(self) -> dict:
        return dict(self.__dict__) | {"stale": self.stale}


def models_using_label(
    store: Store, *, label_id: str | None = None, sheet: str | None = None, item_ref: str | None = None,
    label_type: str | None = None,
) -> list[LabelUse]:
    """Reverse lineage: which models learnt from a canonical label (by id, or by sheet/item/label type;
    without a label type, the sheet's only classification type)."""
    if label_id is None and sheet and item_ref:
        label_type = resolve_label_type(store, label_type=label_type, sheet=sheet)
    with store.read() as s:
        if label_id is None:
            if not (sheet and item_ref):
                raise ValidationError("name a label by its id, or by sheet and item (and label type)")
            sheet_row = find_sheet(s, sheet)
            label = s.scalar(sa.select(CanonicalLabel).where(
                CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.item_ref == item_ref,
                CanonicalLabel.label_type == label_type))
            if label is None:
                raise NotFoundError(f"no {label_type} label for item {item_ref!r} in sheet {sheet!r}")
            label_id = label.id
        current = s.get(CanonicalLabel, label_id)
        # Filter in SQL on the JSON text first (cheap), then confirm on the parsed entries.
        rows = s.execute(
            sa.select(ModelTrainingLineage.model_id, ModelTrainingLineage.canonical_labels)
            .where(sa.cast(ModelTrainingLineage.canonical_labels, sa.String).contains(label_id))
        ).all()
        uses = []
        for model_id, entries in rows:
            for entry in entries or []:
                if entry.get("id") == label_id:
                    model = s.get(ModelRow, model_id)
                    if model is None:
                        continue
                    uses.append(LabelUse(model.id, model.name, model.version, label_id, entry.get("item_ref"),
                                         entry.get("version"), current.version if current else None))
        return sorted(uses, key=lambda u: (u.name, u.version))


# --- comparing versions on the same held-out items -------------------------------------------


@dataclass(frozen=True)
class ModelEvaluation:
    model_id: str
    name: str
    version: int
    items: int
    correct: int
    accuracy: float
    per_class_recall: dict[str, float]

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def held_out_items(store: Store, *, models: Sequence[str], sheet: str, label_type: str | None = None) -> list[str]:
    """Items with a label permitted for evaluation that none of `models` learnt from (label type:
    given, else the first model's recorded one, else the sheet's only classification type)."""
    label_type = resolve_label_type(store, label_type=label_type, sheet=sheet, model=models[0] if models else None)
    used: set[str] = set()
    for model in models:
        for src in lineage(store, model=model).sources:
            used.update(entry["item_ref"] for entry in src.canonical_labels if entry.get("item_ref"))
    with store.read() as s:
        sheet_row = find_sheet(s, sheet)
        rows = s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type))
        return sorted(
            r.item_ref for r in rows
            if r.item_ref not in used and decide(label_status(r.review_state), r.allowed_uses, r.prohibited_uses,
                                                 "evaluation").passes
        )


@dataclass(frozen=True)
class ItemPredictions:
    """What each model predicted on the same labelled items: `truth[i]` is item `refs[i]`'s label,
    `predicted[m][i]` what model `models[m]` (rows of the registry) said (None: unreadable image)."""

    refs: list[str]
    truth: list[str]
    models: list[ModelRow]
    predicted: list[list[str | None]]

    def correct(self, model: int) -> list[bool]:
        return [p == t for p, t in zip(self.predicted[model], self.truth, strict=True)]


def predict_labelled_items(
    store: Store, *, models: Sequence[str], sheet: str, item_refs: Sequence[str] | None = None,
    label_type: str | None = None, progress: Progress | None = None,
) -> ItemPredictions:
    """Run each model on the same labelled image items (default: `held_out_items`). Nothing is
    logged: this is not production use."""
    from vital_desktop.inference.classifier import OnnxClassifier

    label_type = resolve_label_type(store, label_type=label_type, sheet=sheet, model=models[0] if models else None)
    refs = list(item_refs) if item_refs is not None else held_out_items(store, models=models, sheet=sheet,
                                                                           label_type=label_type)
    if not refs:
        raise ValidationError("no held-out labelled items to evaluate on")
    class_field = _class_field(store, label_type)
    with store.read() as s:
        sheet_row = find_sheet(s, sheet)
        items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(
            SheetItem.sheet_id == sheet_row.id, SheetItem.item_ref.in_(refs)))}
        truth = {r.item_ref: str((r.label_data or {}).get(class_field)) for r in s.scalars(sa.select(CanonicalLabel).where(
            CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == label_type,
            CanonicalLabel.item_ref.in_(refs)))}
        model_rows = [resolve_model(s, m) for m in models]
    refs = [r for r in refs if r in truth and r in items and items[r].image_path]
    if not refs:
        raise ValidationError(f"none of the held-out labelled items of sheet {sheet!r} is an image")
    paths = [str(Path(sheet_row.image_root or "") / str(items[r].image_path)) for r in refs]
    predicted = [[res.predicted_class for res in OnnxClassifier(Path(row.path)).predict_paths(paths, progress=progress)]
                 for row in model_rows]
    return ItemPredictions(refs, [truth[r] for r in refs], model_rows, predicted)


def evaluate_models(
    store: Store, *, models: Sequence[str], sheet: str, item_refs: Sequence[str] | None = None,
    label_type: str | None = None, progress: Progress | None = None,
) -> list[ModelEvaluation]:
    """Accuracy of each model on the same labelled items (default: `held_out_items`), so two
    versions are compared on equal terms. Nothing is logged: this is not production use."""
    run = predict_labelled_items(store, models=models, sheet=sheet, item_refs=item_refs, label_type=label_type,
                                 progress=progress)
    out = []
    for index, row in enumerate(run.models):
        correct: Counter[str] = Counter()
        total: Counter[str] = Counter(run.truth)
        for truth, right in zip(run.truth, run.correct(index), strict=True):
            correct[truth] += right
        n_correct = sum(correct.values())
        out.append(ModelEvaluation(row.id, row.name, row.version, len(run.refs), n_correct,
                                   round(n_correct / len(run.refs), 4),
                                   {c: round(correct[c] / total[c], 4) for c in sorted(total)}))
    return out
