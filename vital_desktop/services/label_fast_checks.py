"""Fast label checks: the derived JSON Schema of each kind, as plain Python.

For every kind whose schema is the derived one (`label_types.derive_schema`), a test that
accepts exactly what the schema accepts, never more; a label it does not pass goes on to the
full JSON Schema validator, which names the problem. jsonschema costs about a millisecond for a
label of five boxes, three quarters of a 10,000-image COCO import; a structured type (its own
schema) always takes the full validator. A registry by kind, like the schemas themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from vital_desktop.services.label_types import MAX_SHAPES, MAX_TEXT, AttributeField, LabelType, derive_schema

def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _attribute_ok(attr: AttributeField, value: Any) -> bool:
    if attr.type == "choice":
        return isinstance(value, str) and value in attr.choices
    if attr.type == "number":
        return _is_number(value) and (attr.minimum is None or value >= attr.minimum) and (
            attr.maximum is None or value <= attr.maximum)
    if attr.type == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _object_ok(lt: LabelType, data: Any, key: str, value_ok: Callable[[Any], bool]) -> bool:
    if not isinstance(data, dict) or key not in data or not value_ok(data[key]):
        return False
    attrs = {a.name: a for a in lt.attributes}
    for name, value in data.items():
        if name == key:
            continue
        attr = attrs.get(name)
        if attr is None or not _attribute_ok(attr, value):
            return False
    return all(a.name in data for a in lt.attributes if a.required)


def _shapes_ok(classes: frozenset[str], item_ok: Callable[[dict], bool]) -> Callable[[Any], bool]:
    def check(items: Any) -> bool:
        return isinstance(items, list) and len(items) <= MAX_SHAPES and all(
            isinstance(i, dict) and isinstance(i.get("label"), str) and i["label"] in classes and item_ok(i)
            for i in items)
    return check


def _box_ok(box: dict) -> bool:
    return (len(box) == 5 and _is_number(box.get("x")) and _is_number(box.get("y")) and _is_number(box.get("width"))
            and _is_number(box.get("height")) and box["x"] >= 0 and box["y"] >= 0 and box["width"] > 0
            and box["height"] > 0)


def _polygon_ok(poly: dict) -> bool:
    points = poly.get("points")
    return (len(poly) == 2 and isinstance(points, list) and len(points) >= 3
            and all(isinstance(p, list) and len(p) == 2 and _is_number(p[0]) and _is_number(p[1]) for p in points))


def _point_ok(point: dict) -> bool:
    return len(point) == 3 and _is_number(point.get("x")) and _is_number(point.get("y"))


SHAPE_CHECKS: dict[str, Callable[[dict], bool]] = {"boxes": _box_ok, "polygons": _polygon_ok, "points": _point_ok}


def _fast_for(lt: LabelType) -> Callable[[Any], bool] | None:
    classes = frozenset(lt.classes())
    kind = lt.kind
    if kind in SHAPE_CHECKS:
        items_ok = _shapes_ok(classes, SHAPE_CHECKS[kind])
        return lambda d: _object_ok(lt, d, kind, items_ok)
    if kind == "classification":
        key = lt.class_field or "class"
        return lambda d: _object_ok(lt, d, key, lambda v: isinstance(v, str) and v in classes)
    if kind == "multilabel":
        return lambda d: _object_ok(lt, d, "classes", lambda v: isinstance(v, list) and all(
            isinstance(c, str) and c in classes for c in v) and len(set(v)) == len(v))
    if kind == "text":
        return lambda d: _object_ok(lt, d, "text", lambda v: isinstance(v, str) and len(v) <= 100_000)
    if kind == "number":
        return lambda d: _object_ok(lt, d, "value", _is_number)
    return None  # structured: its own schema, always the full validator


_FAST: dict[str, Callable[[Any], bool] | None] = {}


def fast_check(label_type: LabelType) -> Callable[[Any], bool] | None:
    """A plain-Python test accepting exactly what the type's schema accepts, when its schema is
    the derived one (None for structured types or a stored schema that differs)."""
    key = label_type.id if label_type.status == "published" and label_type.id else json.dumps(
        label_type.schema, sort_keys=True)
    if key not in _FAST:
        derived = None if label_type.kind == "structured" else derive_schema(
            label_type.kind, label_type.class_list, label_type.attributes, label_type.class_field)
        _FAST[key] = _fast_for(label_type) if derived is not None and derived == label_type.schema else None
    return _FAST[key]
