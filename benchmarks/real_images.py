"""Real image sets nobody here made, written as image files outside the project (for benchmarks).

Each set is built from images that ship inside PyPI packages, so it works offline:

- ``digits``: scikit-learn's bundled handwritten digits (1,797 scans, 8x8, 10 classes told apart
  by shape), as 8-bit grayscale PNGs.
- ``textures``: scikit-image's brick, grass and gravel photographs (512x512), cut into crops of
  48-128 px with random flips, as 16-bit grayscale TIFFs (classes told apart by texture).
- ``scenes``: seven of scikit-image's colour photographs (astronaut, coffee, chelsea, rocket,
  immunohistochemistry, Hubble deep field, retina), cut into crops of 56-160 px with random
  aspect ratios, as RGB JPEGs and BMPs (colour and texture).

Crops are cut inside the cells of a 4x4 grid over each photograph; the cells on one diagonal
give only held-out crops, the others only training crops, so no held-out pixel was ever seen.
Needs scikit-image for the two photograph sets (``pip install scikit-image``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass
class ImageSet:
    name: str
    kind: str
    folder: Path
    train: list[tuple[str, str]]  # (file name, class)
    held_out: list[tuple[str, str]]


def digits(root: Path, seed: int = 0) -> ImageSet:
    from sklearn.datasets import load_digits

    data = load_digits()
    folder = root / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.target))
    cut = int(0.7 * len(order))
    rows = []
    for index in order:
        name = f"digit_{index:04d}.png"
        path = folder / name
        if not path.exists():
            Image.fromarray((data.images[index] * 255 / 16).astype(np.uint8), "L").save(path)
        rows.append((name, f"d{data.target[index]}"))
    return ImageSet("digits", "shape, grayscale 8x8 PNG", folder, rows[:cut], rows[cut:])


def _crops(photos: dict[str, np.ndarray], folder: Path, per_class: int, sizes: tuple[int, int], seed: int,
           write) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    rng = np.random.default_rng(seed)
    train, held = [], []
    for cls, photo in photos.items():
        h, w = photo.shape[:2]
        ch, cw = h // 4, w // 4
        for n in range(per_class):
            held_out = n % 4 == 0  # a quarter of the crops, from the diagonal cells
            if held_out:
                i = j = int(rng.integers(4))
            else:
                while True:
                    i, j = int(rng.integers(4)), int(rng.integers(4))
                    if i != j:
                        break
            ph = int(rng.integers(sizes[0], min(sizes[1], ch) + 1))
            pw = int(np.clip(ph * rng.uniform(0.7, 1.4), sizes[0], cw))
            y = i * ch + int(rng.integers(0, ch - ph + 1))
            x = j * cw + int(rng.integers(0, cw - pw + 1))
            crop = photo[y : y + ph, x : x + pw]
            if rng.random() < 0.5:
                crop = crop[:, ::-1]
            if rng.random() < 0.5:
                crop = crop[::-1]
            name = write(folder, f"{cls}_{n:04d}", np.ascontiguousarray(crop), n)
            (held if held_out else train).append((name, cls))
    return train, held


def textures(root: Path, per_class: int = 240, seed: int = 0) -> ImageSet:
    from skimage import data

    folder = root / "textures"
    folder.mkdir(parents=True, exist_ok=True)
    photos = {name: getattr(data, name)() for name in ("brick", "grass", "gravel")}

    def write(folder: Path, stem: str, crop: np.ndarray, n: int) -> str:
        name = f"{stem}.tif"
        Image.fromarray(crop.astype(np.uint16) * 257).save(folder / name)  # 16-bit samples
        return name

    train, held = _crops(photos, folder, per_class, (48, 128), seed, write)
    return ImageSet("textures", "texture, 16-bit grayscale TIFF, 48-128 px", folder, train, held)


def scenes(root: Path, per_class: int = 160, seed: int = 0) -> ImageSet:
    from skimage import data

    folder = root / "scenes"
    folder.mkdir(parents=True, exist_ok=True)
    names = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
    photos = {name: getattr(data, name)()[..., :3] for name in names}

    def write(folder: Path, stem: str, crop: np.ndarray, n: int) -> str:
        name = f"{stem}.{'bmp' if n % 3 == 0 else 'jpg'}"
        Image.fromarray(crop.astype(np.uint8), "RGB").save(folder / name, **({"quality": 90} if n % 3 else {}))
        return name

    train, held = _crops(photos, folder, per_class, (56, 160), seed, write)
    return ImageSet("scenes", "colour photographs, RGB JPEG/BMP, 56-160 px, any aspect", folder, train, held)


SETS = {"digits": digits, "textures": textures, "scenes": scenes}
