"""The one guard between a sheet item and its image file: is this still the file the store indexed?

Prediction (`services.predict`) and the labeling tool's image loading (`ui.images`) both ask it
before they decode an item's image, so neither classifies nor shows a picture that differs from
what the sheet's index (and the labels made on it) refer to:

- the path must stay inside the sheet's image root once links are resolved (a file replaced by
  a symbolic link to somewhere else is refused, wherever the link points);
- the file must exist;
- its SHA-256 must match the hash recorded at import or at the last rescan (a changed file is
  a new item version only after `vital sheet rescan`, which flags the labels made on the old
  content).

IO only (no store): callers pass what the index says (`ItemInfo` or its fields). Pure of Qt.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

#: Read size for hashing (one read for most image files).
_BLOCK = 1 << 20


@dataclass(frozen=True)
class ImageAccess:
    """What the guard found for one item: `problem` is None when the image may be used."""

    item_ref: str | None
    path: str
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def root_of(absolute_path: str, image_path: str) -> str:
    """The image root an item's absolute path was built from (`absolute = root / image_path`)."""
    depth = len(Path(image_path).parts)
    return str(Path(absolute_path).parents[depth - 1]) if depth else str(Path(absolute_path).parent)


def check_image(root: str, image_path: str, expected_sha256: str | None, *, item_ref: str | None = None,
                verify_hash: bool = True) -> ImageAccess:
    """Check one item's image file against the index; never raises (the problem is in the result)."""
    path = os.path.join(root, image_path)
    who = f"item {item_ref!r}" if item_ref else os.path.basename(path)
    rel = image_path.replace("\\", "/")
    if not rel or rel.startswith("/") or ".." in rel.split("/"):
        return ImageAccess(item_ref, path, f"{who}: the image path {image_path!r} leaves the sheet's image root")
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not _inside(real, real_root):
        return ImageAccess(item_ref, path, f"{who}: {image_path} is a link out of the sheet's image root "
                                           f"(to {real}); the image is not used")
    if not os.path.isfile(real):
        return ImageAccess(item_ref, path, f"{who}: the image file {path} is missing; rescan the sheet")
    if verify_hash and expected_sha256:
        try:
            actual = _sha256(real)
        except OSError as exc:
            return ImageAccess(item_ref, path, f"{who}: the image file {path} cannot be read ({exc.strerror or exc})")
        if actual != expected_sha256:
            return ImageAccess(item_ref, path, f"{who}: {image_path} changed since the sheet was indexed (its content "
                                               "hash differs); rescan the sheet (`vital sheet rescan`) before using it")
    return ImageAccess(item_ref, path)


def check_item(item: object) -> ImageAccess:
    """`check_image` for a `services.sheets.ItemInfo` (or anything with its fields)."""
    absolute = getattr(item, "absolute_image_path", None)
    relative = getattr(item, "image_path", None)
    ref = getattr(item, "item_ref", None)
    if not absolute or not relative:
        return ImageAccess(ref, absolute or "", f"item {ref!r} has no image file")
    return check_image(root_of(absolute, relative), relative, getattr(item, "file_sha256", None), item_ref=ref)


def check_images(root: str, items: Sequence[tuple[str | None, str, str | None]], *,
                 workers: int = 2) -> list[ImageAccess]:
    """`check_image` for many (item_ref, image_path, expected sha256) in a thread pool (hashing releases the GIL)."""
    if len(items) < 8 or workers <= 1:
        return [check_image(root, rel, sha, item_ref=ref) for ref, rel, sha in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vital-image-guard") as pool:
        return list(pool.map(lambda row: check_image(root, row[1], row[2], item_ref=row[0]), items))
