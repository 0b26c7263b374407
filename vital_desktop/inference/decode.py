"""Image files to model input tensors: decode, upright, 8-bit, colour mode, resize, normalise.

Used by training and by every prediction path, so what a model is trained on and what it is
asked about are prepared by the same code. The steps (see `preprocess_image`):

1. decode the file with Pillow; a JPEG much larger than the model input is decoded at a
   reduced scale (`Image.draft`, libjpeg's DCT scaling to 1/2, 1/4 or 1/8) that still keeps at
   least `DRAFT_MARGIN` times the input size, so the resize below still antialiases;
2. apply the EXIF orientation, bring 16-bit and float images to 8 bits (`to_display_depth`);
3. convert to the model's colour mode and stretch to its input size (bilinear, antialiased);
4. map each 8-bit value through a 256-entry table of ``(value / 255 - mean) / std`` (float32:
   the same numbers as computing it per pixel) straight into the caller's batch buffer.

`decode_chunks` runs this in a thread pool (Pillow's decoders and resampling release the
GIL) one chunk ahead of the caller, so the caller's inference overlaps the next chunk's
decoding.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress

if TYPE_CHECKING:
    from vital_desktop.inference.classifier import PreprocessSpec

#: A JPEG is decoded at 1/2, 1/4 or 1/8 scale only while that keeps at least this many times
#: the model's input size on both sides (`Image.draft`); the bilinear resize does the rest.
DRAFT_MARGIN = 2
#: Images per decoding task: small enough to balance the pool, large enough that the
#: per-task overhead (a future, a lock) stays far below one image's decoding.
TASK_IMAGES = 8
#: Pillow modes that hold more than 8 bits per sample (16-bit PNG/TIFF open as "I" or "I;16*").
HIGH_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_LEVELS = np.arange(256, dtype=np.float64)


@dataclass(frozen=True)
class ImageStats:
    """Input statistics kept with every prediction so monitoring can see drift."""

    mean: float  # of the resized image, 0..255 units, all channels
    std: float
    width: int  # of the original file
    height: int


def to_display_depth(image: Image.Image, *, in_place: bool = False) -> Image.Image:
    """Apply the EXIF orientation and bring a 16-bit or float image to 8 bits per sample.

    16-bit samples are divided by 257 (65535 → 255: the full 16-bit range maps onto 0..255, so
    a 12-bit camera's images stay dark rather than being stretched per image); float images in
    [0, 1] are scaled by 255, other float images are treated as 16-bit. Palette, CMYK and
    alpha images are converted by Pillow's rules when the colour mode is applied.
    `in_place=True` turns an image the caller owns upright without copying it.
    """
    if in_place:
        ImageOps.exif_transpose(image, in_place=True)
    else:
        image = ImageOps.exif_transpose(image) or image
    if image.mode in HIGH_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float64)
        finite = values[np.isfinite(values)]
        values = values * 255.0 if image.mode == "F" and finite.size and finite.max() <= 1.0 else values / 257.0
        values = np.nan_to_num(values, nan=0.0, posinf=255.0, neginf=0.0)
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), mode="L")
    return image


@lru_cache(maxsize=64)
def _lookup(mean_values: tuple[float, ...], std_values: tuple[float, ...]) -> np.ndarray:
    """(channels, 256) float32: ``(v / 255 - mean) / std`` for every 8-bit value, per channel."""
    levels = np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0)
    mean = np.asarray(mean_values, dtype=np.float32)[:, None]
    std = np.asarray(std_values, dtype=np.float32)[:, None]
    return np.ascontiguousarray((levels - mean) / std, dtype=np.float32)


def _prepare(image: Image.Image, spec: PreprocessSpec, out: np.ndarray, size: tuple[int, int],
             *, in_place: bool) -> ImageStats:
    """Steps 2-4 of the module docstring on a loaded image, written into `out` (C, H, W float32)."""
    image = to_display_depth(image, in_place=in_place)
    if image.mode != spec.color_mode:
        image = image.convert(spec.color_mode)
    target = (spec.input_size[1], spec.input_size[0])
    if image.size != target:
        image = image.resize(target, Image.Resampling.BILINEAR)
    pixels = np.asarray(image)
    lut = _lookup(tuple(spec.mean), tuple(spec.std))
    if pixels.ndim == 2:
        np.take(lut[0], pixels, out=out[0], mode="clip")
    else:
        for channel in range(out.shape[0]):
            np.take(lut[channel], pixels[:, :, channel], out=out[channel], mode="clip")
    counts = np.asarray(image.histogram(), dtype=np.float64).reshape(-1, 256).sum(axis=0)  # every band's values
    mean = float(counts @ _LEVELS) / pixels.size
    spread = math.sqrt(max(float(counts @ (_LEVELS - mean) ** 2) / pixels.size, 0.0))
    return ImageStats(mean=mean, std=spread, width=size[0], height=size[1])


def preprocess_image(image: Image.Image, spec: PreprocessSpec) -> tuple[np.ndarray, ImageStats]:
    """Contract preprocessing of one decoded image: returns the CHW float32 tensor and its statistics.

    The image is stretched to the input size (bilinear, antialiased when shrinking): the whole
    field of view is kept whatever the aspect ratio, at the cost of distorting it. The caller's
    image is not changed.
    """
    out = np.empty((spec.channels, *spec.input_size), dtype=np.float32)
    return out, _prepare(image, spec, out, image.size, in_place=False)


def decode_into(path: Path | str, spec: PreprocessSpec, out: np.ndarray) -> ImageStats:
    """Decode and preprocess one image file into `out` (C, H, W float32); a file that cannot be
    read is a `ValidationError` naming it (and `out` is then left undefined)."""
    try:
        with Image.open(path) as image:
            size = image.size
            if image.format in ("JPEG", "MPO"):
                side = DRAFT_MARGIN * max(spec.input_size)
                image.draft(None, (side, side))
            image.load()
            return _prepare(image, spec, out, size, in_place=True)
    except FileNotFoundError as exc:
        raise ValidationError(f"image not found: {path}") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        if _is_empty(path):
            raise ValidationError(f"cannot read image {path}: the file is empty (0 bytes)") from exc
        raise ValidationError(f"cannot read image {path}: {exc}") from exc


def _is_empty(path: Path | str) -> bool:
    try:
        return Path(path).stat().st_size == 0
    except OSError:
        return False


def load_image(path: Path | str, spec: PreprocessSpec) -> tuple[np.ndarray, ImageStats]:
    """Decode and preprocess one image file: its CHW float32 tensor and statistics (see `decode_into`)."""
    out = np.empty((spec.channels, *spec.input_size), dtype=np.float32)
    return out, decode_into(path, spec, out)


def is_grayscale_file(path: Path) -> bool:
    """Whether an image file holds one channel (read from its header, without decoding the pixels)."""
    try:
        with Image.open(path) as image:
            return image.mode in ("1", "L", "LA", "P;L", *HIGH_DEPTH_MODES) or (
                image.mode == "P" and _palette_is_gray(image))
    except (OSError, ValueError, SyntaxError):
        return True  # unreadable: decoding reports it by name later


def _palette_is_gray(image: Image.Image) -> bool:
    palette = image.getpalette() or []
    triples = np.asarray(palette[: (len(palette) // 3) * 3]).reshape(-1, 3)
    return bool(triples.size) and bool(np.all(triples.max(axis=1) == triples.min(axis=1)))


@dataclass
class DecodedChunk:
    """One chunk of decoded images: the positions in the input, the batch of those that decoded,
    and per position its statistics and error (None when it decoded)."""

    indices: list[int]
    batch: np.ndarray
    good: list[int]  # positions (into `indices`) whose image is in `batch`, in order
    stats: list[ImageStats | None]
    errors: list[str | None]
    decode_ms: list[float]
    #: how long the caller waited for this chunk after asking for it (0 when decoding kept ahead)
    waited_ms: float = 0.0


_Decoded = tuple[ImageStats | None, str | None, float]


def decode_chunks(
    paths: Sequence[Path | str], spec: PreprocessSpec, *, chunk_size: int = 64, workers: int = 2,
    progress: Progress | None = None,
) -> Iterator[DecodedChunk]:
    """Yield `DecodedChunk`s, decoding the next chunk in a thread pool while the caller works on this one.

    Each chunk is decoded straight into its own batch buffer (no per-image tensors, no stacking)
    by tasks of `TASK_IMAGES` images. Unreadable images carry their error instead of stopping.
    """
    names = [str(p) for p in paths]
    chunk_size = max(1, int(chunk_size))
    shape = (spec.channels, *spec.input_size)

    def decode_part(buffer: np.ndarray, first: int, stop: int, base: int) -> list[_Decoded]:
        done: list[_Decoded] = []
        for index in range(first, stop):
            started = time.perf_counter()
            try:
                stats = decode_into(names[index], spec, buffer[index - base])
                done.append((stats, None, (time.perf_counter() - started) * 1000.0))
            except ValidationError as exc:
                done.append((None, exc.message, (time.perf_counter() - started) * 1000.0))
        return done

    def submit(pool: ThreadPoolExecutor, start: int) -> tuple[int, np.ndarray, list[Future[list[_Decoded]]]]:
        stop = min(start + chunk_size, len(names))
        buffer = np.empty((stop - start, *shape), dtype=np.float32)
        futures = [pool.submit(decode_part, buffer, first, min(first + TASK_IMAGES, stop), start)
                   for first in range(start, stop, TASK_IMAGES)]
        return start, buffer, futures

    def assemble(start: int, buffer: np.ndarray, futures: list[Future[list[_Decoded]]]) -> DecodedChunk:
        asked = time.perf_counter()
        results = [r for future in futures for r in future.result()]
        waited_ms = (time.perf_counter() - asked) * 1000.0
        good = [i for i, r in enumerate(results) if r[0] is not None]
        batch = buffer if len(good) == len(results) else buffer[good]
        return DecodedChunk(list(range(start, start + len(results))), batch, good, [r[0] for r in results],
                            [r[1] for r in results], [r[2] for r in results], waited_ms)

    starts = list(range(0, len(names), chunk_size))
    pool = ThreadPoolExecutor(max_workers=max(1, int(workers)), thread_name_prefix="vital-decode")
    try:
        pending = submit(pool, starts[0]) if starts else None
        for position in range(len(starts)):
            if progress is not None:
                progress.check()
            assert pending is not None
            current = pending
            if position + 1 < len(starts):
                pending = submit(pool, starts[position + 1])
            yield assemble(*current)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
