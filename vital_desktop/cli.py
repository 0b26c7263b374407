"""The `vital` command line: the administrators' and scripts' face of the same services."""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from vital_desktop import __version__
from vital_desktop.cli_commands import COMMAND_MODULES, CliContext
from vital_desktop.core.errors import Cancelled, VitalError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vital", description="VITAL Desktop: the offline site's command line.")
    parser.add_argument("--home", type=Path, help="site folder (default: $VITAL_HOME or the platform data folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--user", help="act as this user (default $VITAL_USER; password from $VITAL_PASSWORD)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--version", action="version", version=f"vital {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"vital_desktop.cli_commands.{name}").register(sub)
    return parser


def _print_human(result: dict) -> None:
    if "text" in result:
        print(result["text"])
    else:
        print(json.dumps(result, indent=2, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    ctx = CliContext(home=args.home, json=args.json, username=args.user, quiet=args.quiet)
    # Ctrl+C cancels cooperatively where a command watches ctx progress; elsewhere it stops.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        if not getattr(args, "anonymous", False):
            ctx.actor  # noqa: B018 - every command but `init` acts as a signed-in user
        result = handler(ctx, args) or {}
    except Cancelled as exc:
        _error(ctx, exc)
        return exc.exit_code
    except VitalError as exc:
        _error(ctx, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        print("vital: interrupted", file=sys.stderr)
        return 130
    finally:
        ctx.close()
    if args.json:
        result.pop("text", None)
        print(json.dumps(result, default=str, ensure_ascii=False))
    else:
        _print_human(result)
    return 0


def _error(ctx: CliContext, exc: VitalError) -> None:
    print(f"vital: {exc.message}", file=sys.stderr)
    if ctx.json:
        # Scripts get the error as JSON on stderr too; stdout stays empty on failure.
        print(json.dumps(exc.to_dict(), default=str), file=sys.stderr)




def entry() -> None:
    """Console-script entry point: `main()`, then a quiet exit (see core.process)."""
    from vital_desktop.core.process import run_and_exit

    run_and_exit(main)


if __name__ == "__main__":
    entry()
