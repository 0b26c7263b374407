"""GENERATE, templates: versioned prompt templates that encode the experts' know-how.

A template is identified by ``NAME@MAJOR.MINOR.PATCH``. A draft may be edited in place; a
published version is immutable (`ConflictError`), so a training sheet built from it can always
be reproduced: editing a published template creates a new draft version instead (minor bump
by default). Every spec is checked before anything is written:

- the input and output schemas are valid JSON Schemas (``check_schema``) describing objects;
- every ``{{placeholder}}`` of the prompts is a property of the input schema;
- the output schema fits the template's label type: the type's required fields are output
  properties, the output's required fields are label-type fields (so an answer taken from a
  canonical label always validates), and shared enums agree;
- every few-shot example's variables and output validate.

Every change is written to the audit log in the same transaction.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, utcnow
from vital_desktop.core.users import User
from vital_desktop.inference import prompts
from vital_desktop.services.accounts import require
from vital_desktop.services.label_types import (
    LabelType,
    check_label_data,
    get_label_type,
    list_label_types,
    parse_ref,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import Template

STATUSES = ("draft", "published")
VERSION_RE = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
BUMPS = ("major", "minor", "patch")
#: Fields a spec may set, in the order `diff` and `show` present them.
SPEC_FIELDS = (
    "label_type", "label_type_version", "description", "system_prompt", "user_prompt", "input_schema", "output_schema",
    "few_shot", "model_ref", "notes",
)
TEXT_FIELDS = ("description", "system_prompt", "user_prompt", "notes")
MODEL_REF_KEYS = ("gguf", "classifier", "max_tokens", "temperature",
                  "evidence_fields")  # metadata columns that carry the answer (services/llm_evidence)


# --- plain results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    name: str
    version: str
    status: str
    label_type: str
    description: str
    system_prompt: str
    user_prompt: str
    input_schema: dict
    output_schema: dict
    few_shot: list[dict]
    model_ref: dict
    notes: str
    origin: str
    created_by: str
    created_at: str | None
    published_at: str | None
    label_type_version: str | None = None  # the label-type version the template is bound to

    @property
    def ref(self) -> str:
        """``NAME@VERSION``: how users and training sheets name this exact version."""
        return f"{self.name}@{self.version}"

    @property
    def placeholders(self) -> list[str]:
        return prompts.placeholders(self.user_prompt)

    def to_dict(self) -> dict:
        return {**self.__dict__, "ref": self.ref, "placeholders": self.placeholders}


@dataclass(frozen=True)
class TemplateDiff:
    """Unified diffs, per field, between two template versions (empty dict: identical)."""

    old_ref: str
    new_ref: str
    fields: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        if not self.fields:
            return f"{self.old_ref} and {self.new_ref} are identical"
        return "\n".join(f"--- {name} ---\n{diff}" for name, diff in self.fields.items())

    def to_dict(self) -> dict:
        return {"old": self.old_ref, "new": self.new_ref, "changed_fields": list(self.fields), "diffs": self.fields}


@dataclass(frozen=True)
class LibraryReport:
    installed: list[str]
    already_present: list[str]

    def to_dict(self) -> dict:
        return {"installed": self.installed, "already_present": self.already_present}


def _info(row: Template) -> TemplateInfo:
    return TemplateInfo(
        id=row.id, name=row.name, version=row.version, status=row.status, label_type=row.label_type,
        description=row.description, system_prompt=row.system_prompt, user_prompt=row.user_prompt,
        input_schema=row.input_schema, output_schema=row.output_schema, few_shot=list(row.few_shot or []),
        model_ref=dict(row.model_ref or {}), notes=row.notes, origin=row.origin, created_by=row.created_by,
        created_at=iso(row.created_at), published_at=iso(row.published_at),
        label_type_version=row.label_type_version,
    )


# --- versions and references -------------------------------------------------------------------


def parse_version(version: str) -> tuple[int, int, int]:
    """``"1.2.3"`` → ``(1, 2, 3)``; anything else is a `ValidationError`."""
    match = VERSION_RE.match(str(version).strip())
    if not match:
        raise ValidationError(f"template version {version!r} is not a semantic version like 1.0.0")
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def bump_version(version: str, part: str = "minor") -> str:
    major, minor, patch = parse_version(version)
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    if part == "patch":
        return f"{major}.{minor}.{patch + 1}"
    raise ValidationError(f"unknown version bump {part!r}; use {', '.join(BUMPS)}")


def split_ref(ref: str) -> tuple[str, str | None]:
    """``"NAME@1.0.0"`` → ``("NAME", "1.0.0")``; ``"NAME"`` → ``("NAME", None)``."""
    ref = (ref or "").strip()
    if not ref:
        raise ValidationError("name a template (NAME or NAME@VERSION)")
    name, sep, version = ref.rpartition("@")
    if not sep:
        return ref, None
    if not name:
        raise ValidationError(f"template reference {ref!r} has no name before '@'")
    parse_version(version)
    return name.strip(), version.strip()


def _versions(session: Session, name: str) -> list[Template]:
    rows = list(session.scalars(sa.select(Template).where(Template.name == name)))
    return sorted(rows, key=lambda r: parse_version(r.version))


def resolve(session: Session, ref: str, *, published_only: bool = False) -> Template:
    """The row for ``NAME@VERSION``, or for ``NAME``: its latest published version (latest of any
    status unless `published_only`). Unknown names and versions are `NotFoundError`s naming what exists."""
    name, version = split_ref(ref)
    rows = _versions(session, name)
    if not rows:
        names = sorted(set(session.scalars(sa.select(Template.name))))
        raise NotFoundError(f"no template named {name!r}" + (f"; templates here: {', '.join(names)}" if names else ""))
    if version is not None:
        for row in rows:
            if row.version == version:
                if published_only and row.status != "published":
                    raise ValidationError(f"template {row.name}@{row.version} is a draft; publish it first")
                return row
        raise NotFoundError(f"template {name!r} has no version {version}; versions: "
                            + ", ".join(f"{r.version} ({r.status})" for r in rows))
    published = [r for r in rows if r.status == "published"]
    if published:
        return published[-1]
    if published_only:
        raise ValidationError(f"template {name!r} has no published version (drafts: "
                              + ", ".join(r.version for r in rows) + ")")
    return rows[-1]


# --- validation ----------------------------------------------------------------------------------


def _check_schema(schema: Any, what: str) -> None:
    import jsonschema

    if not isinstance(schema, dict):
        raise ValidationError(f"the {what} must be a JSON object (a JSON Schema), not {type(schema).__name__}")
    try:
        jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise ValidationError(f"the {what} is not a valid JSON Schema at {where}: {exc.message}") from None
    if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
        raise ValidationError(f"the {what} must describe an object: \"type\": \"object\" with \"properties\"")


@functools.lru_cache(maxsize=256)
def _validator_for_text(schema_text: str) -> Any:
    from vital_desktop.core.strict_json import strict_validator

    return strict_validator(json.loads(schema_text))  # patterns anchored as JSON Schema means them


def schema_validator(schema: dict) -> Any:
    """A cached jsonschema validator (validators are reused for every answer of a generation)."""
    return _validator_for_text(json.dumps(schema, sort_keys=True))


def first_error(schema: dict, value: Any) -> str | None:
    """The first problem of `value` against `schema` as one readable line, or None if it is valid."""
    errors = sorted(schema_validator(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
    return f"at {where}: {errors[0].message}"


def label_data_from_answer(label_type: LabelType, answer: dict) -> dict:
    """The part of an answer that is the canonical label: the label type's own fields.

    Answers may carry more (the model's confidence, an explanation the type does not keep).
    """
    properties = label_type.schema.get("properties", {})
    return {key: value for key, value in answer.items() if key in properties}


def template_label_type(source: Any, template: TemplateInfo | Template) -> LabelType:
    """The label-type version the template is bound to (the latest published one for templates
    made before templates were bound to a version)."""
    return get_label_type(source, template.label_type, template.label_type_version or None)


def check_answer(source: Any, template: TemplateInfo | Template, answer: Any) -> dict:
    """Validate an answer against the template's output schema AND its label type; return the label data."""
    if not isinstance(answer, dict):
        raise ValidationError("the answer must be a JSON object")
    problem = first_error(template.output_schema, answer)
    if problem:
        raise ValidationError(f"the answer does not match the output schema of {template.name}@{template.version} {problem}")
    label_type = template_label_type(source, template)
    data = label_data_from_answer(label_type, answer)
    check_label_data(label_type, data)
    return data


def check_fits_current_label_type(source: Any, template: TemplateInfo | Template) -> LabelType:
    """The label type's current version, if the template's output still fits it; otherwise a
    `ValidationError` naming the template's label-type version and the current one."""
    current = get_label_type(source, template.label_type)
    bound = template.label_type_version or current.version
    try:
        _check_output_fits_label_type(current, template.output_schema)
    except ValidationError as exc:
        raise ValidationError(
            f"template {template.name}@{template.version} was made for label type {template.label_type}@{bound}, "
            f"but the label type is now {current.ref} and the template no longer fits it ({exc.message}); "
            "edit the template for the new version") from None
    return current


def _check_output_fits_label_type(lt: LabelType, output_schema: dict) -> None:
    label_type = lt.ref
    type_schema = lt.schema
    type_props: dict = type_schema.get("properties", {})
    out_props: dict = output_schema.get("properties", {})
    missing = [f for f in type_schema.get("required", []) if f not in out_props]
    if missing:
        raise ValidationError(
            f"the output schema does not produce the {label_type} label: it lacks {', '.join(missing)} "
            f"(the {label_type} label type needs {', '.join(type_schema.get('required', []))})"
        )
    extra_required = [f for f in output_schema.get("required", []) if f not in type_props]
    if extra_required:
        raise ValidationError(
            f"the output schema requires {', '.join(extra_required)}, which a {label_type} label does not hold, "
            "so answers taken from canonical labels could not match it; make these fields optional"
        )
    for name, prop in out_props.items():
        if name in type_props and isinstance(prop, dict) and "enum" in prop and "enum" in type_props[name]:
            outside = [v for v in prop["enum"] if v not in type_props[name]["enum"]]
            if outside:
                raise ValidationError(
                    f"output field {name!r} allows {', '.join(map(str, outside))}, which the {label_type} label type "
                    f"does not (it allows {', '.join(map(str, type_props[name]['enum']))})"
                )


def validate_spec(spec: dict, source: Any) -> dict:
    """Check a whole template spec (see the module docstring) against the label types in
    `source` (the store or a session); return it normalised, bound to a label-type version.

    Raises `ValidationError` naming the first problem.
    """
    if not isinstance(spec, dict):
        raise ValidationError("a template spec must be a JSON object")
    unknown = [k for k in spec if k not in (*SPEC_FIELDS, "name", "version", "status")]
    if unknown:
        raise ValidationError(f"unknown template field(s) {', '.join(unknown)}; fields: name, {', '.join(SPEC_FIELDS)}")
    name = str(spec.get("name") or "").strip()
    if not name:
        raise ValidationError("a template needs a name")
    if "@" in name:
        raise ValidationError(f"template name {name!r} must not contain '@' (it separates the version)")
    out: dict[str, Any] = {"name": name}
    label_type = spec.get("label_type")
    if not label_type:
        raise ValidationError(f"template {name!r} needs a label_type; label types: "
                              f"{', '.join(list_label_types(source))}")
    type_name, type_version = parse_ref(str(label_type))
    lt = get_label_type(source, type_name, type_version or spec.get("label_type_version") or None)
    out["label_type"], out["label_type_version"] = lt.name, lt.version
    for key in TEXT_FIELDS:
        value = spec.get(key, "")
        if not isinstance(value, str):
            raise ValidationError(f"{key} must be text")
        out[key] = value
    if not out["system_prompt"].strip():
        raise ValidationError(f"template {name!r} needs a system prompt")
    if not out["user_prompt"].strip():
        raise ValidationError(f"template {name!r} needs a user prompt")
    if prompts.placeholders(out["system_prompt"]):
        raise ValidationError(
            "the system prompt must not contain placeholders (item data goes in the user prompt only): "
            + ", ".join(prompts.placeholders(out["system_prompt"]))
        )
    _check_schema(spec.get("input_schema"), "input schema")
    _check_schema(spec.get("output_schema"), "output schema")
    out["input_schema"] = spec["input_schema"]
    out["output_schema"] = spec["output_schema"]
    inputs = out["input_schema"]["properties"]
    unknown_placeholders = [p for p in prompts.placeholders(out["user_prompt"]) if p.split(".")[0] not in inputs]
    if unknown_placeholders:
        raise ValidationError(
            "the user prompt uses placeholders that are not properties of the input schema: "
            + ", ".join("{{" + p + "}}" for p in unknown_placeholders)
            + f" (input properties: {', '.join(inputs) or 'none'})"
        )
    _check_output_fits_label_type(lt, out["output_schema"])
    few_shot = spec.get("few_shot", []) or []
    if not isinstance(few_shot, list):
        raise ValidationError("few_shot must be a list of examples")
    for number, example in enumerate(few_shot, start=1):
        if not isinstance(example, dict) or not isinstance(example.get("variables"), dict) or "output" not in example:
            raise ValidationError(f"few-shot example {number} must be an object with \"variables\" and \"output\"")
        problem = first_error(out["input_schema"], example["variables"])
        if problem:
            raise ValidationError(f"few-shot example {number}: its variables do not match the input schema {problem}")
        missing = [p for p in prompts.placeholders(out["user_prompt"]) if p.split(".")[0] not in example["variables"]]
        if missing:
            raise ValidationError(f"few-shot example {number} lacks the placeholder value(s) {', '.join(missing)}")
        problem = first_error(out["output_schema"], example["output"])
        if problem:
            raise ValidationError(f"few-shot example {number}: its output does not match the output schema {problem}")
        try:
            check_label_data(lt, label_data_from_answer(lt, example["output"]))
        except ValidationError as exc:
            raise ValidationError(f"few-shot example {number}: {exc.message}") from None
    out["few_shot"] = few_shot
    model_ref = spec.get("model_ref", {}) or {}
    if not isinstance(model_ref, dict):
        raise ValidationError("model_ref must be an object such as {\"gguf\": \"default\", \"classifier\": \"NAME\"}")
    bad = [k for k in model_ref if k not in MODEL_REF_KEYS]
    if bad:
        raise ValidationError(f"unknown model_ref key(s) {', '.join(bad)}; use {', '.join(MODEL_REF_KEYS)}")
    evidence = model_ref.get("evidence_fields")
    if evidence is not None and (not isinstance(evidence, list) or not all(isinstance(f, str) and f for f in evidence)):
        raise ValidationError("model_ref.evidence_fields must be a list of metadata column names")
    out["model_ref"] = model_ref
    return out


def check_against_columns(template: TemplateInfo | Template, columns: Iterable[str]) -> None:
    """Refuse a template whose placeholders or required inputs are not columns of the sheet."""
    available = set(columns) | set(prompts.BUILTIN_VARIABLES)
    missing = [p for p in prompts.placeholders(template.user_prompt) if p.split(".")[0] not in available]
    required = [r for r in template.input_schema.get("required", []) if r not in available]
    problems = sorted(set(missing) | set(required))
    if problems:
        raise ValidationError(
            f"template {template.name}@{template.version} needs the field(s) {', '.join(problems)}, which the sheet "
            f"does not have (its columns: {', '.join(columns)})",
            details={"missing": problems},
        )


# --- verbs -----------------------------------------------------------------------------------


def _spec_of(row: Template) -> dict:
    return {"name": row.name, **{key: getattr(row, key) for key in SPEC_FIELDS}}


def create_template(
    store: Store, *, actor: User, spec: dict, version: str = "1.0.0", origin: str = "site"
) -> tuple[TemplateInfo, Changes]:
    """Save a new template as a draft (version 1.0.0 unless given). The name must be new."""
    require(actor, "edit_template")
    spec = validate_spec(spec, store)
    version = ".".join(map(str, parse_version(spec.pop("version", None) or version)))
    with store.session() as s:
        if s.scalar(sa.select(Template.id).where(Template.name == spec["name"]).limit(1)) is not None:
            raise ConflictError(f"a template named {spec['name']!r} already exists; edit it to make a new version")
        row = Template(id=new_id(), version=version, status="draft", origin=origin, created_by=actor.username,
                       created_at=utcnow(), **spec)
        s.add(row)
        s.flush()
        audit.record(s, actor, "template.create", f"{row.name}@{row.version}", {"label_type": row.label_type})
        info = _info(row)
    return info, Changes(templates=True)


def update_draft(store: Store, *, actor: User, ref: str, changes: dict) -> tuple[TemplateInfo, Changes]:
    """Change a draft in place. A published version is immutable: `ConflictError`."""
    require(actor, "edit_template")
    with store.session() as s:
        row = resolve(s, ref)
        if row.status == "published":
            raise ConflictError(f"template {row.name}@{row.version} is published and cannot change; "
                                "edit it to create a new draft version")
        spec = validate_spec({**_spec_of(row), **_clean_changes(changes)}, s)
        changed = [k for k in SPEC_FIELDS if getattr(row, k) != spec[k]]
        for key in changed:
            setattr(row, key, spec[key])
        s.flush()
        if changed:
            audit.record(s, actor, "template.update_draft", f"{row.name}@{row.version}", {"fields": changed})
        info = _info(row)
    return info, Changes(templates=bool(changed))


def _clean_changes(changes: dict) -> dict:
    if not isinstance(changes, dict):
        raise ValidationError("template changes must be a JSON object")
    if "name" in changes:
        raise ValidationError("a template's name cannot change; create a new template instead")
    if "version" in changes or "status" in changes:
        raise ValidationError("version and status are set by edit and publish, not by hand")
    return changes


def edit_template(
    store: Store, *, actor: User, ref: str, changes: dict, bump: str = "minor"
) -> tuple[TemplateInfo, Changes]:
    """Edit a template: a draft changes in place; a published version gets a new draft version
    (the newest version of the name bumped by `bump`) holding the edited spec."""
    require(actor, "edit_template")
    if bump not in BUMPS:
        raise ValidationError(f"unknown version bump {bump!r}; use {', '.join(BUMPS)}")
    changes = _clean_changes(changes)
    with store.read() as s:
        row = resolve(s, ref)
        status = row.status
    if status == "draft":
        return update_draft(store, actor=actor, ref=f"{row.name}@{row.version}", changes=changes)
    with store.session() as s:
        row = resolve(s, f"{row.name}@{row.version}")
        spec = validate_spec({**_spec_of(row), **changes}, s)
        if all(getattr(row, k) == spec[k] for k in SPEC_FIELDS):
            raise ValidationError(f"the edit changes nothing in {row.name}@{row.version}")
        newest = _versions(s, row.name)[-1].version
        version = bump_version(newest, bump)
        new = Template(id=new_id(), version=version, status="draft", origin="site", created_by=actor.username,
                       created_at=utcnow(), **spec)
        s.add(new)
        s.flush()
        audit.record(s, actor, "template.new_version", f"{new.name}@{new.version}",
                     {"from": row.version, "fields": [k for k in SPEC_FIELDS if getattr(row, k) != spec[k]]})
        info = _info(new)
    return info, Changes(templates=True)


def publish_template(store: Store, *, actor: User, ref: str) -> tuple[TemplateInfo, Changes]:
    """Freeze a draft: from now on the version is immutable and generations may use it."""
    require(actor, "publish_template")
    with store.session() as s:
        row = resolve(s, ref)
        if row.status == "published":
            raise ConflictError(f"template {row.name}@{row.version} is already published")
        validate_spec(_spec_of(row), s)
        row.status = "published"
        row.published_at = utcnow()
        s.flush()
        audit.record(s, actor, "template.publish", f"{row.name}@{row.version}", {})
        info = _info(row)
    return info, Changes(templates=True)


def get_template(store: Store, ref: str, *, published_only: bool = False) -> TemplateInfo:
    """A template by ``NAME@VERSION`` or ``NAME`` (its latest published version, else latest draft)."""
    with store.read() as s:
        return _info(resolve(s, ref, published_only=published_only))


def get_template_by_id(store: Store, template_id: str) -> TemplateInfo:
    with store.read() as s:
        row = s.get(Template, template_id)
        if row is None:
            raise NotFoundError(f"no template with id {template_id!r}")
        return _info(row)


def list_templates(store: Store, *, name: str | None = None, all_versions: bool = False) -> list[TemplateInfo]:
    """Templates by name; by default only the version `get_template(NAME)` would pick."""
    with store.read() as s:
        query = sa.select(Template)
        if name:
            query = query.where(Template.name == name)
        rows = list(s.scalars(query))
    rows.sort(key=lambda r: (r.name.lower(), parse_version(r.version)))
    if all_versions:
        return [_info(r) for r in rows]
    chosen: dict[str, Template] = {}
    for row in rows:  # ascending: keep the newest published, else the newest draft
        current = chosen.get(row.name)
        if current is None or row.status == "published" or current.status != "published":
            chosen[row.name] = row
    return [_info(r) for r in chosen.values()]


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def diff(store: Store, old_ref: str, new_ref: str) -> TemplateDiff:
    """Unified diff, field by field, between two versions (e.g. ``NAME@1.0.0`` and ``NAME@1.1.0``)."""
    with store.read() as s:
        old, new = _info(resolve(s, old_ref)), _info(resolve(s, new_ref))
    fields: dict[str, str] = {}
    for key in ("name", *SPEC_FIELDS):
        a, b = _as_text(getattr(old, key)), _as_text(getattr(new, key))
        if a != b:
            lines = difflib.unified_diff(a.splitlines(), b.splitlines(), f"{old.ref}/{key}", f"{new.ref}/{key}",
                                         lineterm="")
            fields[key] = "\n".join(lines)
    return TemplateDiff(old.ref, new.ref, fields)


def load_spec_file(path: Path | str) -> dict:
    """Read a template spec from a JSON file (what `vital template create --file` takes)."""
    path = Path(path)
    if not path.is_file():
        raise ValidationError(f"template file {path} does not exist")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"template file {path.name} is not valid JSON: {exc}") from None


def library_specs() -> list[dict]:
    """The demo library shipped in `resources/templates/*.json`."""
    folder = resources.files("vital_desktop.resources").joinpath("templates")
    specs = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            specs.append(json.loads(entry.read_text("utf-8")))
    return specs


def load_library(store: Store, actor: User) -> tuple[LibraryReport, Changes]:
    """Install and publish the shipped templates that are not here yet (by name and version)."""
    require(actor, "publish_template")
    installed, present = [], []
    for spec in library_specs():
        spec = dict(spec)
        version = ".".join(map(str, parse_version(spec.pop("version", "1.0.0"))))
        spec.pop("status", None)
        clean = validate_spec(spec, store)
        with store.session() as s:
            existing = {r.version for r in _versions(s, clean["name"])}
            ref = f"{clean['name']}@{version}"
            if version in existing:
                present.append(ref)
                continue
            if existing:
                present.append(ref + " (other versions exist; not installed)")
                continue
            row = Template(id=new_id(), version=version, status="published", origin="library",
                           created_by=actor.username, created_at=utcnow(), published_at=utcnow(), **clean)
            s.add(row)
            s.flush()
            audit.record(s, actor, "template.install", ref, {"origin": "library"})
            installed.append(ref)
    return LibraryReport(installed, present), Changes(templates=bool(installed))
