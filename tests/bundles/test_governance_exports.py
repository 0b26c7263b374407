"""No byte of a PHI-tagged label (data, notes, the metadata its prompts carry) leaves the site
through any way out -- hub bundle, label export in every format, training export -- unless an
administrator's audited export policy allows that tag to that destination."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from PIL import Image

from tests.bundles.test_exchange import _hub_for
from vital_desktop.bundles.simulator import NOW
from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.services import exchange, generate, labels, sheets, site, templates, training

TEMPLATE = "Defect Classification - Visual Inspection"


def _sheet(store, actor, root: Path, name: str, marker: str, classification: str) -> None:
    images = root / "images"
    images.mkdir(parents=True)
    rows = []
    for i in range(4):
        Image.new("L", (16, 16), color=40 * i).save(images / f"{i}.png")
        rows.append({"inspection_id": f"{marker}-ITEM-{i}", "image_path": f"{i}.png",
                     "crystal_batch_id": f"{marker}-BATCH-{i}", "detector_serial": f"{marker}-SERIAL"})
    with open(root / "meta.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sheets.import_sheet(store, actor=actor, name=name, metadata_path=root / "meta.csv", key_column="inspection_id",
                        image_root=images, image_column="image_path", classification=classification)


@pytest.fixture
def governed_site(bundle_site, tmp_path):
    store = bundle_site.store
    engineer, inspector = bundle_site.small.user("engineer"), bundle_site.small.user("engineer")
    _sheet(store, engineer, tmp_path / "clinic", "Clinic", "PHIMARK", "PHI")
    _sheet(store, engineer, tmp_path / "plant", "Plant", "OKMARK", "CONFIDENTIAL")
    for sheet, marker in (("Clinic", "PHIMARK"), ("Plant", "OKMARK")):
        for i in range(4):
            labels.set_label(store, actor=inspector, sheet=sheet, item_ref=f"{marker}-ITEM-{i}",
                             label_type="root_cause", label_data={"category": "handling",
                                                                  "explanation": f"{marker}-DATA-{i}"},
                             notes=f"{marker}-NOTES-{i}")
            labels.set_label(store, actor=inspector, sheet=sheet, item_ref=f"{marker}-ITEM-{i}",
                             label_type="classification", label_data={"defect_type": "crack"},
                             notes=f"{marker}-NOTES-C{i}")
            labels.set_label(store, actor=inspector, sheet=sheet, item_ref=f"{marker}-ITEM-{i}",
                             label_type="localization", notes=f"{marker}-NOTES-L{i}",
                             label_data={"boxes": [{"label": "crack", "x": 1, "y": 1, "width": 4, "height": 4}]})
    return bundle_site


def _bytes_under(path: Path) -> bytes:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return b"".join(p.read_bytes() for p in files)


def test_no_phi_byte_in_any_export(governed_site, tmp_path) -> None:
    site_ = governed_site
    store, admin, engineer = site_.store, site_.admin, site_.small.user("engineer")
    outputs: dict[str, bytes] = {}
    # 1. site -> hub bundle (decrypted at the hub: what the hub would see).
    result = exchange.export_bundle(store, actor=admin, to_dir=tmp_path / "stick", now=NOW + 600)
    assert result.withheld, result
    hub = _hub_for(site_, tmp_path)
    identity = exchange.site_identity(store)
    hub.register_site(identity.site_id, identity.public_key)
    ingested = hub.ingest(Path(result.path), tmp_path / "landing", now=NOW + 700)
    outputs["hub"] = b"".join(Path(f).read_bytes() for f in ingested.files)
    outputs["hub-file"] = Path(result.path).read_bytes()
    # 2. label export, every registered format, for a use the PHI tag itself does not prohibit.
    from vital_desktop.services.formats import FORMATS

    written = []
    for fmt, entry in FORMATS.items():
        if entry.write is None:
            continue
        out = tmp_path / f"labels-{fmt}.out"
        label_type = None if not entry.kinds else "localization" if "boxes" in entry.kinds else "classification"
        labels.export_labels(store, actor=engineer, out=out, fmt=fmt, use="testing", label_type=label_type)
        outputs[f"labels-{fmt}"] = _bytes_under(out)
        written.append(fmt)
    assert {"csv", "jsonl", "parquet", "coco"} <= set(written)
    # 3. training export (testing is not prohibited by the PHI tag itself: the export gate keeps it home).
    templates.load_library(store, actor=engineer)
    for sheet in ("Clinic", "Plant"):
        generate.generate_training_sheet(store, actor=engineer, sheet=sheet, template=TEMPLATE, name=f"QA {sheet}")
        try:
            training.export_training(store, actor=engineer, training_sheet=f"QA {sheet}", use="testing",
                                     out_dir=tmp_path / f"train-{sheet}")
        except ValidationError as exc:
            assert sheet == "Clinic", exc.message  # nothing may leave from the PHI sheet
        if (tmp_path / f"train-{sheet}").exists():
            outputs[f"training-{sheet}"] = _bytes_under(tmp_path / f"train-{sheet}")
    everything = b"".join(outputs.values())
    assert b"PHIMARK" not in everything, [k for k, v in outputs.items() if b"PHIMARK" in v]
    # The control: the same content from the CONFIDENTIAL sheet does leave (the test can fail).
    for key in ("hub", "labels-csv", "labels-jsonl", "labels-parquet", "labels-coco", "training-Plant"):
        assert b"OKMARK" in outputs[key], key


def test_an_admin_policy_lets_phi_leave_for_one_destination_only(governed_site, tmp_path) -> None:
    store, admin, engineer = governed_site.store, governed_site.admin, governed_site.small.user("engineer")
    with pytest.raises(PermissionDenied):
        site.set_export_permission(store, actor=engineer, tag="PHI", destination="file", allow=True, reason="x")
    with pytest.raises(ValidationError, match="why"):
        site.set_export_permission(store, actor=admin, tag="PHI", destination="file", allow=True)
    site.set_export_permission(store, actor=admin, tag="PHI", destination="file", allow=True,
                               reason="IRB protocol 17 data transfer")
    assert site.audit_log(store, limit=1)[0]["action"] == "policy.allow"
    out = tmp_path / "labels.jsonl"
    labels.export_labels(store, actor=engineer, out=out, fmt="jsonl", use="testing")
    assert b"PHIMARK-NOTES" in out.read_bytes()
    result = exchange.export_bundle(store, actor=admin, to_dir=tmp_path / "stick", now=NOW + 600)
    assert any("PHI" in reason for reason in result.withheld)  # still not to the hub
    site.set_export_permission(store, actor=admin, tag="PHI", destination="file", allow=False)
    labels.export_labels(store, actor=engineer, out=out, fmt="jsonl", use="testing")
    assert b"PHIMARK" not in out.read_bytes()


def test_a_hub_config_bundle_cannot_set_the_export_policy() -> None:
    from vital_desktop.bundles.errors import BundleRefused
    from vital_desktop.bundles.manifest import validate_schema
    from vital_desktop.core.governance import POLICY_SETTING

    with pytest.raises(BundleRefused):
        validate_schema({POLICY_SETTING: {"allow": [{"tag": "PHI", "destination": "hub"}]}}, "config.schema.json",
                        "content")
