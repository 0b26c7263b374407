"""`vital app …` and `vital self-check`: update the application itself from signed app bundles."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    app = sub.add_parser("app", help="the installed application: update from an app bundle, versions, rollback")
    actions = app.add_subparsers(dest="app_command", metavar="ACTION")

    def with_root(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--app-root", type=Path, default=None,
                       help="the installed copy's folder (default: VITAL_APP_ROOT, or where this app runs from)")
        return p

    p = with_root(actions.add_parser("update", help="verify an app bundle and unpack it for the next start (admin)"))
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_update)

    p = with_root(actions.add_parser("verify", help="explain an app bundle without unpacking it"))
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_verify)

    p = with_root(actions.add_parser("versions", help="installed versions: current, previous, waiting, last step"))
    p.set_defaults(handler=_versions, anonymous=True)

    p = with_root(actions.add_parser("rollback", help="start the previous version from the next start on (admin)"))
    p.add_argument("--restore-store", action="store_true",
                   help="also put back the store backup made before the newer version's migrations")
    p.set_defaults(handler=_rollback)

    p = with_root(actions.add_parser("finish-update", help="(the launcher's step) back up the store, self-check a "
                                                           "waiting update, then switch to it or roll it back"))
    p.add_argument("--timeout", type=float, default=600.0)
    p.set_defaults(handler=_finish, anonymous=True)

    p = sub.add_parser("self-check", help="can this version run this site? imports, store migrated on a copy, "
                                          "models load (never writes the store)")
    p.set_defaults(handler=_self_check, anonymous=True)


def _home(ctx: CliContext) -> Path:
    from vital_desktop.store.db import default_home

    return Path(ctx.home).expanduser() if ctx.home else default_home()


def _install(args: Any) -> Any:
    from vital_desktop.services import app_update

    return app_update.resolve_install(args.app_root)


def _checks_text(checks: list[dict[str, Any]]) -> list[str]:
    return [f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['message']}" for c in checks]


def _update(ctx: CliContext, args: Any) -> dict[str, Any]:
    from vital_desktop.services import app_update

    result = app_update.update_app(ctx.store, actor=ctx.actor, path=args.file, install=_install(args),
                                   progress=ctx.progress("update"))
    data = result.to_dict()
    if result.outcome == "already_imported":
        head = f"{args.file}: this update was already staged or installed; nothing changed"
    else:
        head = (f"{args.file}: VITAL Desktop {result.version} unpacked into {result.path}; it starts at the next "
                f"start if its self-check passes (installed: {result.from_version})")
    data["text"] = "\n".join([head, *_checks_text(result.checks)])
    return data


def _verify(ctx: CliContext, args: Any) -> dict[str, Any]:
    from vital_desktop.bundles.errors import BundleRefused
    from vital_desktop.services import app_update

    report = app_update.verify_app_bundle(ctx.store, args.file, install=_install(args))
    if report["outcome"] == "refused":
        if not ctx.json:  # the explanation on stdout; --json keeps stdout to one object (none on refusal)
            print("\n".join(_checks_text(report["checks"])))
        raise BundleRefused(report["code"], report["reason"])
    report["text"] = "\n".join([f"{args.file}: {report['outcome']}", *_checks_text(report["checks"])])
    return report


def _versions(ctx: CliContext, args: Any) -> dict[str, Any]:
    from vital_desktop.services import app_update

    return app_update.app_versions(_install(args))


def _rollback(ctx: CliContext, args: Any) -> dict[str, Any]:
    from vital_desktop.core.errors import ValidationError
    from vital_desktop.services import app_update
    from vital_desktop.store import audit
    from vital_desktop.store.db import open_store

    install = _install(args)
    leaving = install.current()
    home = _home(ctx)
    backups = [b for b in app_update.store_backups(home) if leaving and b.name.startswith(f"site-before-{leaving}-")]
    if args.restore_store and not backups:
        raise ValidationError(f"no store backup was made before {leaving}'s migrations; nothing to restore")
    result = app_update.rollback(ctx.store, actor=ctx.actor, install=install)
    if args.restore_store:
        actor = ctx.actor
        ctx.close()
        aside = app_update.restore_store(home, backups[-1])
        # Recorded without migrating: the restored store is for the older version that starts next.
        restored = open_store(home, create=False, migrate=False, holder="vital app rollback")
        try:
            with restored.session() as s:
                audit.record(s, actor.username, "app.store.restored", str(backups[-1]),
                             {"replaced_copy": str(aside), "version": result["current"]})
        finally:
            restored.close()
        result.update(restored=str(backups[-1]), replaced_copy=str(aside))
        result["text"] += f"\nstore restored from {backups[-1]} (the replaced store is kept as {aside})"
    return result


def _finish(ctx: CliContext, args: Any) -> dict[str, Any]:
    from vital_desktop.services import app_update

    return app_update.finish_pending(_install(args), _home(ctx), timeout=args.timeout)


def _self_check(ctx: CliContext, args: Any) -> dict[str, Any]:
    from vital_desktop.services.self_check import self_check

    return self_check(_home(ctx))
