"""TRAIN on a pretrained backbone: embeddings cached per (image content, backbone), a head trained
locally, and one composed classifier file.

The backbone is a registered model of kind ``onnx_backbone`` (checked by
`inference.backbone.check_backbone`). Embeddings are looked up in ``embedding_cache`` by the
SHA-256 of the image file's bytes and of the backbone file, so relabelling and retraining never
run the backbone twice on the same picture; new ones are computed in batches and inserted with
one Arrow insert per batch. The head — standardised logistic regression, its C chosen by
stratified cross-validation, its temperature fitted on out-of-fold logits and divided into its
weights — is exported by skl2onnx and composed after the backbone (`inference.backbone.compose`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.inference import calibration
from vital_desktop.inference.backbone import Backbone, BackboneInfo, check_backbone, compose
from vital_desktop.inference.classifier import ImageStats, decode_chunks, file_sha256
from vital_desktop.store.db import Store
from vital_desktop.store.models import EmbeddingCache



def _hashes(paths: Sequence[str]) -> list[str]:
    def one(path: str) -> str:
        try:
            return file_sha256(Path(path))
        except OSError as exc:
            raise ValidationError(f"cannot read image {path}: {exc.strerror or exc}") from exc

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="vital-hash") as pool:
        return list(pool.map(one, paths))


def embed(store: Store, info: BackboneInfo, paths: Sequence[str], *, progress: Progress | None = None,
          threads: int = 2) -> tuple[np.ndarray, list[ImageStats], int]:
    """Embeddings (N, D) and input statistics of image files; the third value is how many came from the cache."""
    import pyarrow as pa

    from vital_desktop.store.bulk import insert_arrow

    paths = [str(p) for p in paths]
    hashes = _hashes(paths)
    cached: dict[str, tuple[np.ndarray, ImageStats]] = {}
    with store.read() as s:
        for start in range(0, len(hashes), 1000):
            rows = s.execute(sa.select(EmbeddingCache).where(
                EmbeddingCache.backbone_sha256 == info.sha256,
                EmbeddingCache.content_sha256.in_(sorted(set(hashes[start : start + 1000]))))).scalars()
            for row in rows:
                if row.dim == info.dim:
                    cached[row.content_sha256] = (
                        np.frombuffer(row.vector, dtype="<f4").copy(),
                        ImageStats(row.image_mean or 0.0, row.image_std or 0.0, row.image_width or 0, row.image_height or 0))
    hits = sum(1 for h in hashes if h in cached)
    todo: list[int] = []
    seen: set[str] = set()
    for i, h in enumerate(hashes):  # each new content once, however many items share it
        if h not in cached and h not in seen:
            seen.add(h)
            todo.append(i)
    model = Backbone(info, threads=threads) if todo else None
    for chunk in decode_chunks([paths[i] for i in todo], info.preprocess, chunk_size=32, progress=progress):
        for position, error in enumerate(chunk.errors):
            if error is not None:
                index = todo[chunk.indices[position]]
                raise ValidationError(error, details={"path": paths[index], "index": index})
        vectors = model(chunk.batch) if model is not None else np.empty((0, info.dim))
        fresh: list[tuple[str, np.ndarray, ImageStats]] = []
        for at, position in enumerate(chunk.good):
            index = todo[chunk.indices[position]]
            stats = chunk.stats[position]
            assert stats is not None
            cached[hashes[index]] = (vectors[at], stats)
            fresh.append((hashes[index], vectors[at], stats))
        now = utcnow()
        table = pa.table({
            "content_sha256": pa.array([r[0] for r in fresh], pa.string()),
            "backbone_sha256": pa.array([info.sha256] * len(fresh), pa.string()),
            "dim": pa.array([info.dim] * len(fresh), pa.int32()),
            "vector": pa.array([np.asarray(r[1], dtype="<f4").tobytes() for r in fresh], pa.binary()),
            "image_mean": pa.array([r[2].mean for r in fresh], pa.float64()),
            "image_std": pa.array([r[2].std for r in fresh], pa.float64()),
            "image_width": pa.array([r[2].width for r in fresh], pa.int32()),
            "image_height": pa.array([r[2].height for r in fresh], pa.int32()),
            "created_at": pa.array([now] * len(fresh), pa.timestamp("us")),
        })
        with store.session() as s:
            insert_arrow(s, "embedding_cache", table)
        if progress is not None:
            progress.advance(len(chunk.indices))
    vectors = np.stack([cached[h][0] for h in hashes]).astype(np.float32)
    return vectors, [cached[h][1] for h in hashes], hits


def train_on_backbone(
    store: Store, backbone_path: Path, images: Sequence[str], labels: Sequence[str], classes: Sequence[str], *,
    val_fraction: float = 0.2, seed: int = 0, folds: int | None = None, name: str = "image-classifier",
    progress: Progress | None = None, backbone_ref: str = "",
) -> Any:
    """A `TrainedModel` whose file is the backbone composed with a head trained on cached embeddings."""
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    from vital_desktop.inference import train_classifier as trainer

    classes = trainer._check_inputs(images, labels, classes, val_fraction)
    info = check_backbone(Path(backbone_path))
    started = time.perf_counter()
    if progress is not None:
        progress.start(len(images) + 2, "embedding images")
    features, stats, hits = embed(store, info, images, progress=progress)
    embed_s = time.perf_counter() - started
    target = np.array([classes.index(label) for label in labels])
    n_val = max(len(classes), round(val_fraction * len(images)))
    train_idx, val_idx = train_test_split(np.arange(len(images)), test_size=n_val, random_state=seed, stratify=target)
    k = trainer.check_folds(target[train_idx], classes, folds)
    with threadpool_limits(1):
        logits = trainer._path_logits(features[train_idx], target[train_idx], k, seed, len(classes), trainer.CANDIDATE_C)
        scores = [{"C": c, "cv_accuracy": round(float((logits[c].argmax(1) == target[train_idx]).mean()), 4),
                   "cv_log_loss": round(calibration.negative_log_likelihood(calibration.softmax(logits[c]),
                                                                            target[train_idx]), 4)}
                  for c in trainer.CANDIDATE_C]
        best = min(scores, key=lambda s: (-s["cv_accuracy"], s["cv_log_loss"]))
        temperature = calibration.fit_temperature(logits[best["C"]], target[train_idx])
        estimator = trainer._pipeline(best["C"]).fit(features[train_idx], target[train_idx])
    held = trainer._logits(estimator, features[val_idx], len(classes))
    calibrated = calibration.softmax(held, temperature)
    step = estimator.steps[-1][1]
    step.coef_, step.intercept_ = step.coef_ / temperature, step.intercept_ / temperature
    card: dict[str, Any] = {
        "name": name, "task": "image_classification", "classes": classes,
        "input": {"size": list(info.preprocess.input_size), "color_mode": info.preprocess.color_mode,
                  "mean": list(info.preprocess.mean), "std": list(info.preprocess.std)},
        "estimator": f"backbone {backbone_ref or info.path.name} ({info.dim}-d) + StandardScaler + "
                     f"LogisticRegression(C={best['C']}), temperature {temperature:.3f}",
        "backbone": {"model": backbone_ref, "sha256": info.sha256, "dim": info.dim,
                     "embeddings_from_cache": hits, "embeddings_computed": len(images) - hits},
        "model_selection": {"folds": k, "candidates": scores, "chosen": best},
        "calibration": {"method": "temperature", "temperature": round(temperature, 4),
                        "held_out_before": calibration.reliability(calibration.softmax(held), target[val_idx]),
                        "held_out_after": calibration.reliability(calibrated, target[val_idx])},
        "training": {"images": len(images), "train_images": len(train_idx), "held_out_images": len(val_idx),
                     "val_fraction": val_fraction, "seed": seed,
                     "class_counts": {c: int((target == i).sum()) for i, c in enumerate(classes)},
                     "embedding_s": round(embed_s, 2), "duration_s": round(time.perf_counter() - started, 2)},
        "metrics": {**trainer._metrics(target[val_idx], calibrated.argmax(1), classes), "evaluated_on": "held_out",
                    "held_out_images": len(val_idx), "ece": calibration.reliability(calibrated, target[val_idx])["ece"]},
    }
    embedded = {**card, "training": {k: v for k, v in card["training"].items() if not k.endswith("_s")},
                "backbone": {k: v for k, v in card["backbone"].items() if not k.startswith("embeddings_")}}
    onnx_bytes = compose(info, estimator, classes, embedded)
    if progress is not None:
        progress.finish("trained")
    return trainer.TrainedModel(onnx_bytes=onnx_bytes, card=card, classes=classes, spec=info.preprocess,
                                estimator=estimator, blocks=(), temperature=temperature, stats=stats)
