"""Creating, editing, publishing, deleting and comparing label types (versioned site data).

A type made by `create_label_type` is published as 1.0.0 unless it is a draft; a draft may be
edited and then published; a published version never changes (changing its classes is an
evolution verb in `services/taxonomy`, which publishes the next version). Every change writes a
`label_type_changes` row (the taxonomy history) and an audit row in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, utcnow
from vital_desktop.core.users import User
from vital_desktop.services.accounts import require
from vital_desktop.services.label_types import (
    CLASS_KINDS,
    LabelType,
    build_label_type,
    from_row,
    next_version,
    pick_version,
    type_names,
    version_heads,
    versions,
    with_session,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import LabelTypeChange, LabelTypeRow

# --- writing ------------------------------------------------------------------------------------


def _row_values(lt: LabelType, actor: User, now: Any) -> dict:
    return {"id": new_id(), "name": lt.name, "version": lt.version, "status": lt.status, "title": lt.title,
            "description": lt.description, "kind": lt.kind, "class_field": lt.class_field,
            "classes": [c.to_dict() for c in lt.class_list], "attributes": [a.to_dict() for a in lt.attributes],
            "schema": lt.schema, "change_note": lt.change_note, "origin": lt.origin, "created_by": actor.username,
            "created_at": now, "published_at": now if lt.status == "published" else None}


def record_change(session: Session, actor: User, name: str, from_version: str | None, to_version: str, action: str,
                  details: dict, *, changed: int = 0, flagged: int = 0) -> None:
    """One row of the taxonomy history (the audit row is written by the caller)."""
    session.add(LabelTypeChange(id=new_id(), name=name, from_version=from_version, to_version=to_version,
                                action=action, details=details, labels_changed=changed, labels_flagged=flagged,
                                changed_by=actor.username, changed_at=utcnow()))


def insert_version(session: Session, actor: User, lt: LabelType) -> LabelType:
    """Write one new version row (the caller checked it); returns it as stored."""
    if session.scalar(sa.select(LabelTypeRow.id).where(LabelTypeRow.name == lt.name,
                                                       LabelTypeRow.version == lt.version)) is not None:
        raise ConflictError(f"label type {lt.ref} already exists")
    values = _row_values(lt, actor, utcnow())
    session.add(LabelTypeRow(**values))
    session.flush()
    return from_row(session.get(LabelTypeRow, values["id"]))


def create_in_session(session: Session, actor: User, spec: dict, *, draft: bool = False, origin: str = "site",
                      version: str = "1.0.0", note: str = "created") -> LabelType:
    """Create a new label type inside the caller's transaction (see `create_label_type`)."""
    lt = build_label_type(spec, version=version, status="draft" if draft else "published", origin=origin)
    if version_heads(session, lt.name):
        raise ConflictError(f"a label type named {lt.name!r} already exists; choose another name "
                            f"or evolve it (vital label types add-class {lt.name} …)")
    lt = LabelType(**{**lt.__dict__, "change_note": note})
    stored = insert_version(session, actor, lt)
    record_change(session, actor, lt.name, None, lt.version, "create", {"kind": lt.kind, "classes": lt.all_classes(),
                                                                         "status": lt.status, "origin": origin})
    audit.record(session, actor, "label_type.create", stored.ref, {"kind": lt.kind, "classes": lt.all_classes(),
                                                                   "status": lt.status, "origin": origin})
    return stored


def create_label_type(store: Store, actor: User, spec: dict, *, draft: bool = False) -> LabelType:
    """Create label type ``spec["name"]``: published as 1.0.0, or a 1.0.0 draft with `draft`.

    Refused with a clear message (store unchanged): a name that is not a slug or collides with
    another label type, an unknown kind, an empty class list, empty or duplicate class names,
    an invalid colour or shortcut, attribute fields that clash, a structured type whose schema
    is not valid JSON Schema.
    """
    require(actor, "edit_taxonomy")
    with store.session() as s:
        return create_in_session(s, actor, spec, draft=draft)


def _draft_row(session: Session, name: str) -> LabelTypeRow:
    rows = version_heads(session, name)
    if not rows:
        raise NotFoundError(f"no label type named {name!r}")
    drafts = [r for r in rows if r[3] == "draft"]
    if not drafts:
        latest = pick_version(rows, None, drafts=False)
        raise ConflictError(f"label type {name}@{latest[2] if latest else '?'} is published and cannot be edited; "
                            "change it with an evolution verb (add-class, rename-class, …), which publishes the next "
                            "version")
    return session.get(LabelTypeRow, drafts[0][0])  # type: ignore[return-value]


def edit_draft(store: Store, actor: User, name: str, spec: dict) -> LabelType:
    """Replace the draft version of `name` with `spec` (its name and kind stay). A published
    version is immutable: editing one is refused."""
    require(actor, "edit_taxonomy")
    with store.session() as s:
        row = _draft_row(s, name)
        lt = build_label_type({**spec, "name": name, "kind": spec.get("kind", row.kind)}, version=row.version,
                              status="draft", origin=row.origin)
        values = _row_values(lt, actor, row.created_at)
        for key in ("title", "description", "kind", "class_field", "classes", "attributes", "schema"):
            setattr(row, key, values[key])
        s.flush()
        record_change(s, actor, name, row.version, row.version, "edit_draft", {"classes": lt.all_classes()})
        audit.record(s, actor, "label_type.edit_draft", f"{name}@{row.version}", {"classes": lt.all_classes()})
        return from_row(row)


def publish(store: Store, actor: User, name: str) -> LabelType:
    """Publish the draft of `name` (it becomes immutable and the version lookups return)."""
    require(actor, "edit_taxonomy")
    with store.session() as s:
        row = _draft_row(s, name)
        row.status, row.published_at = "published", utcnow()
        s.flush()
        record_change(s, actor, name, row.version, row.version, "publish", {})
        audit.record(s, actor, "label_type.publish", f"{name}@{row.version}", {})
        return from_row(row)


def add_classes_to_draft(session: Session, actor: User, name: str, classes: Iterable[str], *,
                         reason: str = "") -> tuple[LabelType, list[str]]:
    """Add `classes` to the DRAFT version of label type `name`, inside the caller's transaction.

    The draft that exists is edited in place; when there is none, one is made as the next minor
    version of the latest published version (adding classes is a minor change). Published
    versions never change, so labels validated against the draft (an import with
    ``--add-classes``) name a version a person still has to publish. Refused: a kind without
    classes, an empty or duplicate name, a class the type already has (a deprecated one takes no
    new labels). Classes the draft has already are skipped. Writes the taxonomy history and the
    audit row; returns the draft as stored and the classes actually added.
    """
    require(actor, "edit_taxonomy")
    wanted = list(dict.fromkeys(str(c).strip() for c in classes))
    if not wanted or any(not c for c in wanted):
        raise ValidationError("give the classes to add (non-empty names)")
    rows = version_heads(session, name)
    if not rows:
        raise NotFoundError(f"no label type named {name!r}")
    draft = next((r for r in rows if r[3] == "draft"), None)
    base_row = draft or pick_version(rows, None, drafts=False)
    if base_row is None:
        raise ValidationError(f"label type {name!r} has neither a draft nor a published version")
    base = from_row(session.get(LabelTypeRow, base_row[0]))
    if base.kind not in CLASS_KINDS:
        raise ValidationError(f"label type {base.ref} is of kind {base.kind}: it has no classes to add to")
    deprecated = [c for c in wanted if base.get_class(c) is not None and base.get_class(c).deprecated]  # type: ignore[union-attr]
    if deprecated:
        raise ValidationError(f"class(es) {', '.join(deprecated)} of {base.ref} are deprecated and take no new labels")
    wanted = [c for c in wanted if base.get_class(c) is None]  # a draft may have them already
    if not wanted:
        if draft is None:
            raise ValidationError(f"{base.ref} already has every one of these classes")
        return base, []
    class_dicts = [c.to_dict() for c in base.class_list]
    for cls in wanted:
        used = {c.get("shortcut") for c in class_dicts}
        class_dicts.append({"name": cls, "title": cls, "color": "",
                            "shortcut": next((k for k in "123456789" if k not in used), "")})
    version = base.version if draft else next_version(base.version, "minor")
    note = reason or f"classes added: {', '.join(wanted)}"
    lt = build_label_type({**base.spec(), "classes": class_dicts}, version=version, status="draft",
                          origin=base.origin if draft else "site")
    if draft is not None:
        row = session.get(LabelTypeRow, draft[0])
        assert row is not None
        for key, value in (("classes", [c.to_dict() for c in lt.class_list]), ("schema", lt.schema)):
            setattr(row, key, value)
        session.flush()
        stored = from_row(row)
    else:
        stored = insert_version(session, actor, LabelType(**{**lt.__dict__, "change_note": note}))
    details = {"classes": wanted, "reason": note, "base_version": base.version, "new_draft": draft is None}
    record_change(session, actor, name, base.version, version, "add_classes_draft", details)
    audit.record(session, actor, "label_type.add_classes_draft", stored.ref, details)
    return stored, wanted


def delete_label_type(store: Store, actor: User, name: str) -> int:
    """Delete every version of `name`; refused while canonical labels or templates use it."""
    from vital_desktop.services.accounts import require
    from vital_desktop.store.models import CanonicalLabel, Template

    require(actor, "edit_taxonomy")
    with store.session() as s:
        if not version_heads(s, name):
            raise NotFoundError(f"no label type named {name!r}")
        used = s.scalar(sa.select(sa.func.count()).select_from(CanonicalLabel).where(CanonicalLabel.label_type == name))
        templates = s.scalar(sa.select(sa.func.count()).select_from(Template).where(Template.label_type == name))
        if used or templates:
            raise ConflictError(f"label type {name!r} is in use ({used} canonical labels, {templates} template "
                                "versions): deprecate its classes instead of deleting it")
        count = cast(sa.CursorResult, s.execute(sa.delete(LabelTypeRow).where(LabelTypeRow.name == name))).rowcount
        record_change(s, actor, name, None, "-", "delete", {"versions": count})
        audit.record(s, actor, "label_type.delete", name, {"versions": count})
        return int(count or 0)


def history(source: Any, name: str) -> list[dict]:
    """The taxonomy changes of `name`, oldest first."""
    def find(session: Session) -> list[dict]:
        rows = session.scalars(sa.select(LabelTypeChange).where(LabelTypeChange.name == name)
                               .order_by(LabelTypeChange.changed_at, LabelTypeChange.id))
        return [{"action": r.action, "from_version": r.from_version, "to_version": r.to_version,
                 "details": r.details, "labels_changed": r.labels_changed, "labels_flagged": r.labels_flagged,
                 "changed_by": r.changed_by, "changed_at": iso(r.changed_at)} for r in rows]
    return with_session(source, find)


# --- diff ---------------------------------------------------------------------------------------


def diff(old: LabelType, new: LabelType) -> list[dict]:
    """Field-by-field differences between two versions: classes added, removed, renamed-looking
    changes, attribute fields, titles, colours, shortcuts, deprecation and order."""
    changes: list[dict] = []
    for key in ("title", "description", "kind", "class_field"):
        if getattr(old, key) != getattr(new, key):
            changes.append({"field": key, "from": getattr(old, key), "to": getattr(new, key)})
    old_classes = {c.name: c for c in old.class_list}
    new_classes = {c.name: c for c in new.class_list}
    for name in new_classes.keys() - old_classes.keys():
        changes.append({"field": "classes", "change": "added", "class": name})
    for name in old_classes.keys() - new_classes.keys():
        changes.append({"field": "classes", "change": "removed", "class": name})
    for name in sorted(old_classes.keys() & new_classes.keys()):
        a, b = old_classes[name], new_classes[name]
        for key in ("title", "color", "shortcut", "deprecated"):
            if getattr(a, key) != getattr(b, key):
                changes.append({"field": f"classes.{name}.{key}", "from": getattr(a, key), "to": getattr(b, key)})
    common = [n for n in old.all_classes() if n in new_classes]
    if common != [n for n in new.all_classes() if n in old_classes]:
        changes.append({"field": "classes.order", "from": old.all_classes(), "to": new.all_classes()})
    old_attrs = {a.name: a.to_dict() for a in old.attributes}
    new_attrs = {a.name: a.to_dict() for a in new.attributes}
    for name in sorted(old_attrs.keys() | new_attrs.keys()):
        if old_attrs.get(name) != new_attrs.get(name):
            changes.append({"field": f"attributes.{name}", "from": old_attrs.get(name), "to": new_attrs.get(name)})
    if old.kind == new.kind == "structured" and old.schema != new.schema:
        changes.append({"field": "schema", "from": old.schema, "to": new.schema})
    return changes


def diff_versions(source: Any, name: str, from_version: str | None = None, to_version: str | None = None) -> dict:
    """The diff between two versions of `name` (default: the two newest)."""
    all_versions = versions(source, name)
    by_version = {v.version: v for v in all_versions}
    if from_version is None and to_version is None:
        if len(all_versions) < 2:
            raise ValidationError(f"label type {name!r} has one version only ({all_versions[0].version})")
        old, new = all_versions[-2], all_versions[-1]
    else:
        missing = [v for v in (from_version, to_version) if v is not None and v not in by_version]
        if missing:
            raise ValidationError(f"label type {name!r} has no version {missing[0]!r}; versions: "
                                  f"{', '.join(by_version)}")
        old = by_version[from_version] if from_version else all_versions[-2 if len(all_versions) > 1 else 0]
        new = by_version[to_version] if to_version else all_versions[-1]
    return {"name": name, "from": old.version, "to": new.version, "changes": diff(old, new)}


# --- seeding --------------------------------------------------------------------------------------

#: A new site's starter label types (it may keep, change or delete them).
STARTER_TYPES: tuple[dict, ...] = (
    {"name": "image-class", "title": "Image class", "kind": "classification",
     "description": "One class per image; rename or add classes to fit your images.",
     "classes": [{"name": "good"}, {"name": "defect"}]},
    {"name": "objects", "title": "Objects", "kind": "boxes",
     "description": "Boxes around the objects in an image.", "classes": [{"name": "object"}]},
    {"name": "regions", "title": "Regions", "kind": "polygons",
     "description": "Polygons around regions of an image.", "classes": [{"name": "region"}]},
    {"name": "notes", "title": "Notes", "kind": "text", "description": "Free text about an item."},
)


def seed_types(session: Session, actor: User, specs: Iterable[dict], *, note: str = "seeded") -> list[str]:
    """Create each spec whose name is not taken yet (idempotent); returns the names created."""
    created = []
    taken = set(type_names(session))
    for spec in specs:
        if spec["name"] in taken:
            continue
        create_in_session(session, actor, spec, note=note)
        created.append(spec["name"])
    return created


def seed_starter_types(store: Store, actor: User) -> list[str]:
    """Give a new site the starter set (only when it has no label types at all)."""
    with store.session() as s:
        if version_heads(s):
            return []
        return seed_types(s, actor, STARTER_TYPES, note="starter set")


# --- from the hub (taxonomy bundles) ------------------------------------------------------------


def pending_hub_versions(source: Any, name: str | None = None) -> list[LabelType]:
    """Hub versions held for review because they disagreed with a local edit (by name, then version)."""
    from vital_desktop.services.label_types import parse_version

    def find(session: Session) -> list[LabelType]:
        query = sa.select(LabelTypeRow).where(LabelTypeRow.status == "review")
        if name is not None:
            query = query.where(LabelTypeRow.name == name)
        held = [from_row(r) for r in session.scalars(query)]
        return sorted(held, key=lambda v: (v.name, parse_version(v.version)))
    return with_session(source, find)


def apply_hub_version(session: Session, actor: User, document: dict) -> str:
    """Apply one label-type version published by the hub, inside the import's transaction.

    Returns ``added`` (a new version, published: lookups use it from now on), ``unchanged``
    (already here, same content), ``stale`` (older than what the site has from the hub) or
    ``review``: the site changed this label type locally since the hub's last version (or made
    its own type of that name), so the hub's version is kept beside it with status ``review``
    instead of overwriting the local edit. Raises `ValidationError` for a version that is not a
    valid label type and `ConflictError` when the same version exists with other content."""
    from vital_desktop.services.label_types import parse_version

    spec = {k: document[k] for k in ("name", "title", "description", "kind", "class_field", "classes", "attributes",
                                     "schema") if k in document and document[k] is not None}
    lt = build_label_type(spec, version=str(document["version"]), status="published", origin="hub")
    lt = LabelType(**{**lt.__dict__, "change_note": str(document.get("change_note") or "from the hub")})
    rows = version_heads(session, lt.name)
    existing = next((r for r in rows if r[2] == lt.version), None)
    if existing is not None:
        here = from_row(session.get(LabelTypeRow, existing[0]))
        if here.spec() == lt.spec():
            return "unchanged"
        raise ConflictError(f"label type {lt.ref} already exists here with other content "
                            "(published versions are immutable)")
    local = [from_row(session.get(LabelTypeRow, r[0])) for r in rows if r[3] in ("published", "draft")]
    from_hub = [v for v in local if v.origin == "hub"]
    newest_hub = max((parse_version(v.version) for v in from_hub), default=None)
    if newest_hub is not None and parse_version(lt.version) < newest_hub:
        return "stale"
    local_edits = [v for v in local if v.origin != "hub" and (newest_hub is None
                                                               or parse_version(v.version) > newest_hub)]
    status = "review" if local_edits else "published"
    if status == "published" and local and parse_version(lt.version) <= max(parse_version(v.version) for v in local):
        status = "review"  # cannot become the newest version: a person decides
    stored = insert_version(session, actor, LabelType(**{**lt.__dict__, "status": status}))
    record_change(session, actor, lt.name, None, lt.version, "hub_import" if status == "published" else "hub_review",
                  {"origin": "hub", "status": status,
                   "local_versions": [v.version for v in local_edits]})
    audit.record(session, actor, "label_type.hub_" + ("import" if status == "published" else "review"), stored.ref,
                 {"status": status, "local_edits": [v.ref for v in local_edits]})
    return "added" if status == "published" else "review"
