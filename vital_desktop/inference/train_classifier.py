"""Local training of an image classifier, exported as one contract-conforming ONNX file.

Why engineered features + a linear head rather than a CNN: a site laptop has two cores and no
GPU, and retraining after a few hundred corrected labels must take seconds. The features are
general image representations (`inference.features`: oriented-gradient histograms on spatial
grids, filter-bank texture statistics, colour statistics, local-contrast statistics) computed
by ONNX operators — training runs the very graph that ships — with a numpy reference the tests
hold the graph to. Which blocks to use and how strongly to regularise the scikit-learn head is
chosen by stratified cross-validation on the labelled images; the chosen head's out-of-fold
logits fit a temperature that calibrates its confidence. The head is exported with skl2onnx
and composed with the feature graph into ONE file whose input is the preprocessed image
tensor; the model card (embedded in the file) records the choice, the cross-validated scores,
the held-out metrics and the reliability of the confidence.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.inference import calibration
from vital_desktop.inference.classifier import (
    KEY_CARD,
    KEY_CLASSES,
    KEY_OUTPUT,
    ImageStats,
    PreprocessSpec,
    decode_chunks,
    is_grayscale_file,
)
from vital_desktop.inference.features import (
    BLOCKS,
    FEATURES_NAME,
    INPUT_NAME,  # noqa: F401 (public name of this module)
    OPSET,
    FeatureExtractor,
    block_slices,
    build_feature_graph,
    compute_features_numpy,
    feature_names,
)

ML_OPSET = 3
OUTPUT_NAME = "probabilities"
#: The feature vector is a second output: active learning measures diversity in it.
EMBEDDING_NAME = "embedding"
INPUT_SIZE = (128, 128)
DEFAULT_SPEC = PreprocessSpec(input_size=INPUT_SIZE, mean=(0.5,), std=(0.25,), color_mode="L")
RGB_SPEC = PreprocessSpec(input_size=INPUT_SIZE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), color_mode="RGB")
ALL_BLOCKS = tuple(BLOCKS)
#: Candidate representations tried by cross-validation (registry: add a row to try another).
#: The two unions ("all", "shape+texture") never won on the real sets or the demo
#: (benchmarks/results/classifier_accuracy.json: digits → shape, textures/scenes/demo → texture),
#: so the default search tries the two kinds and `search="full"` adds the unions.
CANDIDATE_BLOCKS: dict[str, tuple[str, ...]] = {
    "shape": ("gradients", "colour", "chroma"),
    "texture": ("texture", "colour", "chroma", "blobs"),
}
FULL_CANDIDATE_BLOCKS: dict[str, tuple[str, ...]] = {
    **CANDIDATE_BLOCKS,
    "all": ALL_BLOCKS,
    "shape+texture": ("gradients", "texture", "colour", "chroma"),
}
SEARCHES: dict[str, dict[str, tuple[str, ...]]] = {"quick": CANDIDATE_BLOCKS, "full": FULL_CANDIDATE_BLOCKS}
#: Inverse regularisation strengths of the logistic-regression head tried by cross-validation.
CANDIDATE_C = (0.05, 0.5, 5.0)
DEFAULT_FOLDS = 5
#: Above this many images the model search runs on a stratified sample (the final fit uses all).
SEARCH_SAMPLE = 1500
CHUNK = 64
SEARCH_TOL = 1e-3
SEARCH_MAX_ITER = 500


def compute_features(batch: np.ndarray, spec: PreprocessSpec = DEFAULT_SPEC,
                     blocks: Sequence[str] = ALL_BLOCKS) -> np.ndarray:
    """The numpy reference features of a preprocessed NCHW batch (see `inference.features`)."""
    return compute_features_numpy(batch, spec, blocks)


@dataclass(frozen=True)
class HeadChoice:
    """One candidate of the model search: a representation and a regularisation strength."""

    representation: str
    blocks: tuple[str, ...]
    c: float


@dataclass
class TrainedModel:
    """A trained classifier: the ONNX file's bytes and its model card (held-out metrics)."""

    onnx_bytes: bytes
    card: dict[str, Any]
    classes: list[str]
    spec: PreprocessSpec
    #: the fitted scikit-learn pipeline on the chosen columns, temperature already applied
    estimator: Any = field(default=None, repr=False)
    blocks: tuple[str, ...] = ALL_BLOCKS
    temperature: float = 1.0
    #: per training image (in input order): its input statistics, for MONITOR's baseline
    stats: list[ImageStats] = field(default_factory=list, repr=False)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_bytes(self.onnx_bytes)
        temporary.replace(path)
        return path


def choose_spec(images: Sequence[Path | str]) -> PreprocessSpec:
    """Grayscale input when every image file is single-channel, else RGB (read from the headers)."""
    return DEFAULT_SPEC if all(is_grayscale_file(Path(p)) for p in images) else RGB_SPEC


def load_batch(
    paths: Sequence[Path | str], spec: PreprocessSpec, *, progress: Progress | None = None, workers: int = 2
) -> np.ndarray:
    """Decode and preprocess image files into one NCHW float32 array; an unreadable file is a ValidationError."""
    out = np.empty((len(paths), spec.channels, *spec.input_size), dtype=np.float32)
    for chunk in decode_chunks(paths, spec, chunk_size=CHUNK, workers=workers, progress=progress):
        _raise_first_error(paths, chunk)
        out[chunk.indices[0] : chunk.indices[-1] + 1] = chunk.batch
        if progress is not None:
            progress.advance(len(chunk.indices))
    return out


def _raise_first_error(paths: Sequence[Path | str], chunk: Any) -> None:
    for position, error in enumerate(chunk.errors):
        if error is not None:
            index = chunk.indices[position]
            raise ValidationError(error, details={"path": str(paths[index]), "index": index})


def extract_features(
    paths: Sequence[Path | str], spec: PreprocessSpec, blocks: Sequence[str] = ALL_BLOCKS, *,
    progress: Progress | None = None, workers: int = 2, threads: int = 2,
) -> tuple[np.ndarray, list[ImageStats]]:
    """Features (through the ONNX feature graph) and input statistics of image files, streamed in chunks.

    The next chunk decodes while this one runs through onnxruntime, and no more than two chunks
    of pixels are held at once (5,000 images at 128x128 RGB would be 1 GB as one array).
    """
    extractor = FeatureExtractor(spec, blocks, threads=threads)
    parts: list[np.ndarray] = []
    stats: list[ImageStats] = []
    for chunk in decode_chunks(paths, spec, chunk_size=CHUNK, workers=workers, progress=progress):
        _raise_first_error(paths, chunk)
        parts.append(extractor(chunk.batch))
        stats += [s for s in chunk.stats if s is not None]
        if progress is not None:
            progress.advance(len(chunk.indices))
    width = len(feature_names(extractor.blocks, spec))
    return (np.concatenate(parts) if parts else np.empty((0, width), dtype=np.float32)), stats


def _metrics(truth: np.ndarray, predicted: np.ndarray, classes: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(classes)))
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "per_class": {
            name: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        },
        "confusion_matrix": {
            "classes": classes,
            "rows_are": "true class",
            "matrix": confusion_matrix(truth, predicted, labels=labels).tolist(),
        },
    }


def _pipeline(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(C=c, max_iter=2000, tol=1e-4))])


def columns_of(blocks: Sequence[str], spec: PreprocessSpec) -> np.ndarray:
    """Indices of the columns of `blocks` inside the all-blocks feature matrix."""
    slices = block_slices(ALL_BLOCKS, spec)
    return np.concatenate([np.arange(slices[b].start, slices[b].stop) for b in ALL_BLOCKS if b in blocks])


def check_folds(target: np.ndarray, classes: Sequence[str], folds: int | None) -> int:
    """The number of cross-validation folds: `folds`, or up to 5 limited by the smallest class."""
    counts = np.bincount(target, minlength=len(classes))
    smallest = int(counts.min())
    if folds is None:
        folds = min(DEFAULT_FOLDS, smallest)
        if folds < 2:
            raise ValidationError(f"class {classes[int(counts.argmin())]!r} has {smallest} image(s) to learn from; "
                                  "cross-validation needs at least 2 per class")
        return folds
    if folds < 2:
        raise ValidationError(f"folds must be at least 2, got {folds}")
    few = {classes[i]: int(n) for i, n in enumerate(counts) if n < folds}
    if few:
        raise ValidationError(
            f"{folds}-fold cross-validation needs at least {folds} images of every class; "
            + ", ".join(f"{c} has {n}" for c, n in few.items()) + "; label more or use fewer folds",
            details={"counts": few, "folds": folds})
    return folds


def out_of_fold_logits(features: np.ndarray, target: np.ndarray, choice: HeadChoice, spec: PreprocessSpec,
                       folds: int, seed: int, n_classes: int) -> np.ndarray:
    """Out-of-fold decision values (N, classes) of `choice` by stratified k-fold."""
    from sklearn.model_selection import StratifiedKFold

    columns = columns_of(choice.blocks, spec)
    out = np.zeros((len(target), n_classes), dtype=np.float64)
    for fit_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, target):
        model = _pipeline(choice.c).fit(features[fit_idx][:, columns], target[fit_idx])
        out[test_idx] = _logits(model, features[test_idx][:, columns], n_classes)
    return out


def _logits(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray:
    scores = model.decision_function(x)
    if scores.ndim == 1:  # binary: sklearn gives one score; softmax([0, s]) == sigmoid(s)
        scores = np.stack([np.zeros_like(scores), scores], axis=1)
    return np.asarray(scores, dtype=np.float64).reshape(len(x), n_classes)


def _path_logits(x: np.ndarray, y: np.ndarray, folds: int, seed: int, n_classes: int,
                 cs: Sequence[float]) -> dict[float, np.ndarray]:
    """Out-of-fold logits for every C, fitting each fold's C path with warm starts (small C first)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler

    import warnings

    from sklearn.exceptions import ConvergenceWarning

    out = {c: np.zeros((len(y), n_classes)) for c in cs}
    for fit_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        scaler = StandardScaler().fit(x[fit_idx])
        x_fit, x_test = scaler.transform(x[fit_idx]), scaler.transform(x[test_idx])
        # A looser tolerance than the final fit: the scores only rank candidates (most of the
        # search's time was L-BFGS polishing digits that do not change the ranking).
        head = LogisticRegression(max_iter=SEARCH_MAX_ITER, tol=SEARCH_TOL, warm_start=True)
        for c in sorted(cs):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                head.set_params(C=c).fit(x_fit, y[fit_idx])
            out[c][test_idx] = _logits(head, x_test, n_classes)
    return out


def search_heads(features: np.ndarray, target: np.ndarray, spec: PreprocessSpec, folds: int, seed: int,
                 n_classes: int, progress: Progress | None = None,
                 candidates: dict[str, tuple[str, ...]] | None = None) -> tuple[HeadChoice, list[dict[str, Any]]]:
    """Cross-validated accuracy and log loss of every candidate; the best (ties: lower log loss)."""
    choice, scores, _, _ = search_heads_with_logits(features, target, spec, folds, seed, n_classes, progress,
                                                    candidates)
    return choice, scores


def search_heads_with_logits(
    features: np.ndarray, target: np.ndarray, spec: PreprocessSpec, folds: int, seed: int, n_classes: int,
    progress: Progress | None = None, candidates: dict[str, tuple[str, ...]] | None = None,
) -> tuple[HeadChoice, list[dict[str, Any]], np.ndarray, np.ndarray]:
    """`search_heads`, also returning the rows searched on and the chosen candidate's out-of-fold logits there."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(target))
    if len(idx) > SEARCH_SAMPLE:
        idx, _ = train_test_split(idx, train_size=SEARCH_SAMPLE, random_state=seed, stratify=target)
    x, y = features[idx], target[idx]
    scores: list[dict[str, Any]] = []
    all_logits: dict[tuple[str, float], np.ndarray] = {}
    for representation, blocks in (candidates or CANDIDATE_BLOCKS).items():
        if progress is not None:
            progress.check()
        logits = _path_logits(x[:, columns_of(blocks, spec)], y, folds, seed, n_classes, CANDIDATE_C)
        all_logits.update({(representation, c): logits[c] for c in CANDIDATE_C})
        for c in CANDIDATE_C:
            probabilities = calibration.softmax(logits[c])
            scores.append({
                "representation": representation, "blocks": list(blocks), "C": c,
                "cv_accuracy": round(float((probabilities.argmax(1) == y).mean()), 4),
                "cv_log_loss": round(calibration.negative_log_likelihood(probabilities, y), 4),
            })
    best_accuracy = max(s["cv_accuracy"] for s in scores)
    # Within one image's worth of accuracy of the best, prefer the better-ranked probabilities.
    near = [s for s in scores if s["cv_accuracy"] >= best_accuracy - 1.0 / max(1, len(y)) - 1e-9]
    best = min(near, key=lambda s: s["cv_log_loss"])
    choice = HeadChoice(best["representation"], tuple(best["blocks"]), best["C"])
    return choice, scores, idx, all_logits[(choice.representation, choice.c)]


def _export(estimator: Any, spec: PreprocessSpec, blocks: Sequence[str], classes: list[str],
            card: dict[str, Any]) -> bytes:
    import onnx
    from onnx import compose, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    features = build_feature_graph(spec, blocks)
    width = len(feature_names(blocks, spec))
    classifier_step = estimator.steps[-1][1]
    head = convert_sklearn(
        estimator,
        initial_types=[("features_in", FloatTensorType([None, width]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(classifier_step): {"zipmap": False}},
    )
    features.ir_version = head.ir_version
    merged = compose.merge_models(features, head, io_map=[(FEATURES_NAME, "features_in")], outputs=[OUTPUT_NAME],
                                  producer_name="vital-desktop")
    merged.graph.node.append(helper.make_node("Identity", [FEATURES_NAME], [EMBEDDING_NAME]))
    merged.graph.output.append(helper.make_tensor_value_info(EMBEDDING_NAME, onnx.TensorProto.FLOAT, ["N", width]))
    merged.graph.name = "vital_image_classifier"
    helper.set_model_props(merged, {
        KEY_CLASSES: json.dumps(classes), KEY_OUTPUT: OUTPUT_NAME, KEY_CARD: json.dumps(card, sort_keys=True),
        **spec.metadata(),
    })
    onnx.checker.check_model(merged, full_check=True)
    return merged.SerializeToString()


def _check_inputs(images: Sequence[Path | str], labels: Sequence[str], classes: Sequence[str] | None,
                  val_fraction: float) -> list[str]:
    if len(images) != len(labels):
        raise ValidationError(f"{len(images)} images but {len(labels)} labels; each image needs exactly one label")
    classes = list(classes) if classes is not None else sorted(set(labels))
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValidationError(f"labels not among the classes {classes}: {unknown}")
    present = [c for c in classes if c in set(labels)]
    if len(present) < 2:
        raise ValidationError(f"a classifier needs labelled images of at least 2 classes; only {present or 'none'} has any")
    counts = {c: sum(1 for label in labels if label == c) for c in classes}
    too_few = [c for c, n in counts.items() if n < 2]
    if too_few:
        raise ValidationError(f"every class needs at least 2 labelled images to train and validate; too few: {too_few}")
    if not 0.0 < val_fraction < 0.9:
        raise ValidationError(f"val_fraction must be between 0 and 0.9, got {val_fraction}")
    return classes


def train_image_classifier(
    images: Sequence[Path | str],
    labels: Sequence[str],
    classes: Sequence[str] | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    spec: PreprocessSpec | None = None,
    progress: Progress | None = None,
    name: str = "image-classifier",
    workers: int = 2,
    folds: int | None = None,
    search: str = "quick",
) -> TrainedModel:
    """Train a classifier on image files and their class labels; return the ONNX bytes and card.

    A stratified `val_fraction` of the images is held out; on the rest, `folds`-fold
    cross-validation picks the representation and the head, and calibrates the temperature;
    the model shipped is fitted on all of the rest, so the card's held-out numbers describe
    exactly the file produced. `spec` defaults to grayscale or RGB by the files' headers.
    `search` names the candidate set (`SEARCHES`: "quick" tries shape and texture, "full"
    adds their unions).
    """
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    classes = _check_inputs(images, labels, classes, val_fraction)
    if search not in SEARCHES:
        raise ValidationError(f"unknown model search {search!r}; known: {', '.join(SEARCHES)}")
    candidates = SEARCHES[search]
    started = time.perf_counter()
    spec = spec or choose_spec(images)
    if progress is not None:
        progress.start(len(images) + 3, "computing image features")
    needed = tuple(b for b in ALL_BLOCKS if any(b in blocks for blocks in candidates.values()))
    features, stats = extract_features(images, spec, needed, progress=progress, workers=workers)
    if needed != ALL_BLOCKS:  # keep the all-blocks column layout `columns_of` indexes
        full = np.zeros((len(features), len(feature_names(ALL_BLOCKS, spec))), dtype=np.float32)
        full[:, columns_of(needed, spec)] = features
        features = full
    target = np.array([classes.index(label) for label in labels])
    n_val = max(len(classes), round(val_fraction * len(images)))
    train_idx, val_idx = train_test_split(np.arange(len(images)), test_size=n_val, random_state=seed, stratify=target)
    k = check_folds(target[train_idx], classes, folds)
    if progress is not None:
        progress.advance(1, "choosing the representation by cross-validation")
    # Small dense problems: one BLAS thread is ~30x faster than two contending ones here.
    with threadpool_limits(1):
        choice, scores, searched, oof = search_heads_with_logits(features[train_idx], target[train_idx], spec, k, seed,
                                                                 len(classes), progress, candidates)
        if progress is not None:
            progress.advance(1, "calibrating")
        # The chosen candidate's out-of-fold logits from the search calibrate it (no second k-fold pass).
        oof_target = target[train_idx][searched]
        temperature = calibration.fit_temperature(oof, oof_target)
        columns = columns_of(choice.blocks, spec)
        estimator = _pipeline(choice.c).fit(features[train_idx][:, columns], target[train_idx])
    held_logits = _logits(estimator, features[val_idx][:, columns], len(classes))
    raw = calibration.softmax(held_logits)
    calibrated = calibration.softmax(held_logits, temperature)
    metrics = _metrics(target[val_idx], calibrated.argmax(1), classes)
    step = estimator.steps[-1][1]
    step.coef_ = step.coef_ / temperature  # bake the temperature into the linear head
    step.intercept_ = step.intercept_ / temperature
    train_accuracy = float((estimator.predict(features[train_idx][:, columns]) == target[train_idx]).mean())
    chosen = next(s for s in scores if s["representation"] == choice.representation and s["C"] == choice.c)
    card: dict[str, Any] = {
        "name": name,
        "task": "image_classification",
        "classes": classes,
        "input": {"size": list(spec.input_size), "color_mode": spec.color_mode, "mean": list(spec.mean),
                  "std": list(spec.std), "resize": "stretched to the input size (bilinear, antialiased)"},
        "estimator": (f"StandardScaler + LogisticRegression(C={choice.c}) on {len(columns)} image features "
                      f"({', '.join(choice.blocks)}), temperature {temperature:.3f}"),
        "features": {"blocks": list(choice.blocks), "count": len(columns),
                     "descriptions": {b: BLOCKS[b].description for b in choice.blocks}},
        "model_selection": {"folds": k, "search": search, "chosen": chosen, "candidates": scores,
                            "searched_on": int(min(len(train_idx), SEARCH_SAMPLE))},
        "calibration": {
            "method": "temperature", "temperature": round(temperature, 4), "fitted_on": "out_of_fold logits",
            "held_out_before": calibration.reliability(raw, target[val_idx]),
            "held_out_after": calibration.reliability(calibrated, target[val_idx]),
            "out_of_fold_after": calibration.reliability(calibration.softmax(oof, temperature), oof_target),
        },
        "training": {
            "images": len(images), "train_images": len(train_idx), "held_out_images": len(val_idx),
            "val_fraction": val_fraction, "seed": seed,
            "class_counts": {c: int((target == i).sum()) for i, c in enumerate(classes)},
            "train_accuracy": round(train_accuracy, 4), "duration_s": round(time.perf_counter() - started, 2),
        },
        # Metrics of the shipped model on images it never saw during fitting or model selection.
        "metrics": {**metrics, "evaluated_on": "held_out", "held_out_images": len(val_idx),
                    "ece": calibration.reliability(calibrated, target[val_idx])["ece"]},
    }
    if progress is not None:
        progress.advance(1, "exporting ONNX")
    # The embedded card leaves out the wall-clock duration so the bytes depend only on the data,
    # the labels and the seed.
    embedded_card = {**card, "training": {k: v for k, v in card["training"].items() if k != "duration_s"}}
    onnx_bytes = _export(estimator, spec, choice.blocks, classes, embedded_card)
    if progress is not None:
        progress.finish("trained")
    return TrainedModel(onnx_bytes=onnx_bytes, card=card, classes=classes, spec=spec, estimator=estimator,
                        blocks=choice.blocks, temperature=temperature, stats=stats)


def predict_proba_python(trained: TrainedModel, batch: np.ndarray) -> np.ndarray:
    """Probabilities by the numpy features + scikit-learn path (the reference the ONNX file must match)."""
    return trained.estimator.predict_proba(compute_features_numpy(batch, trained.spec, trained.blocks))
