"""Small, real payloads for demos, tests and benchmarks (a tiny ONNX classifier, a template, labels).

What the samples say (the classes, the card's text, the template) is the demo's content, kept as
data in `resources/demo/hub_samples.json`; this module only builds the payloads from it.

The classifier satisfies the classifier contract used by `vital_desktop.inference`: one float32
NCHW input, a probabilities output, and metadata_props `vital.classes` (JSON list),
`vital.input_size` ("64,64"), `vital.mean`, `vital.std`, `vital.color_mode`.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import io
import json
from importlib import resources
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


@functools.cache
def _content() -> dict[str, Any]:
    """The demo's sample content (read once; callers get copies)."""
    text = resources.files("vital_desktop.resources").joinpath("demo", "hub_samples.json").read_text("utf-8")
    content: dict[str, Any] = json.loads(text)
    return content


#: The tiny classifier's name and classes when a caller names none (the demo's sample data).
DEMO_MODEL_NAME: str = str(_content()["classifier_name"])
DEMO_CLASSES: list[str] = list(_content()["classifier_classes"])


def tiny_classifier_onnx(classes: list[str] | None = None, *, seed: int = 0, padding_bytes: int = 0) -> bytes:
    """GlobalAveragePool -> Flatten -> Gemm -> Softmax over 3x64x64 images (padding grows the file)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    classes = classes or DEMO_CLASSES
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(3, len(classes))).astype(np.float32)
    bias = np.zeros(len(classes), dtype=np.float32)
    initializers = [numpy_helper.from_array(weight, "weight"), numpy_helper.from_array(bias, "bias")]
    nodes = [
        helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "weight", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    if padding_bytes:
        # An unused constant: makes a model of a chosen size for the benchmark.
        pad = np.zeros(padding_bytes // 4, dtype=np.float32)
        initializers.append(numpy_helper.from_array(pad, "padding"))
    graph = helper.make_graph(
        nodes, "vital_tiny_classifier",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", len(classes)])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="vital-samples")
    model.ir_version = 8
    for key, value in {"vital.classes": json.dumps(classes), "vital.input_size": "64,64",
                       "vital.mean": "[0.5, 0.5, 0.5]", "vital.std": "[0.25, 0.25, 0.25]", "vital.color_mode": "RGB"}.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def model_card(name: str, version: int, classes: list[str] | None = None, kind: str = "onnx") -> dict[str, Any]:
    """A model card for the tiny classifier (its text from the demo's sample content)."""
    card: dict[str, Any] = {"name": name, "version": version, "kind": kind, "classes": list(classes or DEMO_CLASSES)}
    card.update(copy.deepcopy(_content()["model_card"]))
    return card


def template_document(name: str | None = None, version: str | None = None) -> dict[str, Any]:
    """The hub's sample template document (the demo's; `name` / `version` override its own)."""
    document: dict[str, Any] = copy.deepcopy(_content()["template"])
    if name is not None:
        document["name"] = name
    if version is not None:
        document["version"] = version
    return document


def labels_parquet(rows: list[dict[str, Any]]) -> bytes:
    """Canonical labels as Parquet with the columns `payloads.TABLE_COLUMNS['canonical_labels']` needs."""
    now = dt.datetime(2026, 1, 1)
    columns: dict[str, list[Any]] = {k: [] for k in (
        "sheet_name", "item_ref", "label_type", "label_data", "version", "allowed_uses", "prohibited_uses",
        "usage_reason", "data_classification", "confidence", "notes", "updated_by", "updated_at")}
    for row in rows:
        columns["sheet_name"].append(row["sheet_name"])
        columns["item_ref"].append(row["item_ref"])
        columns["label_type"].append(row.get("label_type", "classification"))
        columns["label_data"].append(json.dumps(row["label_data"]))
        columns["version"].append(int(row.get("version", 1)))
        columns["allowed_uses"].append(json.dumps(row.get("allowed_uses", ["training", "validation"])))
        columns["prohibited_uses"].append(json.dumps(row.get("prohibited_uses", [])))
        columns["usage_reason"].append(row.get("usage_reason", ""))
        columns["data_classification"].append(json.dumps(row.get("data_classification", [])))
        columns["confidence"].append(row.get("confidence", "high"))
        columns["notes"].append(row.get("notes", ""))
        columns["updated_by"].append(row.get("updated_by", "hub"))
        columns["updated_at"].append(row.get("updated_at", now))
    schema = pa.schema([
        ("sheet_name", pa.string()), ("item_ref", pa.string()), ("label_type", pa.string()), ("label_data", pa.string()),
        ("version", pa.int64()), ("allowed_uses", pa.string()), ("prohibited_uses", pa.string()),
        ("usage_reason", pa.string()), ("data_classification", pa.string()), ("confidence", pa.string()),
        ("notes", pa.string()), ("updated_by", pa.string()), ("updated_at", pa.timestamp("us")),
    ])
    sink = io.BytesIO()
    pq.write_table(pa.table(columns, schema=schema), sink)
    return sink.getvalue()
