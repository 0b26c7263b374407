"""Local training of a small image classifier, exported as one contract-conforming ONNX file.

Why features + a linear model rather than a CNN: a site laptop has two cores and no GPU, and
retraining after a few hundred corrected labels must take seconds. The features (residual
after a local blur, blob response, gradients, local energy on a coarse grid) are computed by
an ONNX graph built here with `onnx.helper`, and identically by numpy for training; the
scikit-learn model is exported with skl2onnx and the two are composed into ONE file whose
input is the preprocessed image tensor. The numpy path and the ONNX graph are checked
against each other in the tests (parity), and the held-out metrics go into the model card,
which is also embedded in the file's metadata.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.inference.classifier import KEY_CARD, KEY_CLASSES, KEY_OUTPUT, PreprocessSpec, load_image

OPSET = 17
ML_OPSET = 3
INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
DEFAULT_SPEC = PreprocessSpec(input_size=(128, 128), mean=(0.5,), std=(0.25,), color_mode="L")

BLUR_SIZE = 9
BLOB_SIZE = 5
GRID_CELL = 16
RESIDUAL_THRESHOLDS = (0.3, 0.6, 1.0)
BLOB_THRESHOLD_DARK = -0.4
BLOB_THRESHOLD_ANY = 0.2
GRADIENT_THRESHOLD = 1.0
ENERGY_THRESHOLDS = (0.15, 0.3)

FEATURE_NAMES = [
    "image_mean",
    "image_std",
    "residual_abs_mean",
    "residual_std",
    "residual_max",
    "residual_min",
    *[f"residual_frac_above_{t}" for t in RESIDUAL_THRESHOLDS],
    "blob_min",
    "blob_max",
    "blob_frac_dark",
    "blob_frac_any",
    "gradient_mean",
    "gradient_max",
    "gradient_frac_above",
    "energy_grid_max",
    "energy_grid_mean",
    "energy_grid_std",
    *[f"energy_grid_frac_above_{t}" for t in ENERGY_THRESHOLDS],
    "mean_grid_std",
    "mean_grid_range",
]

_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
_SOBEL_Y = _SOBEL_X.T.copy()


# --- features in numpy (the training and parity path) ---------------------------------------


def _box(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size window with mirror (edge-excluded) padding, like ONNX Pad reflect + Conv."""
    half = size // 2
    padded = np.pad(x, ((0, 0), (half, half), (half, half)), mode="reflect")
    # Summed-area table: exact window sums without a Python loop over pixels.
    table = np.zeros((padded.shape[0], padded.shape[1] + 1, padded.shape[2] + 1), dtype=np.float64)
    table[:, 1:, 1:] = padded.astype(np.float64).cumsum(1).cumsum(2)
    h, w = x.shape[1], x.shape[2]
    total = table[:, size : size + h, size : size + w] - table[:, :h, size : size + w] - table[:, size : size + h, :w] + table[:, :h, :w]
    return (total / (size * size)).astype(np.float32)


def _correlate3(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    h, w = x.shape[1], x.shape[2]
    out = np.zeros_like(x)
    for dy in range(3):
        for dx in range(3):
            if kernel[dy, dx]:
                out += kernel[dy, dx] * padded[:, dy : dy + h, dx : dx + w]
    return out


def _grid_mean(x: np.ndarray, cell: int) -> np.ndarray:
    n, h, w = x.shape
    gh, gw = h // cell, w // cell
    return x[:, : gh * cell, : gw * cell].reshape(n, gh, cell, gw, cell).mean(axis=(2, 4))


def compute_features(batch: np.ndarray) -> np.ndarray:
    """Feature vectors (N, len(FEATURE_NAMES)) of a preprocessed NCHW batch, in numpy."""
    x = batch.astype(np.float32).mean(axis=1)  # channel mean: works for L and RGB
    n = x.shape[0]
    flat = lambda a: a.reshape(n, -1)
    residual = x - _box(x, BLUR_SIZE)
    abs_residual = np.abs(residual)
    blob = _box(residual, BLOB_SIZE)
    gradient = np.sqrt(_correlate3(x, _SOBEL_X) ** 2 + _correlate3(x, _SOBEL_Y) ** 2)
    energy = _grid_mean(abs_residual, GRID_CELL)
    means = _grid_mean(x, GRID_CELL)
    columns = [
        flat(x).mean(1),
        flat(x).std(1),
        flat(abs_residual).mean(1),
        flat(residual).std(1),
        flat(residual).max(1),
        flat(residual).min(1),
        *[(flat(abs_residual) > t).mean(1) for t in RESIDUAL_THRESHOLDS],
        flat(blob).min(1),
        flat(blob).max(1),
        (flat(blob) < BLOB_THRESHOLD_DARK).mean(1),
        (np.abs(flat(blob)) > BLOB_THRESHOLD_ANY).mean(1),
        flat(gradient).mean(1),
        flat(gradient).max(1),
        (flat(gradient) > GRADIENT_THRESHOLD).mean(1),
        flat(energy).max(1),
        flat(energy).mean(1),
        flat(energy).std(1),
        *[(flat(energy) > t).mean(1) for t in ENERGY_THRESHOLDS],
        flat(means).std(1),
        flat(means).max(1) - flat(means).min(1),
    ]
    return np.stack(columns, axis=1).astype(np.float32)


# --- the same features as an ONNX graph -----------------------------------------------------


def build_feature_graph(spec: PreprocessSpec, output_name: str = "features") -> Any:
    """An ONNX model computing `compute_features` from the image tensor (input `image`)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = [0]

    def name(base: str) -> str:
        counter[0] += 1
        return f"feat_{base}_{counter[0]}"

    def const(value: Any, base: str = "c") -> str:
        tensor = numpy_helper.from_array(np.asarray(value), name(base))
        inits.append(tensor)
        return tensor.name

    def node(op: str, inputs: list[str], **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def pad(x: str, half: int) -> str:
        return node("Pad", [x, const(np.array([0, 0, half, half, 0, 0, half, half], dtype=np.int64), "pads")], mode="reflect")

    def box(x: str, size: int) -> str:
        weight = np.full((1, 1, size, size), 1.0 / (size * size), dtype=np.float32)
        return node("Conv", [pad(x, size // 2), const(weight, "box")])

    def correlate3(x: str, kernel: np.ndarray) -> str:
        return node("Conv", [pad(x, 1), const(kernel.reshape(1, 1, 3, 3).astype(np.float32), "sobel")])

    axes = [1, 2, 3]

    def reduce(op: str, x: str) -> str:
        return node("Flatten", [node(op, [x], axes=axes, keepdims=1)], axis=1)

    def mean_of(x: str) -> str:
        return reduce("ReduceMean", x)

    def std_of(x: str) -> str:
        centred = node("Sub", [x, node("ReduceMean", [x], axes=axes, keepdims=1)])
        return node("Sqrt", [mean_of(node("Mul", [centred, centred]))])

    def frac(x: str, op: str, threshold: float) -> str:
        mask = node(op, [x, const(np.float32(threshold), "t")])
        return mean_of(node("Cast", [mask], to=TensorProto.FLOAT))

    def grid_mean(x: str) -> str:
        return node("AveragePool", [x], kernel_shape=[GRID_CELL, GRID_CELL], strides=[GRID_CELL, GRID_CELL])

    x = node("ReduceMean", [INPUT_NAME], axes=[1], keepdims=1)
    residual = node("Sub", [x, box(x, BLUR_SIZE)])
    abs_residual = node("Abs", [residual])
    blob = box(residual, BLOB_SIZE)
    gx = correlate3(x, _SOBEL_X)
    gy = correlate3(x, _SOBEL_Y)
    gradient = node("Sqrt", [node("Add", [node("Mul", [gx, gx]), node("Mul", [gy, gy])])])
    energy = grid_mean(abs_residual)
    means = grid_mean(x)
    columns = [
        mean_of(x),
        std_of(x),
        mean_of(abs_residual),
        std_of(residual),
        reduce("ReduceMax", residual),
        reduce("ReduceMin", residual),
        *[frac(abs_residual, "Greater", t) for t in RESIDUAL_THRESHOLDS],
        reduce("ReduceMin", blob),
        reduce("ReduceMax", blob),
        frac(blob, "Less", BLOB_THRESHOLD_DARK),
        frac(node("Abs", [blob]), "Greater", BLOB_THRESHOLD_ANY),
        mean_of(gradient),
        reduce("ReduceMax", gradient),
        frac(gradient, "Greater", GRADIENT_THRESHOLD),
        reduce("ReduceMax", energy),
        mean_of(energy),
        std_of(energy),
        *[frac(energy, "Greater", t) for t in ENERGY_THRESHOLDS],
        std_of(means),
        node("Sub", [reduce("ReduceMax", means), reduce("ReduceMin", means)]),
    ]
    nodes.append(helper.make_node("Concat", columns, [output_name], axis=1))
    height, width = spec.input_size
    graph = helper.make_graph(
        nodes,
        "vital_image_features",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", spec.channels, height, width])],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, ["N", len(FEATURE_NAMES)])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    return model


# --- training ------------------------------------------------------------------------------


@dataclass
class TrainedModel:
    """A trained classifier: the ONNX file's bytes and its model card (held-out metrics)."""

    onnx_bytes: bytes
    card: dict[str, Any]
    classes: list[str]
    spec: PreprocessSpec
    #: the fitted scikit-learn pipeline (for parity checks and inspection; not persisted)
    estimator: Any = field(default=None, repr=False)

    def save(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_bytes(self.onnx_bytes)
        temporary.replace(path)
        return path


def load_batch(
    paths: Sequence[Path | str], spec: PreprocessSpec, *, progress: Progress | None = None, workers: int = 2
) -> np.ndarray:
    """Decode and preprocess image files into one NCHW float32 array (decoding in a thread pool)."""
    out = np.empty((len(paths), spec.channels, *spec.input_size), dtype=np.float32)

    def work(index: int) -> None:
        out[index] = load_image(Path(paths[index]), spec)[0]

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vital-decode") as pool:
        for start in range(0, len(paths), 64):
            if progress is not None:
                progress.check()
            list(pool.map(work, range(start, min(len(paths), start + 64))))
            if progress is not None:
                progress.advance(min(64, len(paths) - start))
    return out


def _export(estimator: Any, spec: PreprocessSpec, classes: list[str], card: dict[str, Any]) -> bytes:
    import onnx
    from onnx import compose, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    features = build_feature_graph(spec)
    classifier_step = estimator.steps[-1][1]
    head = convert_sklearn(
        estimator,
        initial_types=[("features_in", FloatTensorType([None, len(FEATURE_NAMES)]))],
        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET},
        options={id(classifier_step): {"zipmap": False}},
    )
    features.ir_version = head.ir_version
    merged = compose.merge_models(
        features,
        head,
        io_map=[("features", "features_in")],
        outputs=[OUTPUT_NAME],
        producer_name="vital-desktop",
    )
    merged.graph.name = "vital_image_classifier"
    properties = {
        KEY_CLASSES: json.dumps(classes),
        KEY_OUTPUT: OUTPUT_NAME,
        KEY_CARD: json.dumps(card, sort_keys=True),
        **spec.metadata(),
    }
    helper.set_model_props(merged, properties)
    onnx.checker.check_model(merged, full_check=True)
    return merged.SerializeToString()


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


def train_image_classifier(
    images: Sequence[Path | str],
    labels: Sequence[str],
    classes: Sequence[str] | None = None,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    spec: PreprocessSpec = DEFAULT_SPEC,
    progress: Progress | None = None,
    name: str = "defect-classifier",
    workers: int = 2,
) -> TrainedModel:
    """Train a classifier on image files and their class labels; return the ONNX bytes and card.

    A stratified `val_fraction` of the images is held out; the model shipped is the one fitted
    on the rest, so the card's numbers describe exactly the file produced.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    if len(images) != len(labels):
        raise ValidationError(f"{len(images)} images but {len(labels)} labels; each image needs exactly one label")
    classes = list(classes) if classes is not None else sorted(set(labels))
    unknown = sorted(set(labels) - set(classes))
    if unknown:
        raise ValidationError(f"labels not among the classes {classes}: {unknown}")
    counts = {c: sum(1 for label in labels if label == c) for c in classes}
    too_few = [c for c, n in counts.items() if n < 2]
    if too_few:
        raise ValidationError(f"every class needs at least 2 labelled images to train and validate; too few: {too_few}")
    if not 0.0 < val_fraction < 0.9:
        raise ValidationError(f"val_fraction must be between 0 and 0.9, got {val_fraction}")

    started = time.perf_counter()
    if progress is not None:
        progress.start(len(images) + 2, "loading images")
    batch = load_batch(images, spec, progress=progress, workers=workers)
    features = compute_features(batch)
    target = np.array([classes.index(label) for label in labels])
    indices = np.arange(len(images))
    n_val = max(len(classes), int(round(val_fraction * len(images))))
    train_idx, val_idx = train_test_split(indices, test_size=n_val, random_state=seed, stratify=target)
    if progress is not None:
        progress.check()
        progress.advance(1, "fitting")
    estimator = Pipeline(
        [
            ("scale", StandardScaler()),
            ("classify", LogisticRegression(C=3.0, max_iter=3000)),
        ]
    )
    estimator.fit(features[train_idx], target[train_idx])
    metrics = _metrics(target[val_idx], estimator.predict(features[val_idx]), classes)
    train_accuracy = float((estimator.predict(features[train_idx]) == target[train_idx]).mean())
    card = {
        "name": name,
        "task": "image_classification",
        "classes": classes,
        "input": {
            "size": list(spec.input_size),
            "color_mode": spec.color_mode,
            "mean": list(spec.mean),
            "std": list(spec.std),
        },
        "estimator": f"StandardScaler + LogisticRegression on {len(FEATURE_NAMES)} image features",
        "features": FEATURE_NAMES,
        "training": {
            "images": len(images),
            "train_images": len(train_idx),
            "held_out_images": len(val_idx),
            "val_fraction": val_fraction,
            "seed": seed,
            "class_counts": counts,
            "train_accuracy": round(train_accuracy, 4),
            "duration_s": round(time.perf_counter() - started, 2),
        },
        # Metrics of the shipped model on images it never saw during fitting.
        "metrics": {**metrics, "evaluated_on": "held_out", "held_out_images": len(val_idx)},
    }
    if progress is not None:
        progress.advance(1, "exporting ONNX")
    # The card embedded in the file leaves out the wall-clock duration so the bytes depend only
    # on the data, the labels and the seed.
    embedded_card = {**card, "training": {k: v for k, v in card["training"].items() if k != "duration_s"}}
    onnx_bytes = _export(estimator, spec, classes, embedded_card)
    if progress is not None:
        progress.finish("trained")
    return TrainedModel(onnx_bytes=onnx_bytes, card=card, classes=classes, spec=spec, estimator=estimator)


def predict_proba_python(estimator: Any, batch: np.ndarray) -> np.ndarray:
    """Probabilities by the numpy features + scikit-learn path (the reference the ONNX file must match)."""
    return estimator.predict_proba(compute_features(batch))
