"""Models from elsewhere and to elsewhere: foreign ONNX classifiers in, preprocessing sidecars out.

A standard ONNX image classifier made by another tool lacks the ``vital.*`` metadata: the site
is told its preprocessing (input size, colour mode, mean, std, class names) and
`describe_foreign` writes them into a copy of the file, then holds the copy to the contract *and*
runs it once on a blank image, so a file whose input or output does not match what was said is
refused before anything is registered.

Every classifier the site keeps gets a JSON *sidecar* (``<model>.preprocess.json``) telling any
other tool how to feed it (the contract's steps, spelled out), and a grayscale model also gets
an RGB three-channel variant (``<model>.rgb.onnx``) that converts RGB to luminance inside the
graph with Pillow's weights, for tools that always send three channels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.classifier import (
    KEY_CLASSES,
    KEY_OUTPUT,
    ContractInfo,
    PreprocessSpec,
    check_contract,
)

SIDECAR_FORMAT = "vital-preprocess/1"
#: Pillow's RGB → L weights (ITU-R 601-2 luma), so the RGB variant sees what the L model saw.
LUMA = (0.299, 0.587, 0.114)


def parse_spec(input_size: str, color_mode: str, mean: str, std: str) -> PreprocessSpec:
    """A `PreprocessSpec` from command-line strings ('224,224', 'RGB', '0.485,0.456,0.406', …)."""
    try:
        height, width = (int(v) for v in input_size.replace("x", ",").split(","))
    except ValueError as exc:
        raise ValidationError(f"input size must be H,W (e.g. 224,224), got {input_size!r}") from exc
    mode = {"l": "L", "gray": "L", "grey": "L", "grayscale": "L", "1": "L", "rgb": "RGB", "3": "RGB"}.get(
        color_mode.strip().lower())
    if mode is None:
        raise ValidationError(f"channels must be 1 (grayscale, L) or 3 (RGB), got {color_mode!r}")
    channels = 1 if mode == "L" else 3

    def floats(raw: str, what: str) -> tuple[float, ...]:
        try:
            values = [float(v) for v in raw.split(",") if v.strip()]
        except ValueError as exc:
            raise ValidationError(f"{what} must be numbers separated by commas, got {raw!r}") from exc
        if len(values) == 1:
            values *= channels
        if len(values) != channels or not all(np.isfinite(values)):
            raise ValidationError(f"{what} needs 1 or {channels} finite numbers for {mode}, got {raw!r}")
        return tuple(values)

    spread = floats(std, "std")
    if any(v <= 0 for v in spread):
        raise ValidationError(f"std must be positive, got {std!r}")
    return PreprocessSpec(input_size=(height, width), mean=floats(mean, "mean"), std=spread, color_mode=mode)


def describe_foreign(source: Path, target: Path, spec: PreprocessSpec, classes: Sequence[str],
                     output: str | None = None) -> ContractInfo:
    """Copy a foreign ONNX classifier to `target` with the given preprocessing in its metadata; check it.

    Raises ValidationError (and leaves no `target`) when the file breaks the contract under the
    given preprocessing, or when a blank image does not give one probability per class.
    """
    import onnx
    from onnx import helper

    classes = [c.strip() for c in classes if c.strip()]
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ValidationError(f"give at least 2 distinct class names, in the model's output order; got {classes}")
    try:
        model = onnx.load(str(source), load_external_data=False)
    except Exception as exc:  # protobuf decode errors of many kinds
        raise ValidationError(f"{Path(source).name} is not a readable ONNX model: {exc}") from exc
    props = {p.key: p.value for p in model.metadata_props}
    props.update({KEY_CLASSES: json.dumps(classes), **spec.metadata()})
    if output:
        props[KEY_OUTPUT] = output
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    try:
        info = check_contract(target)
        check_runs(target, info)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return info


def check_runs(path: Path, info: ContractInfo) -> None:
    """Run the model once on a blank image: the output must be one probability row over the classes."""
    import onnxruntime as ort

    height, width = info.preprocess.input_size
    blank = np.zeros((1, info.preprocess.channels, height, width), dtype=np.float32)
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (out,) = session.run([info.output_name], {info.input_name: blank})
    except Exception as exc:  # onnxruntime raises its own exception types for shape/type errors
        raise ValidationError(f"{path.name} does not run on a {info.preprocess.channels}x{height}x{width} image as "
                              f"described: {str(exc).splitlines()[0][:300]}") from exc
    out = np.asarray(out)
    if out.shape != (1, len(info.classes)):
        raise ValidationError(f"{path.name} gives an output of shape {list(out.shape)} for one image; "
                              f"{len(info.classes)} class names were given")
    total = float(out.sum())
    if not np.isfinite(out).all() or (out < -1e-6).any() or abs(total - 1.0) > 1e-3:
        raise ValidationError(f"{path.name}'s output {info.output_name!r} is not class probabilities (a row sums to "
                              f"{total:.3g}); export it with a softmax at the end")


def sidecar(info: ContractInfo, *, model_file: str, rgb_variant: str | None = None) -> dict[str, Any]:
    """How another tool must prepare an image for this model (the contract's steps, spelled out)."""
    spec = info.preprocess
    return {
        "format": SIDECAR_FORMAT,
        "model_file": model_file,
        "sha256": info.sha256,
        "input": {"name": info.input_name, "layout": "NCHW", "dtype": "float32", "channels": spec.channels,
                  "height": spec.input_size[0], "width": spec.input_size[1]},
        "output": {"name": info.output_name, "kind": "probabilities", "classes": list(info.classes)},
        "preprocessing": [
            "decode the file; apply its EXIF orientation; 16-bit samples divided by 257",
            f"convert to {spec.color_mode} (Pillow's rules; L = 0.299 R + 0.587 G + 0.114 B)",
            f"resize to {spec.input_size[1]}x{spec.input_size[0]} (width x height), bilinear, aspect not kept",
            "scale to [0, 1] (divide by 255)",
            "subtract mean and divide by std, per channel",
            "transpose to CHW and stack into an NCHW batch",
        ],
        "color_mode": spec.color_mode,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "rgb_variant": ({"model_file": rgb_variant, "channels": 3, "mean": [spec.mean[0]] * 3, "std": [spec.std[0]] * 3,
                         "note": "takes RGB normalised with the same mean/std; converts to luminance inside"}
                        if rgb_variant else None),
    }


def rgb_variant(source: Path, target: Path) -> Path:
    """A copy of a grayscale (L) classifier that takes 3-channel RGB input (luminance computed inside)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    info = check_contract(source)
    if info.preprocess.color_mode != "L":
        raise ValidationError(f"{Path(source).name} already takes RGB input")
    model = onnx.load(str(source))
    graph = model.graph
    old_input = next(i for i in graph.input if i.name == info.input_name)
    rgb_name = info.input_name + "_rgb"
    weight = numpy_helper.from_array(np.asarray(LUMA, dtype=np.float32).reshape(1, 3, 1, 1), "vital_luma_weights")
    graph.initializer.append(weight)
    graph.node.insert(0, helper.make_node("Conv", [rgb_name, weight.name], [info.input_name], name="vital_rgb_to_luma"))
    dims = [d.dim_param or d.dim_value for d in old_input.type.tensor_type.shape.dim]
    new_input = helper.make_tensor_value_info(rgb_name, TensorProto.FLOAT, [dims[0] or "N", 3, *dims[2:]])
    graph.input.remove(old_input)
    graph.input.insert(0, new_input)
    props = {p.key: p.value for p in model.metadata_props}
    props.update({"vital.color_mode": "RGB", "vital.mean": json.dumps([info.preprocess.mean[0]] * 3),
                  "vital.std": json.dumps([info.preprocess.std[0]] * 3)})
    del model.metadata_props[:]
    helper.set_model_props(model, props)
    onnx.checker.check_model(model)
    target = Path(target)
    onnx.save(model, str(target))
    return target


def write_sidecars(model_path: Path) -> list[Path]:
    """Write ``<model>.preprocess.json`` (and ``<model>.rgb.onnx`` for a grayscale model) beside a classifier."""
    model_path = Path(model_path)
    info = check_contract(model_path)
    written = []
    variant_name = None
    if info.preprocess.color_mode == "L":
        variant = rgb_variant(model_path, model_path.with_name(model_path.stem + ".rgb.onnx"))
        variant_name = variant.name
        written.append(variant)
    path = model_path.with_name(model_path.stem + ".preprocess.json")
    path.write_text(json.dumps(sidecar(info, model_file=model_path.name, rgb_variant=variant_name), indent=2) + "\n")
    written.append(path)
    return written
