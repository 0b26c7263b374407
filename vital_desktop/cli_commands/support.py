"""`vital support-bundle`: the diagnostics archive an airgapped site can send (no label content)."""

from __future__ import annotations

import argparse
from pathlib import Path

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("support-bundle",
                       help="write a redacted diagnostics archive: log, versions, store statistics (no label content)")
    p.add_argument("--out", type=Path, default=Path("vital-support.zip"), help="the .zip to write")
    p.set_defaults(handler=_support_bundle)


def _support_bundle(ctx: CliContext, args) -> dict:
    from vital_desktop.services import support

    bundle = support.write_support_bundle(ctx.store, actor=ctx.actor, out=args.out)
    return {**bundle.to_dict(),
            "text": f"wrote {bundle.path} ({bundle.bytes:,} bytes, {bundle.log_entries} log entries, no label content)"}
