"""Label Studio JSON exports (labelstud.io/guide/export): a list of tasks.

Each task has ``data`` naming the image and ``annotations`` whose ``result`` items are
``choices``, ``rectanglelabels``, ``polygonlabels`` or ``keypointlabels``; their ``value``
coordinates are percentages of ``original_width``/``original_height``. The newest
annotation that was not cancelled is taken. Export writes the same shape and adds each
model's latest prediction for the item as a pre-annotation (``predictions``).
"""

from __future__ import annotations

import json
from pathlib import Path

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
from vital_desktop.services.formats.jsonio import expect, load_json, peek_json

_IMAGE_KEYS = ("image", "img", "image_url", "url")


def detect(path: Path) -> bool:
    data = peek_json(path)
    return isinstance(data, list) and bool(data) and isinstance(data[0], dict) and "data" in data[0]


def _image_ref(task: dict, where: str) -> str:
    data = expect(task.get("data"), dict, "data", where)
    for key in _IMAGE_KEYS:
        if isinstance(data.get(key), str) and data[key].strip():
            value = data[key].strip()
            return value.split("?d=", 1)[-1] if "?d=" in value else value  # local-files URLs carry the path
    strings = [v for v in data.values() if isinstance(v, str)]
    if len(strings) == 1:
        return strings[0]
    raise ValidationError(f"{where}: data names no image (keys: {', '.join(data) or 'none'})")


def _labels(value: dict, key: str, where: str) -> list[str]:
    names = expect(value.get(key), list, key, where)
    if not names:
        raise ValidationError(f"{where}: {key} is empty")
    return [str(n) for n in names]


def _result(image: ImageLabels, item: dict, where: str) -> None:
    kind = item.get("type")
    value = expect(item.get("value"), dict, "value", where)
    for key, attr in (("original_width", "width"), ("original_height", "height")):
        if item.get(key) is not None and getattr(image, attr) is None:
            setattr(image, attr, int(number(item[key], key, where)))
    if kind == "choices":
        image.classes.extend(_labels(value, "choices", where))
    elif kind == "rectanglelabels":
        if value.get("rotation") not in (None, 0, 0.0):
            raise ValidationError(f"{where}: rotated rectangles are not supported (rotation {value['rotation']})")
        box = tuple(number(value.get(k), k, where) for k in ("x", "y", "width", "height"))
        for label in _labels(value, "rectanglelabels", where):
            image.shapes.append(Shape("box", label, box=box, where=where))  # type: ignore[arg-type]
    elif kind == "polygonlabels":
        points = []
        for k, p in enumerate(expect(value.get("points"), list, "points", where)):
            p = expect(p, list, f"point {k}", where)
            if len(p) != 2:
                raise ValidationError(f"{where}: point {k} must be [x, y]")
            points.append((number(p[0], f"point {k} x", where), number(p[1], f"point {k} y", where)))
        for label in _labels(value, "polygonlabels", where):
            image.shapes.append(Shape("polygon", label, points=points, where=where))
    elif kind == "keypointlabels":
        point = (number(value.get("x"), "x", where), number(value.get("y"), "y", where))
        for label in _labels(value, "keypointlabels", where):
            image.shapes.append(Shape("point", label, points=[point], where=where))
    elif kind in ("relation", "textarea", "rating", "number", "taxonomy", "labels"):
        return
    else:
        raise ValidationError(f"{where}: result type {kind!r} is not supported "
                              "(choices, rectanglelabels, polygonlabels and keypointlabels are)")


def read(path: Path) -> list[ImageLabels]:
    tasks = load_json(path)
    if isinstance(tasks, dict):
        tasks = [tasks]
    expect(tasks, list, "the top level (a list of tasks)", path.name)
    images = []
    for i, task in enumerate(tasks):
        where = f"{path.name} task {i}"
        task = expect(task, dict, "a task", where)
        where = f"{path.name} task id {task.get('id', i)}"
        annotations = [a for a in expect(task.get("annotations") or [], list, "annotations", where)
                       if isinstance(a, dict) and not a.get("was_cancelled")]
        if not annotations:
            continue  # an unlabelled task (perhaps with predictions only) is not a label
        image = ImageLabels(_image_ref(task, where), where, scale="percent")
        chosen = annotations[-1]
        for k, item in enumerate(expect(chosen.get("result") or [], list, "result", where)):
            _result(image, expect(item, dict, "a result", f"{where} result {k}"), f"{where} result {k}")
        images.append(image)
    return images


def _pct(v: float, size: int | None) -> float:
    return v * 100.0 / size if size else 0.0


def _results(export: ExportSet, item, data: dict) -> list[dict]:
    out: list[dict] = []
    base = {"to_name": "image", "original_width": item.width, "original_height": item.height, "image_rotation": 0}
    for k, shape in enumerate(shapes_from_data(export.spec, data)):
        rid = f"r{k}"
        if shape.kind == "box":
            assert shape.box is not None
            x, y, w, h = shape.box
            out.append({**base, "id": rid, "type": "rectanglelabels", "from_name": "label", "value": {
                "x": _pct(x, item.width), "y": _pct(y, item.height), "width": _pct(w, item.width),
                "height": _pct(h, item.height), "rotation": 0, "rectanglelabels": [shape.label]}})
        elif shape.kind == "polygon":
            out.append({**base, "id": rid, "type": "polygonlabels", "from_name": "label", "value": {
                "points": [[_pct(px, item.width), _pct(py, item.height)] for px, py in shape.points],
                "polygonlabels": [shape.label]}})
        else:
            px, py = shape.points[0]
            out.append({**base, "id": rid, "type": "keypointlabels", "from_name": "label", "value": {
                "x": _pct(px, item.width), "y": _pct(py, item.height), "width": 1.0,
                "keypointlabels": [shape.label]}})
    classes = classes_from_data(export.spec, data)
    if classes:
        out.append({"id": "c0", "type": "choices", "from_name": "choice", "to_name": "image",
                    "value": {"choices": classes}})
    return out


def write(target: Path, export: ExportSet) -> None:
    tasks = []
    for n, item in enumerate(export.items, start=1):
        predictions = []
        for pred in export.predictions.get(item.item_ref, []):
            if pred.get("predicted_class") is None:
                continue
            predictions.append({"model_version": f"{pred['model_name']} v{pred['model_version']}",
                                "score": pred.get("confidence"),
                                "result": [{"id": "p0", "type": "choices", "from_name": "choice", "to_name": "image",
                                            "value": {"choices": [pred["predicted_class"]]}}]})
        tasks.append({"id": n, "data": {"image": item.image_path or item.item_ref, "item_ref": item.item_ref},
                      "annotations": [{"id": n, "result": _results(export, item, item.label_data),
                                       "was_cancelled": False}],
                      "predictions": predictions})
    target.write_text(json.dumps(tasks, indent=1, ensure_ascii=False), encoding="utf-8")


FORMATS = [Format("label-studio", "Label Studio JSON export (choices, rectangles, polygons, keypoints)", read=read,
                  write=write, detect=detect, predictions=True,
                  kinds=("boxes", "polygons", "points", "classification", "multilabel"))]
