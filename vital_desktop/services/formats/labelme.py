"""labelme JSON (github.com/wkentaro/labelme), one file per image, in both dialects.

labelme writes ``imagePath``, ``imageWidth``/``imageHeight`` and ``shapes`` of
``{label, points, shape_type}`` (``rectangle`` = two opposite corners, ``polygon``, ``point``);
image-level classes are ``flags`` set to true. X-AnyLabeling writes the same file with more
keys (``description``, ``difficult``, ``attributes``) and rectangles as four corners; both
read here (this module is written from the file format, not from either program's code).
Rotated boxes, circles, lines and masks are refused by name.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

from vital_desktop.core.errors import ValidationError
from vital_desktop.services.formats.base import (
    ExportSet,
    Format,
    ImageLabels,
    Shape,
    classes_from_data,
    number,
    shapes_from_data,
)
from vital_desktop.services.formats.files import walk
from vital_desktop.services.formats.jsonio import expect, load_json, peek_json


def _is_labelme(data: object) -> bool:
    return isinstance(data, dict) and "shapes" in data and "imagePath" in data


def detect(path: Path) -> bool:
    if path.is_file():
        return _is_labelme(peek_json(path))
    if path.is_dir():
        files = [p for _, p in walk(path, (".json",))][:3]
        return bool(files) and all(_is_labelme(peek_json(p)) for p in files)
    return False


def _points(raw: object, where: str) -> list[tuple[float, float]]:
    out = []
    for k, point in enumerate(expect(raw, list, "points", where)):
        point = expect(point, list, f"point {k}", where)
        if len(point) != 2:
            raise ValidationError(f"{where}: point {k} must be [x, y]")
        out.append((number(point[0], f"point {k} x", where), number(point[1], f"point {k} y", where)))
    return out


def read_file(path: Path, where: str | None = None) -> ImageLabels:
    where = where or path.name
    data = expect(load_json(path), dict, "the top level", where)
    if not _is_labelme(data):
        raise ValidationError(f"{where}: not a labelme file (no 'shapes' and 'imagePath')")
    image_path = expect(data["imagePath"], str, "imagePath", where)
    image = ImageLabels(image_path, where)
    for key, attr in (("imageWidth", "width"), ("imageHeight", "height")):
        if data.get(key) is not None:
            setattr(image, attr, int(number(data[key], key, where)))
    flags = data.get("flags") or {}
    image.classes = [str(k) for k, v in expect(flags, dict, "flags", where).items() if v is True]
    for k, raw in enumerate(expect(data["shapes"], list, "shapes", where)):
        shape_where = f"{where} shape {k}"
        raw = expect(raw, dict, "a shape", shape_where)
        label = str(expect(raw.get("label"), str, "label", shape_where))
        kind = raw.get("shape_type") or "polygon"
        points = _points(raw.get("points"), shape_where)
        if kind == "rectangle":
            if len(points) not in (2, 4):
                raise ValidationError(f"{shape_where}: a rectangle needs 2 (or 4) corner points, has {len(points)}")
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            image.shapes.append(Shape("box", label, box=(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)),
                                      where=shape_where))
        elif kind == "polygon":
            image.shapes.append(Shape("polygon", label, points=points, where=shape_where))
        elif kind == "point":
            if len(points) != 1:
                raise ValidationError(f"{shape_where}: a point has one [x, y], has {len(points)}")
            image.shapes.append(Shape("point", label, points=points, where=shape_where))
        else:
            raise ValidationError(f"{shape_where}: shape type {kind!r} is not supported "
                                  "(rectangle, polygon and point are)")
    return image


def read(path: Path) -> list[ImageLabels]:
    if path.is_file():
        return [read_file(path)]
    files = walk(path, (".json",))
    if not files:
        raise ValidationError(f"{path} holds no .json files")
    images = []
    for rel, p in files:
        image = read_file(p, rel)
        parent = PurePosixPath(rel).parent
        if str(parent) != "." and "/" not in image.file_name and not image.file_name.startswith(".."):
            image.file_name = (parent / image.file_name).as_posix()  # imagePath is relative to the JSON file
        images.append(image)
    return images


def write(target: Path, export: ExportSet) -> None:
    target.mkdir(parents=True)
    for item in export.items:
        rel = PurePosixPath(item.image_path or item.item_ref)
        shapes: list[dict] = []
        for shape in shapes_from_data(export.spec, item.label_data):
            if shape.kind == "box":
                assert shape.box is not None
                x, y, w, h = shape.box
                points, kind = [[x, y], [x + w, y + h]], "rectangle"
            else:
                points, kind = [list(p) for p in shape.points], shape.kind
            shapes.append({"label": shape.label, "points": points, "group_id": None, "description": "",
                           "shape_type": kind, "flags": {}, "mask": None})
        flags = {c: True for c in classes_from_data(export.spec, item.label_data)}
        doc = {"version": "5.5.0", "flags": flags, "shapes": shapes, "imagePath": rel.name, "imageData": None,
               "imageHeight": item.height, "imageWidth": item.width}
        out = target / rel.with_suffix(".json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")


FORMATS = [Format("labelme", "labelme / X-AnyLabeling JSON (one file per image)", read=read, write=write,
                  detect=detect, layout="folder", kinds=("boxes", "polygons", "points", "classification", "multilabel"))]
