"""Imported models must run: ONNX test-run in a memory-capped child process, GGUF test-loaded;
Parquet payloads read within a memory cap. Each case through the real import, store unchanged."""

from __future__ import annotations

import struct

import onnx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from onnx import TensorProto, helper

from vital_desktop.bundles import samples
from vital_desktop.bundles.simulator import Payload
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference import sandbox


def _with_extra_nodes(nodes: list, initializers: list, opsets: list | None = None) -> bytes:
    """The tiny classifier with `nodes` feeding a scalar 's' added to its output (so they must run)."""
    model = onnx.load_from_string(samples.tiny_classifier_onnx())
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{out}_pre" if name == out else name for name in node.output]
    model.graph.node.extend([*nodes, helper.make_node("Add", [f"{out}_pre", "s"], [out])])
    model.graph.initializer.extend(initializers)
    for domain, version in opsets or []:
        model.opset_import.append(helper.make_opsetid(domain, version))
    return model.SerializeToString()


def _bomb() -> bytes:
    shape = helper.make_tensor("bomb_shape", TensorProto.INT64, [3], [1000, 1000, 1000])  # 4 GB of float32
    return _with_extra_nodes([
        helper.make_node("ConstantOfShape", ["bomb_shape"], ["big"],
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.0])),
        helper.make_node("ReduceSum", ["big"], ["s"], keepdims=0),
    ], [shape])


def _custom_op() -> bytes:
    return _with_extra_nodes([helper.make_node("Evil", [], ["s"], domain="com.attacker")], [],
                             opsets=[("com.attacker", 1)])


def test_an_honest_onnx_model_runs_its_trial(tmp_path) -> None:
    path = tmp_path / "ok.onnx"
    path.write_bytes(samples.tiny_classifier_onnx())
    sandbox.trial_run_onnx(path)


def test_a_constant_of_shape_bomb_is_refused_under_the_memory_cap(tmp_path) -> None:
    path = tmp_path / "bomb.onnx"
    path.write_bytes(_bomb())
    with pytest.raises(ValidationError, match="memory|does not run"):
        sandbox.trial_run_onnx(path, memory_bytes=768 * 1024**2)


def test_an_imported_bomb_model_is_refused(bundle_site) -> None:
    payloads = bundle_site.hub.model_payloads(onnx_bytes=_bomb())
    refusal = bundle_site.refused(bundle_site.hub.build("models", payloads).path, "content")
    assert "does not run" in refusal.message


def test_an_imported_custom_domain_op_is_refused(bundle_site) -> None:
    payloads = bundle_site.hub.model_payloads(onnx_bytes=_custom_op())
    refusal = bundle_site.refused(bundle_site.hub.build("models", payloads).path, "content")
    assert "custom" in refusal.message


def test_a_gguf_with_a_valid_magic_and_garbage_inside_is_refused(tmp_path) -> None:
    path = tmp_path / "junk.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\xff" * 4096)
    with pytest.raises(ValidationError, match="does not run"):
        sandbox.trial_load_gguf(path)


@pytest.mark.slow
def test_the_default_gguf_model_loads_in_its_trial() -> None:
    from vital_desktop.inference.llm import default_gguf_path

    path = default_gguf_path()
    if path is None or not path.is_file():
        pytest.skip("the default GGUF model is not installed")
    sandbox.trial_load_gguf(path)


def test_a_parquet_decompression_bomb_is_refused_without_decoding_it(bundle_site, tmp_path) -> None:
    row = {"sheet_name": "Crystals", "item_ref": "INS-0000", "label_type": "classification",
           "label_data": '{"defect_type":"crack"}', "version": 1, "allowed_uses": "[]", "prohibited_uses": "[]",
           "usage_reason": "", "data_classification": "[]", "confidence": "high", "notes": "x" * 2000,
           "updated_by": "hub", "updated_at": None}
    rows = 300_000  # 600 MB of notes once decoded; a few KB on disk (dictionary + RLE)
    table = pa.table({k: pa.array([v] * rows) if not isinstance(v, int) else pa.array([v] * rows, pa.int64())
                      for k, v in row.items() if k != "updated_at"} |
                     {"updated_at": pa.array([None] * rows, pa.timestamp("us"))})
    path = tmp_path / "bomb.parquet"
    pq.write_table(table, path, compression="zstd")
    assert path.stat().st_size < 200_000
    payload = Payload("labels", "canonical_labels", "labels.parquet", path.read_bytes())
    refusal = bundle_site.refused(bundle_site.hub.build("labels", [payload]).path, "content")
    assert "decoded" in refusal.message or "uncompressed" in refusal.message
