"""Pretrained image backbones: an ONNX network that turns an image into an embedding vector.

A backbone file follows the classifier contract's input side (one NCHW float32 input and the
``vital.input_size`` / ``vital.mean`` / ``vital.std`` / ``vital.color_mode`` metadata) but its
output is an embedding: one float32 output of shape [N, D] with a fixed D (name it in
``vital.output`` if there are several). A site trains a linear head on the embeddings of its
labelled images in seconds; `compose` joins backbone and head into ONE classifier file that
meets the full contract, so serving needs nothing new.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.classifier import (
    COLOR_CHANNELS,
    KEY_CARD,
    KEY_CLASSES,
    KEY_COLOR_MODE,
    KEY_INPUT_SIZE,
    KEY_MEAN,
    KEY_OUTPUT,
    KEY_STD,
    PreprocessSpec,
    file_sha256,
    session_options,
)

#: Embeddings larger than this are not a backbone's output but a feature map left unpooled.
MAX_DIM = 65536


@dataclass(frozen=True)
class BackboneInfo:
    """What `check_backbone` learnt about a valid backbone file."""

    path: Path
    sha256: str
    input_name: str
    output_name: str
    dim: int
    preprocess: PreprocessSpec


def _spec_from_props(props: dict[str, str], file_name: str) -> PreprocessSpec:
    """The preprocessing a backbone declares in its metadata_props (ValidationError when unusable)."""
    path_name = file_name
    missing = [k for k in (KEY_INPUT_SIZE, KEY_MEAN, KEY_STD, KEY_COLOR_MODE) if k not in props]
    if missing:
        raise ValidationError(f"{path_name}: a backbone needs its preprocessing in metadata_props; missing {', '.join(missing)}")
    mode = props[KEY_COLOR_MODE]
    if mode not in COLOR_CHANNELS:
        raise ValidationError(f"{path_name}: {KEY_COLOR_MODE} must be 'L' or 'RGB', got {mode!r}")
    try:
        height, width = (int(v) for v in props[KEY_INPUT_SIZE].split(","))
        channels = COLOR_CHANNELS[mode]

        def values(raw: str) -> tuple[float, ...]:
            value = json.loads(raw)
            out = [float(value)] * channels if isinstance(value, (int, float)) else [float(v) for v in value]
            if len(out) != channels:
                raise ValueError
            return tuple(out)

        return PreprocessSpec((height, width), values(props[KEY_MEAN]), values(props[KEY_STD]), mode)
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationError(f"{path_name}: unreadable preprocessing metadata ({exc})") from exc


def check_backbone(path: Path) -> BackboneInfo:
    """Validate a backbone file; raise ValidationError saying what is wrong (e.g. an output that is not a vector)."""
    import onnx
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"no ONNX file at {path}")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf decode and checker errors of many kinds
        raise ValidationError(f"{path.name} is not a usable ONNX model: {str(exc).splitlines()[0][:200]}") from exc
    props = {p.key: p.value for p in model.metadata_props}
    spec = _spec_from_props(props, path.name)
    height, width = spec.input_size
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ValidationError(f"{path.name}: a backbone has exactly one input (the image batch), it has {len(inputs)}")
    outputs = [o for o in model.graph.output if not props.get(KEY_OUTPUT) or o.name == props[KEY_OUTPUT]]
    if not outputs:
        raise ValidationError(f"{path.name}: no output named {props.get(KEY_OUTPUT)!r}")
    output = outputs[0]
    blank = np.zeros((2, spec.channels, height, width), dtype=np.float32)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = session.run([output.name], {inputs[0].name: blank})
    except Exception as exc:  # onnxruntime's own exception types
        raise ValidationError(f"{path.name} does not run on a {spec.channels}x{height}x{width} image: "
                              f"{str(exc).splitlines()[0][:200]}") from exc
    out = np.asarray(out)
    if out.ndim != 2 or out.shape[0] != 2 or not 1 <= out.shape[1] <= MAX_DIM:
        raise ValidationError(f"{path.name}: a backbone's output must be one vector per image ([N, D]); "
                              f"{output.name!r} has shape {list(out.shape)} for 2 images (pool or flatten it)")
    return BackboneInfo(path, file_sha256(path), inputs[0].name, output.name, int(out.shape[1]), spec)


def observe_backbone(path: Path) -> dict[str, Any]:
    """What a backbone file does on two blank images of its declared size, without judging it
    (`bundles.trust.decide_backbone` judges): ``problem`` (metadata or run failure, else None),
    ``input_shape`` (declared dims), ``channels`` (needed by its colour mode), ``output_shape``,
    ``output_finite``. Run it only after the sandboxed trial run passed."""
    import onnx
    import onnxruntime as ort

    out: dict[str, Any] = {"problem": None, "input_shape": (), "channels": 0, "output_shape": None,
                           "output_finite": True}
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf decode errors of many kinds
        return out | {"problem": f"not a readable ONNX model: {str(exc)[:200]}"}
    initializers = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        return out | {"problem": f"a backbone has exactly one input (the image batch), it has {len(inputs)}"}
    dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                 for d in inputs[0].type.tensor_type.shape.dim)
    out["input_shape"] = dims
    try:
        info_spec = _spec_from_props({p.key: p.value for p in model.metadata_props}, Path(path).name)
    except ValidationError as exc:
        return out | {"problem": exc.message}
    out["channels"] = info_spec.channels
    if len(dims) != 4:
        return out
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        blank = np.zeros((2, info_spec.channels, *info_spec.input_size), dtype=np.float32)
        first = session.run(None, {inputs[0].name: blank})[0]
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
        return out | {"problem": f"it does not run on a {info_spec.channels}x{info_spec.input_size[0]}x"
                                 f"{info_spec.input_size[1]} image: {str(exc).splitlines()[0][:200]}"}
    result = np.asarray(first)
    return out | {"output_shape": tuple(int(v) for v in result.shape),
                  "output_finite": bool(np.all(np.isfinite(result))) if result.dtype.kind == "f" else True}


class Backbone:
    """A checked backbone in one onnxruntime session."""

    def __init__(self, info: BackboneInfo, *, threads: int = 2) -> None:
        import onnxruntime as ort

        options = session_options(threads)
        self.info = info
        self.session = ort.InferenceSession(str(info.path), sess_options=options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        (out,) = self.session.run([self.info.output_name], {self.info.input_name: batch})
        return np.asarray(out, dtype=np.float32)


def compose(info: BackboneInfo, estimator: Any, classes: Sequence[str], card: dict[str, Any]) -> bytes:
    """One classifier file: the backbone, then the scikit-learn head (skl2onnx), with the contract metadata."""
    import onnx
    from onnx import compose as onnx_compose
    from onnx import helper, version_converter
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    from vital_desktop.inference.train_classifier import ML_OPSET, OUTPUT_NAME

    backbone = onnx.load(str(info.path))
    opset = max((o.version for o in backbone.opset_import if o.domain in ("", "ai.onnx")), default=17)
    if opset < 17:
        backbone = version_converter.convert_version(backbone, 17)
        opset = 17
    step = estimator.steps[-1][1]
    head = convert_sklearn(estimator, initial_types=[("embedding_in", FloatTensorType([None, info.dim]))],
                           target_opset={"": opset, "ai.onnx.ml": ML_OPSET}, options={id(step): {"zipmap": False}})
    backbone.ir_version = max(backbone.ir_version, head.ir_version)
    head.ir_version = backbone.ir_version
    del backbone.metadata_props[:]
    backbone = onnx_compose.add_prefix(backbone, "backbone_", rename_inputs=False, rename_outputs=False)
    merged = onnx_compose.merge_models(backbone, head, io_map=[(info.output_name, "embedding_in")],
                                       outputs=[OUTPUT_NAME], producer_name="vital-desktop")
    merged.graph.name = "vital_backbone_classifier"
    helper.set_model_props(merged, {KEY_CLASSES: json.dumps(list(classes)), KEY_OUTPUT: OUTPUT_NAME,
                                    KEY_CARD: json.dumps(card, sort_keys=True), **info.preprocess.metadata()})
    onnx.checker.check_model(merged, full_check=True)
    return merged.SerializeToString()
