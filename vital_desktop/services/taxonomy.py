"""Taxonomy evolution: add, rename, merge, split and deprecate classes of a label type.

Each verb is first a preview (`preview`: how many labels it changes or flags, and how many
training sheets and models used those labels) and then, with `apply`, one transaction that
publishes the next version of the label type, relabels through the one write path
(`label_write_maintenance.relabel_in_bulk`, action ``taxonomy``, with the reason
"class renamed" / "classes merged"), flags labels for review where a person must decide
(split: never guessed; deprecate: kept, flagged), and writes the taxonomy history and the
audit row. Training sheets and models keep pointing at the version they used.

Bumps: rename, merge, split and deprecate change what a label may say (major); adding a class
or an optional attribute field is minor; titles, colours, shortcuts and order are a patch. On a
draft the change edits the draft in place (no label can use a draft yet).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.users import User
from vital_desktop.services import labels
from vital_desktop.services.accounts import require
from vital_desktop.services.label_type_edits import insert_version, record_change
from vital_desktop.services.label_write_maintenance import relabel_in_bulk
from vital_desktop.services.label_types import (
    SHAPE_KINDS,
    LabelType,
    build_label_type,
    get_label_type,
    next_version,
)
from vital_desktop.store import audit
from vital_desktop.store.bulk import raw_connection
from vital_desktop.store.db import Store
from vital_desktop.store.models import LabelTypeRow

ACTIONS = ("add_class", "rename_class", "merge_classes", "split_class", "deprecate_class", "update_classes",
           "set_attributes")


@dataclass(frozen=True)
class Plan:
    """What a change does to the label type and to its labels (before anything is written)."""

    action: str
    description: str
    spec: dict
    bump: str
    mapping: dict[str, str] = field(default_factory=dict)  # old class → new class (relabelled)
    flag: frozenset[str] = frozenset()  # classes whose labels go to review
    reason: str = ""


@dataclass(frozen=True)
class Impact:
    """A change's preview, or its outcome once applied."""

    label_type: str
    action: str
    description: str
    from_version: str
    to_version: str
    labels_changed: int
    labels_flagged: int
    training_sheets: int
    models: int
    applied: bool = False
    classes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        verb = "applied" if self.applied else "preview"
        return (f"{verb}: {self.description} ({self.label_type} {self.from_version} → {self.to_version}); "
                f"{self.labels_changed} label(s) relabelled, {self.labels_flagged} flagged for review; used by "
                f"{self.training_sheets} training sheet(s) and {self.models} model(s)"
                + ("" if self.applied else "; run again with --yes to apply"))


# --- plans ---------------------------------------------------------------------------------------


def _class_dicts(lt: LabelType) -> list[dict]:
    return [c.to_dict() for c in lt.class_list]


def _need(lt: LabelType, names: list[str], *, active: bool = False) -> None:
    known = lt.all_classes()
    missing = [n for n in names if n not in known]
    if missing:
        raise ValidationError(f"{lt.ref} has no class {missing[0]!r}; classes: {', '.join(known) or '(none)'}")
    if active:
        gone = [n for n in names if lt.get_class(n) and lt.get_class(n).deprecated]  # type: ignore[union-attr]
        if gone:
            raise ValidationError(f"class {gone[0]!r} of {lt.ref} is already deprecated")


def _new_name(lt: LabelType, name: Any) -> str:
    text = str(name or "").strip()
    if not text:
        raise ValidationError("a class name cannot be empty")
    if text in lt.all_classes():
        raise ValidationError(f"{lt.ref} already has a class {text!r}"
                              + (" (deprecated)" if lt.get_class(text).deprecated else ""))  # type: ignore[union-attr]
    return text


def _free_shortcut(classes: list[dict]) -> str:
    used = {c.get("shortcut") for c in classes}
    return next((k for k in "123456789" if k not in used), "")


def _add_class(lt: LabelType, args: dict) -> Plan:
    name = _new_name(lt, args.get("name"))
    classes = _class_dicts(lt)
    classes.append({"name": name, "title": args.get("title") or name, "color": args.get("color") or "",
                    "shortcut": args.get("shortcut") if args.get("shortcut") is not None else _free_shortcut(classes)})
    return Plan("add_class", f"add class {name!r}", {**lt.spec(), "classes": classes}, "minor")


def _rename_class(lt: LabelType, args: dict) -> Plan:
    old = str(args.get("old") or "")
    _need(lt, [old])
    new = _new_name(lt, args.get("new"))
    classes = [({**c, "name": new, "title": new if c["title"] == old else c["title"]} if c["name"] == old else c)
               for c in _class_dicts(lt)]
    return Plan("rename_class", f"rename class {old!r} to {new!r}", {**lt.spec(), "classes": classes}, "major",
                mapping={old: new}, reason=f"class renamed: {old} → {new}")


def _merge_classes(lt: LabelType, args: dict) -> Plan:
    sources = [str(s) for s in (args.get("sources") or [])]
    into = str(args.get("into") or "").strip()
    if not sources or not into:
        raise ValidationError("merge needs the classes to merge and the class they become")
    if len(set(sources)) != len(sources):
        raise ValidationError("a class is named twice in the merge")
    _need(lt, sources)
    merged = [s for s in sources if s != into]
    if not merged:
        raise ValidationError(f"merging {into!r} into itself changes nothing")
    classes: list[dict] = []
    for c in _class_dicts(lt):
        if c["name"] in merged:
            if into not in lt.all_classes() and not any(x["name"] == into for x in classes):
                classes.append({**c, "name": into, "title": into})
            continue
        classes.append(c)
    return Plan("merge_classes", f"merge {', '.join(map(repr, merged))} into {into!r}",
                {**lt.spec(), "classes": classes}, "major", mapping={s: into for s in merged},
                reason=f"classes merged: {', '.join(merged)} → {into}")


def _split_class(lt: LabelType, args: dict) -> Plan:
    old = str(args.get("name") or "")
    _need(lt, [old], active=True)
    into = [str(n).strip() for n in (args.get("into") or [])]
    if len(into) < 2 or len(set(into)) != len(into):
        raise ValidationError("split a class into at least two distinct classes")
    fresh = [_new_name(lt, n) for n in into if n != old]
    classes = []
    for c in _class_dicts(lt):
        if c["name"] != old:
            classes.append(c)
            continue
        if old in into:
            classes.append(c)
        else:
            classes.append({**c, "deprecated": True})
        for name in fresh:
            classes.append({"name": name, "title": name, "color": "", "shortcut": ""})
    return Plan("split_class", f"split {old!r} into {', '.join(map(repr, into))}", {**lt.spec(), "classes": classes},
                "major", flag=frozenset({old}), reason=f"class {old} split into {', '.join(into)}: review")


def _deprecate_class(lt: LabelType, args: dict) -> Plan:
    name = str(args.get("name") or "")
    _need(lt, [name], active=True)
    classes = [({**c, "deprecated": True} if c["name"] == name else c) for c in _class_dicts(lt)]
    if not any(not c.get("deprecated") for c in classes):
        raise ValidationError(f"deprecating {name!r} would leave {lt.ref} without a class")
    return Plan("deprecate_class", f"deprecate class {name!r}", {**lt.spec(), "classes": classes}, "major",
                flag=frozenset({name}), reason=f"class {name} deprecated: review")


def _update_classes(lt: LabelType, args: dict) -> Plan:
    """Titles, colours, shortcuts and order of the same classes (no class added, removed or renamed)."""
    given = args.get("classes")
    if not isinstance(given, list):
        raise ValidationError("give the classes as a list")
    names = [str((c or {}).get("name") if isinstance(c, dict) else c) for c in given]
    if sorted(names) != sorted(lt.all_classes()):
        raise ValidationError("update_classes keeps the same classes (use add, rename, merge, split or deprecate "
                              "to change which classes exist)")
    current = {c["name"]: c for c in _class_dicts(lt)}
    classes = [{**current[n], **({k: v for k, v in c.items() if k != "deprecated"} if isinstance(c, dict) else {})}
               for n, c in zip(names, given, strict=True)]
    return Plan("update_classes", "change class titles, colours, shortcuts or order",
                {**lt.spec(), "classes": classes}, "patch")


def _set_attributes(lt: LabelType, args: dict) -> Plan:
    attributes = args.get("attributes")
    if not isinstance(attributes, list):
        raise ValidationError("give the attribute fields as a list")
    old = {a.name: a.to_dict() for a in lt.attributes}
    new = {str(a.get("name")): a for a in attributes if isinstance(a, dict)}
    only_added = all(n in new for n in old) and all(not new[n].get("required") for n in new if n not in old)
    return Plan("set_attributes", "change attribute fields", {**lt.spec(), "attributes": attributes},
                "minor" if only_added else "major")


PLANNERS: dict[str, Callable[[LabelType, dict], Plan]] = {
    "add_class": _add_class, "rename_class": _rename_class, "merge_classes": _merge_classes,
    "split_class": _split_class, "deprecate_class": _deprecate_class, "update_classes": _update_classes,
    "set_attributes": _set_attributes,
}


# --- what a label says, per kind ---------------------------------------------------------------------


def label_classes(lt: LabelType, data: Any) -> set[str]:
    """The classes a label's data names (its class field, its classes list or its shapes' labels)."""
    if not isinstance(data, dict):
        return set()
    if lt.kind in SHAPE_KINDS:
        return {str(s.get("label")) for s in data.get(lt.kind) or [] if isinstance(s, dict)}
    if lt.kind == "multilabel":
        return {str(c) for c in data.get("classes") or []}
    value = data.get(lt.class_field) if lt.class_field else None
    return set() if value is None else {str(value)}


def relabel(lt: LabelType, data: dict, mapping: dict[str, str]) -> dict:
    """The label's data with its classes mapped (`mapping`: old → new)."""
    out = dict(data)
    if lt.kind in SHAPE_KINDS:
        out[lt.kind] = [({**s, "label": mapping.get(str(s.get("label")), s.get("label"))} if isinstance(s, dict)
                         else s) for s in data.get(lt.kind) or []]
    elif lt.kind == "multilabel":
        seen: list[str] = []
        for c in data.get("classes") or []:
            mapped = mapping.get(c, c)
            if mapped not in seen:
                seen.append(mapped)
        out["classes"] = seen
    elif lt.class_field and data.get(lt.class_field) in mapping:
        out[lt.class_field] = mapping[data[lt.class_field]]
    return out


# --- impact ----------------------------------------------------------------------------------------


def _affected(s: Session, lt: LabelType, classes: set[str]) -> list[tuple]:
    """Current labels of `lt` that name any of `classes`: (id, sheet_id, item_ref, version, data,
    allowed, prohibited, usage_reason, confidence, notes)."""
    if not classes:
        return []
    raw = raw_connection(s)
    s.flush()
    columns = ("id, sheet_id, item_ref, version, label_data::VARCHAR, allowed_uses::VARCHAR, prohibited_uses::VARCHAR, "
               "usage_reason, confidence, notes")
    names = sorted(classes)
    marks = ", ".join("?" for _ in names)
    if lt.class_field and lt.kind not in SHAPE_KINDS and lt.kind != "multilabel":
        path = "$." + json.dumps(lt.class_field)
        sql = (f"SELECT {columns} FROM canonical_labels WHERE label_type = ? "
               f"AND json_extract_string(label_data, ?) IN ({marks})")
        rows = raw.execute(sql, [lt.name, path, *names]).fetchall()
    else:  # a text prefilter, then the exact test on the parsed data
        likes = " OR ".join("label_data::VARCHAR LIKE ?" for _ in names)
        sql = f"SELECT {columns} FROM canonical_labels WHERE label_type = ? AND ({likes})"
        rows = raw.execute(sql, [lt.name, *[f"%{json.dumps(n)[1:-1]}%" for n in names]]).fetchall()
    out = []
    parsed: dict[str, Any] = {}  # labels repeat a lot: parse each distinct text once
    for row in rows:
        if row[4] not in parsed:
            parsed[row[4]] = json.loads(row[4])
        data = parsed[row[4]]
        if label_classes(lt, data) & classes:
            out.append((*row[:4], data, *row[5:]))
    return out


def _usage(s: Session, lt: LabelType, label_ids: list[str], classes: set[str]) -> tuple[int, int]:
    """(training sheets holding any of the labels, models trained on them or predicting the classes)."""
    raw = raw_connection(s)
    sheets: set[str] = set()
    if label_ids:
        raw.register("_tax_ids", pa.table({"id": label_ids}))
        try:
            sheets = {r[0] for r in raw.execute(
                "SELECT DISTINCT training_sheet_id FROM qa_pairs WHERE canonical_label_id IN (SELECT id FROM _tax_ids)"
            ).fetchall()}
        finally:
            raw.unregister("_tax_ids")
    models = set()
    for model_id, ts_id, config in raw.execute(
            "SELECT model_id, training_sheet_id, training_config::VARCHAR FROM model_training_lineage").fetchall():
        cfg = json.loads(config or "{}")
        if ts_id in sheets or (cfg.get("label_type") == lt.name and set(cfg.get("classes") or []) & classes):
            models.add(model_id)
    return len(sheets), len(models)


def _plan(s: Session, name: str, action: str, args: dict) -> tuple[LabelType, Plan, bool]:
    if action not in PLANNERS:
        raise ValidationError(f"unknown taxonomy change {action!r}; changes: {', '.join(PLANNERS)}")
    lt = get_label_type(s, name, drafts=True)
    plan = PLANNERS[action](lt, dict(args))
    is_draft = lt.status == "draft"
    return lt, plan, is_draft


def _impact(s: Session, lt: LabelType, plan: Plan, is_draft: bool, *, applied: bool = False,
            changed: int | None = None, flagged: int | None = None) -> tuple[Impact, list[tuple], list[tuple]]:
    to_relabel = [] if is_draft else _affected(s, lt, set(plan.mapping))
    to_flag = [] if is_draft else _affected(s, lt, set(plan.flag))
    touched = {r[0] for r in to_relabel} | {r[0] for r in to_flag}
    classes = set(plan.mapping) | set(plan.flag)
    ts_count, model_count = _usage(s, lt, sorted(touched), classes) if touched or classes else (0, 0)
    version = lt.version if is_draft else next_version(lt.version, plan.bump)
    new_classes = [c["name"] for c in plan.spec.get("classes", []) if not c.get("deprecated")]
    impact = Impact(lt.name, plan.action, plan.description, lt.version, version,
                    len(to_relabel) if changed is None else changed, len(to_flag) if flagged is None else flagged,
                    ts_count, model_count, applied, new_classes)
    return impact, to_relabel, to_flag


def preview(store: Store, name: str, action: str, /, **args: Any) -> Impact:
    """What the change would do (nothing is written); refuses a bad change with a clear message."""
    with store.read() as s:
        lt, plan, is_draft = _plan(s, name, action, args)
        build_label_type(plan.spec, version=lt.version)  # the resulting type must be valid too
        impact, _, _ = _impact(s, lt, plan, is_draft)
        return impact


def apply(store: Store, actor: User, name: str, action: str, /, **args: Any) -> tuple[Impact, Changes]:
    """Apply the change in one transaction (see the module docstring); returns the outcome."""
    require(actor, "edit_taxonomy")
    with store.session() as s:
        lt, plan, is_draft = _plan(s, name, action, args)
        impact, to_relabel, to_flag = _impact(s, lt, plan, is_draft, applied=True)
        if is_draft:
            new = build_label_type(plan.spec, version=lt.version, status="draft", origin=lt.origin)
            row = s.get(LabelTypeRow, lt.id)
            for key, value in (("classes", [c.to_dict() for c in new.class_list]),
                               ("attributes", [a.to_dict() for a in new.attributes]), ("schema", new.schema)):
                setattr(row, key, value)
        else:
            new = build_label_type(plan.spec, version=impact.to_version, origin="site")
            insert_version(s, actor, replace(new, change_note=plan.description))
        # one bulk relabel in the write path: every rule kept, the plain updates written in SQL
        outcome = relabel_in_bulk(s, actor, lt.name, to_relabel, lambda data: relabel(lt, data, plan.mapping),
                                  reason=plan.reason)
        flagged = labels.flag_for_review(s, [r[0] for r in to_flag])
        details = {"description": plan.description, "mapping": plan.mapping, "flagged_classes": sorted(plan.flag),
                   "training_sheets": impact.training_sheets, "models": impact.models}
        record_change(s, actor, lt.name, lt.version, impact.to_version, plan.action, details,
                      changed=outcome.updated, flagged=flagged)
        audit.record(s, actor, f"label_type.{plan.action}", f"{lt.name}@{impact.to_version}",
                     {**details, "labels_changed": outcome.updated, "labels_flagged": flagged})
        result = replace(impact, labels_changed=outcome.updated, labels_flagged=flagged)
    return result, Changes(label_types=True, labels=bool(to_relabel or flagged))


def flagged_labels(store: Store, name: str, *, limit: int = 500) -> list[dict]:
    """Labels of `name` waiting for review after a split or deprecation."""
    with store.read() as s:
        rows = raw_connection(s).execute(
            "SELECT c.id, s.name, c.item_ref, c.version, c.label_data::VARCHAR FROM canonical_labels c "
            "JOIN sheets s ON s.id = c.sheet_id WHERE c.label_type = ? AND c.review_state = 'review' "
            "ORDER BY s.name, c.item_ref LIMIT ?", [name, limit]).fetchall()
    return [{"id": r[0], "sheet": r[1], "item_ref": r[2], "version": r[3], "label_data": json.loads(r[4])}
            for r in rows]


def version_note(source: Any, label_type: str | None, version: str | None) -> str:
    """"" when `version` is the label type's current one; otherwise a sentence saying a model or
    training sheet used an older version (shown where the model is shown and when it predicts)."""
    if not label_type or not version:
        return ""
    try:
        current = get_label_type(source, label_type)
    except ValidationError:
        return f"made for label type {label_type}@{version}, which this site no longer has"
    if current.version == version:
        return ""
    return f"trained on {label_type}@{version}; the label type is now {current.ref}"


# --- hub versions held for review ------------------------------------------------------------------


@dataclass(frozen=True)
class HubDecision:
    """What accepting or rejecting a held hub version did."""

    label_type: str
    hub_version: str
    decision: str  # accepted | rejected
    in_force: str  # the version lookups return afterwards
    labels_flagged: int = 0
    note: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def text(self) -> str:
        if self.decision == "rejected":
            return f"rejected hub version {self.label_type}@{self.hub_version}; {self.label_type}@{self.in_force} stays"
        return (f"accepted hub version {self.label_type}@{self.hub_version}: {self.label_type}@{self.in_force} is in "
                f"force; {self.labels_flagged} label(s) naming classes it no longer has flagged for review")


def decide_hub_version(store: Store, actor: User, name: str, version: str, *, accept: bool,
                       note: str = "") -> tuple[HubDecision, Changes]:
    """Accept or reject a hub label-type version held for review (`pending_hub_versions`).

    Rejecting keeps the site's version in force and marks the hub's ``rejected`` (the hub sending
    it again changes nothing). Accepting publishes the hub's content: as its own version when that
    is newer than every local one, otherwise as the next major version after them (published
    versions are immutable, so the held row is marked ``accepted``). Labels naming a class the
    accepted version no longer takes are flagged for review, never relabelled by guess. One
    transaction with the taxonomy history and the audit row (who, which version, the note)."""
    from vital_desktop.core.errors import NotFoundError
    from vital_desktop.core.ids import utcnow
    from vital_desktop.services.label_type_edits import pending_hub_versions
    from vital_desktop.services.label_types import parse_version, version_heads

    require(actor, "edit_taxonomy")
    with store.session() as s:
        held = next((v for v in pending_hub_versions(s, name) if v.version == version), None)
        if held is None:
            waiting = ", ".join(v.ref for v in pending_hub_versions(s)) or "none"
            raise NotFoundError(f"no hub version {name}@{version} is waiting for review (waiting: {waiting})")
        row = s.get(LabelTypeRow, held.id)
        assert row is not None
        local = [r for r in version_heads(s, name) if r[3] in ("published", "draft")]
        try:
            before: LabelType | None = get_label_type(s, name)
        except ValidationError:
            before = None
        flagged = 0
        if not accept:
            row.status = "rejected"
            in_force = before.version if before is not None else "-"
        else:
            newest = max(local, key=lambda r: parse_version(r[2]), default=None)
            if newest is None or parse_version(version) > parse_version(newest[2]):
                row.status, row.published_at, in_force = "published", utcnow(), version
            else:
                in_force = next_version(newest[2], "major")
                row.status = "accepted"
                insert_version(s, actor, replace(held, version=in_force, status="published", origin="hub",
                                                 change_note=f"hub version {version} accepted"
                                                 + (f": {note}" if note else "")))
            s.flush()
            if before is not None:
                gone = set(before.all_classes()) - set(get_label_type(s, name).classes())
                flagged = labels.flag_for_review(s, [r[0] for r in _affected(s, before, gone)])
        s.flush()
        decision = "accepted" if accept else "rejected"
        details = {"hub_version": version, "in_force": in_force, "note": note, "labels_flagged": flagged}
        record_change(s, actor, name, before.version if before else None, in_force, f"hub_{decision[:-2]}", details,
                      flagged=flagged)
        audit.record(s, actor, f"label_type.hub_{decision[:-2]}", f"{name}@{version}", details)
    return HubDecision(name, version, decision, in_force, flagged, note), Changes(label_types=True,
                                                                                  labels=bool(flagged))
