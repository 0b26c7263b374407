"""Foreign ONNX classifiers registered by their preprocessing; sidecars and the RGB variant of ours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import foreign_classifier_onnx, snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.classifier import OnnxClassifier, PreprocessSpec, check_contract, load_image
from vital_desktop.inference.interop import parse_spec, rgb_variant, write_sidecars
from vital_desktop.services import registry
from vital_desktop.store.models import ModelRow


def test_command_line_values_become_a_spec():
    spec = parse_spec("224,224", "3", "0.485,0.456,0.406", "0.229,0.224,0.225")
    assert spec.color_mode == "RGB" and spec.input_size == (224, 224) and spec.std[2] == 0.225
    assert parse_spec("64x48", "1", "0.5", "0.25").mean == (0.5,)
    with pytest.raises(ValidationError, match="1 or 3"):
        parse_spec("224,224", "3", "0.1,0.2", "1")
    with pytest.raises(ValidationError, match="positive"):
        parse_spec("224,224", "1", "0", "0")


def test_a_foreign_classifier_registers_with_its_preprocessing(small_site, tmp_path, demo_files):
    store, engineer = small_site.store, small_site.user("engineer")
    source = foreign_classifier_onnx(tmp_path / "resnetish.onnx")
    spec = parse_spec("32,32", "3", "0.485,0.456,0.406", "0.229,0.224,0.225")
    info, _ = registry.register_foreign_classifier(store, actor=engineer, path=source, spec=spec,
                                                   classes=["a", "b", "c"], name="foreign")
    assert info.classes == ["a", "b", "c"] and info.card["origin"] == "foreign"
    contract = check_contract(info.path)
    assert contract.preprocess == spec
    result = OnnxClassifier(info.path).predict_paths([demo_files.image_paths[min(demo_files.labels)]])[0]
    assert result.error is None and result.predicted_class in ("a", "b", "c")
    sidecar = json.loads(Path(info.path).with_name("foreign-v1.preprocess.json").read_text())
    assert sidecar["input"]["channels"] == 3 and sidecar["mean"] == [0.485, 0.456, 0.406]
    assert sidecar["rgb_variant"] is None  # already RGB


@pytest.mark.parametrize("problem,kwargs,match", [
    ("wrong channels", {"channels": "1"}, "channels"),
    ("wrong size", {"size": "48,48"}, "48x48"),
    ("wrong class count", {"classes": ["a", "b"]}, "3 columns|2 class"),
])
def test_a_foreign_classifier_that_does_not_match_is_refused_and_nothing_registered(
        small_site, tmp_path, problem, kwargs, match):
    store, engineer = small_site.store, small_site.user("engineer")
    source = foreign_classifier_onnx(tmp_path / "model.onnx")
    before = snapshot_tables(store)
    spec = parse_spec(kwargs.get("size", "32,32"), kwargs.get("channels", "3"), "0.5", "0.25")
    with pytest.raises(ValidationError, match=match):
        registry.register_foreign_classifier(store, actor=engineer, path=source, spec=spec,
                                             classes=kwargs.get("classes", ["a", "b", "c"]), name="bad")
    assert snapshot_tables(store) == before
    assert not list(store.models_dir.glob("bad*")) and not list(store.staging_dir.glob("*"))


def test_logits_instead_of_probabilities_are_refused(small_site, tmp_path):
    source = foreign_classifier_onnx(tmp_path / "logits.onnx", softmax=False)
    with pytest.raises(ValidationError, match="not class probabilities"):
        registry.register_foreign_classifier(small_site.store, actor=small_site.user("engineer"), path=source,
                                             spec=parse_spec("32,32", "3", "0", "1"), classes=["a", "b", "c"])
    with small_site.store.read() as s:
        assert s.query(ModelRow).count() == 0


def test_our_grayscale_model_gets_a_sidecar_and_an_rgb_variant(model_file, demo_files, tmp_path):
    import shutil

    copy = tmp_path / "ours.onnx"
    shutil.copyfile(model_file, copy)
    written = write_sidecars(copy)
    names = sorted(p.name for p in written)
    assert names == ["ours.preprocess.json", "ours.rgb.onnx"]
    sidecar = json.loads((tmp_path / "ours.preprocess.json").read_text())
    assert sidecar["color_mode"] == "L" and sidecar["rgb_variant"]["channels"] == 3
    info = check_contract(copy)
    path = demo_files.image_paths[min(demo_files.labels)]
    gray, _ = load_image(path, info.preprocess)
    rgb_spec = PreprocessSpec(info.preprocess.input_size, info.preprocess.mean * 3, info.preprocess.std * 3, "RGB")
    rgb, _ = load_image(path, rgb_spec)
    ours = ort.InferenceSession(str(copy), providers=["CPUExecutionProvider"])
    variant = ort.InferenceSession(str(tmp_path / "ours.rgb.onnx"), providers=["CPUExecutionProvider"])
    p_gray = ours.run(["probabilities"], {info.input_name: gray[None]})[0]
    p_rgb = variant.run(["probabilities"], {variant.get_inputs()[0].name: rgb[None]})[0]
    np.testing.assert_allclose(p_rgb, p_gray, atol=2e-3)  # the demo PNGs are grayscale: same picture
    with pytest.raises(ValidationError, match="already takes RGB"):
        rgb_variant(tmp_path / "ours.rgb.onnx", tmp_path / "again.onnx")
