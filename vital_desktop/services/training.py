"""TRAIN stage: governed export of Q&A pairs, local retraining of the image classifier, lineage.

Every export and every training run asks the same question of each pair or label through
`select_for_use`, which applies the seeds' dual quality gates (`core.governance.passes_gates`):
status is ``labeled`` **and** the use is allowed **and** not prohibited. Nothing leaves the
store, and nothing is learned into model weights, by any other path.

Local retraining reads the canonical classification labels of a sheet (or the labeled pairs of
a training sheet), checks every image before any work is done, trains with the inference
package's trainer (features + scikit-learn, one ONNX file with its preprocessing), stores the
training baseline of the input statistics in the model card (MONITOR compares production
against it) and registers the model together with its lineage row in ONE transaction, so a
failure leaves no half-registered model behind.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    CanonicalLabel,
    FeedbackItem,
    ModelRow,
    ModelTrainingLineage,
    QAPair,
    Sheet,
    SheetItem,
)

from vital_desktop.services.training_export import (  # noqa: F401 (public names of the TRAIN stage)
    PREVIEW_LINES,
    SPLIT_FILES,
    ExportFile,
    ExportSummary,
    export_training,
    stratified_split,
)
from vital_desktop.services.sheets import find_sheet
from vital_desktop.services.training_gate import (  # noqa: F401 (public names of the TRAIN stage)
    GateDecision,
    _class_field,
    _training_sheet_row,
    decide,
    held_out_metrics,
    label_status,
    resolve_label_type,
    resolve_model,
)
from vital_desktop.services.training_lineage import (  # noqa: F401 (public names of the TRAIN stage)
    LabelUse,
    Lineage,
    LineageSource,
    ModelEvaluation,
    evaluate_models,
    held_out_items,
    lineage,
    models_using_label,
)

#: Below this many labelled images a class cannot be learnt and validated meaningfully.
DEFAULT_MIN_PER_CLASS = 5
#: Quantile bins of the training baseline used by MONITOR's PSI.
BASELINE_BINS = 10
#: Raw baseline values kept in the card for the KS two-sample test (bounded: the card is JSON).
BASELINE_SAMPLE = 2000


# --- local retraining ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingExample:
    item_ref: str
    image_path: str
    cls: str
    label_id: str | None
    label_version: int | None
    pair_id: str | None = None


@dataclass(frozen=True)
class TrainingSet:
    """What a training run will learn from, after the gates; and what it left out and why."""

    source: str  # "sheet" or "training_sheet"
    sheet_id: str
    sheet_name: str
    training_sheet_id: str | None
    template_id: str | None
    template_version: str | None
    label_type: str
    examples: tuple[TrainingExample, ...]
    excluded: dict[str, int]

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(e.cls for e in self.examples).items()))


def collect_training_set(
    store: Store, *, sheet: str | None = None, training_sheet: str | None = None, label_type: str | None = None
) -> TrainingSet:
    """The labelled images that pass the gates for ``training``, from a sheet's canonical labels
    or from a training sheet's labeled pairs (whose label type is the training sheet's).
    Without `label_type`, a sheet's only classification type is used (`resolve_label_type`)."""
    if (sheet is None) == (training_sheet is None):
        raise ValidationError("train from either a sheet (canonical labels) or a training sheet, not both or neither")
    chosen = resolve_label_type(store, label_type=label_type, sheet=sheet) if sheet is not None else ""
    excluded: Counter[str] = Counter()
    examples: list[TrainingExample] = []
    with store.read() as s:
        if training_sheet is not None:
            ts = _training_sheet_row(s, training_sheet)
            sheet_row = find_sheet(s, ts.sheet_id)
            chosen = ts.label_type
            class_field = _class_field(s, chosen)
            if not class_field:
                raise ValidationError(f"training sheet {ts.name!r} has label type {chosen}, which has no class to learn")
            items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_row.id))}
            for pair in s.scalars(sa.select(QAPair).where(QAPair.training_sheet_id == ts.id).order_by(QAPair.position)):
                decision = decide(pair.status, pair.allowed_uses, pair.prohibited_uses, "training")
                if not decision.passes:
                    excluded[decision.reason or "not permitted"] += 1
                    continue
                cls = pair.answer.get(class_field) if isinstance(pair.answer, dict) else None
                if not cls:
                    excluded[f"answer has no {class_field}"] += 1
                    continue
                examples.append(_example(sheet_row, items.get(pair.item_ref), pair.item_ref, str(cls),
                                         pair.canonical_label_id, pair.canonical_label_version, pair.id))
            template_id, template_version, ts_id = ts.template_id, ts.template_version, ts.id
        else:
            sheet_row = find_sheet(s, sheet)  # type: ignore[arg-type]
            class_field = _class_field(s, chosen)
            if not class_field:
                raise ValidationError(f"label type {chosen!r} has no class field to learn")
            items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_row.id))}
            labels = s.scalars(sa.select(CanonicalLabel).where(
                CanonicalLabel.sheet_id == sheet_row.id, CanonicalLabel.label_type == chosen
            ).order_by(CanonicalLabel.item_ref))
            for label in labels:
                decision = decide(label_status(label.review_state), label.allowed_uses, label.prohibited_uses, "training")
                if not decision.passes:
                    excluded[decision.reason or "not permitted"] += 1
                    continue
                cls = (label.label_data or {}).get(class_field)
                examples.append(_example(sheet_row, items.get(label.item_ref), label.item_ref, str(cls),
                                         label.id, label.version))
            template_id, template_version, ts_id = None, None, None
    missing = [e.item_ref for e in examples if not e.image_path]
    if missing:
        raise ValidationError(
            f"{len(missing)} labelled item(s) have no image file to train on: {', '.join(missing[:10])}"
            + (" …" if len(missing) > 10 else ""),
            details={"items": missing},
        )
    return TrainingSet(
        source="training_sheet" if training_sheet is not None else "sheet", sheet_id=sheet_row.id,
        sheet_name=sheet_row.name, training_sheet_id=ts_id, template_id=template_id, template_version=template_version,
        label_type=chosen, examples=tuple(examples), excluded=dict(sorted(excluded.items())),
    )


def _example(sheet: Sheet, item: SheetItem | None, item_ref: str, cls: str, label_id: str | None,
             label_version: int | None, pair_id: str | None = None) -> TrainingExample:
    path = ""
    if item is not None and item.image_path and sheet.image_root and not item.missing:
        path = str(Path(sheet.image_root) / item.image_path)
    return TrainingExample(item_ref, path, cls, label_id, label_version, pair_id)


def _label_type_version(store: Store, label_type: str) -> str:
    from vital_desktop.services.label_types import get_label_type

    return get_label_type(store, label_type).version


def _check_classes(store: Store, training_set: TrainingSet, classes: Sequence[str] | None,
                   min_per_class: int) -> list[str]:
    from vital_desktop.services.label_types import get_label_type

    taxonomy = get_label_type(store, training_set.label_type).classes()
    wanted = list(classes) if classes else taxonomy
    unknown = [c for c in wanted if taxonomy and c not in taxonomy]
    if unknown:
        raise ValidationError(f"unknown class(es) {', '.join(unknown)}; "
                              f"the {training_set.label_type} classes are {', '.join(taxonomy)}")
    if len(wanted) < 2:
        raise ValidationError("a classifier needs at least 2 classes")
    counts = Counter(e.cls for e in training_set.examples if e.cls in wanted)
    empty = [c for c in wanted if counts[c] == 0]
    if empty:
        raise ValidationError(
            f"class(es) {', '.join(empty)} have no training examples in {training_set.sheet_name!r}; label some, "
            f"or train on fewer classes (classes=...)",
            details={"counts": {c: counts[c] for c in wanted}},
        )
    few = {c: counts[c] for c in wanted if counts[c] < min_per_class}
    if few:
        raise ValidationError(
            "too few labelled images per class to train (need at least "
            f"{min_per_class}): " + ", ".join(f"{c} has {n}" for c, n in few.items()),
            details={"counts": {c: counts[c] for c in wanted}, "min_per_class": min_per_class},
        )
    return wanted


def _quantile_edges(values: np.ndarray, bins: int = BASELINE_BINS) -> list[float]:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(e) for e in edges]


def _bin_fractions(values: np.ndarray, edges: list[float]) -> list[float]:
    # Bins are (-inf, e0], (e0, e1], ..., (e_last, inf): the same rule MONITOR's SQL applies.
    index = np.searchsorted(np.asarray(edges), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    return [float(c) / max(1, len(values)) for c in counts]


def baseline_statistics(stats: Sequence[Any], labels: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """The training baseline MONITOR compares production with: binned input statistics, a bounded
    raw sample for the KS test, image resolutions, and the class mix."""
    out: dict[str, Any] = {"count": len(stats), "bins": BASELINE_BINS, "continuous": {}}
    rng = np.random.default_rng(seed)
    for name, values in (
        ("image_mean", np.array([st.mean for st in stats], dtype=float)),
        ("image_std", np.array([st.std for st in stats], dtype=float)),
    ):
        edges = _quantile_edges(values)
        sample = values if len(values) <= BASELINE_SAMPLE else rng.choice(values, BASELINE_SAMPLE, replace=False)
        out["continuous"][name] = {
            "edges": edges, "fractions": _bin_fractions(values, edges),
            "mean": float(values.mean()), "std": float(values.std()),
            "sample": [round(float(v), 4) for v in sample],
        }
    resolutions = Counter(f"{st.width}x{st.height}" for st in stats)
    out["resolution"] = {k: v / max(1, len(stats)) for k, v in sorted(resolutions.items())}
    classes = Counter(labels)
    out["class_mix"] = {k: v / max(1, len(labels)) for k, v in sorted(classes.items())}
    return out


@dataclass(frozen=True)
class TrainResult:
    model_id: str
    name: str
    version: int
    path: str
    classes: list[str]
    images: int
    class_counts: dict[str, int]
    excluded: dict[str, int]
    held_out_accuracy: float
    metrics: dict[str, Any]
    duration_s: float
    feedback_added: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def train_classifier(
    store: Store,
    *,
    actor: User,
    name: str,
    sheet: str | None = None,
    training_sheet: str | None = None,
    label_type: str | None = None,
    classes: Sequence[str] | None = None,
    val_fraction: float = 0.2,
    seed: int = 42,
    min_per_class: int = DEFAULT_MIN_PER_CLASS,
    progress: Progress | None = None,
    folds: int | None = None,
    backbone: str | None = None,
) -> tuple[TrainResult, Changes]:
    """Train an image classifier on the gated labels, register it as the next version of `name`
    with its card, baseline and lineage. Nothing is registered unless every step succeeded."""
    import time

    from vital_desktop.inference.train_classifier import train_image_classifier

    require(actor, "train")
    progress = progress or Progress()
    name = (name or "").strip()
    if not name:
        raise ValidationError("a model needs a name")
    from vital_desktop.services import registry

    if not registry._NAME_RE.match(name):  # checked before training, not after minutes of work
        raise ValidationError(f"model name {name!r} must be 1-64 lower-case letters, digits, '.', '-' or '_'")
    started = time.perf_counter()
    training_set = collect_training_set(store, sheet=sheet, training_sheet=training_sheet, label_type=label_type)
    wanted = _check_classes(store, training_set, classes, min_per_class)
    examples = [e for e in training_set.examples if e.cls in wanted]
    left_out = Counter(e.cls for e in training_set.examples if e.cls not in wanted)
    excluded = dict(training_set.excluded) | {f"class {c} not trained": n for c, n in left_out.items()}

    try:
        if backbone:  # a registered pretrained backbone: cached embeddings + a local head
            from vital_desktop.services import backbones

            backbone_model = registry.get_model(store, backbone, kind=registry.KIND_BACKBONE)
            trained = backbones.train_on_backbone(
                store, Path(backbone_model.path), [e.image_path for e in examples], [e.cls for e in examples],
                wanted, val_fraction=val_fraction, seed=seed, folds=folds, name=name, progress=progress,
                backbone_ref=backbone_model.ref)
        else:
            trained = train_image_classifier(
                [e.image_path for e in examples], [e.cls for e in examples], wanted,
                val_fraction=val_fraction, seed=seed, progress=progress, name=name, folds=folds,
            )
    except ValidationError as exc:
        index = (exc.details or {}).get("index")
        if not isinstance(index, int):
            raise
        example = examples[index]  # an unreadable image: name the item, nothing was registered
        raise ValidationError(f"item {example.item_ref!r}: {exc.message}; fix or relabel it, then train again",
                              details={"item_ref": example.item_ref, "path": example.image_path}) from exc
    stats = trained.stats
    progress.check()
    config = {
        "trainer": "vital_desktop.inference.train_classifier",
        "estimator": trained.card.get("estimator"),
        "val_fraction": val_fraction,
        "seed": seed,
        "min_per_class": min_per_class,
        "folds": trained.card.get("model_selection", {}).get("folds"),
        "backbone": backbone,
        "representation": trained.card.get("features", {}).get("blocks"),
        "temperature": trained.card.get("calibration", {}).get("temperature"),
        "classes": wanted,
        "label_type": training_set.label_type,
        "label_type_version": _label_type_version(store, training_set.label_type),
        "source": training_set.source,
    }
    card = dict(trained.card)
    # The model card names the label-type version and class list it learnt (a later taxonomy
    # change makes the model say it was trained on an older version).
    card["label_type"], card["label_type_version"] = training_set.label_type, config["label_type_version"]
    card["label_type_classes"] = list(wanted)
    card["baseline"] = baseline_statistics(stats, [e.cls for e in examples], seed=seed)
    card["lineage"] = {
        "sheet": training_set.sheet_name, "training_sheet_id": training_set.training_sheet_id,
        "template_version": training_set.template_version, "labels": len(examples), "excluded": excluded,
    }
    lineage_labels = [
        {"id": e.label_id, "version": e.label_version, "item_ref": e.item_ref, "class": e.cls} for e in examples
    ]
    registered = _register(store, actor, trained, name=name, card=card, training_set=training_set, config=config,
                           lineage_labels=lineage_labels, pair_ids=[e.pair_id for e in examples if e.pair_id])
    metrics = held_out_metrics(card)
    result = TrainResult(
        model_id=registered["model_id"], name=name, version=registered["version"], path=registered["path"],
        classes=wanted, images=len(examples), class_counts=dict(sorted(Counter(e.cls for e in examples).items())),
        excluded=excluded, held_out_accuracy=float(metrics.get("accuracy", 0.0)), metrics=metrics,
        duration_s=round(time.perf_counter() - started, 2), feedback_added=registered["feedback_added"],
    )
    progress.finish(f"trained {name} v{result.version}")
    return result, Changes(models=True, feedback=registered["feedback_added"] > 0)


def _register(store: Store, actor: User, trained: Any, *, name: str, card: dict, training_set: TrainingSet,
              config: dict, lineage_labels: list[dict], pair_ids: list[str]) -> dict:
    """Register the model through the registry service, then write its lineage.

    The registry commits the model in its own transaction; if writing the lineage fails after
    that, the registration is undone (row and file removed, the undo audited), so no model is
    ever left registered without the record of what it learnt from.
    """
    from vital_desktop.services import registry
    from vital_desktop.services.accounts import require as _require

    _require(actor, "register_model")
    staging = store.staging_dir / f"{name}-{os.getpid()}-{utcnow().strftime('%Y%m%d%H%M%S%f')}.onnx"
    try:
        trained.save(staging)
        model, _ = registry.register_model(store, actor=actor, path=staging, kind=registry.KIND_ONNX, name=name, card=card)
    finally:
        staging.unlink(missing_ok=True)
    label_ids = [entry["id"] for entry in lineage_labels if entry["id"]]
    try:
        with store.session() as s:
            s.add(ModelTrainingLineage(
                model_id=model.id, training_sheet_id=training_set.training_sheet_id, sheet_id=training_set.sheet_id,
                template_id=training_set.template_id, template_version=training_set.template_version,
                qa_pair_ids=pair_ids, canonical_labels=lineage_labels, training_config=config,
                trained_by=actor.username,
            ))
            # Accepted feedback whose corrected label this model learnt from has now reached training.
            accepted = s.scalars(sa.select(FeedbackItem).where(
                FeedbackItem.status == "accepted", FeedbackItem.canonical_label_id.in_(label_ids or [""])
            )).all()
            for item in accepted:
                item.status = "added_to_training"
            audit.record(s, actor, "model.train", model.ref, {
                "model_id": model.id, "labels": len(lineage_labels), "pairs": len(pair_ids), "config": config,
                "held_out_accuracy": held_out_metrics(card).get("accuracy"),
                "feedback_added": len(accepted),
            })
            s.flush()
            feedback_added = len(accepted)
    except BaseException:
        with store.session() as s:
            s.execute(sa.delete(ModelRow).where(ModelRow.id == model.id))
            audit.record(s, actor, "model.register_undone", model.ref, {"reason": "lineage could not be written"})
        Path(model.path).unlink(missing_ok=True)
        raise
    return {"model_id": model.id, "version": model.version, "path": model.path, "feedback_added": feedback_added}


__all__ = [
    "ExportSummary",
    "GateDecision",
    "LabelUse",
    "Lineage",
    "ModelEvaluation",
    "TrainResult",
    "TrainingSet",
    "collect_training_set",
    "decide",
    "evaluate_models",
    "export_training",
    "held_out_items",
    "lineage",
    "models_using_label",
    "resolve_model",
    "stratified_split",
    "train_classifier",
]
