"""Geometry checks of imported shapes against their image.

The site-wide check is `core.geometry.check_shapes` (the taxonomy work owns it); until it is
present this module carries an equivalent so imports are checked either way.
"""

from __future__ import annotations

import math
from typing import Any

from vital_desktop.core.errors import ValidationError

UNKNOWN_SIZE = 2**31  # bound used when the image's size is unknown: only finiteness and sizes are checked


def _fallback(label_data: dict, width: int, height: int, *, where: str = "") -> None:
    prefix = f"{where}: " if where else ""

    def finite(v: Any, what: str) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValidationError(f"{prefix}{what} is not a finite number ({v!r})")
        return float(v)

    def inside(x: float, y: float, what: str) -> None:
        if not (0 <= x <= width and 0 <= y <= height):
            raise ValidationError(f"{prefix}{what} ({x:g}, {y:g}) is outside the {width}x{height} image")

    for i, box in enumerate(label_data.get("boxes") or []):
        what = f"box {i} ({box.get('label')})"
        x, y = finite(box.get("x"), f"{what} x"), finite(box.get("y"), f"{what} y")
        w, h = finite(box.get("width"), f"{what} width"), finite(box.get("height"), f"{what} height")
        if w <= 0 or h <= 0:
            raise ValidationError(f"{prefix}{what} has a non-positive size {w:g}x{h:g}")
        inside(x, y, f"{what} corner")
        inside(x + w, y + h, f"{what} corner")
    for i, poly in enumerate(label_data.get("polygons") or []):
        what = f"polygon {i} ({poly.get('label')})"
        points = poly.get("points") or []
        if len(points) < 3:
            raise ValidationError(f"{prefix}{what} has {len(points)} point(s); a polygon needs at least 3")
        for k, point in enumerate(points):
            inside(finite(point[0], f"{what} vertex {k} x"), finite(point[1], f"{what} vertex {k} y"),
                   f"{what} vertex {k}")
    for i, point in enumerate(label_data.get("points") or []):
        what = f"point {i} ({point.get('label')})"
        inside(finite(point.get("x"), f"{what} x"), finite(point.get("y"), f"{what} y"), what)


def check_shapes(label_data: dict, width: int | None, height: int | None, *, where: str = "") -> None:
    """Refuse shapes outside [0, width] x [0, height], not finite, degenerate, or polygons of < 3 points."""
    try:
        from vital_desktop.core.geometry import check_shapes as site_check  # type: ignore[import-not-found]
    except ImportError:
        site_check = _fallback
    site_check(label_data, UNKNOWN_SIZE if width is None else int(width),
               UNKNOWN_SIZE if height is None else int(height), where=where)
