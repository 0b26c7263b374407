"""Label types: what a label looks like (its kind, ordered classes, attribute fields, JSON Schema).

Lookups take the store or an open session first and an optional version:
``get_label_type(session, "welds")``, ``get_label_type(store, "welds", "1.2.0")``,
``validate_label_data(session, "welds", data)``. `LabelType.classes()` is the ordered list of
class names a new label may use (deprecated classes left out).

Transitional: while label types still come from the packaged file, the old call forms
``get_label_type(name)`` and ``validate_label_data(name, data)`` keep working.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from vital_desktop.core.errors import ValidationError

#: The kinds of label type (a registry: each kind knows its data shape; see `KIND_SHAPES`).
KINDS = ("classification", "multilabel", "boxes", "polygons", "points", "text", "number", "structured")
#: Attribute field types.
FIELD_TYPES = ("choice", "text", "number", "boolean")
#: A readable palette for classes that were given no colour (cycled in order).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")

_MISSING: Any = object()


@dataclass(frozen=True)
class LabelClass:
    """One class of a label type, in display order."""

    name: str
    title: str = ""
    color: str = ""
    shortcut: str = ""
    deprecated: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title or self.name, "color": self.color,
                "shortcut": self.shortcut, "deprecated": self.deprecated}


@dataclass(frozen=True)
class AttributeField:
    """An extra field of a label (e.g. severity with its own choices)."""

    name: str
    title: str = ""
    type: str = "text"
    choices: tuple[str, ...] = ()
    required: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title or self.name, "type": self.type,
                "choices": list(self.choices), "required": self.required}


@dataclass(frozen=True)
class LabelType:
    """One version of a label type. A published version never changes."""

    name: str
    title: str
    description: str
    schema: dict
    class_field: str | None
    kind: str = "classification"
    class_list: tuple[LabelClass, ...] = ()
    attributes: tuple[AttributeField, ...] = ()
    version: str = "1.0.0"
    status: str = "published"
    id: str = ""
    origin: str = "site"
    extra: dict = field(default_factory=dict, compare=False)

    def classes(self) -> list[str]:
        """The ordered class names a new label may use (deprecated classes left out)."""
        return [c.name for c in self.class_list if not c.deprecated]

    def all_classes(self) -> list[str]:
        """Every class name, deprecated ones included (existing labels may still carry them)."""
        return [c.name for c in self.class_list]

    def colors(self) -> dict[str, str]:
        """Class name → ``#rrggbb`` (a palette colour where none was set)."""
        return {c.name: c.color or PALETTE[i % len(PALETTE)] for i, c in enumerate(self.class_list)}

    def shortcuts(self) -> dict[str, str]:
        """Class name → shortcut key, for the classes that have one."""
        return {c.name: c.shortcut for c in self.class_list if c.shortcut}

    def get_class(self, name: str) -> LabelClass | None:
        return next((c for c in self.class_list if c.name == name), None)

    @property
    def ref(self) -> str:
        """``name@version``, the way messages and model cards name a version."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "description": self.description, "kind": self.kind,
                "version": self.version, "status": self.status, "class_field": self.class_field,
                "classes": [c.to_dict() for c in self.class_list],
                "attributes": [a.to_dict() for a in self.attributes], "schema": self.schema, "origin": self.origin}


# --- from a JSON Schema (the packaged file; hub payloads of older sites) ----------------------


def _infer_kind(schema: dict) -> str:
    props = schema.get("properties", {})
    for kind in ("boxes", "polygons", "points"):
        if kind in props and props[kind].get("type") == "array":
            return kind
    return "classification"


def _shape_label_enum(schema: dict, kind: str) -> list[str]:
    items = schema.get("properties", {}).get(kind, {}).get("items", {})
    return list(items.get("properties", {}).get("label", {}).get("enum", []))


def from_schema(name: str, spec: dict) -> LabelType:
    """A `LabelType` read from ``{"title", "description", "class_field", "schema"}`` (classes and
    attribute fields recovered from the schema's enums)."""
    schema = spec["schema"]
    class_field = spec.get("class_field")
    kind = spec.get("kind") or _infer_kind(schema)
    props = schema.get("properties", {})
    if kind in ("boxes", "polygons", "points"):
        names = _shape_label_enum(schema, kind)
    elif class_field:
        names = list(props.get(class_field, {}).get("enum", []))
    else:
        names = []
    colors = spec.get("colors", {})
    class_list = tuple(LabelClass(n, n, colors.get(n, PALETTE[i % len(PALETTE)]),
                                  str(i + 1) if i < 9 else "") for i, n in enumerate(names))
    required = set(schema.get("required", []))
    attributes = []
    for prop, prop_spec in props.items():
        if prop == class_field or prop in ("boxes", "polygons", "points"):
            continue
        json_type = prop_spec.get("type")
        if "enum" in prop_spec:
            ftype, choices = "choice", tuple(prop_spec["enum"])
        else:
            ftype = {"number": "number", "integer": "number", "boolean": "boolean"}.get(json_type, "text")
            choices = ()
        attributes.append(AttributeField(prop, prop_spec.get("title", prop), ftype, choices, prop in required))
    return LabelType(name, spec.get("title", name), spec.get("description", ""), schema, class_field, kind,
                     class_list, tuple(attributes), spec.get("version", "1.0.0"), spec.get("status", "published"))


@functools.cache
def _packaged_types() -> dict[str, LabelType]:
    raw = json.loads(resources.files("vital_desktop.resources").joinpath("label_types.json").read_text("utf-8"))
    return {name: from_schema(name, spec) for name, spec in raw.items()}


# --- lookups -----------------------------------------------------------------------------------


def list_label_types(source: Any = None) -> dict[str, LabelType]:
    """Every label type (its latest published version), by name."""
    return dict(_packaged_types())


def get_label_type(source: Any, name: str | None = None, version: str | None = None) -> LabelType:
    """The label type `name` (its latest published version, or `version`) from `source` (a store
    or session). Raises `ValidationError` naming the known types when there is no such type."""
    if name is None and isinstance(source, str):  # transitional form get_label_type(name)
        source, name = None, source
    types = list_label_types(source)
    if name not in types:
        raise ValidationError(f"unknown label type {name!r}; label types: {', '.join(types)}")
    found = types[name]
    if version is not None and version != found.version:
        raise ValidationError(f"label type {name!r} has no version {version!r} (latest: {found.version})")
    return found


@functools.cache
def _validator_for(schema_text: str) -> Any:
    from vital_desktop.core.strict_json import strict_validator

    return strict_validator(json.loads(schema_text))  # patterns anchored as JSON Schema means them


def validator(label_type: LabelType) -> Any:
    """A (cached) JSON Schema validator of the label type's schema."""
    return _validator_for(json.dumps(label_type.schema, sort_keys=True))


def check_label_data(label_type: LabelType, data: Any) -> None:
    """Raise `ValidationError` naming the first problem if `data` breaks the type's schema."""
    errors = sorted(validator(label_type).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "(label)"
        raise ValidationError(f"{label_type.name} label is not valid at {where}: {err.message}")


def validate_label_data(source: Any, label_type: Any = _MISSING, data: Any = _MISSING,
                        version: str | None = None) -> None:
    """Raise `ValidationError` naming the first problem if `data` breaks the type's schema.

    Called as ``validate_label_data(session, "welds", data)`` (the transitional form
    ``validate_label_data("welds", data)`` still works)."""
    if data is _MISSING:
        source, label_type, data = None, source, label_type
    lt = label_type if isinstance(label_type, LabelType) else get_label_type(source, label_type, version)
    check_label_data(lt, data)
