"""TRAIN → DEPLOY → MONITOR → IMPROVE commands.

`vital export-training`, `vital train`, `vital lineage`, `vital evaluate`,
`vital deploy activate|rollback|history|bundle|verify`, `vital monitor` (+ `thresholds`,
`alerts`), `vital feedback add|list|accept|reject`, `vital gaps`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vital_desktop.cli_commands import CliContext
from vital_desktop.core.errors import ValidationError


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-training", help="export a training sheet's gated Q&A pairs as chat JSONL")
    p.add_argument("training_sheet", help="training sheet name or id")
    p.add_argument("--use", default="training", choices=["training", "validation", "few_shot", "evaluation", "testing"])
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=None, help="folder to write (omit for a preview only)")
    p.add_argument("--preview", type=int, default=10, help="lines of preview to show")
    p.set_defaults(handler=_export)

    p = sub.add_parser("train", help="train an image classifier locally from gated canonical labels")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--sheet", help="train from this sheet's canonical labels")
    source.add_argument("--training-sheet", help="train from this training sheet's labeled pairs")
    p.add_argument("--name", required=True, help="model name (versions are numbered automatically)")
    p.add_argument("--label-type", default=None,
                   help="label type to learn (default: the sheet's only classification type; named choices if several)")
    p.add_argument("--classes", default=None, help="comma-separated classes (default: the label type's classes)")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--min-per-class", type=int, default=5)
    p.add_argument("--folds", type=int, default=None,
                   help="cross-validation folds for choosing the model (default: up to 5, limited by the smallest class)")
    p.add_argument("--backbone", default=None,
                   help="train a head on this registered onnx_backbone's embeddings (cached per image and backbone)")
    p.add_argument("--activate", action="store_true", help="activate the new version when trained")
    p.set_defaults(handler=_train)

    p = sub.add_parser("lineage", help="what a model learnt from (or: which models used a label)")
    p.add_argument("model", nargs="?", help="model name@version, name or id")
    p.add_argument("--label", default=None, help="reverse lineage: a canonical label id")
    p.add_argument("--sheet", default=None, help="reverse lineage by sheet + --item")
    p.add_argument("--item", default=None)
    p.add_argument("--label-type", default=None,
                   help="label type to learn (default: the sheet's only classification type; named choices if several)")
    p.add_argument("--full", action="store_true", help="list every label and pair id (default: counts + first 20)")
    p.set_defaults(handler=_lineage)

    p = sub.add_parser("evaluate", help="compare model versions on the same held-out labelled items")
    p.add_argument("models", nargs="+")
    p.add_argument("--sheet", required=True)
    p.add_argument("--items", default=None, help="comma-separated item refs (default: held-out labelled items)")
    p.set_defaults(handler=_evaluate)

    deploy = sub.add_parser("deploy", help="activate, roll back and package model versions").add_subparsers(
        dest="deploy_command", metavar="ACTION")
    p = deploy.add_parser("activate", help="make a model version the active one")
    p.add_argument("model")
    p.add_argument("--notes", default="")
    p.add_argument("--even-if-worse", action="store_true",
                   help="activate a classifier even when it is less accurate than the serving one on held-out labels")
    p.set_defaults(handler=_activate)
    p = deploy.add_parser("compare", help="compare a classifier with the serving one on held-out labelled items")
    p.add_argument("model")
    p.set_defaults(handler=_compare_active)
    p = deploy.add_parser("rollback", help="re-activate the version that served before the current one")
    p.add_argument("name", nargs="?", default=None)
    p.set_defaults(handler=_rollback)
    p = deploy.add_parser("history", help="activation history")
    p.add_argument("--model", default=None)
    p.set_defaults(handler=_history)
    p = deploy.add_parser("bundle", help="write an airgap deployment package (model, few-shot snapshot, manifest)")
    p.add_argument("model")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--few-shot-per-class", type=int, default=3)
    p.add_argument("--no-images", action="store_true")
    p.set_defaults(handler=_bundle)
    p = deploy.add_parser("verify", help="check a deployment package against its manifest")
    p.add_argument("path", type=Path)
    p.set_defaults(handler=_verify)

    p = sub.add_parser("monitor", help="accuracy, confidence, classes, latency and drift of a model")
    p.add_argument("model", nargs="?", default=None, help="model (default: the active classifier)")
    p.add_argument("--since", default=None)
    p.add_argument("--until", default=None)
    p.add_argument("--no-record", action="store_true", help="do not record the alerts found")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="change an alert threshold (e.g. --set psi_alert=0.2); may repeat")
    p.add_argument("--alerts", action="store_true", help="list recorded alerts instead")
    p.set_defaults(handler=_monitor)

    fb = sub.add_parser("feedback", help="flag wrong predictions; expert review").add_subparsers(
        dest="feedback_command", metavar="ACTION")
    p = fb.add_parser("add", help="flag a prediction (or an item) as wrong and give the correction")
    p.add_argument("--prediction", default=None)
    p.add_argument("--sheet", default=None)
    p.add_argument("--item", default=None)
    p.add_argument("--correct", required=True, help="the class the image really shows")
    p.add_argument("--attr", dest="attrs", action="append", default=[], metavar="NAME=VALUE",
                   help="a value of one of the label type's attribute fields (e.g. --attr condition=worn); may repeat")
    p.add_argument("--severity", default=None, help="deprecated: the same as --attr severity=VALUE")
    p.add_argument("--comment", default="")
    p.set_defaults(handler=_feedback_add)
    p = fb.add_parser("list", help="the feedback queue")
    p.add_argument("--status", default=None, choices=["new", "accepted", "rejected", "added_to_training"])
    p.add_argument("--model", default=None)
    p.set_defaults(handler=_feedback_list)
    p = fb.add_parser("accept", help="expert: write the correction as the item's canonical label")
    p.add_argument("id")
    p.add_argument("--note", default="")
    p.add_argument("--expected-version", type=int, default=None,
                   help="the label version you reviewed (without it, a label by someone else becomes a conflict)")
    p.set_defaults(handler=_feedback_accept)
    p = fb.add_parser("reject", help="expert: decline the correction")
    p.add_argument("id")
    p.add_argument("--note", default="")
    p.set_defaults(handler=_feedback_reject)

    p = sub.add_parser("gaps", help="gap analysis: where the model is weak, ranked by impact")
    p.add_argument("--model", default=None)
    p.set_defaults(handler=_gaps)


# --- handlers ------------------------------------------------------------------------------------


def _export(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import training

    summary, _ = training.export_training(
        ctx.store, actor=ctx.actor, training_sheet=args.training_sheet, use=args.use, val_fraction=args.val_fraction,
        seed=args.seed, out_dir=args.out, progress=ctx.progress("export"), preview_lines=args.preview,
    )
    text = summary.text()
    if summary.preview:
        text += "\npreview:\n" + "\n".join(line[:200] for line in summary.preview)
    return summary.to_dict() | {"text": text}


def _train(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import deploy, training

    result, _ = training.train_classifier(
        ctx.store, actor=ctx.actor, name=args.name, sheet=args.sheet, training_sheet=args.training_sheet,
        label_type=args.label_type, classes=_csv(args.classes), val_fraction=args.val_fraction, seed=args.seed,
        min_per_class=args.min_per_class, progress=ctx.progress("train"), folds=args.folds,
        backbone=args.backbone,
    )
    out = result.to_dict()
    refused = None
    if args.activate:
        try:
            deploy.activate(ctx.store, actor=ctx.actor, model=result.model_id)
        except ValidationError as exc:  # less accurate than the serving classifier: trained, not activated
            refused = exc.message
            out["activation_refused"] = exc.to_dict()
        out["activated"] = refused is None
    text = (f"trained {result.name}@{result.version} on {result.images} images "
            f"({', '.join(f'{c} {n}' for c, n in result.class_counts.items())}); "
            f"held-out accuracy {result.held_out_accuracy:.1%}"
            + (f", calibration error {result.metrics['ece']:.3f}" if "ece" in result.metrics else "")
            + f"; {result.duration_s:.1f} s"
            + ("; activated" if args.activate and refused is None else ""))
    if refused is not None:
        text += f"\n{refused}"
    return out | {"text": text}


def _trim(data: dict, full: bool) -> dict:
    if full:
        return data
    for src in data.get("sources", []):
        for key in ("canonical_labels", "qa_pair_ids"):
            values = src.get(key, [])
            src[f"{key}_count"] = len(values)
            src[key] = values[:20]
    return data


def _lineage(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import training

    if args.label or args.sheet:
        uses = training.models_using_label(ctx.store, label_id=args.label, sheet=args.sheet, item_ref=args.item,
                                           label_type=args.label_type)
        lines = [f"{u.name}@{u.version} used version {u.label_version_used}" + (" (label changed since)" if u.stale else "")
                 for u in uses] or ["no model used this label"]
        return {"models": [u.to_dict() for u in uses], "text": "\n".join(lines)}
    if not args.model:
        raise ValidationError("name a model, or a label with --label ID (or --sheet S --item I)")
    info = training.lineage(ctx.store, model=args.model)
    lines = [f"{info.name}@{info.version} (held-out accuracy {info.held_out_accuracy})"]
    for src in info.sources:
        lines.append(
            f"  <- training sheet {src.training_sheet or '-'} / sheet {src.sheet} / template "
            f"{src.template or '-'} {src.template_version or ''}: {len(src.canonical_labels)} canonical labels, "
            f"{len(src.qa_pair_ids)} Q&A pairs; config {src.training_config}")
    return _trim(info.to_dict(), args.full) | {"text": "\n".join(lines)}


def _evaluate(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import training

    results = training.evaluate_models(ctx.store, models=args.models, sheet=args.sheet, item_refs=_csv(args.items))
    lines = [f"{r.name}@{r.version}: {r.accuracy:.1%} ({r.correct}/{r.items})" for r in results]
    return {"evaluations": [r.to_dict() for r in results], "text": "\n".join(lines)}


def _activate(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import deploy

    info, _ = deploy.activate(ctx.store, actor=ctx.actor, model=args.model, notes=args.notes,
                              even_if_worse=args.even_if_worse)
    return info.to_dict() | {"text": f"{info.ref} is now active"}


def _compare_active(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import activation_check

    check = activation_check.compare_with_active(ctx.store, model=args.model, progress=ctx.progress("compare"))
    if check is None:
        return {"compared": False, "text": f"{args.model} would replace no serving classifier: nothing to compare"}
    return {"compared": check.not_compared is None, **check.to_dict()}


def _rollback(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import deploy

    info, _ = deploy.rollback(ctx.store, actor=ctx.actor, name=args.name)
    return info.to_dict() | {"text": f"rolled back: {info.ref} is active again"}


def _history(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import deploy

    rows = deploy.history(ctx.store, model=args.model)
    lines = [f"{r['activated_at']} {r['model_name']} {r['status']} by {r['activated_by']} {r['notes']}" for r in rows]
    return {"deployments": rows, "text": "\n".join(lines) or "nothing deployed yet"}


def _bundle(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import deploy

    result, _ = deploy.build_package(ctx.store, actor=ctx.actor, model=args.model, out_dir=args.out,
                                     few_shot_per_class=args.few_shot_per_class, include_images=not args.no_images)
    return result.to_dict() | {"text": f"wrote {result.path} ({len(result.files)} files, "
                                       f"{result.few_shot_examples} few-shot examples)"}


def _verify(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import deploy

    result = deploy.verify_package(args.path, public_keys=deploy.trusted_keys(ctx.store))
    if not result["ok"]:
        raise ValidationError("deployment package check failed: " + "; ".join(result["problems"]), details=result)
    return result | {"text": "package intact"}


def _parse_settings(pairs: list[str]) -> dict[str, float]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValidationError(f"--set needs KEY=VALUE, got {pair!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ValidationError(f"threshold {key} must be a number, got {value!r}") from None
    return out


def _monitor(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import monitor, registry

    if args.settings:
        thresholds, _ = monitor.set_thresholds(ctx.store, actor=ctx.actor, **_parse_settings(args.settings))
        return {"thresholds": thresholds.to_dict(), "text": f"thresholds: {thresholds.to_dict()}"}
    model = args.model
    if args.alerts:
        alerts = monitor.list_alerts(ctx.store, model=model)
        return {"alerts": [a.to_dict() for a in alerts],
                "text": "\n".join(f"{a.created_at} [{a.kind}] {a.message}" for a in alerts) or "no alerts recorded"}
    if model is None:
        active = registry.active_model(ctx.store, registry.KIND_ONNX)
        if active is None:
            raise ValidationError("no active classifier; name the model to monitor")
        model = active.id
    report = monitor.monitor_report(ctx.store, model=model, since=args.since, until=args.until,
                                    record_alerts=not args.no_record, actor=ctx.actor)
    return report.to_dict() | {"text": report.text()}


def _parse_attrs(pairs: list[str], severity: str | None = None) -> dict[str, str]:
    """`--attr NAME=VALUE` pairs (text; the service types them by the label type's fields)."""
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"--attr needs NAME=VALUE, got {pair!r}")
        if name.strip() in out:
            raise ValidationError(f"--attr {name.strip()} is given twice")
        out[name.strip()] = value.strip()
    if severity is not None:
        out.setdefault("severity", severity)
    return out


def _feedback_add(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import feedback

    info, _ = feedback.add_feedback(ctx.store, actor=ctx.actor, corrected_class=args.correct,
                                    prediction_id=args.prediction, sheet=args.sheet, item_ref=args.item,
                                    attributes=_parse_attrs(args.attrs, args.severity), comment=args.comment)
    return info.to_dict() | {"text": f"feedback {info.id}: {info.predicted_class or '?'} -> {info.corrected_class} "
                                     "(waits for expert review)"}


def _feedback_list(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import feedback

    items = feedback.list_feedback(ctx.store, status=args.status, model=args.model)
    lines = [f"{i.id} {i.status:17s} {i.item_ref} {i.predicted_class} -> {i.corrected_class} by {i.created_by}"
             for i in items]
    return {"feedback": [i.to_dict() for i in items], "text": "\n".join(lines) or "no feedback"}


def _feedback_accept(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import feedback

    result, _ = feedback.accept_feedback(ctx.store, actor=ctx.actor, feedback_id=args.id, note=args.note,
                                         expected_version=args.expected_version)
    return result.to_dict() | {"text": f"accepted: label {result.label_outcome} (version {result.label_version})"}


def _feedback_reject(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import feedback

    info, _ = feedback.reject_feedback(ctx.store, actor=ctx.actor, feedback_id=args.id, note=args.note)
    return info.to_dict() | {"text": f"rejected feedback {info.id}"}


def _gaps(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import feedback

    report = feedback.gap_analysis(ctx.store, model=args.model)
    return report.to_dict() | {"text": report.text()}
