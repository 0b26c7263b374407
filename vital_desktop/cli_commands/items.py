"""`vital sheet import NAME --documents DIR | --telemetry PATH [--group-by KEY]` and
`vital sheet content NAME ITEM`: sheets whose items are documents or telemetry series."""

from __future__ import annotations

from vital_desktop.cli_commands import CliContext
from vital_desktop.core.errors import ValidationError


def import_items(ctx: CliContext, args) -> dict:
    """Handler of `sheet import` when --documents or --telemetry is given."""
    from vital_desktop.services import item_import

    if args.documents is not None and args.telemetry is not None:
        raise ValidationError("a sheet holds one kind of item: give --documents or --telemetry, not both")
    if args.metadata is not None or args.images is not None or args.class_type:
        raise ValidationError("--documents/--telemetry make their own items; leave out --metadata, --images and "
                              "--class-type")
    if args.documents is not None:
        if args.group_by or args.time_column or args.columns:
            raise ValidationError("--group-by, --time-column and --columns go with --telemetry")
        report, _ = item_import.import_documents(
            ctx.store, actor=ctx.actor, name=args.name, folder=args.documents,
            classification=args.classification or None, description=args.description,
            progress=ctx.progress("read"))
        text = f"imported sheet {args.name!r}: {report.items} documents, {report.pages} pages"
    else:
        columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns else None
        report, _ = item_import.import_telemetry(
            ctx.store, actor=ctx.actor, name=args.name, path=args.telemetry, group_by=args.group_by,
            time_column=args.time_column, columns=columns, classification=args.classification or None,
            description=args.description, progress=ctx.progress("read"))
        text = f"imported sheet {args.name!r}: {report.items} telemetry series, {report.points} readings"
    if report.warnings:
        text += f"; {len(report.warnings)} extraction warning(s): " + "; ".join(report.warnings[:5])
    return {**report.to_dict(), "text": text}


def show_content(ctx: CliContext, args) -> dict:
    """Handler of `sheet content NAME ITEM`: the stored text or series summary of one item."""
    import json

    from vital_desktop.services import item_text

    info = item_text.item_content(ctx.store, args.name, args.item)
    if info.text is not None:
        body = info.text if args.chars is None else info.text[: args.chars]
    elif info.series is not None:
        body = item_text.telemetry_prompt_text(info.series["summary"])
    else:
        body = json.dumps(info.metadata, indent=2)
    result = info.to_dict()
    if not args.plot_data and result.get("series"):
        result["series"] = {"summary": result["series"]["summary"]}
    return {**result, "text": f"{info.item_ref} ({info.kind})\n{body}"}
