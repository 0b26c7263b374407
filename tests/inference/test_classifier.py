"""The ONNX classifier contract, parity of the Python and ONNX paths, batched inference."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from vital_desktop.core.errors import Cancelled, ValidationError
from vital_desktop.core.progress import CancelToken, Progress
from vital_desktop.inference.classifier import OnnxClassifier, check_contract
from vital_desktop.inference.train_classifier import load_batch, predict_proba_python

GOOD_PROPS = {
    "vital.classes": json.dumps(["ok", "bad"]),
    "vital.input_size": "8,8",
    "vital.mean": "0.5",
    "vital.std": "0.25",
    "vital.color_mode": "L",
}


def _tiny_model(input_shape, props, *, weight_size=None):
    """A softmax over a linear map of the flattened input: the smallest 'classifier'."""
    features = int(np.prod(input_shape[1:]))
    weight = numpy_helper.from_array(np.ones((features, 2), dtype=np.float32) * 0.01, "weight")
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weight"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", *input_shape[1:]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2])],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(model, props)
    return model


def test_a_conforming_tiny_model_is_accepted(tmp_path):
    path = tmp_path / "tiny.onnx"
    onnx.save(_tiny_model((1, 1, 8, 8), GOOD_PROPS), str(path))
    info = check_contract(path)
    assert info.classes == ["ok", "bad"]
    assert info.preprocess.input_size == (8, 8) and info.preprocess.std == (0.25,)


def test_wrong_input_rank_is_refused_with_the_reason(tmp_path):
    path = tmp_path / "flat.onnx"
    onnx.save(_tiny_model((1, 64), GOOD_PROPS), str(path))
    with pytest.raises(ValidationError, match="rank 4 .*rank 2"):
        check_contract(path)


def test_missing_class_names_are_refused(tmp_path):
    props = {k: v for k, v in GOOD_PROPS.items() if k != "vital.classes"}
    path = tmp_path / "nameless.onnx"
    onnx.save(_tiny_model((1, 1, 8, 8), props), str(path))
    with pytest.raises(ValidationError, match="vital.classes"):
        check_contract(path)


def test_external_data_and_inconsistent_metadata_are_refused(tmp_path):
    path = tmp_path / "external.onnx"
    onnx.save(_tiny_model((1, 1, 8, 8), GOOD_PROPS), str(path), save_as_external_data=True, size_threshold=0)
    with pytest.raises(ValidationError, match="external data"):
        check_contract(path)
    three = dict(GOOD_PROPS, **{"vital.classes": json.dumps(["a", "b", "c"]), "vital.color_mode": "RGB"})
    path = tmp_path / "mismatch.onnx"
    onnx.save(_tiny_model((1, 1, 8, 8), three), str(path))
    with pytest.raises(ValidationError) as caught:
        check_contract(path)
    problems = " ".join(caught.value.details["problems"])
    assert "2 columns" in problems and "needs 3" in problems


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "garbage.onnx"
    path.write_bytes(b"not a model at all")
    with pytest.raises(ValidationError, match="not a readable ONNX model"):
        check_contract(path)


def test_trained_model_meets_the_contract_and_passes_the_checker(model_file, trained):
    onnx.checker.check_model(onnx.load(str(model_file)), full_check=True)
    info = check_contract(model_file)
    assert info.classes == trained.classes
    assert info.card["metrics"]["accuracy"] == trained.card["metrics"]["accuracy"]


def test_python_and_onnx_paths_agree(model_file, trained, demo_files):
    paths = [demo_files.image_paths[ref] for ref in sorted(demo_files.labels)[:48]]
    batch = load_batch(paths, trained.spec)
    onnx_probabilities = OnnxClassifier(model_file, threads=1).run(batch)
    python_probabilities = predict_proba_python(trained, batch)
    assert onnx_probabilities.shape == (48, len(trained.classes))
    np.testing.assert_allclose(onnx_probabilities, python_probabilities, atol=1e-4)
    assert (onnx_probabilities.argmax(1) == python_probabilities.argmax(1)).all()


def test_batched_prediction_keeps_bad_files_and_records_input_statistics(model_file, demo_files, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG but not really")
    refs = sorted(demo_files.labels)[:5]
    paths = [demo_files.image_paths[r] for r in refs] + [tmp_path / "missing.png", broken]
    results = OnnxClassifier(model_file).predict_paths(paths, batch_size=3)
    assert len(results) == 7
    assert [r.error is None for r in results] == [True] * 5 + [False, False]
    good = results[0]
    assert good.stats.width == 256 and good.stats.height == 256 and 0 < good.stats.mean < 255
    assert abs(sum(good.probabilities.values()) - 1.0) < 1e-4
    assert "missing.png" in results[5].error


def test_prediction_stops_when_cancelled(model_file, demo_files):
    token = CancelToken()
    seen = []

    def on_update(snapshot):
        seen.append(snapshot.done)
        if snapshot.done >= 4:
            token.cancel()

    progress = Progress(cancel=token, on_update=on_update, min_interval_s=0)
    paths = [demo_files.image_paths[r] for r in sorted(demo_files.labels)[:40]]
    with pytest.raises(Cancelled):
        OnnxClassifier(model_file).predict_paths(paths, batch_size=4, progress=progress)
    assert max(seen) < 40


def test_batched_prediction_gives_each_stage_its_threads_and_the_same_answers(model_file, demo_files):
    classifier = OnnxClassifier(model_file, threads=2)
    assert classifier.pipeline_settings() == {"decode_workers": 2, "onnxruntime_threads": 1}
    paths = [demo_files.image_paths[ref] for ref in sorted(demo_files.labels)[:12]]
    results = classifier.predict_paths(paths, batch_size=5)
    assert classifier.pipeline_session() is not classifier.session  # a one-thread session, made on first use
    direct = classifier.run(load_batch(paths, classifier.info.preprocess))
    batched = np.array([[r.probabilities[c] for c in classifier.classes] for r in results], dtype=np.float32)
    np.testing.assert_allclose(batched, direct, atol=1e-6)
    alone = OnnxClassifier(model_file, threads=1)
    assert alone.pipeline_session() is alone.session  # one core: nothing to split
