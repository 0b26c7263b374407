"""LABEL and IMPROVE helpers built on the classifier: label next, possibly mislabelled, heat maps.

These read the store and run models, but write nothing: no prediction is logged (this is not
production use) and no label changes (an expert opens the item in the labeling tool and decides
there, through the one label write path). Suspects are found from out-of-fold probabilities of
the same model search the trainer runs, over the labels that pass the training gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.inference import assist, calibration
from vital_desktop.inference.classifier import decode_chunks, load_image
from vital_desktop.services.accounts import require
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, Sheet, SheetItem

#: Unlabelled items scored per `label_next` call (beyond this, a seeded random sample).
MAX_POOL = 5000


@dataclass(frozen=True)
class NextItem:
    """An unlabelled item proposed for labelling, with why."""

    item_ref: str
    image_path: str
    rank: int
    score: float
    uncertainty: float | None
    predicted_class: str | None
    confidence: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _sheet(s: Any, ref: str) -> Sheet:
    row = find_sheet(s, ref)
    if not row.image_root:
        raise ValidationError(f"sheet {row.name!r} has no images")
    return row


def _unlabelled(store: Store, sheet: str, label_type: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(item_ref, image path) of the sheet's items without a label of `label_type`; and the labelled paths."""
    with store.read() as s:
        row = _sheet(s, sheet)
        labelled = set(s.scalars(sa.select(CanonicalLabel.item_ref).where(
            CanonicalLabel.sheet_id == row.id, CanonicalLabel.label_type == label_type)))
        items = s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == row.id, SheetItem.missing.is_(False))
                          .order_by(SheetItem.position))
        pool: list[tuple[str, str]] = []
        done: list[tuple[str, str]] = []
        root = Path(str(row.image_root))  # `_sheet` refuses a sheet without images
        for item in items:
            if not item.image_path:
                continue
            path = str(root / item.image_path)
            (done if item.item_ref in labelled else pool).append((item.item_ref, path))
    return pool, [path for _, path in done]


def _run_model(classifier: Any, paths: Sequence[str],
               progress: Progress | None) -> tuple[np.ndarray, np.ndarray | None, list[int]]:
    probabilities, embeddings, good = [], [], []
    for chunk in decode_chunks(paths, classifier.info.preprocess, chunk_size=64, workers=2, progress=progress):
        if chunk.good:
            p, e = classifier.run_with_embedding(chunk.batch)
            probabilities.append(p)
            if e is not None:
                embeddings.append(e)
            good += [chunk.indices[i] for i in chunk.good]
        if progress is not None:
            progress.advance(len(chunk.indices))
    if not probabilities:
        return np.empty((0, len(classifier.classes))), None, []
    return np.concatenate(probabilities), (np.concatenate(embeddings) if embeddings else None), good


def label_next(
    store: Store, *, actor: User, sheet: str, label_type: str | None = None, strategy: str = "uncertainty",
    count: int = 20, model: str | None = None, seed: int = 0, progress: Progress | None = None,
) -> list[NextItem]:
    """The unlabelled items of `sheet` to label next, best first (see `inference.assist.select_next`).

    ``uncertainty`` and ``diversity`` use the named or active classifier; ``random`` needs none.
    """
    from vital_desktop.services import predict, registry

    require(actor, "label")
    if strategy not in assist.STRATEGIES:
        raise ValidationError(f"unknown strategy {strategy!r}; choose one of {', '.join(assist.STRATEGIES)}")
    from vital_desktop.services.training_gate import resolve_label_type

    label_type = resolve_label_type(store, label_type=label_type, sheet=sheet, model=model)
    pool, labelled_paths = _unlabelled(store, sheet, label_type)
    if not pool:
        return []
    if len(pool) > MAX_POOL:
        keep = sorted(np.random.default_rng(seed).choice(len(pool), MAX_POOL, replace=False))
        pool = [pool[i] for i in keep]
    progress = progress or Progress()
    if strategy == "random":
        picks = assist.select_next(None, np.zeros((len(pool), 1)), strategy=strategy, count=count, seed=seed)
        return [NextItem(pool[i][0], pool[i][1], rank, 0.0, None, None, None) for rank, (i, _) in enumerate(picks, 1)]
    info = predict.resolve_model(store, registry.KIND_ONNX, model)
    classifier = predict.classifier_for(info, predict.inference_threads(store))
    sample = labelled_paths[:: max(1, len(labelled_paths) // 500)] if labelled_paths else []
    progress.start(len(pool) + len(sample), f"scoring unlabelled items with {info.ref}")
    probabilities, embedding, good = _run_model(classifier, [p for _, p in pool], progress)
    labelled_embedding = None
    if sample and embedding is not None:
        _, labelled_embedding, _ = _run_model(classifier, sample, progress)
    picks = assist.select_next(probabilities, embedding, strategy=strategy, count=count, seed=seed,
                               labelled_embedding=labelled_embedding)
    uncertainty = assist.margin_uncertainty(probabilities)
    out = []
    for rank, (row, score) in enumerate(picks, 1):
        ref, path = pool[good[row]]
        best = int(np.argmax(probabilities[row]))
        out.append(NextItem(ref, path, rank, round(score, 4), round(float(uncertainty[row]), 4),
                            classifier.classes[best], round(float(probabilities[row][best]), 4)))
    progress.finish(f"{len(out)} items to label next")
    return out


@dataclass(frozen=True)
class SuspectLabel:
    """A canonical label the model confidently disagrees with (out of fold)."""

    item_ref: str
    image_path: str
    label_id: str | None
    label_version: int | None
    given: str
    suggested: str
    p_given: float
    p_suggested: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class SuspectReport:
    sheet: str
    label_type: str
    labels_checked: int
    folds: int
    representation: list[str]
    suspects: tuple[SuspectLabel, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "suspects": [s.to_dict() for s in self.suspects]}


def out_of_fold_probabilities(paths: Sequence[str], labels: Sequence[str], classes: Sequence[str], *,
                              folds: int | None = None, seed: int = 0,
                              progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Calibrated out-of-fold probabilities of every labelled image under the trainer's model search."""
    from threadpoolctl import threadpool_limits

    from vital_desktop.inference import train_classifier as trainer

    spec = trainer.choose_spec(paths)
    features, _ = trainer.extract_features(paths, spec, trainer.ALL_BLOCKS, progress=progress)
    target = np.array([list(classes).index(label) for label in labels])
    k = trainer.check_folds(target, list(classes), folds)
    with threadpool_limits(1):
        choice, _ = trainer.search_heads(features, target, spec, k, seed, len(classes), progress)
        logits = trainer.out_of_fold_logits(features, target, choice, spec, k, seed + 1, len(classes))
    temperature = calibration.fit_temperature(logits, target)
    return calibration.softmax(logits, temperature), target, {"folds": k, "blocks": list(choice.blocks)}


def label_suspects(
    store: Store, *, actor: User, sheet: str, label_type: str | None = None, folds: int | None = None,
    limit: int | None = None, seed: int = 0, progress: Progress | None = None,
) -> SuspectReport:
    """Canonical labels of `sheet` that the model, trained without them (k-fold), confidently contradicts."""
    from vital_desktop.services import training

    require(actor, "label")
    training_set = training.collect_training_set(store, sheet=sheet, label_type=label_type)
    examples = list(training_set.examples)
    classes = sorted({e.cls for e in examples})
    if len(classes) < 2:
        raise ValidationError(f"sheet {training_set.sheet_name!r} has labels of {len(classes)} class(es); "
                              "finding suspect labels needs at least 2")
    try:
        probabilities, target, how = out_of_fold_probabilities(
            [e.image_path for e in examples], [e.cls for e in examples], classes, folds=folds, seed=seed,
            progress=progress)
    except ValidationError as exc:
        index = (exc.details or {}).get("index")
        if isinstance(index, int):
            raise ValidationError(f"item {examples[index].item_ref!r}: {exc.message}") from exc
        raise
    found = assist.find_suspects(probabilities, target)[: limit or None]
    suspects = tuple(
        SuspectLabel(examples[s.index].item_ref, examples[s.index].image_path, examples[s.index].label_id,
                     examples[s.index].label_version, classes[s.given], classes[s.suggested],
                     round(s.p_given, 4), round(s.p_suggested, 4))
        for s in found
    )
    return SuspectReport(training_set.sheet_name, training_set.label_type, len(examples), how["folds"], how["blocks"], suspects)


@dataclass(frozen=True)
class HeatMap:
    """Occlusion sensitivity of one image: a small grid, the class it explains, and its probability."""

    model: str
    image_path: str
    predicted_class: str
    probability: float
    grid: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def heat_map(store: Store, *, actor: User, image_path: str | None = None, sheet: str | None = None,
             item_ref: str | None = None, model: str | None = None, grid: int = 8,
             class_name: str | None = None) -> HeatMap:
    """Where the named or active classifier looks: `inference.assist.occlusion_map` for one image."""
    from vital_desktop.services import predict, registry

    require(actor, "predict")
    if image_path is None:
        if not (sheet and item_ref):
            raise ValidationError("name an image file, or a sheet and an item")
        with store.read() as s:
            row = _sheet(s, sheet)
            item = s.scalar(sa.select(SheetItem).where(SheetItem.sheet_id == row.id, SheetItem.item_ref == item_ref))
            if item is None or not item.image_path:
                raise NotFoundError(f"sheet {row.name!r} has no image for item {item_ref!r}")
            image_path = str(Path(str(row.image_root)) / item.image_path)
    info = predict.resolve_model(store, registry.KIND_ONNX, model)
    classifier = predict.classifier_for(info, predict.inference_threads(store))
    tensor, _ = load_image(Path(image_path), classifier.info.preprocess)
    index = None
    if class_name is not None:
        if class_name not in classifier.classes:
            raise ValidationError(f"{info.ref} has no class {class_name!r}; its classes: {', '.join(classifier.classes)}")
        index = classifier.classes.index(class_name)
    drop, cls, probability = assist.occlusion_map(classifier.run, tensor, class_index=index, grid=grid)
    return HeatMap(info.ref, image_path, classifier.classes[cls], round(probability, 4),
                   [[round(float(v), 4) for v in row] for row in drop])
