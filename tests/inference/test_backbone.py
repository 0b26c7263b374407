"""Pretrained backbones: a tiny backbone built here, embeddings cached per (content, backbone),
a local head composed into one contract-conforming file, and backbones that are not refused."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.classifier import OnnxClassifier, check_contract
from vital_desktop.services import backbones, registry

PROPS = {"vital.input_size": "32,32", "vital.mean": "0.5", "vital.std": "0.25", "vital.color_mode": "L"}


def _backbone(path, *, pooled=True):
    """Conv(8 filters) → ReLU → global average pool → flatten: an 8-d embedding (or a feature map)."""
    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(8, 1, 5, 5)).astype(np.float32), "conv_w")
    nodes = [helper.make_node("Conv", ["image", "conv_w"], ["conv"], pads=[2, 2, 2, 2]),
             helper.make_node("Relu", ["conv"], ["act"])]
    if pooled:
        nodes += [helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
                  helper.make_node("Flatten", ["pool"], ["embedding"], axis=1)]
        output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 8])
    else:
        nodes.append(helper.make_node("Identity", ["act"], ["embedding"]))
        output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 8, 32, 32])
    graph = helper.make_graph(nodes, "tiny_backbone",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 32, 32])],
                              [output], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, PROPS)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def bright_dark(tmp_path):
    """Two classes of 30 images each: a bright or a dark square on noise (what 8 filters can see)."""
    rng = np.random.default_rng(1)
    paths, labels = [], []
    for index in range(60):
        pixels = rng.integers(0, 60, size=(40, 40)).astype(np.uint8)
        cls = "bright" if index % 2 else "dark"
        if cls == "bright":
            pixels[10:30, 10:30] = 230
        path = tmp_path / f"img{index:02d}.png"
        Image.fromarray(pixels, "L").save(path)
        paths.append(str(path))
        labels.append(cls)
    return paths, labels


def test_a_head_on_cached_embeddings_is_composed_into_one_classifier(small_site, tmp_path, bright_dark):
    store, engineer = small_site.store, small_site.user("engineer")
    model, _ = registry.register_model(store, actor=engineer, path=_backbone(tmp_path / "bb.onnx"),
                                       kind=registry.KIND_BACKBONE, name="tiny-backbone")
    assert model.card["embedding_dim"] == 8
    paths, labels = bright_dark
    first = backbones.train_on_backbone(store, tmp_path / "bb.onnx", paths, labels, ["bright", "dark"], seed=0)
    assert first.card["backbone"]["embeddings_computed"] == 60 and first.card["backbone"]["embeddings_from_cache"] == 0
    assert first.card["metrics"]["accuracy"] >= 0.9
    again = backbones.train_on_backbone(store, tmp_path / "bb.onnx", paths, labels, ["bright", "dark"], seed=0)
    assert again.card["backbone"]["embeddings_from_cache"] == 60  # the backbone did not run again
    step_first, step_again = first.estimator.steps[-1][1], again.estimator.steps[-1][1]
    np.testing.assert_allclose(step_again.coef_, step_first.coef_, rtol=1e-6)  # same embeddings, same head
    out = first.save(tmp_path / "composed.onnx")
    info = check_contract(out)
    assert info.classes == ["bright", "dark"] and json.loads(onnx.load(str(out)).metadata_props[0].value)
    results = OnnxClassifier(out).predict_paths(paths[:10])
    assert [r.predicted_class for r in results] == labels[:10]


def test_a_backbone_whose_output_is_not_a_vector_is_refused(small_site, tmp_path):
    store = small_site.store
    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match=r"one vector per image .*\[2, 8, 32, 32\]"):
        registry.register_model(store, actor=small_site.user("engineer"), path=_backbone(tmp_path / "map.onnx", pooled=False),
                                kind=registry.KIND_BACKBONE, name="feature-map")
    assert snapshot_tables(store) == before and not list(store.models_dir.glob("feature-map*"))
