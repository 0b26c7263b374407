"""COCO object detection JSON (cocodataset.org/#format-data): boxes and polygons.

``images`` give ``file_name``, ``width``, ``height``; ``annotations`` give ``bbox`` as
``[x, y, width, height]`` in pixels and ``segmentation`` as a list of flat ``[x1, y1, x2, y2,
…]`` polygons (an RLE mask — a dict — is refused: this product stores polygons);
``categories`` map ids to names. Export writes both ``bbox`` and ``segmentation`` (a box's outline for boxes) and
every image's size, so pycocotools loads it and rasterises every annotation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vital_desktop.core.errors import ValidationError
from vital_desktop.services.formats.base import ExportSet, Format, ImageLabels, Shape, number, shapes_from_data
from vital_desktop.services.formats.jsonio import expect, load_json, peek_json


def detect(path: Path) -> bool:
    data = peek_json(path)
    return isinstance(data, dict) and "images" in data and "annotations" in data


def read(path: Path) -> list[ImageLabels]:
    data = expect(load_json(path), dict, "the top level", path.name)
    name = path.name
    categories: dict[Any, str] = {}
    for i, cat in enumerate(expect(data.get("categories", []), list, "categories", name)):
        cat = expect(cat, dict, "a category", f"{name} category {i}")
        categories[cat.get("id")] = str(cat.get("name"))
    images: dict[Any, ImageLabels] = {}
    for i, img in enumerate(expect(data.get("images"), list, "images", name)):
        where = f"{name} image {i}"
        img = expect(img, dict, "an image", where)
        file_name = expect(img.get("file_name"), str, "file_name", where)
        width = img.get("width")
        height = img.get("height")
        if width is not None:
            width = int(number(width, "width", where))
        if height is not None:
            height = int(number(height, "height", where))
        if img.get("id") in images:
            raise ValidationError(f"{where}: image id {img.get('id')!r} is used twice")
        images[img.get("id")] = ImageLabels(file_name, f"{name} image id {img.get('id')} ({file_name})", width, height)
    for i, ann in enumerate(expect(data.get("annotations"), list, "annotations", name)):
        where = f"{name} annotation {i}"
        ann = expect(ann, dict, "an annotation", where)
        where = f"{name} annotation id {ann.get('id', i)}"
        image = images.get(ann.get("image_id"))
        if image is None:
            raise ValidationError(f"{where}: unknown image id {ann.get('image_id')!r}")
        if ann.get("category_id") not in categories:
            raise ValidationError(f"{where}: unknown category id {ann.get('category_id')!r}")
        label = categories[ann["category_id"]]
        segmentation = ann.get("segmentation")
        if isinstance(segmentation, dict) or ann.get("iscrowd") == 1 and segmentation:
            raise ValidationError(f"{where}: RLE masks are not supported (draw polygons instead)")
        if "bbox" in ann:
            bbox = expect(ann["bbox"], list, "bbox", where)
            if len(bbox) != 4:
                raise ValidationError(f"{where}: bbox must have 4 numbers [x, y, width, height], has {len(bbox)}")
            x, y, w, h = (number(v, f"bbox[{k}]", where) for k, v in enumerate(bbox))
            image.shapes.append(Shape("box", label, box=(x, y, w, h), where=where))
        for ring_no, ring in enumerate(expect(segmentation or [], list, "segmentation", where)):
            ring = expect(ring, list, "a segmentation polygon", where)
            if len(ring) % 2:
                raise ValidationError(f"{where}: segmentation polygon {ring_no} has an odd number of coordinates")
            values = [number(v, "segmentation coordinate", where) for v in ring]
            image.shapes.append(Shape("polygon", label, points=list(zip(values[0::2], values[1::2], strict=True)), where=where))
    return list(images.values())


def _area(points: list[tuple[float, float]]) -> float:
    return abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1], strict=True))) / 2


def write(target: Path, export: ExportSet) -> None:
    spec = export.spec
    names = list(spec.classes)
    for item in export.items:
        for shape in shapes_from_data(spec, item.label_data):
            if shape.label not in names:
                names.append(shape.label)
    cat_ids = {n: i + 1 for i, n in enumerate(names)}
    images: list[dict] = []
    annotations: list[dict] = []
    for image_id, item in enumerate(export.items, start=1):
        images.append({"id": image_id, "file_name": item.image_path or item.item_ref, "width": item.width,
                       "height": item.height, "vital_item_ref": item.item_ref, "vital_sheet": item.sheet})
        for shape in shapes_from_data(spec, item.label_data):
            if shape.kind == "box":
                assert shape.box is not None
                x, y, w, h = shape.box
                ring = [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]
                area = w * h
                # the box's outline as its segmentation too, so mask tools (pycocotools) can use it
                segmentation: list = [[c for point in ring for c in point]]
            else:
                ring = shape.points
                xs, ys = [p[0] for p in ring], [p[1] for p in ring]
                x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
                area = _area(ring)
                segmentation = [[c for point in ring for c in point]]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cat_ids[shape.label],
                                "bbox": [x, y, w, h], "segmentation": segmentation, "area": area, "iscrowd": 0})
    coco = {"info": {"description": f"VITAL Desktop canonical labels ({spec.name})"}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cat_ids.items()]}
    target.write_text(json.dumps(coco, indent=1), encoding="utf-8")


FORMATS = [Format("coco", "COCO JSON (boxes, polygons)", read=read, write=write, detect=detect,
                  kinds=("boxes", "polygons"))]
