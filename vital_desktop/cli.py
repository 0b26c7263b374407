"""The `vital` command line: the administrators' and scripts' face of the same services."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vital_desktop import __version__
from vital_desktop.cli_commands import COMMAND_MODULES, CliContext
from vital_desktop.core.errors import Cancelled, StoreLockedError, VitalError
from vital_desktop.core.progress import ProgressSnapshot

log = logging.getLogger(__name__)


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


def main(
    argv: Sequence[str] | None = None,
    *,
    store: Any = None,
    username: str | None = None,
    password: str | None = None,
    on_progress: Callable[[ProgressSnapshot], None] | None = None,
    exclusive_refused: frozenset[str] = frozenset(),
) -> int:
    """Run one `vital` command and return its exit status.

    Alone, `main` opens the site itself — unless the desktop app holds it, in which case the
    command is handed to the app (see `vital_desktop.bridge`) and its output relayed. Inside
    the app, the bridge calls `main` with the app's open `store` and the client's `username`
    and `password` (the app's own environment is never used to sign the client in).
    """
    parser = build_parser()
    raw_argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw_argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    bridged = store is not None
    if not bridged:
        from vital_desktop.core import sitelog
        from vital_desktop.store.db import default_home

        home = Path(args.home).expanduser() if args.home else default_home()
        forwarded = _forward_to_app(home, args, raw_argv)
        if forwarded is not None:
            return forwarded
        if home.is_dir():
            sitelog.configure(home, process="cli")
    verb = " ".join(filter(None, [args.command, getattr(args, f"{args.command}_command", None)]))
    if bridged and (args.command in exclusive_refused or verb in exclusive_refused):
        print(f"vital: the desktop app has this site open; close it before running `vital {verb}`"
              + (" (or use the Users page)" if args.command == "user" else ""), file=sys.stderr)
        return StoreLockedError.exit_code
    ctx = CliContext(home=args.home, json=args.json, username=args.user or username, quiet=args.quiet,
                     _store=store, owns_store=not bridged, bridged=bridged, password=password,
                     on_progress=on_progress)
    # Ctrl+C cancels cooperatively where a command watches ctx progress; elsewhere it stops.
    if threading.current_thread() is threading.main_thread():
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
    except Exception as exc:
        # A fault of ours, not the user's: a clear line for them, the traceback in the site log.
        log.exception("vital %s failed", args.command)
        print(f"vital: internal error ({type(exc).__name__}: {exc}); details are in the site log", file=sys.stderr)
        return 70
    finally:
        ctx.close()
    if args.json:
        result.pop("text", None)
        print(json.dumps(result, default=str, ensure_ascii=False))
    else:
        _print_human(result)
    return 0


def _forward_to_app(home: Path, args: argparse.Namespace, raw_argv: list[str]) -> int | None:
    """Hand the command to a desktop app that holds this site; None when no app does."""
    if os.environ.get("VITAL_NO_BRIDGE"):
        return None
    from vital_desktop import bridge

    sock = bridge.connect(home)
    if sock is None:
        return None
    user = args.user or os.environ.get("VITAL_USER")
    password = os.environ.get("VITAL_PASSWORD")
    if password is None and user and not getattr(args, "anonymous", False) and sys.stdin.isatty():
        password = getpass.getpass(f"Password for {user}: ")
    return bridge.forward(sock, raw_argv, user=user, password=password)


def _error(ctx: CliContext, exc: VitalError) -> None:
    if not isinstance(exc, Cancelled):
        log.info("vital command refused: %s", exc.message)
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
