"""ONNX image classifiers: the model contract, preprocessing, and batched CPU inference.

The contract (docs/onnx-classifier-contract.md) lets any tool produce a classifier the site can
run without code changes: one self-contained ONNX file, one NCHW float32 input, one output of
class probabilities, and everything needed to prepare an image (class names, input size,
mean/std, colour mode) in the file's `metadata_props` under ``vital.*`` keys. `check_contract`
refuses a file that breaks it and says what is missing; the registry calls it on registration
and bundle import, so a model that got into the store can always be run.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
# Preprocessing lives in `inference.decode`; its public names stay importable from here.
from vital_desktop.inference.decode import DecodedChunk as DecodedChunk
from vital_desktop.inference.decode import ImageStats, decode_chunks, preprocess_image
from vital_desktop.inference.decode import decode_into as decode_into
from vital_desktop.inference.decode import is_grayscale_file as is_grayscale_file
from vital_desktop.inference.decode import load_image as load_image
from vital_desktop.inference.decode import to_display_depth as to_display_depth

KEY_CLASSES = "vital.classes"
KEY_INPUT_SIZE = "vital.input_size"
KEY_MEAN = "vital.mean"
KEY_STD = "vital.std"
KEY_COLOR_MODE = "vital.color_mode"
#: Optional: a JSON model card embedded by whoever built the model (metrics, origin).
KEY_CARD = "vital.model_card"
#: Optional: preferred output name when a model has several outputs.
KEY_OUTPUT = "vital.output"

REQUIRED_KEYS = (KEY_CLASSES, KEY_INPUT_SIZE, KEY_MEAN, KEY_STD, KEY_COLOR_MODE)
COLOR_CHANNELS = {"L": 1, "RGB": 3}
#: A classifier that big is almost certainly not what the user meant to register.
MAX_MODEL_BYTES = 2 * 1024**3


@dataclass(frozen=True)
class PreprocessSpec:
    """How an image becomes the model's input tensor: convert, resize, scale to [0, 1], normalise."""

    input_size: tuple[int, int]  # (height, width)
    mean: tuple[float, ...]
    std: tuple[float, ...]
    color_mode: str  # "L" or "RGB"

    @property
    def channels(self) -> int:
        return COLOR_CHANNELS[self.color_mode]

    def metadata(self) -> dict[str, str]:
        """The ``vital.*`` metadata_props that describe this preprocessing."""
        return {
            KEY_INPUT_SIZE: f"{self.input_size[0]},{self.input_size[1]}",
            KEY_MEAN: json.dumps(list(self.mean)),
            KEY_STD: json.dumps(list(self.std)),
            KEY_COLOR_MODE: self.color_mode,
        }


@dataclass(frozen=True)
class ContractInfo:
    """What `check_contract` learnt about a valid classifier file."""

    path: Path
    sha256: str
    size_bytes: int
    input_name: str
    output_name: str
    classes: list[str]
    preprocess: PreprocessSpec
    opset: int
    card: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "input_name": self.input_name,
            "output_name": self.output_name,
            "classes": list(self.classes),
            "input_size": list(self.preprocess.input_size),
            "mean": list(self.preprocess.mean),
            "std": list(self.preprocess.std),
            "color_mode": self.preprocess.color_mode,
            "opset": self.opset,
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse_floats(raw: str, channels: int, key: str, problems: list[str]) -> tuple[float, ...]:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        problems.append(f"metadata {key} is not JSON (a number or a list of {channels} numbers): {raw[:40]!r}")
        return ()
    values = [value] * channels if isinstance(value, (int, float)) else value
    if (
        not isinstance(values, list)
        or len(values) != channels
        or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
    ):
        problems.append(f"metadata {key} must be a number or a list of {channels} numbers, got {raw[:40]!r}")
        return ()
    return tuple(float(v) for v in values)


def _dim_value(dim: Any) -> int | None:
    return int(dim.dim_value) if dim.HasField("dim_value") else None


def check_contract(path: Path) -> ContractInfo:
    """Validate an ONNX classifier file against the site contract; raise `ValidationError` listing every problem."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no ONNX file at {path}")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ValidationError(f"{path.name} is {size / 1e9:.1f} GB; classifiers above 2 GB are not accepted")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / various protobuf errors
        raise ValidationError(f"{path.name} is not a readable ONNX model: {exc}") from exc

    problems: list[str] = []
    if any(uses_external_data(tensor) for tensor in model.graph.initializer):
        problems.append("weights are stored as external data (a separate file); the contract needs one self-contained file")
    else:
        try:
            onnx.checker.check_model(model)
        except onnx.checker.ValidationError as exc:
            problems.append(f"onnx.checker refused the graph: {str(exc).splitlines()[0]}")

    props = {entry.key: entry.value for entry in model.metadata_props}
    missing = [key for key in REQUIRED_KEYS if key not in props]
    if missing:
        problems.append("metadata_props lack " + ", ".join(missing))

    classes: list[str] = []
    if KEY_CLASSES in props:
        try:
            classes = json.loads(props[KEY_CLASSES])
        except json.JSONDecodeError:
            classes = []
        if not (
            isinstance(classes, list)
            and len(classes) >= 2
            and all(isinstance(c, str) and c for c in classes)
            and len(set(classes)) == len(classes)
        ):
            problems.append(f"metadata {KEY_CLASSES} must be a JSON list of at least 2 distinct class names")
            classes = []

    color_mode = props.get(KEY_COLOR_MODE, "")
    if KEY_COLOR_MODE in props and color_mode not in COLOR_CHANNELS:
        problems.append(f"metadata {KEY_COLOR_MODE} must be 'L' or 'RGB', got {color_mode!r}")
    channels = COLOR_CHANNELS.get(color_mode, 0)

    input_size: tuple[int, int] | None = None
    if KEY_INPUT_SIZE in props:
        try:
            height, width = (int(part) for part in props[KEY_INPUT_SIZE].split(","))
            if not (8 <= height <= 4096 and 8 <= width <= 4096):
                raise ValueError
            input_size = (height, width)
        except ValueError:
            problems.append(f"metadata {KEY_INPUT_SIZE} must be 'H,W' with sizes from 8 to 4096, got {props[KEY_INPUT_SIZE]!r}")

    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    if channels and KEY_MEAN in props and KEY_STD in props:
        mean = _parse_floats(props[KEY_MEAN], channels, KEY_MEAN, problems)
        std = _parse_floats(props[KEY_STD], channels, KEY_STD, problems)
        if std and any(v <= 0 for v in std):
            problems.append(f"metadata {KEY_STD} must be positive")

    initializer_names = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializer_names]
    input_name = ""
    if len(inputs) != 1:
        problems.append(f"the graph must have exactly one input (the image batch), it has {len(inputs)}")
    else:
        value = inputs[0]
        input_name = value.name
        tensor_type = value.type.tensor_type
        if tensor_type.elem_type != onnx.TensorProto.FLOAT:
            kind = onnx.TensorProto.DataType.Name(tensor_type.elem_type)
            problems.append(f"input {input_name!r} must be float32, it is {kind}")
        dims = list(tensor_type.shape.dim)
        if len(dims) != 4:
            problems.append(f"input {input_name!r} must have rank 4 (NCHW), it has rank {len(dims)}")
        else:
            c_dim, h_dim, w_dim = (_dim_value(d) for d in dims[1:])
            if channels and c_dim is not None and c_dim != channels:
                problems.append(f"input {input_name!r} has {c_dim} channels but {KEY_COLOR_MODE}={color_mode!r} needs {channels}")
            if input_size and h_dim is not None and w_dim is not None and (h_dim, w_dim) != input_size:
                problems.append(f"input {input_name!r} is {h_dim}x{w_dim} but {KEY_INPUT_SIZE} says "
                                f"{input_size[0]}x{input_size[1]}")

    wanted_output = props.get(KEY_OUTPUT)
    candidates = [
        out
        for out in model.graph.output
        if out.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and len(out.type.tensor_type.shape.dim) == 2
    ]
    if wanted_output:
        candidates = [out for out in candidates if out.name == wanted_output]
    output_name = ""
    if not candidates:
        problems.append("no float32 output of shape [N, classes] (class probabilities)")
    else:
        output = candidates[0]
        output_name = output.name
        n_out = _dim_value(output.type.tensor_type.shape.dim[1])
        if classes and n_out is not None and n_out != len(classes):
            problems.append(f"output {output_name!r} has {n_out} columns but {KEY_CLASSES} names {len(classes)} classes")

    if problems:
        raise ValidationError(
            f"{path.name} breaks the ONNX classifier contract: " + "; ".join(problems),
            details={"problems": problems, "path": str(path)},
        )
    card: dict[str, Any] = {}
    if KEY_CARD in props:
        try:
            card = json.loads(props[KEY_CARD])
        except json.JSONDecodeError:
            card = {}
    opset = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=0)
    assert input_size is not None
    return ContractInfo(
        path=path,
        sha256=file_sha256(path),
        size_bytes=size,
        input_name=input_name,
        output_name=output_name,
        classes=classes,
        preprocess=PreprocessSpec(input_size=input_size, mean=mean, std=std, color_mode=color_mode),
        opset=int(opset),
        card=card if isinstance(card, dict) else {},
    )


# --- inference -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierResult:
    """One image's prediction (or the reason it has none: `error`)."""

    path: str
    predicted_class: str | None
    confidence: float | None
    probabilities: dict[str, float]
    latency_ms: float
    stats: ImageStats | None
    error: str | None = None


#: Images per onnxruntime call. The feature graph is memory-bound (full-resolution maps of up
#: to 8 channels); 8 images keep its working set in cache: 165 vs 141 images/s at 64 per call,
#: one thread, load ~10 (benchmarks/bench_classifier_speed.py).
RUN_BATCH = 8


def session_options(threads: int, *, layout_optimisation: bool = True) -> Any:
    """onnxruntime options shared by every session here.

    Idle threads sleep instead of spinning: on a shared two-core laptop a spinning pool
    competes with the decoding threads and with other programs (2 threads at load ~10: 76
    images/s spinning, 102 sleeping). `layout_optimisation=False` stops at the EXTENDED level,
    whose NCHWc layout rewrite costs more in reorders than it saves on the feature graph's
    one- to eight-channel maps; deep networks (backbones, foreign classifiers) keep it.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not layout_optimisation:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return options


def run_in_slices(session: Any, outputs: list[str], input_name: str, batch: np.ndarray,
                  size: int = RUN_BATCH) -> list[np.ndarray]:
    """`session.run` over `batch` in slices of `size` images, the outputs concatenated."""
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if len(batch) <= size:
        return [np.asarray(o) for o in session.run(outputs, {input_name: batch})]
    parts = [session.run(outputs, {input_name: batch[i : i + size]}) for i in range(0, len(batch), size)]
    return [np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(len(outputs))]


def made_here(info: ContractInfo) -> bool:
    """True for classifiers trained by this product (the feature graph; see `inference.features`)."""
    return isinstance(info.card.get("features"), dict)


def pipeline_split(threads: int) -> tuple[int, int]:
    """(decoding threads, onnxruntime threads) for batched prediction on `threads` cores.

    While decoding and inference overlap, onnxruntime gets half the cores (one of two) and the
    decoding pool all of them. One onnxruntime thread does the feature graph's work in ~10 %
    less CPU than two (no intra-op hand-offs); when inference is the slower stage (PNGs:
    decoding costs ~0.75x the CPU of inference) the pool gets ahead and waits, so the session
    runs undisturbed; when decoding is the slower one (large JPEGs) it gets every core the
    session leaves idle (benchmarks/bench_classifier_speed.py).
    """
    threads = max(1, int(threads))
    return threads, max(1, threads - threads // 2)


class OnnxClassifier:
    """A contract-checked classifier held in onnxruntime sessions (CPU provider).

    `session` runs with `threads` intra-op threads (single images, `run` on a batch the caller
    holds); batched prediction from files (`iter_predict`) runs on a second session with the
    onnxruntime share of `pipeline_split`, made on first use, while the decoding threads use
    the remaining cores.
    """

    def __init__(self, path: Path, *, threads: int = 2, info: ContractInfo | None = None) -> None:
        self.info = info or check_contract(path)
        self.path = Path(path)
        self.threads = max(1, int(threads))
        self.session = self._new_session(self.threads)
        self._pipeline_session: Any = None
        self._lock = threading.Lock()

    def _new_session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = session_options(threads, layout_optimisation=not made_here(self.info))
        return ort.InferenceSession(str(self.path), sess_options=options, providers=["CPUExecutionProvider"])

    def pipeline_settings(self) -> dict[str, int]:
        """The decoding threads and onnxruntime threads batched prediction runs with."""
        decode, inference = pipeline_split(self.threads)
        return {"decode_workers": decode, "onnxruntime_threads": inference}

    def pipeline_session(self) -> Any:
        """The onnxruntime session batched prediction runs on (see `pipeline_split`)."""
        inference = pipeline_split(self.threads)[1]
        if inference == self.threads:
            return self.session
        with self._lock:
            if self._pipeline_session is None:
                self._pipeline_session = self._new_session(inference)
            return self._pipeline_session

    @property
    def classes(self) -> list[str]:
        return self.info.classes

    def run(self, batch: np.ndarray, *, session: Any = None) -> np.ndarray:
        """Class probabilities for an NCHW float32 batch (already preprocessed), on `session`
        (default: the `threads` one)."""
        (probabilities,) = run_in_slices(session or self.session, [self.info.output_name], self.info.input_name, batch)
        return np.asarray(probabilities, dtype=np.float32)

    @property
    def embedding_name(self) -> str | None:
        """The feature-vector output of models trained here (``embedding``), if the file has one."""
        names = {output.name for output in self.session.get_outputs()}
        return "embedding" if "embedding" in names and self.info.output_name != "embedding" else None

    def run_with_embedding(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and, when the model exposes one, its feature vector for each image."""
        name = self.embedding_name
        if name is None:
            return self.run(batch), None
        probabilities, embedding = run_in_slices(self.session, [self.info.output_name, name], self.info.input_name,
                                                 batch)
        return np.asarray(probabilities, dtype=np.float32), np.asarray(embedding, dtype=np.float32)

    def _result(self, path: str, probs: np.ndarray, latency_ms: float, stats: ImageStats) -> ClassifierResult:
        best = int(np.argmax(probs))
        return ClassifierResult(
            path=path,
            predicted_class=self.classes[best],
            confidence=float(probs[best]),
            probabilities={name: float(p) for name, p in zip(self.classes, probs, strict=False)},
            latency_ms=latency_ms,
            stats=stats,
        )

    def predict_image(self, image: Image.Image, path: str = "") -> ClassifierResult:
        """Classify one already-decoded image."""
        started = time.perf_counter()
        tensor, stats = preprocess_image(image, self.info.preprocess)
        probs = self.run(tensor[None])[0]
        return self._result(path, probs, (time.perf_counter() - started) * 1000.0, stats)

    def iter_predict(
        self,
        paths: Sequence[Path | str],
        *,
        batch_size: int = 32,
        progress: Progress | None = None,
        decode_workers: int | None = None,
    ) -> Iterator[list[ClassifierResult]]:
        """Classify image files batch by batch, yielding each batch's results as soon as it is done.

        The next batch decodes in a thread pool while this one runs through onnxruntime and while
        the caller handles the yielded results (e.g. logs them), so the stages overlap; the
        threads of each stage follow `pipeline_split` (`decode_workers` overrides decoding's).
        Progress advances and cancel is checked between batches. An unreadable image gets a
        result with `error` set rather than stopping the run.
        """
        names = [str(p) for p in paths]
        workers = decode_workers or self.pipeline_settings()["decode_workers"]
        session = self.pipeline_session()
        for chunk in decode_chunks(names, self.info.preprocess, chunk_size=batch_size, workers=workers,
                                   progress=progress):
            run_ms = 0.0
            probabilities = np.empty((0, len(self.classes)), dtype=np.float32)
            if chunk.good:
                started = time.perf_counter()
                probabilities = self.run(chunk.batch, session=session)
                run_ms = (time.perf_counter() - started) * 1000.0 / len(chunk.good)
            row_of = {index: row for row, index in enumerate(chunk.good)}
            results = []
            for position, index in enumerate(chunk.indices):
                stats, error, decode_ms = chunk.stats[position], chunk.errors[position], chunk.decode_ms[position]
                if error is not None or stats is None:
                    results.append(ClassifierResult(names[index], None, None, {}, decode_ms, None, error))
                else:
                    results.append(self._result(names[index], probabilities[row_of[position]], decode_ms + run_ms, stats))
            yield results
            if progress is not None:
                progress.advance(len(chunk.indices))

    def predict_paths(
        self,
        paths: Sequence[Path | str],
        *,
        batch_size: int = 32,
        progress: Progress | None = None,
        decode_workers: int | None = None,
    ) -> list[ClassifierResult]:
        """Classify image files in batches (see `iter_predict`); one result per path, in order."""
        if progress is not None:
            progress.start(len(paths), "classifying images")
        results: list[ClassifierResult] = []
        for batch in self.iter_predict(paths, batch_size=batch_size, progress=progress, decode_workers=decode_workers):
            results += batch
        if progress is not None:
            progress.finish("classified")
        return results
