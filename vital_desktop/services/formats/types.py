"""What the formats need from a label type (kind, ordered classes, class field), in one place.

Label types are site data owned by the taxonomy service; this adapter reads a kind and the
ordered classes from whichever label-type object the label service returns, falling back to
the shape of its JSON Schema (a ``boxes``/``polygons``/``points`` array of ``{label, ...}``
objects, a ``classes`` array, or a class field) for types that do not state a kind.
"""

from __future__ import annotations

from typing import Any

from vital_desktop.services.formats.base import TypeSpec

_ARRAY_KINDS = ("boxes", "polygons", "points")


def _schema_kind(schema: dict, class_field: str | None) -> tuple[str, list[str]]:
    props = schema.get("properties", {}) if isinstance(schema, dict) else {}
    for kind in _ARRAY_KINDS:
        if kind in props:
            label = props[kind].get("items", {}).get("properties", {}).get("label", {})
            return kind, list(label.get("enum", []))
    if "classes" in props and props["classes"].get("type") == "array":
        return "multilabel", list(props["classes"].get("items", {}).get("enum", []))
    if class_field and class_field in props:
        return "classification", list(props[class_field].get("enum", []))
    if "text" in props:
        return "text", []
    if "value" in props:
        return "number", []
    return "structured", []


def spec_from_label_type(label_type: Any) -> TypeSpec:
    """A `TypeSpec` from a label-type object (``name``, ``schema``, ``class_field``, maybe ``kind``)."""
    schema = getattr(label_type, "schema", {}) or {}
    class_field = getattr(label_type, "class_field", None)
    kind, classes = _schema_kind(schema, class_field)
    stated = getattr(label_type, "kind", None)
    if isinstance(stated, str) and stated:
        kind = stated
    named = []
    try:
        named = list(label_type.classes())
    except (AttributeError, TypeError):
        named = []
    return TypeSpec(name=label_type.name, kind=kind, classes=named or classes, class_field=class_field)


def type_spec(session: Any, name: str) -> TypeSpec:
    """The `TypeSpec` of the label type `name` (a `ValidationError` names the known types)."""
    from vital_desktop.services import label_types

    found = label_types.get_label_type(session, name)  # session: an open session or the store
    return spec_from_label_type(found)
