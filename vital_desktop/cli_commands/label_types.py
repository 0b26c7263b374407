"""`vital label types [show|create|add-class|rename-class|merge-classes|split-class|deprecate-class|
publish|diff|history|flagged|pending|accept|reject|delete]`: the site's label types (versioned site data).

Evolution verbs preview their impact and apply it only with ``--yes`` (as ``review bulk``
does), publishing the next version. Every verb takes ``--json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vital_desktop.cli_commands import CliContext
from vital_desktop.core.errors import ValidationError


def _json_flag(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    # SUPPRESS: a verb's --json must not reset the global `vital --json`.
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print one JSON object")
    return p


def _csv(text: str | None) -> list[str]:
    return [] if not text else [part.strip() for part in text.split(",")]


def register(label_sub: argparse._SubParsersAction) -> None:
    """Add `types` and its verbs under `vital label`."""
    types = _json_flag(label_sub.add_parser("types", help="label types: list, show, create, evolve, publish, diff"))
    types.set_defaults(handler=_list)
    verbs = types.add_subparsers(dest="types_command", metavar="VERB")
    p = _json_flag(verbs.add_parser("show", help="one label type: NAME[@VERSION]"))
    p.add_argument("ref")
    p.set_defaults(handler=_show)
    p = _json_flag(verbs.add_parser("create", help="a new label type (published as 1.0.0 unless --draft)"))
    p.add_argument("name")
    p.add_argument("--classes", default=None, help="comma-separated class names (the class field is `class`)")
    p.add_argument("--kind", default="classification",
                   help="classification, multilabel, boxes, polygons, points, text, number or structured")
    p.add_argument("--title", default=None)
    p.add_argument("--description", default="")
    p.add_argument("--schema", type=Path, default=None, help="JSON Schema file (structured kind)")
    p.add_argument("--attributes", type=Path, default=None, help="JSON file: a list of attribute fields")
    p.add_argument("--draft", action="store_true", help="keep it a draft (publish later)")
    p.set_defaults(handler=_create)
    for verb, help_text, build in (
        ("add-class", "add a class", _add_class_args),
        ("rename-class", "rename a class; its labels get a new version (reason: class renamed)", _rename_args),
        ("merge-classes", "merge classes into one; their labels are relabelled", _merge_args),
        ("split-class", "split a class; its labels are flagged for review (never guessed)", _split_args),
        ("deprecate-class", "refuse new labels of a class; existing ones are kept and flagged", _deprecate_args),
    ):
        p = _json_flag(verbs.add_parser(verb, help=help_text + " (previews unless --yes)"))
        p.add_argument("name", help="the label type")
        build(p)
        p.add_argument("--yes", action="store_true", help="apply it (without: only preview the impact)")
        p.set_defaults(handler=_evolve, action=verb.replace("-", "_"))
    p = _json_flag(verbs.add_parser("publish", help="publish the draft of a label type"))
    p.add_argument("name")
    p.set_defaults(handler=_publish)
    p = _json_flag(verbs.add_parser("diff", help="field-by-field differences between two versions"))
    p.add_argument("name")
    p.add_argument("from_version", nargs="?", default=None)
    p.add_argument("to_version", nargs="?", default=None)
    p.set_defaults(handler=_diff)
    p = _json_flag(verbs.add_parser("history", help="the taxonomy changes of a label type"))
    p.add_argument("name")
    p.set_defaults(handler=_history)
    p = _json_flag(verbs.add_parser("flagged", help="labels waiting for review after a split or deprecation"))
    p.add_argument("name")
    p.set_defaults(handler=_flagged)
    p = _json_flag(verbs.add_parser("pending", help="hub versions held for review (they disagreed with a local edit)"))
    p.add_argument("name", nargs="?", default=None)
    p.set_defaults(handler=_pending)
    for verb, help_text in (("accept", "put a held hub version in force (labels of classes it drops are flagged)"),
                            ("reject", "keep the site's version; the held hub version is marked rejected")):
        p = _json_flag(verbs.add_parser(verb, help=help_text))
        p.add_argument("ref", help="NAME@VERSION of the held hub version")
        p.add_argument("--note", default="", help="why (kept in the taxonomy history and the audit log)")
        p.set_defaults(handler=_decide_hub, accept=verb == "accept")
    p = _json_flag(verbs.add_parser("delete", help="delete an unused label type (every version)"))
    p.add_argument("name")
    p.add_argument("--yes", action="store_true")
    p.set_defaults(handler=_delete)


def _add_class_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("class_name")
    p.add_argument("--title", default=None)
    p.add_argument("--color", default=None, help="#rrggbb")
    p.add_argument("--shortcut", default=None, help="one key")


def _rename_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("old")
    p.add_argument("new")


def _merge_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("sources", nargs="+", help="the classes to merge")
    p.add_argument("--into", required=True, help="the class they become (existing or new)")


def _split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("class_name")
    p.add_argument("--into", required=True, help="comma-separated new classes (at least two)")


def _deprecate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("class_name")


def _change_args(args) -> dict:
    if args.action == "add_class":
        return {"name": args.class_name, "title": args.title, "color": args.color, "shortcut": args.shortcut}
    if args.action == "rename_class":
        return {"old": args.old, "new": args.new}
    if args.action == "merge_classes":
        return {"sources": args.sources, "into": args.into}
    if args.action == "split_class":
        return {"name": args.class_name, "into": _csv(args.into)}
    return {"name": args.class_name}


def _line(t) -> str:
    classes = ", ".join(c.name + (" (deprecated)" if c.deprecated else "") for c in t.class_list)
    return f"{t.name:20s} {t.version:8s} {t.status:9s} {t.kind:14s} {t.title}" + (f" — {classes}" if classes else "")


def _list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_types

    types = label_types.list_label_types(ctx.store, drafts=True)
    return {"label_types": [t.to_dict() for t in types.values()],
            "text": "\n".join(_line(t) for t in types.values()) or "no label types yet (vital label types create …)"}


def _show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_types

    name, version = label_types.parse_ref(args.ref)
    lt = label_types.get_label_type(ctx.store, name, version, drafts=True)
    lines = [f"{lt.ref} ({lt.status}, {lt.kind}) {lt.title}", lt.description] if lt.description else [
        f"{lt.ref} ({lt.status}, {lt.kind}) {lt.title}"]
    if lt.class_field:
        lines.append(f"class field: {lt.class_field}")
    for c in lt.class_list:
        lines.append(f"  {c.shortcut or ' '} {c.name:24s} {c.color} {c.title}" + (" (deprecated)" if c.deprecated else ""))
    for a in lt.attributes:
        lines.append(f"  attribute {a.name} ({a.type}{': ' + ', '.join(a.choices) if a.choices else ''})"
                     + (" required" if a.required else ""))
    return {"label_type": lt.to_dict(), "text": "\n".join(lines)}


def _read_json(path: Path | None, what: str):
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise ValidationError(f"cannot read the {what} file {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"the {what} file {path} is not JSON: {exc}") from None


def _create(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_type_edits

    spec = {"name": args.name, "kind": args.kind, "title": args.title, "description": args.description,
            "classes": None if args.classes is None else _csv(args.classes),
            "attributes": _read_json(args.attributes, "attributes") or [],
            "schema": _read_json(args.schema, "schema")}
    if spec["schema"] is None:
        spec.pop("schema")
    lt = label_type_edits.create_label_type(ctx.store, ctx.actor, spec, draft=args.draft)
    return {"label_type": lt.to_dict(), "text": f"created {lt.ref} ({lt.status}): {', '.join(lt.classes()) or lt.kind}"}


def _evolve(ctx: CliContext, args) -> dict:
    from vital_desktop.services import taxonomy

    change = _change_args(args)
    if not args.yes:
        impact = taxonomy.preview(ctx.store, args.name, args.action, **change)
        return {"preview": impact.to_dict(), "text": impact.text()}
    impact, _ = taxonomy.apply(ctx.store, ctx.actor, args.name, args.action, **change)
    return {"result": impact.to_dict(), "text": impact.text()}


def _publish(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_type_edits

    lt = label_type_edits.publish(ctx.store, ctx.actor, args.name)
    return {"label_type": lt.to_dict(), "text": f"published {lt.ref}"}


def _diff(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_type_edits

    out = label_type_edits.diff_versions(ctx.store, args.name, args.from_version, args.to_version)
    lines = [f"{args.name} {out['from']} → {out['to']}"]
    for change in out["changes"]:
        if "change" in change:
            lines.append(f"  class {change['class']!r} {change['change']}")
        else:
            lines.append(f"  {change['field']}: {change['from']!r} → {change['to']!r}")
    if not out["changes"]:
        lines.append("  identical")
    return {**out, "text": "\n".join(lines)}


def _history(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_type_edits

    rows = label_type_edits.history(ctx.store, args.name)
    text = "\n".join(f"{r['changed_at']} {r['changed_by']:10s} {r['action']:16s} {r['from_version'] or '-'} → "
                     f"{r['to_version']}  relabelled {r['labels_changed']}, flagged {r['labels_flagged']}"
                     for r in rows)
    return {"history": rows, "text": text or f"no changes recorded for {args.name}"}


def _flagged(ctx: CliContext, args) -> dict:
    from vital_desktop.services import taxonomy

    rows = taxonomy.flagged_labels(ctx.store, args.name)
    return {"flagged": rows, "text": "\n".join(f"{r['sheet']}/{r['item_ref']} v{r['version']} {r['label_data']}"
                                               for r in rows) or "nothing flagged"}


def _pending(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_type_edits

    held = label_type_edits.pending_hub_versions(ctx.store, args.name)
    return {"pending": [t.to_dict() for t in held],
            "text": "\n".join(_line(t) for t in held) or "no hub versions waiting for review"}


def _decide_hub(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_types, taxonomy

    name, version = label_types.parse_ref(args.ref)
    if version is None:
        raise ValidationError(f"name the held version: {name}@VERSION (vital label types pending {name})")
    result, _ = taxonomy.decide_hub_version(ctx.store, ctx.actor, name, version, accept=args.accept, note=args.note)
    return {"result": result.to_dict(), "text": result.text()}


def _delete(ctx: CliContext, args) -> dict:
    from vital_desktop.services import label_type_edits

    if not args.yes:
        return {"deleted": 0, "text": f"would delete every version of {args.name}; run again with --yes"}
    count = label_type_edits.delete_label_type(ctx.store, ctx.actor, args.name)
    return {"deleted": count, "text": f"deleted {args.name} ({count} version(s))"}
