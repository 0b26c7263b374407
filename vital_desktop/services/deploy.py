"""DEPLOY stage: which model version serves predictions here, and packages for other sites.

Activation is the registry's (`registry.activate_model`: one active model per kind, every
activation a `deployments` row). Rolling back re-activates the version that served before the
current one, found in that deployment history, so a rollback is itself an audited activation.

An airgap deployment package carries the model file, its card (in the bundle format's
``model_card`` schema), a snapshot of few-shot examples (only labels whose usage constraints
permit ``few_shot``: the same gates as every export), and a manifest listing each file's size
and SHA-256. The manifest is canonical JSON (`bundles.canonical`) signed by the site key as a
DSSE envelope (`bundles.envelope`), so the receiving side can check nothing was altered on the
stick. A package is never written unsigned (a site without its key gets an error), and
`verify_package` leaves every decision to `bundles.trust` (invariant 9): the signature on the
raw manifest bytes by a key scoped to deployment, before parsing; plain relative names; the
exact set of listed files; each file's size and hash; the model present and matching.
It is written to a temporary folder and renamed into place: no half-written package.
Signed hub→site ``models`` bundles remain the hub's job (the bundle format lets only the hub
publish on that channel); this package is what an engineer carries to the hub or to an
isolated gateway.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.bundles import trust
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import activation_check, registry
from vital_desktop.services.accounts import require
from vital_desktop.services.training import decide, label_status, lineage, resolve_model
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, Deployment, ModelRow, Sheet, SheetItem

PACKAGE_FORMAT = trust.DEPLOYMENT_FORMAT
MANIFEST_PAYLOAD_TYPE = trust.DEPLOYMENT_PAYLOAD_TYPE
DEFAULT_FEW_SHOT_PER_CLASS = 3


def activate(store: Store, *, actor: User, model: str, notes: str = "",
             even_if_worse: bool = False) -> tuple[registry.ModelInfo, Changes]:
    """Make `model` (``name@version``, name or id) the active model of its kind.

    A classifier that would replace the serving one is first compared with it on held-out
    labelled items (`activation_check`); one that is less accurate, beyond chance, is refused
    unless `even_if_worse`.
    """
    require(actor, "deploy")
    if not even_if_worse:
        check = activation_check.compare_with_active(store, model=model)
        if check is not None and check.worse:
            raise ValidationError(f"{check.sentence()} Not activated: label more items and retrain, or activate it "
                                  "anyway (vital deploy activate ... --even-if-worse).", details=check.to_dict())
    return registry.activate_model(store, actor=actor, ref=model, notes=notes)


def rollback(store: Store, *, actor: User, name: str | None = None) -> tuple[registry.ModelInfo, Changes]:
    """Re-activate the version that was active before the current one (of model `name`, or of
    whichever classifier is active now)."""
    require(actor, "deploy")
    with store.read() as s:
        if name is None:
            current = s.scalar(sa.select(ModelRow).where(ModelRow.kind == registry.KIND_ONNX,
                                                         ModelRow.status == registry.STATUS_ACTIVE))
            if current is None:
                raise NotFoundError("no active classifier to roll back")
        else:
            current = s.scalar(sa.select(ModelRow).where(ModelRow.name == name,
                                                         ModelRow.status == registry.STATUS_ACTIVE))
            if current is None:
                raise NotFoundError(f"no version of {name!r} is active, so there is nothing to roll back")
        history = s.execute(
            sa.select(Deployment.model_id).join(ModelRow, ModelRow.id == Deployment.model_id)
            .where(ModelRow.kind == current.kind)
            .order_by(Deployment.activated_at.desc())
        ).scalars().all()
        previous = next((model_id for model_id in history if model_id != current.id), None)
        if previous is None:
            raise ValidationError(f"{current.name}@{current.version} is the only version ever deployed; "
                                  "there is no earlier one to roll back to")
        target = s.get(ModelRow, previous)
        assert target is not None
        ref, from_ref = f"{target.name}@{target.version}", f"{current.name}@{current.version}"
    return registry.activate_model(store, actor=actor, ref=ref, notes=f"rollback from {from_ref}")


def history(store: Store, *, model: str | None = None) -> list[dict[str, Any]]:
    """Activation history, newest first (what served predictions, when, and who decided)."""
    return registry.deployments(store, model=model)


# --- airgap deployment package -------------------------------------------------------------------


@dataclass(frozen=True)
class PackageResult:
    path: str
    model: str
    files: dict[str, dict[str, Any]]
    few_shot_examples: int
    few_shot_excluded: dict[str, int]
    signed_by: str | None
    manifest_sha256: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _integers_only(value: Any) -> Any:
    """The canonical manifest holds no floats (bundles.canonical refuses them): keep numbers as text."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {k: _integers_only(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integers_only(v) for v in value]
    return value


def _few_shot_snapshot(store: Store, model_ref: str, per_class: int) -> tuple[list[dict], dict[str, int]]:
    """Up to `per_class` labelled examples per class from the model's training sheet(s), only
    those whose constraints permit ``few_shot`` (export-controlled data stays home)."""
    info = lineage(store, model=model_ref)
    sheet_ids = {src.sheet_id for src in info.sources if src.sheet_id}
    examples: list[dict] = []
    excluded: dict[str, int] = {}
    counts: dict[str, int] = {}
    from vital_desktop.services import label_types
    from vital_desktop.services.site import export_gate

    # The examples are labels of the label type the model learnt, grouped by its class field.
    card = registry.get_model(store, model_ref).card or {}
    type_name = str(card.get("label_type") or "")
    with store.read() as s:
        label_type = label_types.get_label_type(s, type_name) if type_name else None
        class_field = label_type.class_field if label_type is not None else None
        # Governance on the way out: PHI / EXPORT_CONTROLLED examples stay home without a site policy.
        gate = export_gate(s, use="few_shot", destination="deployment")
        for sheet_id in sorted(sheet_ids):
            sheet = s.get(Sheet, sheet_id)
            sheet_tags = set((sheet.classification or ()) if sheet else ())
            items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_id))}
            rows = s.scalars(sa.select(CanonicalLabel).where(
                CanonicalLabel.sheet_id == sheet_id, CanonicalLabel.label_type == type_name
            ).order_by(CanonicalLabel.item_ref))
            for label in rows:
                decision = decide(label_status(label.review_state), label.allowed_uses, label.prohibited_uses, "few_shot")
                reason = decision.reason if not decision.passes else gate.refusal(
                    sheet_tags | set(label.data_classification or ()))
                if reason is not None or not decision.passes:
                    reason = reason or "not permitted"
                    excluded[reason] = excluded.get(reason, 0) + 1
                    continue
                cls = str((label.label_data or {}).get(class_field or "", ""))
                if counts.get(cls, 0) >= per_class:
                    continue
                counts[cls] = counts.get(cls, 0) + 1
                item = items.get(label.item_ref)
                examples.append({
                    "sheet": sheet.name if sheet else sheet_id, "item_ref": label.item_ref,
                    "image_path": item.image_path if item else None, "label": label.label_data,
                    "label_id": label.id, "label_version": label.version,
                    "metadata": item.item_metadata if item else {},
                })
    return examples, excluded


def _intended_use(card: dict[str, Any], classes: list[str]) -> str:
    """What the package's model card says the model is for, from its own label type and classes."""
    label_type = card.get("label_type")
    what = f"the {label_type} label type" if label_type else "its classes"
    return f"Classifying images into {what} ({', '.join(map(str, classes))}) at the site that trained it."


def build_package(
    store: Store,
    *,
    actor: User,
    model: str,
    out_dir: Path | str,
    few_shot_per_class: int = DEFAULT_FEW_SHOT_PER_CLASS,
    include_images: bool = True,
) -> tuple[PackageResult, Changes]:
    """Write the airgap deployment package of `model` into a new folder under `out_dir`."""
    from vital_desktop.services import exchange

    require(actor, "deploy")
    key = exchange.site_key(store)  # never an unsigned package: no key, no package
    with store.read() as s:
        row = resolve_model(s, model)
        ref = f"{row.name}@{row.version}"
        model_path, classes, card, kind = Path(row.path), list(row.classes or []), dict(row.card or {}), row.kind
        image_roots = {r.id: r.image_root for r in s.scalars(sa.select(Sheet))}
        sheet_ids = {r.name: r.id for r in s.scalars(sa.select(Sheet))}
    if kind != registry.KIND_ONNX:
        raise ValidationError(f"{ref} is a {kind} model; deployment packages carry ONNX classifiers")
    if not model_path.is_file():
        raise ValidationError(f"the file of {ref} is missing: {model_path}")
    examples, excluded = _few_shot_snapshot(store, ref, few_shot_per_class)
    out_dir = Path(out_dir).expanduser()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise ValidationError(f"cannot write to {out_dir}: permission denied")
    final = out_dir / f"{row.name}-v{row.version}-deployment"
    if final.exists():
        raise ValidationError(f"{final} already exists; remove it or choose another folder")
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=out_dir))
    try:
        shutil.copyfile(model_path, work / "model.onnx")
        model_card = {
            "name": row.name, "version": int(row.version), "kind": "onnx", "classes": classes,
            "description": str(card.get("estimator") or "image classifier"),
            "intended_use": str(card.get("intended_use") or _intended_use(card, classes)),
            "limitations": "Trained on one site's labelled images; see metrics and drift baseline.",
            "metrics": card.get("metrics", {}), "training_data": json.dumps(card.get("lineage", {}), sort_keys=True),
            "baseline": card.get("baseline"),
        }
        (work / "model_card.json").write_text(json.dumps(model_card, indent=2, sort_keys=True), "utf-8")
        if include_images:
            (work / "few_shot_images").mkdir()
            for index, example in enumerate(examples):
                root = image_roots.get(sheet_ids.get(example["sheet"], ""))
                if root and example["image_path"]:
                    source = Path(root) / example["image_path"]
                    if source.is_file():
                        # A plain file name whatever the item reference holds (no '/', '..', '\\').
                        safe = re.sub(r"[^A-Za-z0-9._-]", "_", str(example["item_ref"]))[:80].strip(".") or "item"
                        suffix = re.sub(r"[^A-Za-z0-9.]", "", source.suffix)[:10]
                        target = work / "few_shot_images" / f"{index:04d}-{safe}{suffix}"
                        shutil.copyfile(source, target)
                        example["packaged_image"] = f"few_shot_images/{target.name}"
        (work / "few_shot.jsonl").write_text(
            "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in examples), "utf-8")
        files = {
            p.relative_to(work).as_posix(): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(work.rglob("*")) if p.is_file()
        }
        if files["model.onnx"]["sha256"] != row.file_sha256:
            raise ValidationError(f"the file of {ref} ({model_path}) changed since it was registered "
                                  "(its SHA-256 differs); register it again")
        manifest = {
            "format": PACKAGE_FORMAT, "format_version": 1, "model": {"name": row.name, "version": int(row.version),
                                                                    "kind": "onnx", "sha256": row.file_sha256},
            "classes": classes, "created_at": iso(utcnow()), "created_by": actor.username,
            "few_shot": {"examples": len(examples), "excluded": excluded, "use": "few_shot"},
            "files": files,
        }
        from vital_desktop.bundles import canonical
        from vital_desktop.bundles.envelope import encode_json_envelope, sign

        manifest_bytes = canonical.dumps(_integers_only(manifest))
        trust.parse_deployment_manifest(manifest_bytes)  # what we write is what verify accepts
        (work / "manifest.json").write_bytes(manifest_bytes)
        (work / "manifest.sig.json").write_bytes(
            encode_json_envelope(MANIFEST_PAYLOAD_TYPE, manifest_bytes, sign([key], MANIFEST_PAYLOAD_TYPE, manifest_bytes)))
        signed_by = key.key_id
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    with store.session() as s:
        audit.record(s, actor, "deploy.package", ref, {"path": str(final), "manifest_sha256": manifest_sha,
                                                       "few_shot": len(examples)})
    return PackageResult(str(final), ref, files, len(examples), excluded, signed_by, manifest_sha), Changes()


def trusted_keys(store: Store, *, now: int | None = None) -> dict[str, bytes]:
    """Keys this site accepts on deployment packages (`trust.deployment_keys`): its own site key
    and keys scoped to the deployment channel, not revoked, not expired."""
    import time

    from vital_desktop.store.models import TrustKey

    with store.read() as s:
        records = [trust.KeyRecord(k.key_id, bytes.fromhex(k.public_key), k.role, frozenset(k.channels or ()),
                                   None if k.expires_at is None else int(k.expires_at.replace(tzinfo=dt.UTC).timestamp()),
                                   bool(k.revoked))
                   for k in s.scalars(sa.select(TrustKey))]
    return trust.deployment_keys(records, int(time.time()) if now is None else now)


_MAX_CONTROL_BYTES = 1024 * 1024


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    if path.is_symlink() or not path.is_file():
        raise BundleRefused("package_layout", f"deployment package: {what} is missing (or not a plain file)")
    with path.open("rb") as handle:
        data = handle.read(cap + 1)
    if len(data) > cap:
        raise BundleRefused("package_layout", f"deployment package: {what} is larger than {cap} bytes")
    return data


def _hash_capped(path: Path, limit: int) -> tuple[int, str]:
    """Size and SHA-256 of at most `limit` + 1 bytes (a file longer than declared fails, unread)."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while size <= limit:
            chunk = handle.read(min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def verify_package(path: Path | str, *, public_keys: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Check a deployment package: ``{"ok", "problems", "signed_by", "model"}``, never a traceback.

    `public_keys` (key id -> raw public key; see `trusted_keys`) are the keys accepted; with
    none, nothing verifies. Every decision is `bundles.trust`'s (invariant 9)."""
    folder = Path(path)
    signed_by: list[str] | None = None
    model = None
    try:
        if not folder.is_dir():
            raise BundleRefused("package_layout", f"deployment package: {folder} is not a folder")
        manifest_bytes = _read_capped(folder / "manifest.json", _MAX_CONTROL_BYTES, "manifest.json")
        envelope = _read_capped(folder / "manifest.sig.json", _MAX_CONTROL_BYTES, "manifest.sig.json (the package "
                                                                                  "is not signed)")
        signed_by = sorted(trust.verify_deployment_signature(envelope, manifest_bytes, public_keys or {}))
        manifest = trust.parse_deployment_manifest(manifest_bytes)
        model = dict(manifest.model)
        present, links = set(), set()
        for item in folder.rglob("*"):
            name = item.relative_to(folder).as_posix()
            if item.is_symlink():
                links.add(name)
            elif item.is_file():
                present.add(name)
            elif not item.is_dir():
                links.add(name)  # devices, sockets, fifos: not package files either
        trust.decide_package_files(manifest, present, links)
        for entry in manifest.files:
            size, digest = _hash_capped(folder / entry.name, entry.size)
            trust.decide_package_file_hash(entry, size, digest)
    except BundleRefused as exc:
        return {"ok": False, "problems": [exc.message], "code": exc.code, "signed_by": signed_by, "model": model}
    except OSError as exc:
        problem = f"deployment package: cannot read {exc.filename or folder}: {exc.strerror or exc}"
        return {"ok": False, "problems": [problem], "code": "io", "signed_by": signed_by, "model": model}
    return {"ok": True, "problems": [], "code": "", "signed_by": signed_by, "model": model}
