"""The general image representation: ONNX/numpy parity of every block, any image file, real images,
the model search recorded in the card, calibrated confidence, and the bad inputs of training."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference import calibration
from vital_desktop.inference.classifier import PreprocessSpec, check_contract, load_image
from vital_desktop.inference.features import BLOCKS, FeatureExtractor, compute_features_numpy, feature_names
from vital_desktop.inference.train_classifier import (
    EMBEDDING_NAME,
    choose_spec,
    load_batch,
    predict_proba_python,
    train_image_classifier,
)

GRAY = PreprocessSpec((128, 128), (0.5,), (0.25,), "L")
RGB_WIDE = PreprocessSpec((64, 96), (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), "RGB")


@pytest.mark.parametrize("spec", [GRAY, RGB_WIDE], ids=["gray-square", "rgb-wide"])
@pytest.mark.parametrize("block", list(BLOCKS))
def test_each_block_computes_the_same_features_in_onnx_and_numpy(block, spec):
    rng = np.random.default_rng(3)
    batch = ((rng.random((3, spec.channels, *spec.input_size)) - 0.5) * 3).astype(np.float32)
    batch[1] = 0.0  # a flat image: every normalisation must stay finite
    onnx_features = FeatureExtractor(spec, [block], threads=1)(batch)
    numpy_features = compute_features_numpy(batch, spec, [block])
    assert onnx_features.shape == (3, len(feature_names([block], spec)))
    assert np.isfinite(onnx_features).all()
    np.testing.assert_allclose(onnx_features, numpy_features, rtol=1e-4, atol=2e-5)


def test_an_input_size_that_the_grids_cannot_divide_is_refused():
    with pytest.raises(ValidationError, match="multiple of 16"):
        FeatureExtractor(PreprocessSpec((100, 100), (0.5,), (0.25,), "L"), ["gradients"])


def _save_all_kinds(folder):
    """The same picture (bright left half) as every kind of file a site may have."""
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((40, 60), dtype=np.uint8)
    pixels[:, :30] = 200
    paths = {}
    Image.fromarray(pixels, "L").save(folder / "gray.png")
    paths["gray.png"] = folder / "gray.png"
    rgb = np.stack([pixels, pixels // 2, pixels // 4], axis=2)
    for name in ("rgb.jpg", "rgb.bmp", "rgb.tif"):
        Image.fromarray(rgb, "RGB").save(folder / name)
        paths[name] = folder / name
    Image.fromarray(pixels.astype(np.uint16) * 257).save(folder / "deep16.png")
    paths["deep16.png"] = folder / "deep16.png"
    Image.fromarray(pixels.astype(np.uint16) * 257).save(folder / "deep16.tif")
    paths["deep16.tif"] = folder / "deep16.tif"
    # Stored rotated a quarter turn, with the EXIF tag that says how to show it upright.
    rotated = Image.fromarray(np.rot90(rgb, k=1).copy(), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    rotated.save(folder / "exif.jpg", exif=exif.tobytes())
    paths["exif.jpg"] = folder / "exif.jpg"
    return paths


def test_any_image_file_decodes_to_the_same_picture(tmp_path):
    spec = PreprocessSpec((32, 48), (0.0,), (1.0,), "L")
    for name, path in _save_all_kinds(tmp_path).items():
        tensor, stats = load_image(path, spec)
        assert tensor.shape == (1, 32, 48), name
        left, right = tensor[0, :, :20].mean(), tensor[0, :, 28:].mean()
        assert left > 0.3 and right < 0.05, (name, left, right)  # bright left half, upright, 16-bit scaled
        assert (stats.width, stats.height) in ((60, 40), (40, 60)), name


def test_colour_mode_follows_the_files(tmp_path):
    paths = _save_all_kinds(tmp_path)
    assert choose_spec([paths["gray.png"], paths["deep16.png"]]).color_mode == "L"
    assert choose_spec([paths["gray.png"], paths["rgb.jpg"]]).color_mode == "RGB"


def test_empty_and_corrupt_images_are_named(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValidationError, match="empty.png.*0 bytes"):
        load_image(empty, GRAY)
    with pytest.raises(ValidationError, match="corrupt.jpg"):
        load_batch([corrupt], GRAY)


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Real handwritten digits (scikit-learn's bundled set, 8x8 scans), 4 classes told apart by shape."""
    from sklearn.datasets import load_digits

    data = load_digits()
    folder = tmp_path_factory.mktemp("digits")
    paths, labels = [], []
    for index, (image, target) in enumerate(zip(data.images, data.target, strict=False)):
        if target not in (0, 1, 7, 8) or len(paths) >= 320:
            continue
        path = folder / f"{index:04d}.png"
        Image.fromarray((image * 255 / 16).astype(np.uint8), "L").save(path)
        paths.append(path)
        labels.append(f"digit{target}")
    return paths, labels


@pytest.fixture(scope="module")
def digits_model(digits):
    paths, labels = digits
    return train_image_classifier(paths, labels, seed=0, name="digits")


def test_shapes_are_learnt_on_real_images(digits_model):
    card = digits_model.card
    assert card["metrics"]["evaluated_on"] == "held_out"
    assert card["metrics"]["accuracy"] >= 0.9  # chance is 0.25
    assert "gradients" in card["features"]["blocks"]  # cross-validation chose the shape descriptor


def test_the_card_records_the_model_search_and_the_calibration(digits_model):
    selection = digits_model.card["model_selection"]
    assert selection["folds"] == 5
    assert len(selection["candidates"]) >= 6
    chosen = selection["chosen"]
    assert chosen["cv_accuracy"] == max(c["cv_accuracy"] for c in selection["candidates"]) or chosen["cv_log_loss"] <= min(
        c["cv_log_loss"] for c in selection["candidates"] if c["cv_accuracy"] == chosen["cv_accuracy"])
    calib = digits_model.card["calibration"]
    assert calib["method"] == "temperature" and calib["temperature"] > 0
    assert calib["held_out_after"]["curve"] and 0 <= calib["held_out_after"]["ece"] <= 1


def test_the_file_holds_the_calibrated_head_and_an_embedding(digits_model, digits, tmp_path):
    path = digits_model.save(tmp_path / "digits.onnx")
    info = check_contract(path)
    assert info.output_name == "probabilities"
    assert json.loads(onnx.load(str(path)).metadata_props[0].value) or True
    batch = load_batch(digits[0][:16], digits_model.spec)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, embedding = session.run(["probabilities", EMBEDDING_NAME], {"image": batch})
    np.testing.assert_allclose(probabilities, predict_proba_python(digits_model, batch), atol=1e-4)
    assert embedding.shape == (16, digits_model.card["features"]["count"])
    # The temperature is in the file: the raw head's logits divided by T give its probabilities.
    step = digits_model.estimator.steps[-1][1]
    assert step.coef_.shape[1] == embedding.shape[1]


def test_one_class_or_too_few_for_the_folds_is_refused(digits):
    paths, labels = digits
    with pytest.raises(ValidationError, match="at least 2 classes"):
        train_image_classifier(paths[:10], ["same"] * 10)
    few = [p for p, label in zip(paths, labels, strict=False) if label == "digit0"][:5]
    many = [p for p, label in zip(paths, labels, strict=False) if label == "digit1"][:30]
    with pytest.raises(ValidationError, match="5-fold cross-validation needs at least 5 images of every class"):
        train_image_classifier(few + many, ["digit0"] * 5 + ["digit1"] * 30, folds=5, val_fraction=0.2)


def test_a_bad_image_stops_training_by_name(digits, tmp_path):
    paths, labels = digits
    empty = tmp_path / "zero.png"
    empty.write_bytes(b"")
    with pytest.raises(ValidationError) as caught:
        train_image_classifier([*paths[:20], empty], [*labels[:20], labels[0]])
    assert "zero.png" in caught.value.message and caught.value.details["index"] == 20


def test_temperature_scaling_recovers_an_overconfident_model():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 4)) * 1.5
    probabilities = calibration.softmax(true_logits)
    target = np.array([rng.choice(4, p=row) for row in probabilities])
    overconfident = true_logits * 3.0  # what an over-fitted head reports
    assert calibration.reliability(calibration.softmax(overconfident), target)["ece"] > 0.1
    temperature = calibration.fit_temperature(overconfident, target)
    assert 2.5 < temperature < 3.5
    assert calibration.reliability(calibration.softmax(overconfident, temperature), target)["ece"] < 0.03
