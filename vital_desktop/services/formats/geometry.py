"""Geometry checks of imported shapes against their image (the site-wide `core.geometry` check)."""

from __future__ import annotations

from vital_desktop.core.geometry import check_shapes as _check_shapes

UNKNOWN_SIZE = 2**31  # bound used when the image's size is unknown: only finiteness and sizes are checked


def check_shapes(label_data: dict, width: int | None, height: int | None, *, where: str = "") -> None:
    """Refuse shapes outside [0, width] x [0, height], not finite, degenerate, or polygons of < 3 points."""
    _check_shapes(label_data, UNKNOWN_SIZE if width is None else int(width),
                  UNKNOWN_SIZE if height is None else int(height), where=where)
