"""Serving predictions locally, and the prediction log behind monitoring.

Every inference — each image the classifier sees, each answer the language model gives — is
written to `predictions` with the model, the item, the output, the confidence, the latency and
the input statistics monitoring needs for drift (image mean/std/size; prompt tokens). Work is
done in batches and logged per batch, so a cancelled run keeps what finished.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import new_ids, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.inference.classifier import ClassifierResult, OnnxClassifier
from vital_desktop.inference.llm import (
    DEFAULT_CONTEXT,
    DEFAULT_THREADS,
    GenerationResult,
    LocalLlm,
    default_gguf_path,
    get_llm,
)
from vital_desktop.services import registry
from vital_desktop.services.accounts import require
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store.db import Store
from vital_desktop.store.models import Prediction, Setting, SheetItem

SETTING_THREADS = "inference.threads"
SETTING_CONTEXT = "inference.llm_context"
SETTING_LLM_THREADS = "inference.llm_threads"
#: Images per batch: decoded together, classified in one onnxruntime call, logged in one insert.
LOG_BATCH = 64


def inference_threads(store: Store) -> int:
    """Threads for onnxruntime and llama.cpp: the site setting, else up to 2 (a shared laptop)."""
    with store.read() as s:
        row = s.get(Setting, SETTING_THREADS)
        value = row.value if row is not None else None
    if isinstance(value, int) and value > 0:
        return value
    return max(1, min(2, os.cpu_count() or 1))


def llm_threads(store: Store) -> int:
    """llama.cpp threads: the site setting, else all cores but one (its threads spin-wait)."""
    with store.read() as s:
        row = s.get(Setting, SETTING_LLM_THREADS)
        value = row.value if row is not None else None
    return value if isinstance(value, int) and value > 0 else DEFAULT_THREADS


def llm_context(store: Store) -> int:
    with store.read() as s:
        row = s.get(Setting, SETTING_CONTEXT)
        value = row.value if row is not None else None
    return value if isinstance(value, int) and value >= 256 else DEFAULT_CONTEXT


_classifier_lock = threading.Lock()
_classifiers: dict[tuple[str, str, int], OnnxClassifier] = {}


def classifier_for(model: registry.ModelInfo, threads: int) -> OnnxClassifier:
    """A cached onnxruntime session for a registered classifier (keyed by file hash and threads)."""
    key = (model.path, model.file_sha256, threads)
    with _classifier_lock:
        session = _classifiers.get(key)
        if session is None:
            if not Path(model.path).is_file():
                raise ValidationError(f"the file of {model.ref} is missing: {model.path}")
            session = OnnxClassifier(Path(model.path), threads=threads)
            _classifiers[key] = session
        return session


def resolve_model(store: Store, kind: str, ref: str | None) -> registry.ModelInfo:
    """The named model (checked to be of `kind`), else the active one of that kind."""
    if ref:
        model = registry.get_model(store, ref)
        if model.kind != kind:
            raise ValidationError(f"{model.ref} is a {model.kind} model; this needs a {kind} model")
        return model
    active = registry.active_model(store, kind)
    if active is None:
        raise NotFoundError(f"no active {kind} model: register one and run `vital model activate NAME`")
    return active


def llm_for(store: Store, ref: str | None = None) -> tuple[LocalLlm, registry.ModelInfo | None]:
    """The language model for generation: the named or active GGUF model, else the bundled default.

    Returns the model and its registry entry (None for the unregistered bundled default).
    """
    model: registry.ModelInfo | None = None
    model = resolve_model(store, registry.KIND_GGUF, ref) if ref else registry.active_model(store, registry.KIND_GGUF)
    path = Path(model.path) if model is not None else default_gguf_path()
    return get_llm(path, n_ctx=llm_context(store), threads=llm_threads(store)), model


@dataclass(frozen=True)
class PredictionInfo:
    id: str
    model: str
    item_ref: str | None
    image_path: str | None
    predicted_class: str | None
    confidence: float | None
    probabilities: dict[str, float]
    latency_ms: float
    image_mean: float | None
    image_std: float | None
    image_width: int | None
    image_height: int | None
    error: str | None = None
    label_type_note: str = ""  # set when the model was trained on an older label-type version

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "latency_ms": round(self.latency_ms, 3)}


@dataclass(frozen=True)
class _Target:
    image_path: str
    sheet_id: str | None = None
    item_ref: str | None = None
    #: what the sheet's index says (for the image-access guard); None for bare paths
    image_root: str | None = None
    relative_path: str | None = None
    file_sha256: str | None = None


def _sheet_targets(store: Store, sheet: str, item_refs: Sequence[str] | None) -> list[_Target]:
    with store.read() as s:
        row = find_sheet(s, sheet)
        if not row.image_root or not row.image_column:
            raise ValidationError(f"sheet {row.name!r} has no images to classify")
        query = sa.select(SheetItem).where(SheetItem.sheet_id == row.id).order_by(SheetItem.position)
        if item_refs is not None:
            query = query.where(SheetItem.item_ref.in_(list(item_refs)))
        items = list(s.scalars(query))
        if item_refs is not None and len(items) != len(set(item_refs)):
            found = {item.item_ref for item in items}
            missing = [ref for ref in item_refs if ref not in found]
            raise NotFoundError(f"sheet {row.name!r} has no items {missing[:5]}")
        return [
            _Target(str(Path(row.image_root) / item.image_path), row.id, item.item_ref, row.image_root, item.image_path,
                    item.file_sha256)
            for item in items
            if item.image_path
        ]


def _refused(targets: Sequence[_Target], workers: int) -> dict[int, str]:
    """Positions of the sheet targets the image-access guard refuses, with why (bare paths are not indexed)."""
    from vital_desktop.services.image_access import check_images

    indexed = [(i, t) for i, t in enumerate(targets) if t.image_root is not None and t.relative_path is not None]
    by_root: dict[str, list[tuple[int, _Target]]] = {}
    for i, t in indexed:
        by_root.setdefault(str(t.image_root), []).append((i, t))
    out: dict[int, str] = {}
    for root, rows in by_root.items():
        checks = check_images(root, [(t.item_ref, str(t.relative_path), t.file_sha256) for _, t in rows],
                              workers=workers)
        out.update({i: c.problem for (i, _), c in zip(rows, checks, strict=True) if c.problem is not None})
    return out


def _columns(model: registry.ModelInfo, targets: Sequence[_Target], results: Sequence[ClassifierResult],
             actor: User, ids: Sequence[str]) -> dict[str, list[Any]]:
    """The prediction-log rows of one batch as columns (for one Arrow insert)."""
    now = utcnow()
    stats = [r.stats for r in results]
    return {
        "id": list(ids),
        "model_id": [model.id] * len(results),
        "model_name": [model.name] * len(results),
        "model_version": [model.version] * len(results),
        "kind": [model.kind] * len(results),
        "sheet_id": [t.sheet_id for t in targets],
        "item_ref": [t.item_ref for t in targets],
        "image_path": [t.image_path for t in targets],
        "output": [json.dumps({"error": r.error} if r.error else {"probabilities": r.probabilities}) for r in results],
        "predicted_class": [r.predicted_class for r in results],
        "confidence": [r.confidence for r in results],
        "latency_ms": [float(r.latency_ms) for r in results],
        "image_mean": [s.mean if s else None for s in stats],
        "image_std": [s.std if s else None for s in stats],
        "image_width": [s.width if s else None for s in stats],
        "image_height": [s.height if s else None for s in stats],
        "created_by": [actor.username] * len(results),
        "created_at": [now] * len(results),
    }


_ARROW_TYPES = {"model_version": "int32", "image_width": "int32", "image_height": "int32", "confidence": "float64",
                "latency_ms": "float64", "image_mean": "float64", "image_std": "float64"}


def log_classifier_batch(session: sa.orm.Session, columns: dict[str, list[Any]]) -> int:
    """Append one batch of classifier predictions to the log with one Arrow `INSERT … SELECT`."""
    import pyarrow as pa

    from vital_desktop.store.bulk import insert_arrow

    arrays = {name: pa.array(values, type=getattr(pa, _ARROW_TYPES[name])() if name in _ARROW_TYPES else None)
              for name, values in columns.items()}
    for name in ("sheet_id", "item_ref", "predicted_class", "image_path"):
        arrays[name] = pa.array(columns[name], type=pa.string())
    return insert_arrow(session, "predictions", pa.table(arrays), casts={"output": "JSON"})


def predict_images(
    store: Store,
    *,
    actor: User,
    model: str | None = None,
    paths: Sequence[Path | str] | None = None,
    sheet: str | None = None,
    item_refs: Sequence[str] | None = None,
    progress: Progress | None = None,
    batch_size: int = LOG_BATCH,
) -> tuple[list[PredictionInfo], Changes]:
    """Classify image files (`paths`) or a sheet's items with the named or active classifier; log every one.

    One decoding pipeline runs over all images (the next batch decodes while this one is
    classified and logged); each batch is logged with one Arrow insert, so a cancelled run
    keeps the batches already done, and `Cancelled` propagates. Unreadable images are logged
    with their error rather than stopping the run.
    """
    require(actor, "predict")
    if (paths is None) == (sheet is None):
        raise ValidationError("give either image paths or a sheet to classify")
    info = resolve_model(store, registry.KIND_ONNX, model)
    classifier = classifier_for(info, inference_threads(store))
    targets = [_Target(str(Path(p))) for p in paths] if paths is not None else _sheet_targets(store, sheet or "", item_refs)
    if not targets:
        raise ValidationError("nothing to classify: no images given")
    from vital_desktop.services.taxonomy import version_note

    note = version_note(store, info.card.get("label_type"), info.card.get("label_type_version"))
    # The image-access guard: a sheet item whose file changed since indexing, or that is now a
    # link out of the image root, is refused by name (logged with the reason, never classified).
    refused = _refused(targets, classifier.threads)
    if refused and len(refused) == len(targets):
        problems = [refused[i] for i in sorted(refused)]
        raise ValidationError(problems[0] if len(problems) == 1 else
                              f"all {len(problems)} images are refused: " + "; ".join(problems[:3]),
                              details={"refused": problems[:20]})
    progress = progress or Progress()
    progress.start(len(targets), f"classifying with {info.ref}")
    out: list[PredictionInfo] = []
    if refused:
        blocked = [targets[i] for i in sorted(refused)]
        results_refused = [ClassifierResult(t.image_path, None, None, {}, 0.0, None, refused[i])
                           for i, t in zip(sorted(refused), blocked, strict=True)]
        out += _log_batch(store, info, blocked, results_refused, actor, note)
        targets = [t for i, t in enumerate(targets) if i not in refused]
        progress.advance(len(blocked))
    done = 0
    for results in classifier.iter_predict([t.image_path for t in targets], batch_size=batch_size, progress=progress):
        chunk = targets[done : done + len(results)]
        done += len(results)
        out += _log_batch(store, info, chunk, results, actor, note)
    progress.finish(f"{len(out)} images classified" + (f", {len(refused)} refused" if refused else ""))
    return out, Changes(predictions=True)


def _log_batch(store: Store, info: registry.ModelInfo, chunk: Sequence[_Target], results: Sequence[ClassifierResult],
               actor: User, note: str) -> list[PredictionInfo]:
    """Log one batch of classifier results with one Arrow insert; their `PredictionInfo`s."""
    out: list[PredictionInfo] = []
    ids = new_ids(len(results))
    columns = _columns(info, chunk, results, actor, ids)
    with store.session() as s:
        log_classifier_batch(s, columns)
    for index, (target, result) in enumerate(zip(chunk, results, strict=False)):
        stats = result.stats
        out.append(PredictionInfo(
            id=ids[index], model=info.ref, item_ref=target.item_ref, image_path=target.image_path,
            predicted_class=result.predicted_class, confidence=result.confidence,
            probabilities=result.probabilities, latency_ms=result.latency_ms,
            image_mean=stats.mean if stats else None, image_std=stats.std if stats else None,
            image_width=stats.width if stats else None, image_height=stats.height if stats else None,
            error=result.error, label_type_note=note,
        ))
    return out


def log_llm_prediction(
    session: sa.orm.Session,
    *,
    actor: User,
    model: registry.ModelInfo | None,
    result: GenerationResult,
    sheet_id: str | None = None,
    item_ref: str | None = None,
    image_path: str | None = None,
    template: str | None = None,
) -> Prediction:
    """Log one language-model answer inside the caller's transaction (the GENERATE stage calls this).

    An unregistered bundled default model is logged under its well-known name with version 0.
    """
    confidence = None
    if isinstance(result.parsed, dict) and isinstance(result.parsed.get("confidence"), (int, float)):
        confidence = float(result.parsed["confidence"])
    predicted = None
    if isinstance(result.parsed, dict):
        # The answer's class: a conventionally named field, else its first text field (answers follow
        # the output schema's property order, where a template puts its class field first).
        named = [k for k in ("class", "label", "category") if isinstance(result.parsed.get(k), str)]
        texts = [k for k, v in result.parsed.items() if isinstance(v, str)]
        if named or texts:
            predicted = result.parsed[(named or texts)[0]]
    row = Prediction(
        model_id=model.id if model else "default-gguf",
        model_name=model.name if model else "smollm2-135m-instruct",
        model_version=model.version if model else 0,
        kind=registry.KIND_GGUF,
        sheet_id=sheet_id,
        item_ref=item_ref,
        image_path=image_path,
        output={
            "parsed": result.parsed,
            "valid": result.valid,
            "error": result.error,
            "raw": result.text,
            "attempts": result.attempts,
            "finish_reason": result.finish_reason,
            "template": template,
        },
        predicted_class=predicted,
        confidence=confidence,
        latency_ms=float(result.latency_ms),
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        created_by=actor.username,
    )
    session.add(row)
    return row


def recent_predictions(store: Store, *, model: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest logged predictions (for `vital predict --show` and the monitor page)."""
    with store.read() as s:
        query = sa.select(Prediction).order_by(Prediction.created_at.desc()).limit(limit)
        if model is not None:
            query = query.where(Prediction.model_id == registry._find(s, model).id)
        return [
            {
                "id": p.id,
                "model": f"{p.model_name}@{p.model_version}",
                "kind": p.kind,
                "item_ref": p.item_ref,
                "image_path": p.image_path,
                "predicted_class": p.predicted_class,
                "confidence": p.confidence,
                "latency_ms": p.latency_ms,
                "prompt_tokens": p.prompt_tokens,
                "created_at": p.created_at.isoformat() if p.created_at else None,
            }
            for p in s.scalars(query)
        ]
