"""Geometry of shape labels checked against the image they are drawn on.

Coordinates are image pixels with the origin at the top-left corner, x to the right and y
down. A shape may touch the border (x = width is the right edge) but not leave the image.
The check is separate from the label type's JSON Schema because the schema does not know
the image size; every writer of shape labels (the canvas, imports, bundles) calls it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from vital_desktop.core.errors import ValidationError

MIN_POLYGON_POINTS = 3


def _prefix(where: str) -> str:
    return f"{where}: " if where else ""


def _number(value: Any) -> float | None:
    """The value as a finite float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _shape_name(kind: str, index: int, shape: Any) -> str:
    label = shape.get("label") if isinstance(shape, dict) else None
    return f"{kind} {index + 1}" + (f" ({label})" if label else "")


def _check_point(x: Any, y: Any, width: int, height: int, what: str, where: str) -> None:
    fx, fy = _number(x), _number(y)
    if fx is None or fy is None:
        raise ValidationError(f"{_prefix(where)}{what} has a coordinate that is not a finite number ({x!r}, {y!r})")
    if not (0.0 <= fx <= width and 0.0 <= fy <= height):
        raise ValidationError(
            f"{_prefix(where)}{what} at ({fx:g}, {fy:g}) is outside the {width}x{height} image")


def _check_box(box: Any, index: int, width: int, height: int, where: str) -> None:
    what = _shape_name("box", index, box)
    if not isinstance(box, dict):
        raise ValidationError(f"{_prefix(where)}{what} is not an object")
    values = {key: _number(box.get(key)) for key in ("x", "y", "width", "height")}
    bad = [key for key, value in values.items() if value is None]
    if bad:
        raise ValidationError(f"{_prefix(where)}{what} has {', '.join(bad)} that is not a finite number")
    x, y, w, h = (float(values[k]) for k in ("x", "y", "width", "height"))  # type: ignore[arg-type]
    if w <= 0 or h <= 0:
        raise ValidationError(f"{_prefix(where)}{what} has a non-positive size ({w:g} x {h:g})")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValidationError(
            f"{_prefix(where)}{what} ({x:g}, {y:g}, {w:g} x {h:g}) is outside the {width}x{height} image")


def _check_polygon(polygon: Any, index: int, width: int, height: int, where: str) -> None:
    what = _shape_name("polygon", index, polygon)
    points = polygon.get("points") if isinstance(polygon, dict) else None
    if not isinstance(points, list):
        raise ValidationError(f"{_prefix(where)}{what} has no list of points")
    if len(points) < MIN_POLYGON_POINTS:
        raise ValidationError(
            f"{_prefix(where)}{what} has {len(points)} point(s); a polygon needs at least {MIN_POLYGON_POINTS}")
    for vertex_index, vertex in enumerate(points):
        label = f"{what} vertex {vertex_index + 1}"
        if not isinstance(vertex, list | tuple) or len(vertex) != 2:
            raise ValidationError(f"{_prefix(where)}{label} is not an [x, y] pair")
        _check_point(vertex[0], vertex[1], width, height, label, where)


def _check_points(points: Iterable[Any], width: int, height: int, where: str) -> None:
    for index, point in enumerate(points):
        what = _shape_name("point", index, point)
        if not isinstance(point, dict):
            raise ValidationError(f"{_prefix(where)}{what} is not an object")
        _check_point(point.get("x"), point.get("y"), width, height, what, where)


def check_shapes(label_data: dict, width: int, height: int, *, where: str = "") -> None:
    """Raise `ValidationError` if any box, polygon vertex or point lies outside the image.

    `label_data` is label data of any kind: its ``boxes``, ``polygons`` and ``points`` lists
    are checked (other kinds carry no shapes and pass). `where` names the item or row in the
    message (e.g. ``"item A-17"``). Refused: a coordinate that is not a finite number, a
    shape outside ``[0, width] x [0, height]``, a box of non-positive size, a polygon with
    fewer than three points.
    """
    if not isinstance(label_data, dict):
        return
    if _number(width) is None or _number(height) is None or width <= 0 or height <= 0:
        raise ValidationError(f"{_prefix(where)}the image size {width!r} x {height!r} is not known")
    for key, check in (("boxes", _check_box), ("polygons", _check_polygon)):
        shapes = label_data.get(key)
        if shapes is None:
            continue
        if not isinstance(shapes, list):
            raise ValidationError(f"{_prefix(where)}{key} is not a list")
        for index, shape in enumerate(shapes):
            check(shape, index, width, height, where)
    points = label_data.get("points")
    if points is not None:
        if not isinstance(points, list):
            raise ValidationError(f"{_prefix(where)}points is not a list")
        _check_points(points, width, height, where)
