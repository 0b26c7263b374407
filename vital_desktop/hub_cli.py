"""`vital-hub`: the hub's side of bundle exchange, so tests and demos can play the hub.

    vital-hub --hub DIR keygen --name "Central hub"
    vital-hub --hub DIR build --channel models --model m.onnx --card card.json --site site-a --out b.vbundle
    vital-hub --hub DIR rotate --revoke KEYID --new-key models --site site-a --out rotation.vbundle
    vital-hub --hub DIR register-site --identity site-a.json
    vital-hub --hub DIR ingest export.vbundle --out DIR
    vital-hub --hub DIR verify FILE
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.core.errors import VitalError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vital-hub", description="VITAL hub tools: keys, update bundles, ingest.")
    parser.add_argument("--hub", type=Path, required=True, help="the hub folder (keys, root, state)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("keygen", help="create a hub: root keys, channel keys, encryption key, root v1")
    p.add_argument("--name", required=True)
    p.add_argument("--root-keys", type=int, default=3)
    p.add_argument("--threshold", type=int, default=2)
    p.set_defaults(handler=_keygen)

    p = sub.add_parser("build", help="sign an update bundle for one or more sites")
    p.add_argument("--channel", required=True, choices=["models", "templates", "labels", "config", "taxonomy", "app"])
    p.add_argument("--model", type=Path, action="append", default=[], help="ONNX or GGUF file (with --card)")
    p.add_argument("--card", type=Path, action="append", default=[], help="model card JSON, one per --model")
    p.add_argument("--template", type=Path, action="append", default=[], help="template JSON file")
    p.add_argument("--label-type", type=Path, action="append", default=[],
                   help="label type JSON file (name, version, kind, classes…; taxonomy channel)")
    p.add_argument("--labels", type=Path, action="append", default=[], help="canonical labels Parquet file")
    p.add_argument("--config", type=Path, action="append", default=[], help="settings JSON (keys hub.*)")
    p.add_argument("--release", type=Path, default=None,
                   help="release archive vital-desktop-VERSION-PLATFORM.tar.gz (app channel; its .cdx.json SBOM "
                        "beside it travels too)")
    p.add_argument("--site", action="append", required=True, help="target site id (repeat)")
    p.add_argument("--lifetime-days", type=int, default=90)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_build)

    p = sub.add_parser("rotate", help="new root version (revoke and add channel keys) as a truststore bundle")
    p.add_argument("--revoke", action="append", default=[], help="key id to revoke")
    p.add_argument("--new-key", action="append", default=[], help="channel that gets a new key")
    p.add_argument("--site", action="append", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_rotate)

    p = sub.add_parser("register-site", help="trust a site's export key (from `vital bundle keygen --out`)")
    p.add_argument("--identity", type=Path, required=True)
    p.set_defaults(handler=_register)

    p = sub.add_parser("ingest", help="verify, decrypt and dedupe a site export into Parquet files")
    p.add_argument("file", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(handler=_ingest)

    p = sub.add_parser("verify", help="check a bundle against this hub's root (update) or site keys (export)")
    p.add_argument("file", type=Path)
    p.set_defaults(handler=_verify)
    return parser


def _hub(args: argparse.Namespace) -> Any:
    from vital_desktop.bundles.hub import HubDir

    if not (args.hub / "root.json").exists():
        raise VitalError(f"{args.hub} is not a hub folder; run `vital-hub --hub {args.hub} keygen --name NAME`")
    return HubDir(args.hub)


def _keygen(args: argparse.Namespace) -> dict[str, Any]:
    from vital_desktop.bundles.hub import HubDir
    from vital_desktop.bundles.keys import fingerprint

    hub = HubDir.create(args.hub, name=args.name, root_key_count=args.root_keys, root_threshold=args.threshold)
    root = hub.root()
    prints = [fingerprint(p) for _, p in sorted(root.root_keys.items())]
    return {"hub": str(args.hub), "root": str(args.hub / "root.json"), "fingerprints": prints,
            "text": f"hub created in {args.hub}; ship {args.hub / 'root.json'} with the installer\n"
                    + "\n".join(f"  root key fingerprint {f}" for f in prints)}


def _build(args: argparse.Namespace) -> dict[str, Any]:
    from vital_desktop.bundles import canonical
    from vital_desktop.bundles.writer import PayloadSource

    hub = _hub(args)
    sources: list[PayloadSource] = []
    if len(args.model) != len(args.card):
        raise VitalError("give one --card per --model")
    for index, (model, card) in enumerate(zip(args.model, args.card, strict=False)):
        kind = "gguf_model" if model.suffix.lower() == ".gguf" else "onnx_model"
        card_doc = json.loads(card.read_text("utf-8"))
        sources.append(PayloadSource(f"model-{index}", kind, model.name, path=model, meta={"card": f"card-{index}"}))
        sources.append(PayloadSource(f"card-{index}", "model_card", f"{model.stem}.card.json",
                                     data=canonical.dumps(card_doc)))
    for index, template in enumerate(args.template):
        sources.append(PayloadSource(f"template-{index}", "template", template.name,
                                     data=canonical.dumps(json.loads(template.read_text("utf-8")))))
    for index, label_type in enumerate(args.label_type):
        sources.append(PayloadSource(f"label-type-{index}", "label_type", label_type.name,
                                     data=canonical.dumps(json.loads(label_type.read_text("utf-8")))))
    for index, labels in enumerate(args.labels):
        sources.append(PayloadSource(f"labels-{index}", "canonical_labels", labels.name, path=labels))
    for index, config in enumerate(args.config):
        sources.append(PayloadSource(f"config-{index}", "config", config.name,
                                     data=canonical.dumps(json.loads(config.read_text("utf-8")))))
    if args.release is not None:
        from vital_desktop.bundles.app_release import release_sources

        sources.extend(release_sources(args.release))
    if not sources:
        raise VitalError("nothing to put in the bundle: give --model/--card, --template, --labels, --config or --release")
    written = hub.build(args.out, channel=args.channel, sources=sources, sites=args.site,
                        lifetime=args.lifetime_days * 86400)
    return {"path": str(written.path), "bundle_id": written.bundle_id, "sequence": written.manifest["sequence"],
            "size": written.size, "text": f"wrote {written.path} ({args.channel} sequence "
                                           f"{written.manifest['sequence']}, {written.size} bytes)"}


def _rotate(args: argparse.Namespace) -> dict[str, Any]:
    hub = _hub(args)
    written = hub.rotate(args.out, sites=args.site, revoke=args.revoke,
                         new_channel_keys={c: args.new_key.count(c) for c in set(args.new_key)})
    version = hub.root().version
    return {"path": str(written.path), "root_version": version,
            "text": f"root v{version} written; truststore bundle {written.path}"}


def _register(args: argparse.Namespace) -> dict[str, Any]:
    hub = _hub(args)
    identity = json.loads(args.identity.read_text("utf-8"))
    hub.register_site(str(identity["site_id"]), str(identity["public_key"]))
    from vital_desktop.bundles.keys import fingerprint, public_from_hex

    text = fingerprint(public_from_hex(identity["public_key"]))
    return {"site_id": identity["site_id"], "fingerprint": text,
            "text": f"registered site {identity['site_id']} (fingerprint {text}; confirm it with the site)"}


def _ingest(args: argparse.Namespace) -> dict[str, Any]:
    hub = _hub(args)
    result = hub.ingest(args.file, args.out)
    out = result.to_dict()
    out["text"] = f"ingested {result.site_id} sequence {result.sequence}:\n" + "\n".join(f"  {f}" for f in result.files)
    return out


def _verify(args: argparse.Namespace) -> dict[str, Any]:
    from vital_desktop.bundles.pipeline import open_export, open_signed
    from vital_desktop.bundles.reader import read_raw

    hub = _hub(args)
    raw = read_raw(args.file)
    try:
        signed = open_signed(args.file, hub.root())
        manifest, signers = signed.manifest, sorted(signed.signers)
    except BundleRefused as first:
        if first.code not in ("unknown_key", "signature"):
            raise
        _, manifest, sites = open_export(args.file, hub.site_keys())
        signers = sorted(sites)
    entries = [e.to_dict() for e in manifest.entries]
    return {"channel": manifest.channel, "sequence": manifest.sequence, "issuer": manifest.issuer,
            "signers": signers, "entries": entries, "signatures": len(raw.signatures),
            "text": f"{args.file}: signatures verify ({manifest.channel} sequence {manifest.sequence}, "
                    f"{len(entries)} entries, signed by {', '.join(s[:16] for s in signers)})"}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        result = args.handler(args)
    except VitalError as exc:
        print(f"vital-hub: {exc.message}", file=sys.stderr)
        if args.json:
            print(json.dumps(exc.to_dict(), default=str), file=sys.stderr)
        return exc.exit_code
    if args.json:
        result.pop("text", None)
        print(json.dumps(result, default=str))
    else:
        print(result.get("text") or json.dumps(result, indent=2, default=str))
    return 0




def entry() -> None:
    """Console-script entry point: `main()`, then a quiet exit (see core.process)."""
    from vital_desktop.core.process import run_and_exit

    run_and_exit(main)


if __name__ == "__main__":
    entry()
