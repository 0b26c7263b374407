"""GENERATE, templates: versioned prompt templates that encode the experts' know-how.

A template is identified by ``NAME@MAJOR.MINOR.PATCH``. A draft may be edited in place; a
published version is immutable (`ConflictError`), so a training sheet built from it can always
be reproduced: editing a published template creates a new draft version instead (minor bump
by default). Every spec is checked before anything is written (`template_spec`, whose names
are importable from here too). Every change is written to the audit log in the same
transaction.
"""

from __future__ import annotations

import difflib
import json
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
from vital_desktop.services.template_spec import (  # noqa: F401 - re-exported: the checks live there
    BUMPS,
    MODEL_REF_KEYS,
    SPEC_FIELDS,
    TEXT_FIELDS,
    VERSION_RE,
    _check_output_fits_label_type,
    _check_schema,
    bump_version,
    check_against_columns,
    check_answer,
    check_fits_current_label_type,
    first_error,
    label_data_from_answer,
    parse_version,
    schema_validator,
    split_ref,
    template_label_type,
    validate_spec,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import Template

STATUSES = ("draft", "published")


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
    """The demo's template library, shipped in `resources/demo/templates/*.json` (demo content:
    its prompts name the demo's sheets, columns and classes)."""
    folder = resources.files("vital_desktop.resources").joinpath("demo", "templates")
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
