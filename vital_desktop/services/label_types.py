"""Label types: versioned site data (kind, ordered classes, attribute fields, derived JSON Schema).

A label type is rows in the store's `label_types` table, one per version (semver); a draft may
change, a published version never does. Lookups take the store or an open session first and an
optional version: ``get_label_type(session, "welds")`` is the latest published version,
``get_label_type(store, "welds", "1.2.0")`` an exact one. Published versions are cached by row
id (they are immutable, so the cache cannot go stale); drafts are read each time.

`LabelType.classes()` is the ordered list of class names a new label may use (deprecated
classes left out). The JSON Schema of every kind but `structured` is derived from the classes
and attribute fields by the `KIND_SCHEMAS` registry; a structured type brings its own schema,
checked as a valid JSON Schema. Changing the classes of a published type (rename, merge, split,
deprecate) is in `services/taxonomy`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso
from vital_desktop.store.db import Store
from vital_desktop.store.models import LabelTypeRow

#: Attribute field types.
FIELD_TYPES = ("choice", "text", "number", "boolean")
#: A readable palette for classes that were given no colour (cycled in order).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd")
MAX_SHAPES = 1000
MAX_TEXT = 2000
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
_SEMVER_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


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
    minimum: float | None = None
    maximum: float | None = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "title": self.title or self.name, "type": self.type,
                               "choices": list(self.choices), "required": self.required}
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        return out


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
    change_note: str = ""
    created_by: str = ""
    created_at: str | None = None
    published_at: str | None = None
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

    def spec(self) -> dict:
        """The editable description (what `create_label_type` and bundles take)."""
        out: dict[str, Any] = {"name": self.name, "title": self.title, "description": self.description,
                               "kind": self.kind, "class_field": self.class_field,
                               "classes": [c.to_dict() for c in self.class_list],
                               "attributes": [a.to_dict() for a in self.attributes]}
        if self.kind == "structured":
            out["schema"] = self.schema
        return out

    def to_dict(self) -> dict:
        return {**self.spec(), "version": self.version, "status": self.status, "schema": self.schema,
                "origin": self.origin, "change_note": self.change_note, "created_by": self.created_by,
                "created_at": self.created_at, "published_at": self.published_at}


# --- kinds: each derives its JSON Schema (a registry, not a chain of ifs) ----------------------


def _attribute_schema(attr: AttributeField) -> dict:
    base: dict[str, Any] = {"title": attr.title or attr.name}
    if attr.type == "choice":
        return {**base, "type": "string", "enum": list(attr.choices)}
    if attr.type == "number":
        out = {**base, "type": "number"}
        if attr.minimum is not None:
            out["minimum"] = attr.minimum
        if attr.maximum is not None:
            out["maximum"] = attr.maximum
        return out
    if attr.type == "boolean":
        return {**base, "type": "boolean"}
    return {**base, "type": "string", "maxLength": MAX_TEXT}


def _object(props: dict, required: list[str], attributes: Iterable[AttributeField]) -> dict:
    attrs = list(attributes)
    return {"type": "object", "additionalProperties": False,
            "required": required + [a.name for a in attrs if a.required],
            "properties": {**props, **{a.name: _attribute_schema(a) for a in attrs}}}


def _class_enum(classes: list[str]) -> dict:
    return {"type": "string", "enum": classes}


def _classification(lt: _Parts) -> dict:
    field_name = lt.class_field or "class"
    return _object({field_name: {**_class_enum(lt.classes), "title": lt.class_title}}, [field_name], lt.attributes)


def _multilabel(lt: _Parts) -> dict:
    return _object({"classes": {"type": "array", "uniqueItems": True, "items": _class_enum(lt.classes),
                                "title": lt.class_title}}, ["classes"], lt.attributes)


def _shapes(key: str, item_props: dict, item_required: list[str]) -> Callable[[_Parts], dict]:
    def build(lt: _Parts) -> dict:
        item = {"type": "object", "additionalProperties": False, "required": ["label", *item_required],
                "properties": {"label": _class_enum(lt.classes), **item_props}}
        return _object({key: {"type": "array", "maxItems": MAX_SHAPES, "items": item}}, [key], lt.attributes)
    return build


def _text(lt: _Parts) -> dict:
    return _object({"text": {"type": "string", "maxLength": 100_000, "title": "Text"}}, ["text"], lt.attributes)


def _number(lt: _Parts) -> dict:
    return _object({"value": {"type": "number", "title": "Value"}}, ["value"], lt.attributes)


def _structured(lt: _Parts) -> dict:
    return lt.own_schema or {}


_COORD = {"type": "number"}
KIND_SCHEMAS: dict[str, Callable[[_Parts], dict]] = {
    "classification": _classification,
    "multilabel": _multilabel,
    "boxes": _shapes("boxes", {"x": {"type": "number", "minimum": 0}, "y": {"type": "number", "minimum": 0},
                               "width": {"type": "number", "exclusiveMinimum": 0},
                               "height": {"type": "number", "exclusiveMinimum": 0}}, ["x", "y", "width", "height"]),
    "polygons": _shapes("polygons", {"points": {"type": "array", "minItems": 3, "items": {
        "type": "array", "minItems": 2, "maxItems": 2, "items": _COORD}}}, ["points"]),
    "points": _shapes("points", {"x": _COORD, "y": _COORD}, ["x", "y"]),
    "text": _text,
    "number": _number,
    "structured": _structured,
}
#: The kinds of label type.
KINDS = tuple(KIND_SCHEMAS)
#: Kinds whose labels name classes (the rest have none).
CLASS_KINDS = ("classification", "multilabel", "boxes", "polygons", "points")
SHAPE_KINDS = ("boxes", "polygons", "points")


@dataclass(frozen=True)
class _Parts:
    classes: list[str]
    class_field: str | None
    class_title: str
    attributes: tuple[AttributeField, ...]
    own_schema: dict | None


def derive_schema(kind: str, class_list: Iterable[LabelClass], attributes: Iterable[AttributeField],
                  class_field: str | None = None, own_schema: dict | None = None) -> dict:
    """The JSON Schema a label of this kind, classes and fields must match (deprecated classes
    are not accepted in new labels)."""
    if kind not in KIND_SCHEMAS:
        raise ValidationError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    names = [c.name for c in class_list if not c.deprecated]
    title = (class_field or "class").replace("_", " ").capitalize()
    return KIND_SCHEMAS[kind](_Parts(names, class_field, title, tuple(attributes), own_schema))


# --- specs: checking what a user, a bundle or a seed file gives ---------------------------------


def check_name(name: Any) -> str:
    """A label type name is a slug: lower-case letters, digits, ``_`` or ``-``, starting with a letter."""
    text = str(name or "").strip()
    if not _NAME_RE.match(text):
        raise ValidationError(f"label type name {text!r} must be a slug (lower-case letters, digits, '_' or '-', "
                              "starting with a letter, at most 64 characters)")
    return text


def _classes_from_spec(raw: Any, kind: str) -> tuple[LabelClass, ...]:
    if raw is None:
        raw = []
    if isinstance(raw, str):
        raw = [part for part in raw.split(",")]
    if not isinstance(raw, list):
        raise ValidationError("classes must be a list")
    out: list[LabelClass] = []
    seen: set[str] = set()
    shortcuts: dict[str, str] = {}
    for index, item in enumerate(raw):
        spec = item if isinstance(item, dict) else {"name": item}
        name = str(spec.get("name") if spec.get("name") is not None else "").strip()
        if not name:
            raise ValidationError(f"class {index + 1} has an empty name")
        if name in seen:
            raise ValidationError(f"class {name!r} is given twice")
        seen.add(name)
        color = str(spec.get("color") or PALETTE[index % len(PALETTE)])
        if not _COLOR_RE.match(color):
            raise ValidationError(f"class {name!r}: colour {color!r} must look like #rrggbb")
        default_key = str(index + 1) if index < 9 else ""
        shortcut = str(spec.get("shortcut", default_key) or "")
        if len(shortcut) > 1:
            raise ValidationError(f"class {name!r}: shortcut {shortcut!r} must be one key")
        if shortcut and shortcut in shortcuts:
            raise ValidationError(f"classes {shortcuts[shortcut]!r} and {name!r} share the shortcut {shortcut!r}")
        if shortcut:
            shortcuts[shortcut] = name
        out.append(LabelClass(name, str(spec.get("title") or name), color, shortcut, bool(spec.get("deprecated"))))
    if kind in CLASS_KINDS and not out:
        raise ValidationError(f"a {kind} label type needs at least one class")
    if kind not in CLASS_KINDS and out:
        raise ValidationError(f"a {kind} label type has no classes (got {', '.join(c.name for c in out)})")
    return tuple(out)


def _attributes_from_spec(raw: Any, reserved: set[str]) -> tuple[AttributeField, ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise ValidationError("attributes must be a list")
    out = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, dict):
            raise ValidationError("each attribute field must be an object with a name and a type")
        name = str(item.get("name") or "").strip()
        if not name:
            raise ValidationError("an attribute field has an empty name")
        if name in seen or name in reserved:
            raise ValidationError(f"attribute field {name!r} is given twice or clashes with the label's own field")
        seen.add(name)
        ftype = str(item.get("type") or "text")
        if ftype not in FIELD_TYPES:
            raise ValidationError(f"attribute field {name!r}: type {ftype!r} must be one of {', '.join(FIELD_TYPES)}")
        choices = tuple(str(c) for c in (item.get("choices") or ()))
        if ftype == "choice" and (not choices or len(set(choices)) != len(choices)):
            raise ValidationError(f"attribute field {name!r} needs distinct choices")
        out.append(AttributeField(name, str(item.get("title") or name), ftype, choices, bool(item.get("required")),
                                  item.get("minimum"), item.get("maximum")))
    return tuple(out)


def check_json_schema(schema: Any) -> dict:
    """Raise `ValidationError` unless `schema` is a valid JSON Schema of an object."""
    import jsonschema

    if not isinstance(schema, dict):
        raise ValidationError("the schema must be a JSON object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError(f"the schema is not a valid JSON Schema at {where}: {exc.message}") from None
    if schema.get("type") != "object":
        raise ValidationError("the schema must describe an object (\"type\": \"object\")")
    return schema


def build_label_type(spec: dict, *, version: str = "1.0.0", status: str = "published", origin: str = "site") -> LabelType:
    """Check a spec (name, title, description, kind, class_field, classes, attributes, schema)
    and return the `LabelType` it describes, with its derived schema."""
    if not isinstance(spec, dict):
        raise ValidationError("a label type spec must be a JSON object")
    name = check_name(spec.get("name"))
    kind = str(spec.get("kind") or "classification")
    if kind not in KIND_SCHEMAS:
        raise ValidationError(f"unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    class_field = spec.get("class_field")
    if kind == "classification":
        class_field = str(class_field or "class")
    class_list = _classes_from_spec(spec.get("classes"), kind)
    reserved = {class_field or "", "classes", "boxes", "polygons", "points", "text", "value"}
    attributes = _attributes_from_spec(spec.get("attributes"), reserved - {""})
    own = spec.get("schema")
    if kind == "structured":
        if own is None:
            raise ValidationError("a structured label type needs its own JSON Schema (--schema FILE)")
        own = check_json_schema(own)
    elif own is not None:
        raise ValidationError(f"only a structured label type takes its own schema (this one is {kind})")
    schema = derive_schema(kind, class_list, attributes, class_field, own)
    return LabelType(name, str(spec.get("title") or name), str(spec.get("description") or ""), schema,
                     class_field, kind, class_list, attributes, version, status, origin=origin)


# --- versions -----------------------------------------------------------------------------------


def parse_version(version: str) -> tuple[int, int, int]:
    match = _SEMVER_RE.match(str(version))
    if not match:
        raise ValidationError(f"version {version!r} must be semantic (MAJOR.MINOR.PATCH)")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def next_version(version: str, part: str) -> str:
    """The version after `version`, bumping ``major``, ``minor`` or ``patch``."""
    major, minor, patch = parse_version(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


# --- reading from the store ---------------------------------------------------------------------

_PUBLISHED: dict[str, LabelType] = {}  # row id → published version (immutable, safe to keep)


def from_row(row: Any) -> LabelType:
    classes = tuple(LabelClass(c["name"], c.get("title", c["name"]), c.get("color", ""), c.get("shortcut", ""),
                               bool(c.get("deprecated"))) for c in (row.classes or []))
    attributes = tuple(AttributeField(a["name"], a.get("title", a["name"]), a.get("type", "text"),
                                      tuple(a.get("choices") or ()), bool(a.get("required")), a.get("minimum"),
                                      a.get("maximum")) for a in (row.attributes or []))
    return LabelType(row.name, row.title, row.description, row.schema, row.class_field, row.kind, classes,
                     attributes, row.version, row.status, row.id, row.origin, row.change_note, row.created_by,
                     iso(row.created_at), iso(row.published_at))


def with_session(source: Any, fn: Callable[[Session], Any]) -> Any:
    if isinstance(source, Session):
        return fn(source)
    if isinstance(source, Store):
        with source.read() as session:
            return fn(session)
    raise TypeError("label type lookups take the store or an open session first: "
                    "get_label_type(session, name[, version])")


def version_heads(session: Session, name: str | None = None) -> list[tuple[str, str, str, str]]:
    """(id, name, version, status) of every version (of `name`): one plain query, as every save asks it."""
    from vital_desktop.store.bulk import raw_connection

    session.flush()
    sql = "SELECT id, name, version, status FROM label_types"
    rows = raw_connection(session).execute(sql + (" WHERE name = ?" if name is not None else ""),
                                           [name] if name is not None else []).fetchall()
    return [tuple(r) for r in rows]


def _load(session: Session, row_id: str, status: str) -> LabelType:
    if status == "published" and row_id in _PUBLISHED:
        return _PUBLISHED[row_id]
    found = from_row(session.get(LabelTypeRow, row_id))
    if status == "published":
        _PUBLISHED[row_id] = found
    return found


def pick_version(rows: list[tuple[str, str, str, str]], version: str | None, *, drafts: bool) -> tuple | None:
    if version is not None:
        return next((r for r in rows if r[2] == version), None)
    usable = [r for r in rows if r[3] == "published" or (drafts and r[3] == "draft")]  # never "review"
    return max(usable, key=lambda r: (parse_version(r[2]), r[3] == "draft"), default=None)


def type_names(session: Session) -> list[str]:
    return sorted({r[1] for r in version_heads(session)})


def get_label_type(source: Any, name: str, version: str | None = None, *, drafts: bool = False) -> LabelType:
    """The label type `name` from `source` (the store or a session): its latest published
    version, or exactly `version`; with `drafts`, a newer draft wins. Raises `ValidationError`
    naming the known label types when there is none."""
    def find(session: Session) -> LabelType:
        rows = version_heads(session, name)
        if not rows:
            known = type_names(session)
            raise ValidationError(f"unknown label type {name!r}; label types: {', '.join(known) or '(none yet)'}")
        picked = pick_version(rows, version, drafts=drafts)
        if picked is None:
            versions = ", ".join(sorted((f"{r[2]} ({r[3]})" for r in rows), key=str))
            if version is not None:
                raise ValidationError(f"label type {name!r} has no version {version!r}; versions: {versions}")
            raise ValidationError(f"label type {name!r} has no published version yet ({versions}): publish it first")
        return _load(session, picked[0], picked[3])
    return with_session(source, find)


def list_label_types(source: Any, *, drafts: bool = False) -> dict[str, LabelType]:
    """Every label type (its latest published version; with `drafts`, a newer draft), by name."""
    def find(session: Session) -> dict[str, LabelType]:
        by_name: dict[str, list] = {}
        for row in version_heads(session):
            by_name.setdefault(row[1], []).append(row)
        out = {}
        for name in sorted(by_name):
            picked = pick_version(by_name[name], None, drafts=drafts) or pick_version(by_name[name], None, drafts=True)
            if picked is not None:
                out[name] = _load(session, picked[0], picked[3])
        return out
    return with_session(source, find)


def versions(source: Any, name: str) -> list[LabelType]:
    """Every version of `name`, oldest first."""
    def find(session: Session) -> list[LabelType]:
        rows = sorted(version_heads(session, name), key=lambda r: parse_version(r[2]))
        if not rows:
            raise NotFoundError(f"no label type named {name!r}")
        return [_load(session, r[0], r[3]) for r in rows]
    return with_session(source, find)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """``NAME[@VERSION]`` → (name, version or None)."""
    name, _, version = str(ref).partition("@")
    return name, (version or None)


# --- validating label data ----------------------------------------------------------------------

_VALIDATORS: dict[str, Any] = {}


def validator(label_type: LabelType) -> Any:
    """A (cached) JSON Schema validator of the label type's schema (``pattern`` anchored as
    JSON Schema means it)."""
    from vital_desktop.core.strict_json import strict_validator

    key = label_type.id if label_type.status == "published" and label_type.id else json.dumps(
        label_type.schema, sort_keys=True)
    if key not in _VALIDATORS:
        _VALIDATORS[key] = strict_validator(label_type.schema)
    return _VALIDATORS[key]


def check_label_data(label_type: LabelType, data: Any) -> None:
    """Raise `ValidationError` naming the first problem if `data` breaks the type's schema (a
    plain-Python check first, for the kinds whose schema is derived: `label_fast_checks`)."""
    from vital_desktop.services.label_fast_checks import fast_check

    fast = fast_check(label_type)
    if fast is not None and fast(data):
        return
    errors = sorted(validator(label_type).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.path) or "(label)"
        deprecated = [c.name for c in label_type.class_list if c.deprecated]
        hint = f" (deprecated classes take no new labels: {', '.join(deprecated)})" if deprecated else ""
        raise ValidationError(f"{label_type.ref} label is not valid at {where}: {err.message}{hint}")


def validate_label_data(source: Any, label_type: str | LabelType, data: Any, version: str | None = None) -> None:
    """Raise `ValidationError` naming the first problem if `data` breaks the label type's schema."""
    lt = label_type if isinstance(label_type, LabelType) else get_label_type(source, label_type, version)
    check_label_data(lt, data)


def class_of(label_type: LabelType, data: Any) -> str | None:
    """The class a classification-like label names (the class field's value), if any."""
    if not isinstance(data, dict) or not label_type.class_field:
        return None
    value = data.get(label_type.class_field)
    return None if value is None else str(value)
