"""The neutral shapes every format reads into and writes from, and the format registry entry.

Coordinates are image pixels, origin top-left, x right, y down (the shared label-data
contract). A reader turns a file into `ImageLabels` (one per image it names); the importer
maps each to a sheet item and to label data of the chosen label type. A writer receives an
`ExportSet` (the label type, and each item with its image size and label data).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vital_desktop.core.errors import ValidationError

#: Decimal places kept when a format's coordinates are converted to pixels (YOLO's normalised
#: values, Label Studio's percentages): 1e-6 px, far below any annotation's precision, and it
#: makes export → import give back the very numbers that were exported.
COORD_DECIMALS = 6
SHAPE_KINDS = ("boxes", "polygons", "points")
CLASS_KINDS = ("classification", "multilabel")


@dataclass
class Shape:
    """One annotation: a box (x, y, width, height), a polygon (>= 3 vertices) or a point."""

    kind: str  # "box" | "polygon" | "point"
    label: str
    box: tuple[float, float, float, float] | None = None
    points: list[tuple[float, float]] = field(default_factory=list)
    where: str = ""  # "file.json annotation 7", for error messages


@dataclass
class ImageLabels:
    """What one file says about one image."""

    file_name: str  # as the file names the image (relative path or bare name)
    where: str  # "file.json image 3" — names the row in error messages
    width: int | None = None
    height: int | None = None
    shapes: list[Shape] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    #: units of the shapes' coordinates: "pixels", "fraction" (of the image size, YOLO) or
    #: "percent" (Label Studio); the importer converts to pixels once it knows the image size
    scale: str = "pixels"


@dataclass(frozen=True)
class TypeSpec:
    """What a format needs to know about a label type."""

    name: str
    kind: str  # classification | multilabel | boxes | polygons | points | text | number | structured
    classes: list[str]
    class_field: str | None


@dataclass
class ExportItem:
    sheet: str
    item_ref: str
    image_path: str | None  # relative to the sheet's image root
    absolute_path: Path | None
    width: int | None
    height: int | None
    label_data: dict
    split: str = "train"


@dataclass
class ExportSet:
    spec: TypeSpec
    items: list[ExportItem]
    #: item_ref → model predictions (for formats that carry pre-annotations)
    predictions: dict[str, list[dict]] = field(default_factory=dict)
    rows: Any = None  # the full Arrow table, for the tabular formats


Reader = Callable[[Path], list[ImageLabels]]
Writer = Callable[[Path, ExportSet], None]
Detector = Callable[[Path], bool]


@dataclass(frozen=True)
class Format:
    """A registry entry. `layout` says whether the format is one file or a folder."""

    name: str
    title: str
    layout: str = "file"  # "file" | "folder"
    read: Reader | None = None
    rows: bool = False  # one row per label naming its sheet and type (imported by `labels.import_labels`)
    #: when a format has both a `read` and rows, whether this file is the row kind
    prefers_rows: Callable[[Path], bool] | None = None
    write: Writer | None = None
    detect: Detector | None = None
    kinds: tuple[str, ...] = ()  # label-type kinds it holds (empty: any, the tabular formats)
    read_kinds: tuple[str, ...] = ()  # kinds its reader fills, when they differ from `kinds`
    predictions: bool = False  # whether it carries model predictions as pre-annotations


# --- label data ⇄ shapes ---------------------------------------------------------------------


def _num(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ValidationError(f"{where}: {what} must be a number, got {value!r}") from None
    value = float(value)
    if not math.isfinite(value):
        raise ValidationError(f"{where}: {what} is not a finite number ({value})")
    return value


def number(value: Any, what: str, where: str) -> float:
    """A finite float, or a `ValidationError` naming the row and the field."""
    return _num(value, what, where)


def tidy(value: float) -> float | int:
    """Round a converted coordinate to `COORD_DECIMALS`; whole numbers become ints."""
    value = round(value, COORD_DECIMALS)
    return int(value) if value == int(value) else value


def shapes_from_data(spec: TypeSpec, data: dict) -> list[Shape]:
    """The shapes a boxes/polygons/points label holds."""
    out: list[Shape] = []
    for box in data.get("boxes", []) if spec.kind == "boxes" else []:
        out.append(Shape("box", box["label"], box=(box["x"], box["y"], box["width"], box["height"])))
    for poly in data.get("polygons", []) if spec.kind == "polygons" else []:
        out.append(Shape("polygon", poly["label"], points=[(p[0], p[1]) for p in poly["points"]]))
    for point in data.get("points", []) if spec.kind == "points" else []:
        out.append(Shape("point", point["label"], points=[(point["x"], point["y"])]))
    return out


def classes_from_data(spec: TypeSpec, data: dict) -> list[str]:
    """The class names a classification/multilabel label holds."""
    if spec.kind == "multilabel":
        return [str(c) for c in data.get("classes", [])]
    if spec.class_field and data.get(spec.class_field) is not None:
        return [str(data[spec.class_field])]
    return []


_SHAPE_FOR_KIND = {"boxes": "box", "polygons": "polygon", "points": "point"}


def data_from_image(spec: TypeSpec, image: ImageLabels) -> dict:
    """Label data of `spec`'s kind from what a file said about one image."""
    if spec.kind in CLASS_KINDS:
        if spec.kind == "multilabel":
            return {"classes": list(image.classes)}
        if len(image.classes) != 1:
            raise ValidationError(f"{image.where}: a {spec.name} label needs exactly one class, "
                                  f"found {len(image.classes)} ({', '.join(image.classes) or 'none'})")
        return {spec.class_field or "class": image.classes[0]}
    wanted = _SHAPE_FOR_KIND.get(spec.kind)
    if wanted is None:
        raise ValidationError(f"label type {spec.name!r} is of kind {spec.kind}: no annotation format holds it")
    shapes = [s for s in image.shapes if s.kind == wanted]
    others = sorted({s.kind for s in image.shapes if s.kind != wanted})
    if others and not shapes:
        raise ValidationError(f"{image.where}: holds {', '.join(others)} shapes but label type {spec.name!r} "
                              f"holds {spec.kind}")
    if spec.kind == "boxes":
        return {"boxes": [{"label": s.label, "x": s.box[0], "y": s.box[1], "width": s.box[2], "height": s.box[3]}
                          for s in shapes if s.box is not None]}
    if spec.kind == "polygons":
        return {"polygons": [{"label": s.label, "points": [[x, y] for x, y in s.points]} for s in shapes]}
    return {"points": [{"label": s.label, "x": s.points[0][0], "y": s.points[0][1]} for s in shapes]}


def labels_used(images: list[ImageLabels]) -> set[str]:
    return {s.label for img in images for s in img.shapes} | {c for img in images for c in img.classes}


# --- writing -------------------------------------------------------------------------------


def write_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Write a file or a folder under a temporary name beside `target`, then rename it into place.

    An existing folder at `target` is replaced only after the new one is complete.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not os.access(target.parent, os.W_OK):
        raise ValidationError(f"cannot write to {target.parent}: permission denied")
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    payload = tmp / "out"
    try:
        write(payload)
        if target.is_dir() and payload.is_dir():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(payload, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(payload, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
