"""`vital template …`: versioned prompt templates, and their measured quality.

list, show, create, edit, publish, diff and install-library manage versions; ``evaluate``
scores a version against a sheet's evaluation-allowed canonical labels (stored with the
version); ``optimise`` searches few-shot selections and instruction variants and proposes the
best as a new draft, with the baseline's and its scores side by side; ``evaluations`` lists what
was measured.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vital_desktop.cli_commands import CliContext
from vital_desktop.core.errors import ValidationError


def register(sub: argparse._SubParsersAction) -> None:
    # --- templates
    template = sub.add_parser("template", help="versioned prompt templates (GENERATE)").add_subparsers(
        dest="template_command", metavar="ACTION")
    p = template.add_parser("list", help="templates (latest published version of each, or --all)")
    p.add_argument("--all", action="store_true", help="every version")
    p.add_argument("--name", default=None)
    p.set_defaults(handler=_template_list)
    p = template.add_parser("show", help="one template version in full")
    p.add_argument("ref", help="NAME or NAME@VERSION")
    p.set_defaults(handler=_template_show)
    p = template.add_parser("create", help="a new template (draft) from a JSON spec file")
    p.add_argument("--file", type=Path, required=True)
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--publish", action="store_true", help="publish it right away")
    p.set_defaults(handler=_template_create)
    p = template.add_parser("edit", help="edit a draft in place, or make a new draft version of a published one")
    p.add_argument("ref")
    p.add_argument("--file", type=Path, default=None, help="JSON object of the fields to change")
    p.add_argument("--system-prompt", default=None)
    p.add_argument("--user-prompt", default=None)
    p.add_argument("--description", default=None)
    p.add_argument("--notes", default=None)
    p.add_argument("--bump", choices=["major", "minor", "patch"], default="minor")
    p.set_defaults(handler=_template_edit)
    p = template.add_parser("publish", help="freeze a draft version (immutable from now on)")
    p.add_argument("ref")
    p.set_defaults(handler=_template_publish)
    p = template.add_parser("diff", help="field-by-field unified diff of two versions")
    p.add_argument("old")
    p.add_argument("new")
    p.set_defaults(handler=_template_diff)
    p = template.add_parser("install-library", help="install the shipped template library (demo templates)")
    p.set_defaults(handler=_template_library)
    p = template.add_parser("evaluate", help="score a template version against a sheet's canonical labels")
    p.add_argument("ref", help="NAME (latest published, else latest draft) or NAME@VERSION")
    p.add_argument("--sheet", required=True)
    p.add_argument("--limit", type=int, default=None, help="score only the first N labelled items")
    p.add_argument("--ai", choices=["llm", "both"], default=None,
                   help="pre-labeler (default: both when the template names a classifier, else llm)")
    p.set_defaults(handler=_template_evaluate)
    p = template.add_parser("optimise", aliases=["optimize"],
                            help="search few-shot examples and instructions; propose the best as a new draft")
    p.add_argument("ref", help="NAME or NAME@VERSION of a published version")
    p.add_argument("--sheet", required=True)
    p.add_argument("--budget", type=float, default=300.0, help="time budget for the search, in seconds")
    p.add_argument("--items", type=int, default=6, help="labelled items in each of the two splits")
    p.add_argument("--candidates", type=int, default=6, help="most candidates to try besides the baseline")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ai", choices=["llm", "both"], default=None)
    p.set_defaults(handler=_template_optimise)
    p = template.add_parser("evaluations", help="stored evaluations of a template (newest first)")
    p.add_argument("ref", nargs="?", default=None, help="NAME or NAME@VERSION (default: every template)")
    p.add_argument("--sheet", default=None)
    p.set_defaults(handler=_template_evaluations)


# --- templates ---------------------------------------------------------------------------------


def _template_line(t) -> str:
    return f"{t.name}@{t.version:8s} {t.status:9s} {t.label_type:20s} {t.description[:60]}"


def _template_list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    rows = templates.list_templates(ctx.store, name=args.name, all_versions=args.all)
    return {"templates": [t.to_dict() for t in rows],
            "text": "\n".join(_template_line(t) for t in rows) or "no templates (vital template install-library)"}


def _template_show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    t = templates.get_template(ctx.store, args.ref)
    text = "\n".join([
        f"{t.ref}  [{t.status}]  label type: {t.label_type}  by {t.created_by}",
        t.description, "", "System prompt:", t.system_prompt, "", "User prompt:", t.user_prompt, "",
        "Input schema:", json.dumps(t.input_schema, indent=2), "Output schema:", json.dumps(t.output_schema, indent=2),
        f"Few-shot examples: {len(t.few_shot)}", f"Model: {json.dumps(t.model_ref)}",
    ] + (["Notes: " + t.notes] if t.notes else []))
    from vital_desktop.services import template_eval

    measured = template_eval.list_evaluations(ctx.store, template=t.ref)
    if measured:
        latest = measured[0]
        text += "\nMeasured (latest of " + str(len(measured)) + "):\n" + latest.text()
    return {"template": t.to_dict(), "text": text,
            "evaluations": [{k: v for k, v in e.to_dict().items() if k != "details"} for e in measured]}


def _template_create(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    spec = templates.load_spec_file(args.file)
    info, _ = templates.create_template(ctx.store, actor=ctx.actor, spec=spec, version=args.version)
    if args.publish:
        info, _ = templates.publish_template(ctx.store, actor=ctx.actor, ref=info.ref)
    return {"template": info.to_dict(), "text": f"created {info.ref} ({info.status})"}


def _template_edit(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    changes: dict = templates.load_spec_file(args.file) if args.file else {}
    for key in ("system_prompt", "user_prompt", "description", "notes"):
        value = getattr(args, key)
        if value is not None:
            changes[key] = value
    if not changes:
        raise ValidationError("nothing to change: give --file or one of --system-prompt, --user-prompt, "
                              "--description, --notes")
    info, _ = templates.edit_template(ctx.store, actor=ctx.actor, ref=args.ref, changes=changes, bump=args.bump)
    return {"template": info.to_dict(), "text": f"{info.ref} ({info.status}) saved"}


def _template_publish(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    info, _ = templates.publish_template(ctx.store, actor=ctx.actor, ref=args.ref)
    return {"template": info.to_dict(), "text": f"published {info.ref}"}


def _template_diff(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    result = templates.diff(ctx.store, args.old, args.new)
    return {**result.to_dict(), "text": result.text()}


def _template_library(ctx: CliContext, args) -> dict:
    from vital_desktop.services import templates

    report, _ = templates.load_library(ctx.store, ctx.actor)
    return {**report.to_dict(), "text": f"installed {len(report.installed)}, already present {len(report.already_present)}"}

def _template_evaluate(ctx: CliContext, args) -> dict:
    from vital_desktop.services import template_eval

    info, _ = template_eval.evaluate_template(
        ctx.store, actor=ctx.actor, template=args.ref, sheet=args.sheet, limit=args.limit, ai_mode=args.ai,
        progress=ctx.progress("evaluate"))
    out = info.to_dict()
    out["details"] = {k: v for k, v in info.details.items() if k != "per_item"} | {
        "per_item": info.details.get("per_item", [])}
    return {"evaluation": out, "text": info.text()}


def _template_optimise(ctx: CliContext, args) -> dict:
    from vital_desktop.services import template_optimise

    result, _ = template_optimise.optimise_template(
        ctx.store, actor=ctx.actor, template=args.ref, sheet=args.sheet, budget_seconds=args.budget,
        split_items=args.items, max_candidates=args.candidates, seed=args.seed, ai_mode=args.ai,
        progress=ctx.progress("optimise"))
    return {"optimisation": result.to_dict(), "text": result.text()}


def _template_evaluations(ctx: CliContext, args) -> dict:
    from vital_desktop.services import template_eval

    rows = template_eval.list_evaluations(ctx.store, template=args.ref, sheet=args.sheet)
    text = "\n".join(
        f"{r.created_at}  {r.template_ref:45s} {r.purpose:18s} {r.sheet_name[:30]:30s} items {r.score['items']:3d}  "
        f"accuracy {template_eval._pct(r.score['accuracy'])}  valid {template_eval._pct(r.score['schema_valid_rate'])}  "
        f"ECE {'n/a' if r.score['ece'] is None else format(r.score['ece'], '.3f')}" for r in rows)
    return {"evaluations": [{k: v for k, v in r.to_dict().items() if k != "details"} for r in rows],
            "text": text or "no evaluations yet (vital template evaluate NAME --sheet S)"}
