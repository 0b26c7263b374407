"""`vital init`, `vital user …`, `vital audit …`: the site itself."""

from __future__ import annotations

import argparse

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create the site store (optionally with the demo site)")
    p.add_argument("--demo", action="store_true", help="create the embedded demo site (images, sheets, labels, users)")
    p.add_argument("--site-id", default=None, help="this site's id (default: generated, or 'demo-site' with --demo)")
    p.add_argument("--admin", default=None,
                   help="create this admin user (password from $NEW_USER_PASSWORD, else $VITAL_PASSWORD on a new "
                        "store); on an existing site sign in as an admin with --user and $VITAL_PASSWORD")
    p.add_argument("--seed", type=int, default=7, help="demo data seed (deterministic)")
    p.set_defaults(handler=_init, anonymous=True)

    users = sub.add_parser("user", help="local accounts").add_subparsers(dest="user_command", metavar="ACTION")
    p = users.add_parser("add", help="add a user (admin only)")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=["inspector", "engineer", "admin"])
    p.add_argument("--display-name", default="")
    p.add_argument("--password-env", default="NEW_USER_PASSWORD",
                   help="environment variable holding the new user's password (default NEW_USER_PASSWORD)")
    p.set_defaults(handler=_user_add)
    p = users.add_parser("list", help="list users")
    p.set_defaults(handler=_user_list)
    p = users.add_parser("disable", help="disable an account (admin only); its sign-ins are refused")
    p.add_argument("username")
    p.set_defaults(handler=_user_set_active, active=False)
    p = users.add_parser("enable", help="enable an account again (admin only); also lifts a sign-in throttle")
    p.add_argument("username")
    p.set_defaults(handler=_user_set_active, active=True)
    p = users.add_parser("passwd", help="change a password: your own, or anyone's as an admin")
    p.add_argument("username", nargs="?", default=None, help="whose password (default: your own)")
    p.add_argument("--password-env", default="NEW_USER_PASSWORD",
                   help="environment variable holding the new password (default NEW_USER_PASSWORD)")
    p.set_defaults(handler=_user_passwd)

    policy = sub.add_parser("policy", help="the export policy: which PHI / EXPORT_CONTROLLED content may leave, where"
                            ).add_subparsers(dest="policy_command", metavar="ACTION")
    p = policy.add_parser("show", help="the current export policy")
    p.set_defaults(handler=_policy_show)
    for action, text in (("allow", "let content with TAG leave for DESTINATION (admin only, audited)"),
                         ("withdraw", "withdraw such a permission (admin only, audited)")):
        p = policy.add_parser(action, help=text)
        p.add_argument("--tag", required=True, choices=["PHI", "EXPORT_CONTROLLED"])
        p.add_argument("--destination", required=True, choices=["hub", "file", "training", "deployment", "support"])
        p.add_argument("--reason", default="", help="why (required to allow; kept in the audit log)")
        p.set_defaults(handler=_policy_set, allow=action == "allow")

    audit_cmd = sub.add_parser("audit", help="the hash-chained audit log").add_subparsers(dest="audit_command",
                                                                                         metavar="ACTION")
    p = audit_cmd.add_parser("verify", help="check the whole chain; report the first broken link")
    p.set_defaults(handler=_audit_verify)
    p = audit_cmd.add_parser("log", help="the most recent entries")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_audit_log)


def _init(ctx: CliContext, args) -> dict:
    import os

    from vital_desktop.core.errors import PermissionDenied
    from vital_desktop.services import site

    def sign_in(store):
        if not (ctx.username or os.environ.get("VITAL_USER")):
            raise PermissionDenied(f"{store.home} is an existing site: sign in as an administrator "
                                   "(--user NAME with VITAL_PASSWORD) to change it")
        return ctx.sign_in(store)

    progress = ctx.progress("demo")
    password = os.environ.get("NEW_USER_PASSWORD") or os.environ.get("VITAL_PASSWORD", "")
    report = site.init_site(
        ctx.home, demo=args.demo, site_id=args.site_id, seed=args.seed,
        admin=(args.admin, password) if args.admin else None, progress=progress, sign_in=sign_in,
    )
    result = report.to_dict()
    result["text"] = report.summary()
    return result


def _user_add(ctx: CliContext, args) -> dict:
    import os

    from vital_desktop.core.errors import ValidationError
    from vital_desktop.services import accounts

    password = os.environ.get(args.password_env)
    if not password:
        raise ValidationError(f"set the new user's password in ${args.password_env}")
    info, _ = accounts.add_user(ctx.store, actor=ctx.actor, username=args.username, password=password,
                                role=args.role, display_name=args.display_name)
    return {"user": info.to_dict(), "text": f"added {info.username} ({info.role})"}


def _user_set_active(ctx: CliContext, args) -> dict:
    from vital_desktop.services import accounts

    info, _ = accounts.set_active(ctx.store, actor=ctx.actor, username=args.username, active=args.active)
    return {"user": info.to_dict(), "text": f"{info.username} {'enabled' if info.active else 'disabled'}"}


def _user_passwd(ctx: CliContext, args) -> dict:
    import os

    from vital_desktop.core.errors import ValidationError
    from vital_desktop.services import accounts

    password = os.environ.get(args.password_env)
    if not password:
        raise ValidationError(f"set the new password in ${args.password_env}")
    actor = ctx.actor
    username = args.username or actor.username
    # Your own password: VITAL_PASSWORD (just used to sign in) is the current one.
    signed_in_with = ctx.password if getattr(ctx, "bridged", False) else os.environ.get("VITAL_PASSWORD")
    current = signed_in_with if username == actor.username else None
    info, _ = accounts.change_password(ctx.store, actor=actor, username=username, new_password=password,
                                       current_password=current)
    return {"user": info.to_dict(), "text": f"password of {info.username} changed"}


def _user_list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import accounts

    ctx.actor  # noqa: B018 - listing users needs a signed-in user
    users = accounts.list_users(ctx.store)
    return {"users": [u.to_dict() for u in users],
            "text": "\n".join(f"{u.username:16s} {u.role:10s} {u.display_name}" for u in users)}


def _policy_show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import site

    ctx.actor  # noqa: B018 - needs a signed-in user
    policy = site.export_policy(ctx.store)
    grants = [dict(g) for g in policy.grants]
    text = "\n".join(f"{g['tag']:18s} -> {g['destination']:10s} by {g.get('by')} at {g.get('at')}: {g.get('reason')}"
                     for g in grants) or "no restricted content (PHI, EXPORT_CONTROLLED) may leave this site"
    return {"allow": grants, "text": text}


def _policy_set(ctx: CliContext, args) -> dict:
    from vital_desktop.services import site

    policy = site.set_export_permission(ctx.store, actor=ctx.actor, tag=args.tag, destination=args.destination,
                                        allow=args.allow, reason=args.reason)
    verb = "may now leave" if args.allow else "may no longer leave"
    return {"allow": [dict(g) for g in policy.grants], "text": f"{args.tag} content {verb} for {args.destination}"}


def _audit_verify(ctx: CliContext, args) -> dict:
    from vital_desktop.core.errors import VitalError
    from vital_desktop.services import site

    result = site.verify_audit(ctx.store)
    if not result.ok:
        raise VitalError(f"audit log broken at row {result.first_broken_seq}: {result.reason}",
                         details=result.to_dict())
    return {**result.to_dict(), "text": f"audit log intact: {result.rows} rows"}


def _audit_log(ctx: CliContext, args) -> dict:
    from vital_desktop.services import site

    ctx.actor  # noqa: B018
    rows = site.audit_log(ctx.store, limit=args.limit)
    return {"entries": rows, "text": "\n".join(f"{r['seq']:6d} {r['at']} {r['user']:12s} {r['action']:24s} {r['target']}"
                                               for r in rows)}
