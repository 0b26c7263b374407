"""Decoding image files into model input: the same numbers as the per-pixel formula, reduced-scale
JPEG decoding only where it is harmless, and chunks decoded straight into their batch."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, JpegImagePlugin

from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.classifier import PreprocessSpec
from vital_desktop.inference.decode import DRAFT_MARGIN, decode_chunks, load_image, preprocess_image

GRAY = PreprocessSpec((32, 48), (0.5,), (0.25,), "L")
RGB = PreprocessSpec((32, 32), (0.4, 0.5, 0.6), (0.2, 0.25, 0.3), "RGB")


def _formula(image: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    """The contract's steps 2-6 written out per pixel (docs/onnx-classifier-contract.md)."""
    resized = image.convert(spec.color_mode).resize((spec.input_size[1], spec.input_size[0]), Image.Resampling.BILINEAR)
    pixels = np.asarray(resized, dtype=np.float32)
    pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
    scaled = pixels / np.float32(255.0)
    tensor = (scaled - np.asarray(spec.mean, dtype=np.float32)) / np.asarray(spec.std, dtype=np.float32)
    return tensor.transpose(2, 0, 1)


@pytest.mark.parametrize("spec", [GRAY, RGB], ids=["gray", "rgb"])
def test_the_lookup_table_gives_the_per_pixel_formula_bit_for_bit(spec, tmp_path):
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 256, size=(70, 90, 3), dtype=np.uint8)
    pixels[:5] = 0
    pixels[-5:] = 255  # both ends of the table
    path = tmp_path / "noise.png"
    Image.fromarray(pixels, "RGB").save(path)
    tensor, stats = load_image(path, spec)
    with Image.open(path) as image:
        expected = _formula(image, spec)
        resized = np.asarray(image.convert(spec.color_mode).resize((spec.input_size[1], spec.input_size[0]),
                                                                   Image.Resampling.BILINEAR), dtype=np.float64)
    assert tensor.dtype == np.float32 and tensor.shape == (spec.channels, *spec.input_size)
    assert np.array_equal(tensor, expected)
    assert (stats.width, stats.height) == (90, 70)
    assert stats.mean == pytest.approx(resized.mean(), abs=1e-9) and stats.std == pytest.approx(resized.std(), abs=1e-9)


def test_preprocessing_a_caller_s_image_leaves_it_as_it_was():
    image = Image.fromarray(np.arange(64 * 80, dtype=np.uint32).reshape(64, 80).astype(np.uint8), "L")
    before = image.tobytes()
    tensor, _ = preprocess_image(image, GRAY)
    assert image.tobytes() == before and image.size == (80, 64)
    assert np.array_equal(tensor, _formula(image, GRAY))


def _photo(path, size: tuple[int, int]) -> None:
    """A smooth picture with some detail, saved as a JPEG of the given size (width, height)."""
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float64)
    red = 128 + 100 * np.sin(xx / 37.0) * np.cos(yy / 23.0)
    green = 128 + 90 * np.cos((xx + yy) / 51.0)
    blue = 255 * (xx / size[0])
    pixels = np.clip(np.stack([red, green, blue], axis=2), 0, 255).astype(np.uint8)
    Image.fromarray(pixels, "RGB").save(path, quality=92)


def test_a_large_jpeg_is_decoded_at_reduced_scale_close_to_the_full_decode(tmp_path, monkeypatch):
    path = tmp_path / "camera.jpg"
    _photo(path, (1024, 768))
    decoded_at = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        chosen = original(self, mode, size)
        decoded_at.append(self.size)
        return chosen

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    tensor, stats = load_image(path, RGB)
    # 768 // (DRAFT_MARGIN * 32) = 12 → libjpeg decodes at 1/8: 128x96, still >= 2x the input size.
    assert decoded_at == [(128, 96)] and min(decoded_at[0]) >= DRAFT_MARGIN * 32
    assert (stats.width, stats.height) == (1024, 768)  # the file's size, not the reduced one
    with Image.open(path) as image:
        image.load()
        full = _formula(image, RGB)
    difference = np.abs(tensor - full) * np.asarray(RGB.std, dtype=np.float32)[:, None, None] * 255  # 8-bit units
    assert difference.mean() < 0.5 and difference.max() <= 3  # measured: 0.16 and 1


def test_a_jpeg_near_the_input_size_is_decoded_in_full(tmp_path):
    path = tmp_path / "small.jpg"
    _photo(path, (100, 60))  # less than DRAFT_MARGIN x 2 x 32 on a side: no reduction
    tensor, _ = load_image(path, RGB)
    with Image.open(path) as image:
        image.load()
        assert np.array_equal(tensor, _formula(image, RGB))


def test_chunks_decode_straight_into_their_batch_and_keep_bad_files_apart(tmp_path):
    paths = []
    for index in range(11):
        path = tmp_path / f"{index:02d}.png"
        Image.fromarray(np.full((40, 60), index * 20, dtype=np.uint8), "L").save(path)
        paths.append(path)
    (tmp_path / "05.png").write_bytes(b"")  # zero bytes
    paths[8] = tmp_path / "missing.png"
    chunks = list(decode_chunks(paths, GRAY, chunk_size=6, workers=2))
    assert [c.indices for c in chunks] == [list(range(6)), list(range(6, 11))]
    first, second = chunks
    assert first.good == [0, 1, 2, 3, 4] and second.good == [0, 1, 3, 4]
    assert "0 bytes" in first.errors[5] and "missing.png" in second.errors[2]
    assert first.stats[5] is None and first.batch.shape == (5, 1, 32, 48)
    for chunk in chunks:
        for row, position in enumerate(chunk.good):
            assert np.array_equal(chunk.batch[row], load_image(paths[chunk.indices[position]], GRAY)[0])


def test_an_unreadable_file_is_named(tmp_path):
    path = tmp_path / "not-an-image.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    with pytest.raises(ValidationError, match="not-an-image.png"):
        load_image(path, GRAY)
