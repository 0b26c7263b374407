"""What a classifier can tell an expert beyond its prediction (pure numpy + onnxruntime; no store).

- **Label next** (`select_next`): which unlabelled items teach the model most. ``uncertainty``
  ranks by the margin between the two most probable classes, mixed with diversity
  (farthest-first in the model's feature space) so a batch is not twenty near-copies of one
  confusing image; ``diversity`` is farthest-first alone; ``random`` is a seeded shuffle (the
  baseline the learning-curve benchmark compares against).
- **Possibly mislabelled** (`find_suspects`): out-of-fold probabilities over labelled items, and
  per-class confidence thresholds (the mean out-of-fold probability of each class among items
  labelled with it, as in confident learning): an item is suspect when its own class gets less
  than its own threshold and the most probable class is another one that reaches its threshold
  (or a majority, 0.5).
- **Why** (`occlusion_map`): occlusion sensitivity through onnxruntime: grey out each cell of a
  grid in turn and record how much the probability of the class falls; model-agnostic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from vital_desktop.core.errors import ValidationError

STRATEGIES = ("uncertainty", "diversity", "random")
#: Weight of uncertainty against diversity in the ``uncertainty`` strategy.
UNCERTAINTY_WEIGHT = 0.7


def margin_uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """1 - (p_first - p_second): 1 when the two best classes tie, 0 when one class is certain."""
    if probabilities.shape[1] < 2:
        return np.zeros(len(probabilities))
    top = np.sort(probabilities, axis=1)
    return 1.0 - (top[:, -1] - top[:, -2])


def _standardise(embedding: np.ndarray) -> np.ndarray:
    x = np.asarray(embedding, dtype=np.float64)
    spread = x.std(axis=0)
    spread[spread == 0] = 1.0
    return (x - x.mean(axis=0)) / spread


def select_next(
    probabilities: np.ndarray | None, embedding: np.ndarray | None, *, strategy: str, count: int, seed: int = 0,
    labelled_embedding: np.ndarray | None = None,
) -> list[tuple[int, float]]:
    """Indices of the `count` items to label next, in order, each with its score.

    Distances are measured in the standardised embedding (or the probabilities when the model
    gives no embedding), and start from the already labelled items when given, so a batch also
    covers what the labelled set misses.
    """
    if strategy not in STRATEGIES:
        raise ValidationError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if count < 1:
        raise ValidationError(f"count must be at least 1, got {count}")
    n = len(probabilities) if probabilities is not None else len(embedding) if embedding is not None else 0
    count = min(count, n)
    if strategy == "random":
        order = np.random.default_rng(seed).permutation(n)[:count]
        return [(int(i), 0.0) for i in order]
    if probabilities is None:
        raise ValidationError(f"the {strategy} strategy needs a trained classifier; train one or use --strategy random")
    space = embedding if embedding is not None else probabilities
    pool = _standardise(space)
    uncertainty = margin_uncertainty(probabilities)
    nearest = np.full(n, np.inf)
    if labelled_embedding is not None and len(labelled_embedding):
        joined = _standardise(np.concatenate([space, labelled_embedding]))
        pool, reference = joined[:n], joined[n:]
        for start in range(0, len(reference), 256):
            block = reference[start : start + 256]
            d = ((pool[:, None, :] - block[None, :, :]) ** 2).sum(axis=2)
            nearest = np.minimum(nearest, d.min(axis=1))
    chosen: list[tuple[int, float]] = []
    taken = np.zeros(n, dtype=bool)
    weight = UNCERTAINTY_WEIGHT if strategy == "uncertainty" else 0.0
    for _ in range(count):
        if np.isfinite(nearest).any():
            finite = np.where(np.isfinite(nearest), nearest, 0.0)
            diversity = np.sqrt(finite) / max(1e-12, float(np.sqrt(finite.max())))
        else:
            diversity = np.ones(n)  # nothing chosen or labelled yet: uncertainty alone decides the first
        score = weight * uncertainty + (1.0 - weight) * diversity
        if strategy == "diversity" and not np.isfinite(nearest).any():
            score = uncertainty  # farthest-first starts from the most uncertain item
        score = np.where(taken, -np.inf, score)
        best = int(np.argmax(score))
        chosen.append((best, float(score[best])))
        taken[best] = True
        nearest = np.minimum(nearest, ((pool - pool[best]) ** 2).sum(axis=1))
    return chosen


@dataclass(frozen=True)
class Suspect:
    """One labelled item whose label the model confidently disagrees with."""

    index: int
    given: int
    suggested: int
    p_given: float
    p_suggested: float


def find_suspects(probabilities: np.ndarray, target: np.ndarray) -> list[Suspect]:
    """Items whose out-of-fold probabilities contradict their label, most doubtful first."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    target = np.asarray(target)
    n_classes = probabilities.shape[1]
    thresholds = np.array([
        probabilities[target == k, k].mean() if (target == k).any() else 1.0 for k in range(n_classes)
    ])
    out = []
    for i, (row, given) in enumerate(zip(probabilities, target, strict=False)):
        if row[given] >= thresholds[given]:
            continue
        others = [(row[k], k) for k in range(n_classes) if k != given and row[k] >= min(thresholds[k], 0.5)]
        if not others:
            continue
        p, k = max(others)
        if k != int(np.argmax(row)):
            continue
        out.append(Suspect(i, int(given), int(k), float(row[given]), float(p)))
    return sorted(out, key=lambda s: (s.p_given, -s.p_suggested))


def occlusion_map(
    run: Callable[[np.ndarray], np.ndarray], tensor: np.ndarray, *, class_index: int | None = None, grid: int = 8,
    fill: float | None = None,
) -> tuple[np.ndarray, int, float]:
    """(grid x grid) drop in the class probability when each cell is greyed out, the class, its probability.

    `run` maps an NCHW batch to probabilities; `tensor` is one preprocessed CHW image. The
    cells are filled with the image's mean (the least informative value); one batch of
    grid*grid + 1 images is run. Positive values: the cell supports the class.
    """
    if tensor.ndim != 3:
        raise ValidationError(f"the heat map needs one CHW image tensor, got shape {tensor.shape}")
    _, height, width = tensor.shape
    grid = max(1, min(int(grid), height, width))
    ys = np.linspace(0, height, grid + 1).astype(int)
    xs = np.linspace(0, width, grid + 1).astype(int)
    value = np.float32(tensor.mean() if fill is None else fill)
    batch = np.repeat(tensor[None], grid * grid + 1, axis=0)
    for i in range(grid):
        for j in range(grid):
            batch[1 + i * grid + j, :, ys[i] : ys[i + 1], xs[j] : xs[j + 1]] = value
    probabilities = np.asarray(run(batch), dtype=np.float64)
    base = probabilities[0]
    cls = int(np.argmax(base)) if class_index is None else int(class_index)
    drop = (base[cls] - probabilities[1:, cls]).reshape(grid, grid)
    return drop.astype(np.float32), cls, float(base[cls])
