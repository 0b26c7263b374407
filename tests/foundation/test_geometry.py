"""The shared geometry check: every shape is refused outside the image, with the item named."""

from __future__ import annotations

import math

import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.geometry import check_shapes


def test_shapes_inside_the_image_pass() -> None:
    check_shapes({"boxes": [{"label": "a", "x": 0, "y": 0, "width": 128, "height": 128}]}, 128, 128)
    check_shapes({"polygons": [{"label": "a", "points": [[0, 0], [128, 0], [64, 128]]}]}, 128, 128)
    check_shapes({"points": [{"label": "a", "x": 128.0, "y": 0.0}]}, 128, 128)
    check_shapes({"class": "a"}, 10, 10)  # no shapes: nothing to check
    check_shapes({"boxes": []}, 10, 10)


@pytest.mark.parametrize(("data", "words"), [
    ({"boxes": [{"label": "crack", "x": 500, "y": 0, "width": 10, "height": 10}]}, ["box 1 (crack)", "outside", "128x64"]),
    ({"boxes": [{"x": 120, "y": 0, "width": 10, "height": 10}]}, ["box 1", "outside"]),
    ({"boxes": [{"x": 1, "y": 1, "width": 0, "height": 10}]}, ["box 1", "non-positive size"]),
    ({"boxes": [{"x": 1, "y": 1, "width": -3, "height": 10}]}, ["non-positive size"]),
    ({"boxes": [{"x": math.nan, "y": 1, "width": 3, "height": 10}]}, ["x", "not a finite number"]),
    ({"boxes": [{"x": 1, "y": 1, "width": math.inf, "height": 10}]}, ["width", "not a finite number"]),
    ({"polygons": [{"label": "p", "points": [[0, 0], [10, 0]]}]}, ["polygon 1 (p)", "2 point(s)", "at least 3"]),
    ({"polygons": [{"points": [[0, 0], [10, 0], [10, 65]]}]}, ["polygon 1 vertex 3", "outside"]),
    ({"polygons": [{"points": [[0, 0], [10, 0], [math.nan, 5]]}]}, ["vertex 3", "not a finite number"]),
    ({"polygons": [{"points": [[0, 0], [10, 0], [5]]}]}, ["vertex 3", "[x, y]"]),
    ({"points": [{"label": "k", "x": -1, "y": 2}]}, ["point 1 (k)", "outside"]),
    ({"points": [{"x": 1, "y": math.inf}]}, ["point 1", "not a finite number"]),
    ({"points": [{"x": True, "y": 1}]}, ["not a finite number"]),
])
def test_bad_shapes_are_refused_naming_the_item_and_shape(data: dict, words: list[str]) -> None:
    with pytest.raises(ValidationError) as info:
        check_shapes(data, 128, 64, where="item INS-00007")
    message = str(info.value)
    assert message.startswith("item INS-00007: ")
    for word in words:
        assert word in message


def test_second_shape_is_named_by_position() -> None:
    data = {"boxes": [{"x": 0, "y": 0, "width": 5, "height": 5}, {"x": 0, "y": 0, "width": 5, "height": 500}]}
    with pytest.raises(ValidationError, match="box 2"):
        check_shapes(data, 10, 10)


def test_unknown_image_size_is_refused() -> None:
    with pytest.raises(ValidationError, match="image size"):
        check_shapes({"points": [{"x": 1, "y": 1}]}, 0, 10, where="row 3")
