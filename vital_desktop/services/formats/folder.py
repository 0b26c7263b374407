"""Image-folder classification: ``ROOT/<class>/<image>`` (also ``ROOT/<split>/<class>/<image>``,
the layout YOLO's classify task and torchvision's ImageFolder read).

Import reads the class from the folder; export writes each labelled image (hard link or copy)
under its class's folder, and nothing else.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from vital_desktop.core.errors import ValidationError
from vital_desktop.services.formats.base import ExportSet, Format, ImageLabels, classes_from_data
from vital_desktop.services.formats.files import IMAGE_SUFFIXES, place_image, walk

SPLITS = ("train", "val", "valid", "test")


def _layout(root: Path) -> list[tuple[str, str, str]]:
    """(class, file name, relative path) of every image under `root`."""
    out = []
    for rel, _ in walk(root, IMAGE_SUFFIXES):
        parts = PurePosixPath(rel).parts
        if len(parts) >= 3 and parts[0].lower() in SPLITS:
            parts = parts[1:]
        if len(parts) < 2:
            raise ValidationError(f"{rel} is not inside a class folder (expected {root.name}/<class>/<image>)")
        out.append((parts[0], "/".join(parts[1:]), rel))
    return out


def detect(path: Path) -> bool:
    if not path.is_dir():
        return False
    subdirs = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")]
    loose = [p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")]
    return bool(subdirs) and not loose and not (path / "labels").is_dir() and not any(
        p.suffix.lower() in (".json", ".xml", ".txt") for sub in subdirs for p in sub.iterdir() if p.is_file())


def read(path: Path) -> list[ImageLabels]:
    if not path.is_dir():
        raise ValidationError(f"{path} is not a folder (the image-folder layout is <folder>/<class>/<image>)")
    images = [ImageLabels(name, f"{rel}", classes=[cls]) for cls, name, rel in _layout(path)]
    if not images:
        raise ValidationError(f"{path} holds no images in class folders")
    return images


def write(target: Path, export: ExportSet) -> None:
    target.mkdir(parents=True)
    names = [PurePosixPath(i.image_path or i.item_ref).name for i in export.items]
    unique = len(set(names)) == len(names)
    for item, name in zip(export.items, names, strict=True):
        classes = classes_from_data(export.spec, item.label_data)
        if len(classes) != 1:
            continue  # an image-folder holds one class per image
        place_image(item.absolute_path, target / classes[0] / (name if unique else (item.image_path or name)))


FORMATS = [Format("folder", "image folder per class (<class>/<image>)", read=read, write=write, detect=detect,
                  layout="folder", kinds=("classification",))]
