"""`vital label set|show|history|rollback|import|export|conflicts|resolve|changed|confirm|types`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vital_desktop.cli_commands import CliContext
from vital_desktop.core.errors import ValidationError


def _key_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sheet", required=True)
    p.add_argument("--item", required=True, help="item_ref")
    p.add_argument("--type", dest="label_type", required=True, help="label type (vital label types lists them)")


def register(sub: argparse._SubParsersAction) -> None:
    label = sub.add_parser("label", help="canonical labels: label once, reuse everywhere").add_subparsers(
        dest="label_command", metavar="ACTION")
    p = label.add_parser("set", help="create or version a canonical label")
    _key_args(p)
    p.add_argument("--data", required=True, help='label data as JSON, e.g. \'{"class": "scratch"}\'')
    p.add_argument("--allowed", default=None, help="comma-separated allowed uses (default: all not prohibited)")
    p.add_argument("--prohibited", default=None, help="comma-separated prohibited uses")
    p.add_argument("--usage-reason", default="")
    p.add_argument("--confidence", choices=["high", "medium", "low"], default=None)
    p.add_argument("--notes", default="")
    p.add_argument("--reason", default="", help="why this change (kept in the history)")
    p.add_argument("--expected-version", type=int, default=None,
                   help="the version you are replacing (a different current version makes a conflict for review)")
    p.set_defaults(handler=_set)
    p = label.add_parser("show", help="every label type's current label for an item")
    p.add_argument("--sheet", required=True)
    p.add_argument("--item", required=True)
    p.set_defaults(handler=_show)
    p = label.add_parser("history", help="every version of one label")
    _key_args(p)
    p.set_defaults(handler=_history)
    p = label.add_parser("rollback", help="make a new version with an earlier version's content")
    _key_args(p)
    p.add_argument("--to-version", type=int, required=True)
    p.add_argument("--reason", default="")
    p.set_defaults(handler=_rollback)
    p = label.add_parser("import", help="import a label file or folder (COCO, YOLO, VOC, labelme, Label Studio, "
                                        "CVAT, image folder, CSV, JSONL, Parquet) in one transaction")
    p.add_argument("file", type=Path, help="the label file or folder")
    p.add_argument("--sheet", default=None, help="the sheet the labels are for (tabular rows may name their own)")
    p.add_argument("--type", dest="label_type", default=None, help="the label type (tabular rows may name their own)")
    p.add_argument("--format", dest="fmt", default=None,
                   help="coco, yolo, voc, labelme, label-studio, cvat, folder, csv, jsonl or parquet "
                        "(recognised from the content when not given)")
    p.add_argument("--add-classes", action="store_true",
                   help="add unknown classes to a draft version of the label type instead of refusing")
    p.set_defaults(handler=_import)
    p = label.add_parser("export", help="export current labels")
    p.add_argument("--format", dest="fmt", required=True,
                   help="csv, jsonl, parquet, coco, yolo, voc, labelme, label-studio, cvat or folder")
    p.add_argument("--out", type=Path, required=True, help="the file (or, for yolo/voc/labelme/folder, the folder)")
    p.add_argument("--sheet", default=None)
    p.add_argument("--type", dest="label_type", default=None, help="label type (needed by the annotation formats)")
    p.add_argument("--use", default="training", help="only labels whose constraints permit this use leave")
    p.add_argument("--val-fraction", type=float, default=0.2, help="share of items in the val split (yolo)")
    p.set_defaults(handler=_export)
    p = label.add_parser("conflicts", help="disagreeing labels waiting for review")
    p.add_argument("--sheet", default=None)
    p.set_defaults(handler=_conflicts)
    p = label.add_parser("resolve", help="accept or reject a conflicting proposal")
    p.add_argument("conflict_id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--accept", action="store_true")
    group.add_argument("--keep-current", action="store_true")
    p.add_argument("--note", default="")
    p.set_defaults(handler=_resolve)
    p = label.add_parser("changed", help="labels flagged because their item's image changed (rescan)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", default=None)
    p.set_defaults(handler=_changed)
    p = label.add_parser("confirm", help="the label still holds for the item's new image: a new version, flag cleared "
                                         "(to relabel instead, use `vital label set`)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", required=True)
    p.add_argument("--items", required=True, help="comma-separated item refs")
    p.add_argument("--reason", default="", help="why the label still holds (kept in the history)")
    p.set_defaults(handler=_confirm)
    from vital_desktop.cli_commands import label_types
    from vital_desktop.cli_commands.assist import register_label_verbs

    label_types.register(label)
    register_label_verbs(label)  # next, suspects (the classifier's help to the expert)


def _uses(text: str | None) -> list[str] | None:
    return None if text is None else [u.strip() for u in text.split(",") if u.strip()]


def _set(ctx: CliContext, args) -> dict:
    from vital_desktop.services import labels

    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"--data is not valid JSON: {exc.msg} at character {exc.pos}") from None
    result, _ = labels.set_label(
        ctx.store, actor=ctx.actor, sheet=args.sheet, item_ref=args.item, label_type=args.label_type,
        label_data=data, allowed_uses=_uses(args.allowed), prohibited_uses=_uses(args.prohibited),
        usage_reason=args.usage_reason, confidence=args.confidence, notes=args.notes, reason=args.reason,
        expected_version=args.expected_version,
    )
    out = result.to_dict()
    if result.outcome == "conflict":
        out["text"] = (f"not applied: the current label (v{result.label.version}) was set by {result.label.updated_by}; "
                       f"your label waits for review as conflict {result.conflict_id}")
    else:
        out["text"] = f"{result.outcome}: {args.item} {args.label_type} v{result.label.version}"
    return out


def _show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import labels

    rows = labels.item_labels(ctx.store, sheet=args.sheet, item_ref=args.item)
    text = "\n".join(f"{r.label_type:14s} v{r.version}  {json.dumps(r.label_data)}  "
                     f"prohibited: {','.join(r.prohibited_uses) or '-'}  [{r.review_state}]" for r in rows)
    return {"labels": [r.to_dict() for r in rows], "text": text or "no labels for this item"}


def _history(ctx: CliContext, args) -> dict:
    from vital_desktop.services import labels

    rows = labels.history(ctx.store, sheet=args.sheet, item_ref=args.item, label_type=args.label_type)
    text = "\n".join(f"v{r.version:<3d} {r.changed_at} {r.changed_by:12s} {r.action:9s} {json.dumps(r.label_data)}"
                     + (f"  ({r.reason})" if r.reason else "") for r in rows)
    return {"history": [r.to_dict() for r in rows], "text": text}


def _rollback(ctx: CliContext, args) -> dict:
    from vital_desktop.services import labels

    info, _ = labels.rollback(ctx.store, actor=ctx.actor, sheet=args.sheet, item_ref=args.item,
                              label_type=args.label_type, to_version=args.to_version, reason=args.reason)
    return {"label": info.to_dict(),
            "text": f"rolled back to the content of v{args.to_version}; now v{info.version}"}


def _import(ctx: CliContext, args) -> dict:
    from vital_desktop.services import formats

    outcome, _ = formats.import_labels(ctx.store, actor=ctx.actor, path=args.file, sheet=args.sheet,
                                       label_type=args.label_type, fmt=args.fmt, add_classes=args.add_classes,
                                       progress=ctx.progress("import"))
    out = outcome.to_dict()
    out["text"] = (f"{outcome.format}: created {outcome.created}, updated {outcome.updated}, unchanged "
                   f"{outcome.unchanged}, conflicts for review {outcome.conflicts}")
    if outcome.added_classes:
        out["text"] += (f"; added class(es) {', '.join(outcome.added_classes)} to the draft "
                        f"{args.label_type}@{outcome.draft_version} (publish it with "
                        f"`vital label types publish {args.label_type}`)")
    return out


def _export(ctx: CliContext, args) -> dict:

    from vital_desktop.services import formats

    out = formats.export_labels(ctx.store, actor=ctx.actor, out=args.out, fmt=args.fmt, sheet=args.sheet,
                                label_type=args.label_type, use=args.use, val_fraction=args.val_fraction)
    out["text"] = f"wrote {out['labels']} labels to {out['path']}" + (
        f" ({out['withheld']} withheld: {args.use} not permitted)" if out["withheld"] else "")
    return out


def _conflicts(ctx: CliContext, args) -> dict:
    from vital_desktop.services import labels

    rows = labels.list_conflicts(ctx.store, sheet=args.sheet)
    text = "\n".join(f"{c.id}  {c.item_ref} {c.label_type} v{c.current_version} ← {json.dumps(c.proposed_data)} "
                     f"by {c.proposed_by} ({c.origin})" for c in rows)
    return {"conflicts": [c.to_dict() for c in rows], "text": text or "no open conflicts"}


def _resolve(ctx: CliContext, args) -> dict:
    from vital_desktop.services import labels

    info, _ = labels.resolve_conflict(ctx.store, actor=ctx.actor, conflict_id=args.conflict_id, accept=args.accept,
                                      note=args.note)
    return {"label": info.to_dict(), "text": f"resolved; label now v{info.version}"}


def _changed(ctx: CliContext, args) -> dict:
    from vital_desktop.services import content_review

    rows = content_review.changed_labels(ctx.store, sheet=args.sheet, label_type=args.label_type)
    text = "\n".join(f"{r.item_ref}  {r.label_type} v{r.version}  item version {r.item_version}  "
                     f"{json.dumps(r.label_data)}" for r in rows)
    return {"changed": [r.to_dict() for r in rows], "text": text or "no labels wait on changed images"}


def _confirm(ctx: CliContext, args) -> dict:
    from vital_desktop.services import content_review

    outcome, _ = content_review.confirm_unchanged(ctx.store, actor=ctx.actor, sheet=args.sheet,
                                                  label_type=args.label_type, item_refs=args.items.split(","),
                                                  reason=args.reason)
    out = outcome.to_dict()
    out["text"] = f"confirmed {outcome.confirmed} label(s)" + (
        f"; {outcome.conflicts} changed by someone else meanwhile wait for review" if outcome.conflicts else "")
    return out
