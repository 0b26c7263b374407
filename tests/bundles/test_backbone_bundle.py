"""A hub-signed backbone bundle: verified, trial-run in the sandbox, decided by trust.decide_backbone,
registered as an onnx_backbone; a feature map, a wrong input, a tampered file are refused, nothing half-registered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vital_desktop.bundles import canonical
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.simulator import Payload
from vital_desktop.bundles.trust import BackboneTrial, decide_backbone
from vital_desktop.inference.backbone import check_backbone
from vital_desktop.services import registry

PROPS = {"vital.input_size": "32,32", "vital.mean": "0.5", "vital.std": "0.25", "vital.color_mode": "L"}


def _backbone(*, pooled: bool = True, channels: int = 1) -> bytes:
    """Conv(4 filters) → ReLU → global average pool → flatten: a 4-d embedding (or the feature map)."""
    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(4, channels, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["image", "w"], ["conv"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["conv"], ["act"])]
    if pooled:
        nodes += [helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
                  helper.make_node("Flatten", ["pool"], ["embedding"], axis=1)]
        output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4])
    else:
        nodes.append(helper.make_node("Identity", ["act"], ["embedding"]))
        output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 4, 32, 32])
    graph = helper.make_graph(nodes, "hub_backbone",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", channels, 32, 32])],
                              [output], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, PROPS)
    return model.SerializeToString()


def _payloads(onnx_bytes: bytes, name: str = "hub-backbone") -> list[Payload]:
    card = {"name": name, "version": 1, "kind": "onnx_backbone", "description": "A tiny backbone built in the test."}
    return [Payload("backbone", "onnx_backbone", f"{name}-v1.onnx", onnx_bytes, {"card": "card"}),
            Payload("card", "model_card", f"{name}-v1.card.json", canonical.dumps(card))]


def test_a_signed_backbone_is_trial_run_and_registered(bundle_site) -> None:
    summary = bundle_site.import_(bundle_site.hub.build("models", _payloads(_backbone())).path)
    assert summary is not None
    (model,) = registry.list_models(bundle_site.store, kind=registry.KIND_BACKBONE)
    assert (model.name, model.version, model.origin) == ("hub-backbone", 1, "hub")
    assert check_backbone(Path(model.path)).dim == 4  # the registered file is a usable backbone


@pytest.mark.parametrize(("onnx_bytes", "why"), [
    (_backbone(pooled=False), "one vector per image"),
    (_backbone(channels=3), "channel"),
])
def test_a_backbone_that_is_not_a_vector_or_takes_the_wrong_input_is_refused(bundle_site, onnx_bytes, why) -> None:
    refusal = bundle_site.refused(bundle_site.hub.build("models", _payloads(onnx_bytes)).path, "content")
    assert why in refusal.message and "nothing was registered" in refusal.message
    assert registry.list_models(bundle_site.store, kind=registry.KIND_BACKBONE) == []


def test_a_tampered_backbone_is_refused_before_it_runs(bundle_site) -> None:
    built = bundle_site.hub.build("models", _payloads(_backbone()))
    data = bytearray(built.path.read_bytes())
    good = _backbone()
    at = bytes(data).find(good[-64:])  # flip a byte inside the backbone's payload bytes
    assert at > 0
    data[at + 10] ^= 0xFF
    built.path.write_bytes(bytes(data))
    refusal = bundle_site.refused(built.path, "payload_hash")
    assert "does not match its signed SHA-256" in refusal.message
    assert registry.list_models(bundle_site.store, kind=registry.KIND_BACKBONE) == []


def test_the_trust_decision_on_what_was_observed() -> None:
    """IO-free: trust.decide_backbone judges the observed facts, each refusal says why."""
    good = BackboneTrial("b", None, None, ("N", 1, 32, 32), 1, (2, 4))
    assert decide_backbone(good).ok
    cases = [
        (BackboneTrial("b", "the ONNX model does not run: boom", None, ("N", 1, 32, 32), 1, None), "does not run"),
        (BackboneTrial("b", None, None, ("N", 1024), 1, (2, 4)), "rank 2"),
        (BackboneTrial("b", None, None, ("N", 3, 32, 32), 1, (2, 4)), "takes 3 channel"),
        (BackboneTrial("b", None, None, ("N", 1, 32, 32), 1, (2, 4, 8, 8)), "one vector per image"),
        (BackboneTrial("b", None, None, ("N", 1, 32, 32), 1, (2, 4), output_finite=False), "NaN"),
        (BackboneTrial("b", None, "metadata lacks vital.mean", ("N", 1, 32, 32), 1, None), "metadata"),
    ]
    for trial, why in cases:
        with pytest.raises(BundleRefused, match=why):
            decide_backbone(trial)


def test_the_file_is_a_real_onnx_graph() -> None:
    onnx.checker.check_model(onnx.load_from_string(_backbone()))
