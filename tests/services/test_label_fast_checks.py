"""The plain-Python label checks accept exactly what each kind's derived JSON Schema accepts."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vital_desktop.core.errors import ValidationError
from vital_desktop.services import label_types
from vital_desktop.services.label_fast_checks import fast_check

ATTRS = [{"name": "severity", "type": "choice", "choices": ["low", "high"]},
         {"name": "depth", "type": "number", "minimum": 0, "maximum": 10},
         {"name": "ok", "type": "boolean"}, {"name": "note", "type": "text", "required": True}]


def _type(kind: str, **more) -> label_types.LabelType:
    classes = [] if kind in ("text", "number") else [{"name": "a"}, {"name": "b"}, {"name": "old", "deprecated": True}]
    return label_types.build_label_type({"name": f"t-{kind}", "kind": kind, "classes": classes, "attributes": ATTRS,
                                         **more})


def _schema_accepts(lt: label_types.LabelType, data) -> bool:
    return not list(label_types.validator(lt).iter_errors(data))


NOTE = {"note": "n"}
SAMPLES = {
    "classification": [{"class": "a", **NOTE}, {"class": "old", **NOTE}, {"class": "a"}, {"class": 1, **NOTE},
                       {"class": "a", "severity": "mid", **NOTE}, {"class": "a", "depth": 11, **NOTE},
                       {"class": "a", "depth": True, **NOTE}, {"class": "a", "ok": 1, **NOTE},
                       {"class": "a", "extra": 1, **NOTE}, {"class": "a", "note": "x" * 2001}, [], "a"],
    "multilabel": [{"classes": ["a", "b"], **NOTE}, {"classes": ["a", "a"], **NOTE}, {"classes": [], **NOTE},
                   {"classes": "a", **NOTE}, {"classes": ["c"], **NOTE}],
    "boxes": [{"boxes": [{"label": "a", "x": 0, "y": 1.5, "width": 2, "height": 3}], **NOTE},
              {"boxes": [{"label": "a", "x": -1, "y": 0, "width": 2, "height": 3}], **NOTE},
              {"boxes": [{"label": "a", "x": 0, "y": 0, "width": 0, "height": 3}], **NOTE},
              {"boxes": [{"label": "a", "x": 0, "y": 0, "width": 1, "height": 3, "z": 1}], **NOTE},
              {"boxes": [{"label": "a", "x": 0, "y": 0, "width": 1}], **NOTE},
              {"boxes": [{"label": "a", "x": False, "y": 0, "width": 1, "height": 1}], **NOTE},
              {"boxes": [{"label": "c", "x": 0, "y": 0, "width": 1, "height": 1}], **NOTE},
              {"boxes": [{"label": "a", "x": 0, "y": 0, "width": 1, "height": 1}] * 1001, **NOTE}],
    "polygons": [{"polygons": [{"label": "b", "points": [[0, 0], [1, 0], [1, 1]]}], **NOTE},
                 {"polygons": [{"label": "b", "points": [[0, 0], [1, 0]]}], **NOTE},
                 {"polygons": [{"label": "b", "points": [[0, 0], [1, 0], [1]]}], **NOTE},
                 {"polygons": [{"label": "b", "points": [[0, 0], [1, 0], ["1", 1]]}], **NOTE}],
    "points": [{"points": [{"label": "a", "x": 1, "y": 2}], **NOTE}, {"points": [{"label": "a", "x": 1}], **NOTE},
               {"points": [{"label": "a", "x": 1, "y": 2, "r": 3}], **NOTE}],
    "text": [{"text": "hello", **NOTE}, {"text": 3, **NOTE}, {"text": "x" * 100_001, **NOTE}],
    "number": [{"value": 1.5, **NOTE}, {"value": "1", **NOTE}, {"value": True, **NOTE}],
}


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_fast_check_agrees_with_the_schema(kind: str) -> None:
    lt = _type(kind)
    fast = fast_check(lt)
    assert fast is not None
    for data in SAMPLES[kind]:
        assert fast(data) == _schema_accepts(lt, data), data
        if not fast(data):  # refused: the full validator names the problem
            with pytest.raises(ValidationError, match="not valid at"):
                label_types.check_label_data(lt, data)


def test_structured_types_and_edited_schemas_take_the_full_validator() -> None:
    structured = label_types.build_label_type({"name": "s", "kind": "structured",
                                               "schema": {"type": "object", "properties": {"a": {"type": "integer"}}}})
    assert fast_check(structured) is None
    lt = _type("boxes")
    edited = label_types.LabelType(**{**lt.__dict__, "schema": {**lt.schema, "maxProperties": 1}})
    assert fast_check(edited) is None


_values = st.one_of(st.integers(-3, 3), st.floats(-3, 3, allow_nan=False), st.booleans(), st.text(max_size=2),
                    st.none(), st.sampled_from(["a", "b", "old"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["label", "x", "y", "width", "height", "z"]), _values, max_size=6),
                max_size=3))
def test_random_boxes_agree_with_the_schema(boxes) -> None:
    lt = _type("boxes")
    data = {"boxes": boxes, **NOTE}
    assert fast_check(lt)(data) == _schema_accepts(lt, data)
