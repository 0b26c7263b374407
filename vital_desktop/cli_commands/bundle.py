"""`vital bundle …`: signed bundles with the hub (keygen, verify, import, export, ledger, trust)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vital_desktop.cli_commands import CliContext


def register(sub: argparse._SubParsersAction) -> None:
    bundle = sub.add_parser("bundle", help="signed bundles on removable media (hub <-> site)")
    actions = bundle.add_subparsers(dest="bundle_command", metavar="ACTION")

    p = actions.add_parser("keygen", help="create (once) and show this site's signing key, for the hub to register")
    p.add_argument("--out", type=Path, help="also write the site identity (id + public key) to this JSON file")
    p.set_defaults(handler=_keygen)

    p = actions.add_parser("verify", help="explain a bundle without importing it (non-zero exit if it would be refused)")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_verify, anonymous=True)

    p = actions.add_parser("import", help="import a bundle from the hub (admin only)")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_import)

    p = actions.add_parser("export", help="write this site's new data for the hub (signed, encrypted, verified)")
    p.add_argument("--channel", default="exports", choices=["exports"])
    p.add_argument("--to", type=Path, required=True, help="folder on the removable medium")
    p.set_defaults(handler=_export)

    p = actions.add_parser("ledger", help="every bundle seen (accepted, refused, exported)")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_ledger)

    trust = actions.add_parser("trust", help="the root of trust").add_subparsers(dest="trust_command", metavar="ACTION")
    p = trust.add_parser("show", help="installed root, fingerprints, keys, channel versions")
    p.set_defaults(handler=_trust_show, anonymous=True)
    p = trust.add_parser("install", help="install the hub's root.json (once; later roots come as truststore bundles)")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_trust_install)


def _keygen(ctx: CliContext, args) -> dict:
    from vital_desktop.services import accounts, exchange

    accounts.require(ctx.actor, "manage_trust")
    with ctx.store.read() as s:
        from vital_desktop.store.models import Setting

        row = s.get(Setting, exchange.SITE_ID_SETTING)
    if row is None:
        from vital_desktop.core.errors import ValidationError

        raise ValidationError("this store has no site id; run `vital init` first")
    created = exchange.ensure_site_identity(ctx.store, str(row.value))
    identity = exchange.site_identity(ctx.store)
    result = {**identity.to_dict(), "created": created}
    if args.out:
        args.out.write_text(json.dumps({"site_id": identity.site_id, "public_key": identity.public_key}, indent=2) + "\n")
        result["written"] = str(args.out)
    result["text"] = (f"site {identity.site_id}\nkey id {identity.key_id}\nfingerprint {identity.fingerprint}\n"
                      "Give the public key (or --out file) to the hub administrator and confirm the fingerprint "
                      "by phone.")
    return result


def _verify(ctx: CliContext, args) -> dict:
    from vital_desktop.bundles.errors import BundleRefused
    from vital_desktop.services import exchange

    report = exchange.verify_bundle(ctx.store, args.file)
    lines = [f"{args.file}: {report['outcome']}" + (f" ({report['code']}: {report['reason']})" if report["code"] else ""),
             (f"  channel {report['channel']}  epoch {report['epoch']}  sequence {report['sequence']}  "
              f"issuer {report['issuer']}"), f"  signers {', '.join(k[:16] for k in report['signers']) or '-'}"]
    lines += [f"  entry {e['id']:<12} {e['kind']:<16} {e['length']:>12} B  {e['name']}" for e in report["entries"]]
    lines += [f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['message']}" for c in report["checks"]]
    if report["outcome"] == "refused":
        # The explanation goes to stdout even though the exit status says "refused".
        print(json.dumps(report, default=str) if ctx.json else "\n".join(lines))
        raise BundleRefused(report["code"], report["reason"])
    report["text"] = "\n".join(lines)
    return report


def _import(ctx: CliContext, args) -> dict:
    from vital_desktop.services import exchange

    result = exchange.import_bundle(ctx.store, actor=ctx.actor, path=args.file, progress=ctx.progress("import"))
    out = result.to_dict()
    out["text"] = (f"{result.outcome}: {result.channel} sequence {result.sequence} ({result.bundle_id})\n"
                   + json.dumps(result.summary, default=str))
    return out


def _export(ctx: CliContext, args) -> dict:
    from vital_desktop.services import exchange

    result = exchange.export_bundle(ctx.store, actor=ctx.actor, to_dir=args.to, progress=ctx.progress("export"))
    out = result.to_dict()
    rows = ", ".join(f"{k} {v}" for k, v in result.rows.items())
    out["text"] = f"wrote and re-verified {result.path} (sequence {result.sequence}; {rows})"
    return out


def _ledger(ctx: CliContext, args) -> dict:
    from vital_desktop.services import exchange

    rows = exchange.ledger(ctx.store, limit=args.limit)
    text = "\n".join(f"{r['at']}  {r['outcome']:<16} {r['channel'] or '-':<10} seq {r['sequence'] or '-':<6} "
                     f"{r['code'] or ''} {r['reason'][:80]}" for r in rows) or "no bundles yet"
    return {"ledger": rows, "text": text}


def _trust_show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import exchange

    status = exchange.trust_status(ctx.store)
    root = status["root"]
    if root is None:
        text = f"no usable root of trust: {status['problem']}"
    else:
        text = (f"root v{root['version']} {root['name']} (expires {root['expires']})\n"
                + "\n".join(f"  root key fingerprint {f}" for f in status["fingerprints"]))
    return {**status, "text": text}


def _trust_install(ctx: CliContext, args) -> dict:
    from vital_desktop.services import exchange

    info = exchange.install_root_of_trust(ctx.store, args.file, actor=ctx.actor)
    return {**info.to_dict(), "text": (f"root v{info.version} {info.name} "
                                       f"{'installed' if info.installed else 'was already installed'}\n"
                                       + "\n".join(f"  fingerprint {f}" for f in info.fingerprints)
                                       + "\nConfirm these fingerprints with the hub by phone.")}
