"""`vital sheet import|list|show|relocate|rescan|join-metadata|erase-items|delete`: the DATA stage."""

from __future__ import annotations

import argparse
from pathlib import Path

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    sheet = sub.add_parser("sheet", help="DATA: sheets (metadata file + image folder)").add_subparsers(
        dest="sheet_command", metavar="ACTION")
    p = sheet.add_parser("import", help="index an image folder and/or a metadata file (nothing is copied)")
    p.add_argument("name")
    p.add_argument("--metadata", type=Path, default=None,
                   help="CSV or Parquet file, read in place (optional: without it every image in --images is an item)")
    p.add_argument("--images", type=Path, default=None, help="image folder (image paths are relative to it)")
    p.add_argument("--key", default=None, help="the column that identifies an item (with --metadata)")
    p.add_argument("--class-type", default=None,
                   help="folder-per-class layout (DIR/<class>/<image>): create labels of this label type")
    p.add_argument("--image-column", default=None, help="the column holding each item's image path")
    p.add_argument("--classification", default="", help="comma-separated tags: PHI,PII,CONFIDENTIAL,EXPORT_CONTROLLED")
    p.add_argument("--description", default="")
    p.add_argument("--documents", type=Path, default=None,
                   help="a folder of documents (PDF, .txt, .md): one item per file, text extracted")
    p.add_argument("--telemetry", type=Path, default=None,
                   help="telemetry: a folder with one CSV/Parquet file per item, or one file with --group-by")
    p.add_argument("--group-by", default=None, help="with --telemetry FILE: the column whose values are the items")
    p.add_argument("--time-column", default=None, help="with --telemetry: the time column (found by name if not given)")
    p.add_argument("--columns", default=None, help="with --telemetry: comma-separated numeric columns to keep")
    p.set_defaults(handler=_import)
    p = sheet.add_parser("content", help="the extracted text or telemetry summary of one document/telemetry item")
    p.add_argument("name")
    p.add_argument("item")
    p.add_argument("--chars", type=int, default=None, help="print at most this many characters of the text")
    p.add_argument("--plot-data", action="store_true", help="with --json: include the downsampled series")
    p.set_defaults(handler=_content)
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
    p = sheet.add_parser("rescan", help="pick up new, changed and deleted image files")
    p.add_argument("name")
    p.set_defaults(handler=_rescan)
    p = sheet.add_parser("join-metadata", help="join a metadata file's columns into a sheet's items")
    p.add_argument("name")
    p.add_argument("--metadata", type=Path, required=True)
    p.add_argument("--key", required=True, help="the column holding each item's relative path (or file name)")
    p.set_defaults(handler=_join)
    p = sheet.add_parser("erase-items", help="admins: erase items with their labels, pairs and predictions")
    p.add_argument("name")
    p.add_argument("--items", required=True, help="comma-separated item refs")
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.set_defaults(handler=_erase)
    p = sheet.add_parser("delete", help="admins: delete a whole sheet with every trace of its items")
    p.add_argument("name")
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.set_defaults(handler=_delete)


def _import(ctx: CliContext, args) -> dict:
    from vital_desktop.services import sheets

    if args.documents is not None or args.telemetry is not None:
        from vital_desktop.cli_commands.items import import_items

        return import_items(ctx, args)

    report, _ = sheets.import_sheet(
        ctx.store, actor=ctx.actor, name=args.name, metadata_path=args.metadata, key_column=args.key,
        image_root=args.images, image_column=args.image_column, classification=args.classification or None,
        description=args.description, progress=ctx.progress("import"), class_label_type=args.class_type,
    )
    result = report.to_dict()
    text = f"imported sheet {args.name!r}: {report.items} items"
    if report.labels:
        text += f", {report.labels} {args.class_type} labels from the class folders"
    if report.missing:
        text += f"; {len(report.missing)} image file(s) missing: {', '.join(report.missing[:10])}"
    result["text"] = text
    return result


def _content(ctx: CliContext, args) -> dict:
    from vital_desktop.cli_commands.items import show_content

    return show_content(ctx, args)


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


def _rescan(ctx: CliContext, args) -> dict:
    from vital_desktop.services import sheet_rescan

    report, _ = sheet_rescan.rescan_sheet(ctx.store, actor=ctx.actor, sheet=args.name, progress=ctx.progress("rescan"))
    return {**report.to_dict(), "text": report.text()}


def _join(ctx: CliContext, args) -> dict:
    from vital_desktop.services import sheet_folders

    report, _ = sheet_folders.join_metadata(ctx.store, actor=ctx.actor, sheet=args.name, metadata_path=args.metadata,
                                            key_column=args.key)
    return {**report.to_dict(), "text": f"{args.name}: metadata joined to {report.joined} item(s); "
                                        f"{report.without_row} item(s) have no row"}


def _erase(ctx: CliContext, args) -> dict:
    from vital_desktop.services import erasure

    report, _ = erasure.erase_items(ctx.store, actor=ctx.actor, sheet=args.name, item_refs=args.items.split(","),
                                    reason=args.reason)
    return {**report.to_dict(), "text": report.text()}


def _delete(ctx: CliContext, args) -> dict:
    from vital_desktop.services import erasure

    report, _ = erasure.delete_sheet(ctx.store, actor=ctx.actor, sheet=args.name, reason=args.reason)
    return {**report.to_dict(), "text": report.text()}
