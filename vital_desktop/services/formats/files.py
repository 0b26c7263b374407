"""Walking label folders and copying images into export folders, safely."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vital_desktop.core.errors import ValidationError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif")
MAX_FILES = 2_000_000


def walk(root: Path, suffixes: tuple[str, ...] | None = None) -> list[tuple[str, Path]]:
    """(relative POSIX path, path) of every file under `root`, sorted; hidden entries skipped.

    A symlink that leads outside `root` is refused, naming it.
    """
    root = Path(root)
    base = root.resolve()
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(dirpath)
        for d in list(dirnames):
            if (here / d).is_symlink():
                if not (here / d).resolve().is_relative_to(base):
                    raise ValidationError(f"{(here / d).relative_to(root).as_posix()} is a link leaving {root}")
                dirnames.remove(d)  # followed links inside the folder would list files twice
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = here / name
            if suffixes is not None and path.suffix.lower() not in suffixes:
                continue
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() and not path.resolve().is_relative_to(base):
                raise ValidationError(f"{rel} is a link leaving {root}")
            found.append((rel, path))
            if len(found) > MAX_FILES:
                raise ValidationError(f"{root} holds more than {MAX_FILES} files")
    return found


def place_image(source: Path | None, target: Path) -> None:
    """Put an image into an export folder: a hard link where the file system allows, else a copy."""
    if source is None or not source.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
