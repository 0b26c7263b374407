"""`vital label next|suspects` and `vital explain`: what the classifier can tell an expert."""

from __future__ import annotations

import argparse
from pathlib import Path

from vital_desktop.cli_commands import CliContext


def register_label_verbs(label: argparse._SubParsersAction) -> None:
    """Add ``next`` and ``suspects`` to the ``vital label`` actions."""
    p = label.add_parser("next", help="unlabelled items to label next (the ones that teach the model most)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", default=None,
                   help="label type (default: the model's, else the sheet's only classification type)")
    p.add_argument("--strategy", choices=["uncertainty", "diversity", "random"], default="uncertainty")
    p.add_argument("--count", type=int, default=20)
    p.add_argument("--model", default=None, help="classifier NAME or NAME@VERSION (default: the active one)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_next)
    p = label.add_parser("suspects", help="labels the model confidently disagrees with (possibly mislabelled)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", default=None,
                   help="label type (default: the model's, else the sheet's only classification type)")
    p.add_argument("--folds", type=int, default=None)
    p.add_argument("--limit", type=int, default=None)
    p.set_defaults(handler=_suspects)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="occlusion heat map: which parts of an image drive the classifier")
    p.add_argument("image", nargs="?", type=Path, help="image file (or --sheet and --item)")
    p.add_argument("--sheet", default=None)
    p.add_argument("--item", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--grid", type=int, default=8)
    p.add_argument("--class", dest="class_name", default=None, help="explain this class (default: the predicted one)")
    p.set_defaults(handler=_explain)


def _next(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import assist

    items = assist.label_next(ctx.store, actor=ctx.actor, sheet=args.sheet, label_type=args.label_type,
                              strategy=args.strategy, count=args.count, model=args.model, seed=args.seed,
                              progress=ctx.progress("label next"))
    lines = [f"{i.rank:3d}. {i.item_ref}" + (f"  {i.predicted_class} ({i.confidence:.2f}), uncertainty "
                                              f"{i.uncertainty:.2f}" if i.predicted_class else "") for i in items]
    return {"strategy": args.strategy, "items": [i.to_dict() for i in items],
            "text": "\n".join(lines) or "every item of the sheet is labelled"}


def _suspects(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import assist

    report = assist.label_suspects(ctx.store, actor=ctx.actor, sheet=args.sheet, label_type=args.label_type,
                                   folds=args.folds, limit=args.limit, progress=ctx.progress("suspects"))
    lines = [f"{s.item_ref}: labelled {s.given} ({s.p_given:.2f}), model says {s.suggested} ({s.p_suggested:.2f})"
             for s in report.suspects]
    head = (f"{len(report.suspects)} possibly mislabelled of {report.labels_checked} labels "
            f"({report.folds}-fold, {', '.join(report.representation)})")
    return report.to_dict() | {"text": "\n".join([head, *lines])}


def _explain(ctx: CliContext, args: argparse.Namespace) -> dict:
    from vital_desktop.services import assist

    result = assist.heat_map(ctx.store, actor=ctx.actor, image_path=str(args.image) if args.image else None,
                             sheet=args.sheet, item_ref=args.item, model=args.model, grid=args.grid,
                             class_name=args.class_name)
    shades = " .:-=+*#%@"
    peak = max(1e-6, max(abs(v) for row in result.grid for v in row))
    rows = ["".join(shades[min(9, int(max(0.0, v) / peak * 9))] * 2 for v in row) for row in result.grid]
    return result.to_dict() | {"text": f"{result.predicted_class} ({result.probability:.2f}) by {result.model}; "
                                       "darker = greying it out lowers the probability more\n" + "\n".join(rows)}
