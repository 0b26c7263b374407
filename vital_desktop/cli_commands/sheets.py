"""`vital sheet import|list|show`: the DATA stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    sheet = sub.add_parser("sheet", help="DATA: sheets (metadata file + image folder)").add_subparsers(
        dest="sheet_command", metavar="ACTION")
    p = sheet.add_parser("import", help="index a metadata file and its images (nothing is copied)")
    p.add_argument("name")
    p.add_argument("--metadata", type=Path, required=True, help="CSV or Parquet file, read in place")
    p.add_argument("--images", type=Path, default=None, help="image folder (image paths are relative to it)")
    p.add_argument("--key", required=True, help="the column that identifies an item")
    p.add_argument("--image-column", default=None, help="the column holding each item's image path")
    p.add_argument("--classification", default="", help="comma-separated tags: PHI,PII,CONFIDENTIAL,EXPORT_CONTROLLED")
    p.add_argument("--description", default="")
    p.set_defaults(handler=_import)
    p = sheet.add_parser("list", help="list sheets")
    p.set_defaults(handler=_list)
    p = sheet.add_parser("show", help="a sheet and a preview of its items")
    p.add_argument("name")
    p.add_argument("--limit", type=int, default=5, help="items to preview")
    p.add_argument("--offset", type=int, default=0)
    p.set_defaults(handler=_show)
    p = sheet.add_parser("relocate", help="point a sheet at its images in another place (every file is checked)")
    p.add_argument("name")
    p.add_argument("--images", type=Path, default=None, help="the folder that now holds the sheet's images")
    p.add_argument("--metadata", type=Path, default=None, help="where the metadata file is now")
    p.set_defaults(handler=_relocate)


def _import(ctx: CliContext, args) -> dict:
    from vital_desktop.services import sheets

    report, _ = sheets.import_sheet(
        ctx.store, actor=ctx.actor, name=args.name, metadata_path=args.metadata, key_column=args.key,
        image_root=args.images, image_column=args.image_column, classification=args.classification or None,
        description=args.description, progress=ctx.progress("import"),
    )
    result = report.to_dict()
    text = f"imported sheet {args.name!r}: {report.items} items"
    if report.missing:
        text += f"; {len(report.missing)} image file(s) missing: {', '.join(report.missing[:10])}"
    result["text"] = text
    return result


def _list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import sheets

    rows = sheets.list_sheets(ctx.store)
    lines = [f"{s.name:45s} {s.item_count:7d} items  {s.missing_count:4d} missing  {','.join(s.classification)}"
             for s in rows]
    return {"sheets": [s.to_dict() for s in rows], "text": "\n".join(lines) or "no sheets yet"}


def _show(ctx: CliContext, args) -> dict:
    import json

    from vital_desktop.services import sheets

    info = sheets.get_sheet(ctx.store, args.name)
    items = sheets.list_items(ctx.store, args.name, offset=args.offset, limit=args.limit)
    text = [f"{info.name}  ({info.item_count} items, {info.missing_count} missing)",
            f"  metadata: {info.metadata_path} ({info.metadata_format}), key {info.key_column}",
            f"  images:   {info.image_root or '-'} (column {info.image_column or '-'})",
            f"  classification: {', '.join(info.classification) or 'none'}", ""]
    for item in items:
        flag = " MISSING" if item.missing else ""
        text.append(f"  {item.item_ref:20s} {item.image_path or '-'}{flag}  {json.dumps(item.metadata)[:90]}")
    return {"sheet": info.to_dict(), "items": [i.to_dict() for i in items], "text": "\n".join(text)}


def _relocate(ctx: CliContext, args) -> dict:
    from vital_desktop.services import sheets

    report, _ = sheets.relocate_sheet(ctx.store, actor=ctx.actor, sheet=args.name, image_root=args.images,
                                      metadata_path=args.metadata, progress=ctx.progress("check"))
    return {**report.to_dict(), "text": f"{args.name}: {report.checked} images checked; now at "
                                        f"{report.sheet.image_root or '-'} ({report.sheet.metadata_path})"}
