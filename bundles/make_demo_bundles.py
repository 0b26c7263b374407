"""Regenerate the DEMO-ONLY hub, its root of trust and the demo bundles in `bundles/demo/`.

    python bundles/make_demo_bundles.py

Creates a fresh demo hub (new keys every run: its private keys are in the repository on
purpose, so NOTHING but the demo site may ever trust this root), then builds, for the site
`demo-site`:

    01-model-update.vbundle        a tiny ONNX classifier + model card (models channel)
    02-template-update.vbundle     a published prompt template (templates channel)
    03-truststore-rotation.vbundle root v2: a new models key, the old templates key revoked

and copies the JSON Schemas from the package to `bundles/schemas/`.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from vital_desktop.bundles import canonical, samples
from vital_desktop.bundles.hub import HubDir
from vital_desktop.bundles.keys import fingerprint
from vital_desktop.bundles.writer import PayloadSource

DEMO_SITE = "demo-site"
DEMO_NAME = "VITAL DEMO hub - DEMO ONLY - never trust outside the demo site"
DEMO_CLASSES = ["inclusion", "crack", "delamination", "surface_contamination", "none"]
LIFETIME = 5 * 365 * 86400


def main() -> None:
    demo = HERE / "demo"
    if demo.exists():
        shutil.rmtree(demo)
    demo.mkdir()
    now = int(time.time())
    hub = HubDir.create(demo / "hub", name=DEMO_NAME, now=now)
    shutil.copyfile(demo / "hub" / "roots" / "root-v1.json", demo / "root.json")

    model = samples.tiny_classifier_onnx(DEMO_CLASSES, seed=2)
    card = samples.model_card("defect-classifier", 2, DEMO_CLASSES)
    card["description"] = "Hub update of the demo defect classifier (tiny onnx.helper graph, DEMO ONLY)."
    hub.build(demo / "01-model-update.vbundle", channel="models", sites=[DEMO_SITE], now=now, lifetime=LIFETIME,
              sources=[PayloadSource("model", "onnx_model", "defect-classifier-v2.onnx", data=model,
                                     meta={"card": "card"}),
                       PayloadSource("card", "model_card", "defect-classifier-v2.card.json",
                                     data=canonical.dumps(card))],
              notes="DEMO ONLY: model update")
    template = samples.template_document(name="Hub Defect Triage", version="1.0.0")
    hub.build(demo / "02-template-update.vbundle", channel="templates", sites=[DEMO_SITE], now=now + 1,
              lifetime=LIFETIME, sources=[PayloadSource("template", "template", "hub-defect-triage-1.0.0.json",
                                                        data=canonical.dumps(template))],
              notes="DEMO ONLY: template update")
    templates_key = hub.channel_keys("templates")[0].key_id
    hub.rotate(demo / "03-truststore-rotation.vbundle", sites=[DEMO_SITE], revoke=[templates_key],
               new_channel_keys={"models": 1}, now=now + 2)

    (HERE / "schemas").mkdir(exist_ok=True)
    for schema in (HERE.parent / "vital_desktop" / "bundles" / "schemas").glob("*.json"):
        shutil.copyfile(schema, HERE / "schemas" / schema.name)

    root = hub.root()
    prints = [fingerprint(p) for _, p in sorted(hub.root(now).root_keys.items())]
    (demo / "README.md").write_text(
        "# DEMO ONLY\n\nThe private keys in `hub/keys/` are public (they are in the repository). Only the demo "
        "site (`vital init --demo`) may trust `root.json`. Regenerate with `python bundles/make_demo_bundles.py`.\n\n"
        "Root v1 fingerprints (what `vital bundle trust install bundles/demo/root.json` shows):\n\n"
        + "".join(f"- `{p}`\n" for p in prints)
        + f"\nAfter `03-truststore-rotation.vbundle` the site trusts root v{root.version}.\n",
        "utf-8",
    )
    print(json.dumps({"demo": str(demo), "fingerprints": prints,
                      "bundles": sorted(p.name for p in demo.glob("*.vbundle"))}, indent=2))


if __name__ == "__main__":
    main()
