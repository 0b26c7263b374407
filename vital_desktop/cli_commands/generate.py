"""`vital template …`, `vital generate`, `vital review …`, `vital claim …`, `vital training-sheet …`.

GENERATE and LABEL from the command line: versioned templates, training sheets that reuse
canonical labels, expert review (Mode A) and claim-aware canonical labeling (Mode B).
"""

from __future__ import annotations

import argparse
import json
import signal
from typing import Any

from vital_desktop.cli_commands import CliContext
from vital_desktop.core.errors import ValidationError


def _json_arg(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON: {exc.msg} at character {exc.pos}") from None


def _uses(text: str | None) -> list[str] | None:
    return None if text is None else [u.strip() for u in text.split(",") if u.strip()]


def _pair_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--training-sheet", "-t", default=None, help="training sheet name (with --item)")
    p.add_argument("--item", default=None, help="item_ref of the pair (with --training-sheet)")
    p.add_argument("--pair", default=None, help="pair id (instead of --training-sheet and --item)")


def _label_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--notes", default="")
    p.add_argument("--confidence", choices=["high", "medium", "low"], default=None, help="the expert's confidence")
    p.add_argument("--allowed", default=None, help="comma-separated allowed uses (default: all not prohibited)")
    p.add_argument("--prohibited", default=None, help="comma-separated prohibited uses")
    p.add_argument("--usage-reason", default="")


def register(sub: argparse._SubParsersAction) -> None:
    # --- generation
    p = sub.add_parser("generate", help="generate a training sheet: sheet × template version (reuses canonical labels)")
    p.add_argument("--sheet", default=None)
    p.add_argument("--template", default=None, help="NAME (latest published) or NAME@VERSION")
    p.add_argument("--name", required=True, help="name of the training sheet")
    p.add_argument("--ai", default=None, choices=["none", "classifier", "llm", "both"],
                   help="pre-label items without a canonical label (default none)")
    p.add_argument("--resume", action="store_true", help="continue a cancelled, crashed or trial (--limit) generation")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="trial run: only the first N items that need a pre-label (resume later to continue)")
    p.set_defaults(handler=_generate)

    confidence = sub.add_parser("confidence", help="the language model's per-field confidence: calibrate, show"
                                ).add_subparsers(dest="confidence_command", metavar="ACTION")
    p = confidence.add_parser("calibrate", help="fit a template version's per-field temperatures on a sheet's "
                              "evaluation-allowed canonical labels")
    p.add_argument("--template", required=True, help="NAME or NAME@VERSION")
    p.add_argument("--sheet", required=True)
    p.add_argument("--limit", type=int, default=None, metavar="N", help="answer at most N labelled items (default 200)")
    p.set_defaults(handler=_confidence_calibrate)
    p = confidence.add_parser("show", help="a template version's stored calibration")
    p.add_argument("--template", required=True)
    p.set_defaults(handler=_confidence_show)

    ts = sub.add_parser("training-sheet", help="training sheets and their progress").add_subparsers(
        dest="ts_command", metavar="ACTION")
    p = ts.add_parser("list")
    p.add_argument("--sheet", default=None)
    p.set_defaults(handler=_ts_list)
    p = ts.add_parser("show", help="details and the progress summary")
    p.add_argument("name")
    p.set_defaults(handler=_ts_show)

    # --- review (Mode A) and canonical labeling (Mode B)
    review = sub.add_parser("review", help="review Q&A pairs (Mode A) and label items (Mode B)").add_subparsers(
        dest="review_command", metavar="ACTION")
    p = review.add_parser("list", help="pairs of a training sheet")
    p.add_argument("--training-sheet", "-t", required=True)
    p.add_argument("--status", choices=["unlabeled", "labeled", "rejected", "flagged"], default=None)
    p.add_argument("--source", default=None, help="canonical, llm, classifier, expert, none")
    p.add_argument("--min-confidence", type=float, default=None)
    p.add_argument("--max-confidence", type=float, default=None)
    p.add_argument("--conflicting", action="store_true", help="only items whose canonical label is in conflict")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--messages", action="store_true", help="include the rendered messages")
    p.set_defaults(handler=_review_list)
    p = review.add_parser("approve", help="approve a pair's pre-label: it becomes the canonical label")
    _pair_args(p)
    _label_args(p)
    p.set_defaults(handler=_review_approve)
    p = review.add_parser("edit", help="correct a pair's answer, then approve it")
    _pair_args(p)
    p.add_argument("--answer", required=True, help='the corrected answer as JSON, e.g. \'{"class": "scratch"}\'')
    _label_args(p)
    p.set_defaults(handler=_review_edit)
    for action in ("reject", "flag"):
        p = review.add_parser(action, help=f"{action} a pair (a reason is required)")
        _pair_args(p)
        p.add_argument("--reason", required=True)
        p.set_defaults(handler=_review_reject if action == "reject" else _review_flag)
    p = review.add_parser("bulk", help="approve (confidence >= T) or reject (confidence < T); previews unless --yes")
    p.add_argument("--training-sheet", "-t", required=True)
    p.add_argument("--action", choices=["approve", "reject"], required=True)
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--yes", action="store_true", help="do it (without: only count)")
    p.add_argument("--expected", type=int, default=None, help="the count you confirmed (refused if it changed)")
    p.add_argument("--reason", default="")
    p.add_argument("--field", default=None,
                   help="compare this answer field's confidence (language-model pairs) instead of the pair's")
    p.set_defaults(handler=_review_bulk)
    p = review.add_parser("items", help="Mode B: a sheet's items with their label status for a label type")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", required=True)
    p.add_argument("--filter", dest="status", choices=["all", "unlabeled", "labeled", "conflicting"], default="all")
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_review_items)
    p = review.add_parser("label", help="Mode B: set an item's canonical label (refused if someone else claimed it)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--item", required=True)
    p.add_argument("--type", dest="label_type", required=True)
    p.add_argument("--data", required=True, help="label data as JSON")
    p.add_argument("--expected-version", type=int, default=None)
    _label_args(p)
    p.set_defaults(handler=_review_label)

    claim = sub.add_parser("claim", help="claim items to label so other experts do not label them meanwhile"
                           ).add_subparsers(dest="claim_command", metavar="ACTION")
    p = claim.add_parser("take", help="claim items (listed, or the next --count unlabeled ones)")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", required=True)
    p.add_argument("--items", default=None, help="comma-separated item_refs")
    p.add_argument("--count", type=int, default=10)
    p.add_argument("--minutes", type=int, default=30)
    p.set_defaults(handler=_claim_take)
    p = claim.add_parser("release", help="give back your claims")
    p.add_argument("--sheet", required=True)
    p.add_argument("--type", dest="label_type", required=True)
    p.add_argument("--items", default=None)
    p.set_defaults(handler=_claim_release)
    p = claim.add_parser("list", help="live claims")
    p.add_argument("--sheet", default=None)
    p.add_argument("--type", dest="label_type", default=None)
    p.set_defaults(handler=_claim_list)


# --- generation --------------------------------------------------------------------------------


def _generate(ctx: CliContext, args) -> dict:
    from vital_desktop.services import generate

    store, actor = ctx.store, ctx.actor
    progress = ctx.progress("generate")
    # Ctrl+C cancels cooperatively: finished batches are kept and --resume continues.
    previous = signal.signal(signal.SIGINT, lambda *_: progress.cancel.cancel())
    try:
        result, _ = generate.generate_training_sheet(
            store, actor=actor, sheet=args.sheet, template=args.template, name=args.name, ai_mode=args.ai,
            progress=progress, resume=args.resume, limit=args.limit,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    info = result.training_sheet
    text = (f"training sheet {info.name!r} from {info.sheet_name!r} × {info.template_ref} (AI: {info.ai_mode}), "
            f"{result.written} pairs written in {result.seconds:.1f} s\n\n{result.summary.text()}")
    return {**result.to_dict(), "text": text}


def _confidence_calibrate(ctx: CliContext, args) -> dict:
    from vital_desktop.services import llm_calibration

    progress = ctx.progress("calibrate")
    previous = signal.signal(signal.SIGINT, lambda *_: progress.cancel.cancel())
    try:
        report, _ = llm_calibration.calibrate_template(ctx.store, actor=ctx.actor, template=args.template,
                                                       sheet=args.sheet, limit=args.limit, progress=progress)
    finally:
        signal.signal(signal.SIGINT, previous)
    return {**report.to_dict(), "text": report.text()}


def _confidence_show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import llm_calibration

    rows = llm_calibration.calibrations(ctx.store, args.template)
    text = "\n".join(f"{r['field']:20s} T = {r['temperature']:.3f}  ({r['labels']} labels, ECE {r['ece_before']:.3f} "
                     f"-> {r['ece_after']:.3f} in-sample)" for r in rows)
    return {"calibrations": rows, "text": text or f"{args.template} is not calibrated: its confidences are raw"}


def _ts_list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import generate

    rows = generate.list_training_sheets(ctx.store, sheet=args.sheet)
    text = "\n".join(f"{r.name:30s} {r.status:10s} {r.sheet_name} × {r.template_ref}  ({r.total_items} items, AI {r.ai_mode})"
                     for r in rows)
    return {"training_sheets": [r.to_dict() for r in rows], "text": text or "no training sheets yet"}


def _ts_show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import generate

    info = generate.get_training_sheet(ctx.store, args.name)
    summary = generate.summary(ctx.store, args.name)
    text = (f"{info.name}: {info.sheet_name} × {info.template_ref}, AI {info.ai_mode}, {info.status}, "
            f"by {info.created_by} at {info.created_at}\n\n{summary.text()}")
    return {"training_sheet": info.to_dict(), "summary": summary.to_dict(), "text": text}


# --- review ------------------------------------------------------------------------------------


def _pair_id(ctx: CliContext, args) -> str:
    from vital_desktop.services import review

    if args.pair:
        return args.pair
    if not (args.training_sheet and args.item):
        raise ValidationError("name the pair: --pair ID, or --training-sheet NAME --item ITEM_REF")
    return review.find_pair(ctx.store, training_sheet=args.training_sheet, item_ref=args.item).id


def _pair_line(p) -> str:
    conf = f"{p.confidence:.2f}" if p.confidence is not None else "  - "
    answer = json.dumps(p.answer) if p.answer is not None else "-"
    flags = (" [label conflict]" if p.label_conflict else "") + (f" [AI error: {p.ai_error[:50]}]" if p.ai_error else "")
    return f"{p.item_ref:16s} {p.status:9s} {p.source:14s} {conf}  {answer}{flags}"


def _review_list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    rows = review.list_pairs(ctx.store, training_sheet=args.training_sheet, status=args.status, source=args.source,
                             min_confidence=args.min_confidence, max_confidence=args.max_confidence,
                             conflicting=args.conflicting, offset=args.offset, limit=args.limit)
    pairs = [r.to_dict() for r in rows]
    if not args.messages:
        for p in pairs:
            p.pop("messages")
    return {"pairs": pairs, "text": "\n".join(_pair_line(r) for r in rows) or "no pairs match"}


def _outcome_text(outcome) -> str:
    if outcome.label_outcome == "conflict":
        return (f"not applied: item {outcome.pair.item_ref} has a different canonical label "
                f"(v{outcome.label.version} by {outcome.label.updated_by}); a conflict waits for review")
    if outcome.label_outcome:
        return (f"approved {outcome.pair.item_ref}: canonical label {outcome.label_outcome} "
                f"(v{outcome.label.version})")
    return f"{outcome.pair.item_ref}: {outcome.pair.status} ({outcome.pair.review_reason})"


def _review_approve(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    outcome, _ = review.approve(ctx.store, actor=ctx.actor, pair_id=_pair_id(ctx, args), notes=args.notes,
                                confidence=args.confidence, allowed_uses=_uses(args.allowed),
                                prohibited_uses=_uses(args.prohibited), usage_reason=args.usage_reason)
    return {**outcome.to_dict(), "text": _outcome_text(outcome)}


def _review_edit(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    answer = _json_arg(args.answer, "--answer")
    outcome, _ = review.edit_and_approve(ctx.store, actor=ctx.actor, pair_id=_pair_id(ctx, args), answer=answer,
                                         notes=args.notes, confidence=args.confidence,
                                         allowed_uses=_uses(args.allowed), prohibited_uses=_uses(args.prohibited),
                                         usage_reason=args.usage_reason)
    return {**outcome.to_dict(), "text": _outcome_text(outcome)}


def _review_reject(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    outcome, _ = review.reject(ctx.store, actor=ctx.actor, pair_id=_pair_id(ctx, args), reason=args.reason)
    return {**outcome.to_dict(), "text": _outcome_text(outcome)}


def _review_flag(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    outcome, _ = review.flag(ctx.store, actor=ctx.actor, pair_id=_pair_id(ctx, args), reason=args.reason)
    return {**outcome.to_dict(), "text": _outcome_text(outcome)}


def _review_bulk(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    preview = review.preview_bulk(ctx.store, actor=ctx.actor, training_sheet=args.training_sheet, action=args.action,
                                  threshold=args.threshold, field=args.field)
    what = "≥" if args.action == "approve" else "<"
    skipped = f" (skipped: {preview.skipped_claimed} claimed by others, {preview.skipped_invalid} invalid)"
    if not args.yes:
        return {"preview": preview.to_dict(),
                "text": f"{preview.count} pairs with confidence {what} {args.threshold} would be {args.action}d"
                        f"{skipped}; run again with --yes --expected {preview.count} to do it"}
    expected = args.expected if args.expected is not None else preview.count
    result, _ = review.bulk_action(ctx.store, actor=ctx.actor, training_sheet=args.training_sheet, action=args.action,
                                   threshold=args.threshold, expected_count=expected, reason=args.reason,
                                   field=args.field)
    return {"result": result.to_dict(),
            "text": f"{args.action}d {result.done} pairs" + (f", {result.conflicts} conflicts for review"
                                                             if result.conflicts else "") + skipped}


def _review_items(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    page = review.item_statuses(ctx.store, sheet=args.sheet, label_type=args.label_type, status=args.status,
                                offset=args.offset, limit=args.limit)
    lines = [f"{i.item_ref:16s} {i.status:11s} {i.image_path or '':24s}"
             + (f" claimed by {i.claimed_by} until {i.claim_expires_at}" if i.claimed_by else "") for i in page.items]
    counts = ", ".join(f"{k} {v}" for k, v in page.counts.items())
    return {**page.to_dict(), "text": "\n".join(lines + [f"({page.total} matching; {counts})"])}


def _review_label(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    data = _json_arg(args.data, "--data")
    result, _ = review.label_item(ctx.store, actor=ctx.actor, sheet=args.sheet, item_ref=args.item,
                                  label_type=args.label_type, label_data=data, notes=args.notes,
                                  confidence=args.confidence, allowed_uses=_uses(args.allowed),
                                  prohibited_uses=_uses(args.prohibited), usage_reason=args.usage_reason,
                                  expected_version=args.expected_version)
    text = (f"not applied: conflict {result.conflict_id} waits for review" if result.outcome == "conflict"
            else f"{result.outcome}: {args.item} {args.label_type} v{result.label.version}")
    return {**result.to_dict(), "text": text}


# --- claims ------------------------------------------------------------------------------------


def _claim_take(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    items = _uses(args.items)
    result, _ = review.claim_items(ctx.store, actor=ctx.actor, sheet=args.sheet, label_type=args.label_type,
                                   item_refs=items, count=args.count, minutes=args.minutes)
    text = f"claimed {len(result.claimed)} items until {result.expires_at}: {', '.join(result.claimed)}"
    if result.refused:
        text += "\nheld by others: " + ", ".join(f"{k} ({v})" for k, v in result.refused.items())
    return {**result.to_dict(), "text": text}


def _claim_release(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    count, _ = review.release_claims(ctx.store, actor=ctx.actor, sheet=args.sheet, label_type=args.label_type,
                                     item_refs=_uses(args.items))
    return {"released": count, "text": f"released {count} claims"}


def _claim_list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import review

    rows = review.list_claims(ctx.store, sheet=args.sheet, label_type=args.label_type)
    return {"claims": rows, "text": "\n".join(f"{r['item_ref']:16s} {r['label_type']:16s} {r['claimed_by']:12s} "
                                              f"until {r['expires_at']}" for r in rows) or "no live claims"}
