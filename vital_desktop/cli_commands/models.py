"""`vital model list|show|register|activate` and `vital predict`: the registry and local serving."""

from __future__ import annotations

import argparse
from pathlib import Path

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="DEPLOY: the model registry (ONNX classifiers, GGUF language models)")
    actions = model.add_subparsers(dest="model_command", metavar="ACTION")
    p = actions.add_parser("list", help="registered models")
    p.add_argument("--kind", choices=["gguf", "onnx_classifier", "onnx_backbone"], default=None)
    p.set_defaults(handler=_list)
    p = actions.add_parser("show", help="one model with its card and activation history")
    p.add_argument("model", help="NAME (active or newest version), NAME@VERSION or id")
    p.set_defaults(handler=_show)
    p = actions.add_parser("register", help="check a model file and add it as the next version of NAME")
    p.add_argument("path", type=Path)
    p.add_argument("--kind", choices=["gguf", "onnx_classifier", "onnx_backbone"], required=True)
    p.add_argument("--name", default=None, help="registry name (default: from the file name)")
    foreign = p.add_argument_group("a classifier made elsewhere (no vital.* metadata): say how to feed it")
    foreign.add_argument("--input-size", default=None, help="H,W the model expects, e.g. 224,224")
    foreign.add_argument("--channels", default="3", help="1 (grayscale) or 3 (RGB)")
    foreign.add_argument("--mean", default="0", help="per-channel mean in [0,1] pixel units, e.g. 0.485,0.456,0.406")
    foreign.add_argument("--std", default="1", help="per-channel std, e.g. 0.229,0.224,0.225")
    foreign.add_argument("--classes", default=None, help="class names in the model's output order, comma-separated")
    foreign.add_argument("--output", default=None, help="the probabilities output, if the model has several")
    p.set_defaults(handler=_register)
    p = actions.add_parser("measure", help="measure a language model's prompt and generation speed here")
    p.add_argument("model", nargs="?", default=None, help="NAME or NAME@VERSION (default: the active GGUF model)")
    p.set_defaults(handler=_measure)
    p = actions.add_parser("activate", help="make a model the active one of its kind")
    p.add_argument("model", help="NAME or NAME@VERSION")
    p.add_argument("--notes", default="")
    p.set_defaults(handler=_activate)

    p = sub.add_parser("predict", help="MONITOR: classify images with a registered classifier (every one is logged)")
    p.add_argument("images", nargs="*", type=Path, help="image files")
    p.add_argument("--model", default=None, help="NAME or NAME@VERSION (default: the active classifier)")
    p.add_argument("--sheet", default=None, help="classify a sheet's items instead of files")
    p.add_argument("--items", default=None, help="with --sheet: comma-separated item refs")
    p.set_defaults(handler=_predict)


def _line(m) -> str:
    classes = f"  classes: {', '.join(m.classes)}" if m.classes else ""
    warning = f"  [{m.retrain_reason}]" if getattr(m, "retrain_reason", "") else ""
    return f"{m.ref:40s} {m.kind:16s} {m.status:10s} {m.size_bytes / 1e6:8.1f} MB{classes}{warning}"


def _list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import registry

    rows = registry.list_models(ctx.store, kind=args.kind)
    speeds = _speeds(ctx)
    models = [m.to_dict() | ({"speed": [v.to_dict() for v in speeds[m.id]]} if m.id in speeds else {}) for m in rows]
    text = "\n".join(_line(m) + _speed_text(m, speeds) for m in rows)
    return {"models": models, "text": text or "no models registered"}


def _speeds(ctx: CliContext) -> dict:
    from vital_desktop.services import llm_speed

    return llm_speed.speeds(ctx.store)


def _speed_text(m, speeds: dict) -> str:
    """A language model's measured speed on this machine ("" for other kinds)."""
    if m.kind != "gguf":
        return ""
    if m.id not in speeds:
        return f"\n    speed: not measured yet (vital model measure {m.ref})"
    return "".join(f"\n    speed: {v.text()}" for v in speeds[m.id])


def _show(ctx: CliContext, args) -> dict:
    import json

    from vital_desktop.services import registry

    info = registry.get_model(ctx.store, args.model)
    history = registry.deployments(ctx.store, model=info.id)
    metrics = info.card.get("metrics", {})
    text = [_line(info), f"  file: {info.path}", f"  sha256: {info.file_sha256}", f"  origin: {info.origin}"]
    if "accuracy" in metrics:
        text.append(f"  held-out accuracy: {metrics['accuracy']:.3f}")
    from vital_desktop.services.taxonomy import version_note

    note = version_note(ctx.store, info.card.get("label_type"), info.card.get("label_type_version"))
    if info.card.get("label_type"):
        text.append(f"  label type: {info.card['label_type']}@{info.card.get('label_type_version', '?')}"
                    + (f" ({note})" if note else ""))
    speeds = _speeds(ctx)
    speed_text = _speed_text(info, speeds)
    if speed_text:
        text.append(speed_text.strip("\n"))
    text.append("  card: " + json.dumps(info.card, indent=2, default=str)[:2000])
    return {"model": info.to_dict(), "deployments": history, "text": "\n".join(text),
            "speed": [v.to_dict() for v in speeds.get(info.id, [])]}


def _measure(ctx: CliContext, args) -> dict:
    from vital_desktop.services import llm_speed

    info, _ = llm_speed.measure_model(ctx.store, actor=ctx.actor, ref=args.model)
    return {"speed": info.to_dict(), "text": f"{info.model_name}: {info.text()}"}


def _register(ctx: CliContext, args) -> dict:
    from vital_desktop.services import registry

    if args.input_size or args.classes:
        from vital_desktop.core.errors import ValidationError
        from vital_desktop.inference.interop import parse_spec

        if args.kind != registry.KIND_ONNX or not (args.input_size and args.classes):
            raise ValidationError("describing a model's preprocessing needs --kind onnx_classifier, --input-size "
                                  "and --classes (and --channels/--mean/--std unless the defaults fit)")
        spec = parse_spec(args.input_size, args.channels, args.mean, args.std)
        info, _ = registry.register_foreign_classifier(
            ctx.store, actor=ctx.actor, path=args.path, spec=spec, name=args.name, output=args.output,
            classes=[c for c in args.classes.split(",")])
    else:
        info, _ = registry.register_model(ctx.store, actor=ctx.actor, path=args.path, kind=args.kind, name=args.name)
    return {"model": info.to_dict(), "text": f"registered {info.ref} ({info.kind}, {info.size_bytes / 1e6:.1f} MB)"}


def _activate(ctx: CliContext, args) -> dict:
    from vital_desktop.services import registry

    info, _ = registry.activate_model(ctx.store, actor=ctx.actor, ref=args.model, notes=args.notes)
    return {"model": info.to_dict(), "text": f"{info.ref} is now the active {info.kind} model"}


def _predict(ctx: CliContext, args) -> dict:
    from vital_desktop.core.errors import ValidationError
    from vital_desktop.services import predict

    if bool(args.images) == bool(args.sheet):
        raise ValidationError("give image files or --sheet NAME (not both)")
    items = [ref.strip() for ref in args.items.split(",") if ref.strip()] if args.items else None
    results, _ = predict.predict_images(
        ctx.store,
        actor=ctx.actor,
        model=args.model,
        paths=args.images or None,
        sheet=args.sheet,
        item_refs=items,
        progress=ctx.progress("predict"),
    )
    lines = [
        f"{(r.item_ref or r.image_path)}: "
        + (f"{r.predicted_class} ({r.confidence:.2f})" if r.error is None else f"ERROR {r.error}")
        for r in results
    ]
    if results and results[0].label_type_note:
        lines.insert(0, f"note: {results[0].model} was {results[0].label_type_note}")
    return {
        "model": results[0].model if results else args.model,
        "predictions": [r.to_dict() for r in results],
        "text": "\n".join(lines),
    }
