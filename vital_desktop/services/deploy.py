"""DEPLOY stage: which model version serves predictions here, and packages for other sites.

Activation is the registry's (`registry.activate_model`: one active model per kind, every
activation a `deployments` row). Rolling back re-activates the version that served before the
current one, found in that deployment history, so a rollback is itself an audited activation.

An airgap deployment package carries the model file, its card (in the bundle format's
``model_card`` schema), a snapshot of few-shot examples (only labels whose usage constraints
permit ``few_shot``: the same gates as every export), and a manifest listing each file's size
and SHA-256. The manifest is canonical JSON (`bundles.canonical`) signed by the site key as a
DSSE envelope (`bundles.envelope`), so the receiving side can check nothing was altered on the
stick. It is written to a temporary folder and renamed into place: no half-written package.
Signed hub→site ``models`` bundles remain the hub's job (the bundle format lets only the hub
publish on that channel); this package is what an engineer carries to the hub or to an
isolated gateway.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import registry
from vital_desktop.services.accounts import require
from vital_desktop.services.training import decide, label_status, lineage, resolve_model
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import CanonicalLabel, Deployment, ModelRow, Sheet, SheetItem

PACKAGE_FORMAT = "vital-deployment-package"
MANIFEST_PAYLOAD_TYPE = "application/vnd.vital.deployment-manifest+json;version=1"
DEFAULT_FEW_SHOT_PER_CLASS = 3


def activate(store: Store, *, actor: User, model: str, notes: str = "") -> tuple[registry.ModelInfo, Changes]:
    """Make `model` (``name@version``, name or id) the active model of its kind."""
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
    with store.read() as s:
        for sheet_id in sorted(sheet_ids):
            sheet = s.get(Sheet, sheet_id)
            items = {r.item_ref: r for r in s.scalars(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_id))}
            rows = s.scalars(sa.select(CanonicalLabel).where(
                CanonicalLabel.sheet_id == sheet_id, CanonicalLabel.label_type == "classification"
            ).order_by(CanonicalLabel.item_ref))
            for label in rows:
                decision = decide(label_status(label.review_state), label.allowed_uses, label.prohibited_uses, "few_shot")
                if not decision.passes:
                    excluded[decision.reason or "not permitted"] = excluded.get(decision.reason or "not permitted", 0) + 1
                    continue
                cls = str((label.label_data or {}).get("defect_type"))
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
    require(actor, "deploy")
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
            "intended_use": "Defect classification of scintillator crystal inspection images at VITAL sites.",
            "limitations": "Trained on one site's labelled images; see metrics and drift baseline.",
            "metrics": card.get("metrics", {}), "training_data": json.dumps(card.get("lineage", {}), sort_keys=True),
            "baseline": card.get("baseline"),
        }
        (work / "model_card.json").write_text(json.dumps(model_card, indent=2, sort_keys=True), "utf-8")
        if include_images:
            (work / "few_shot_images").mkdir()
            for example in examples:
                root = image_roots.get(sheet_ids.get(example["sheet"], ""))
                if root and example["image_path"]:
                    source = Path(root) / example["image_path"]
                    if source.is_file():
                        target = work / "few_shot_images" / f"{example['item_ref']}{source.suffix}"
                        shutil.copyfile(source, target)
                        example["packaged_image"] = f"few_shot_images/{target.name}"
        (work / "few_shot.jsonl").write_text(
            "".join(json.dumps(e, sort_keys=True, ensure_ascii=False) + "\n" for e in examples), "utf-8")
        files = {
            str(p.relative_to(work)): {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in sorted(work.rglob("*")) if p.is_file()
        }
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
        (work / "manifest.json").write_bytes(manifest_bytes)
        signed_by = None
        try:
            from vital_desktop.services import exchange

            key = exchange.site_key(store)
            (work / "manifest.sig.json").write_bytes(
                encode_json_envelope(MANIFEST_PAYLOAD_TYPE, manifest_bytes, sign([key], MANIFEST_PAYLOAD_TYPE, manifest_bytes)))
            signed_by = key.key_id
        except ValidationError:
            signed_by = None  # a site without a key yet still gets the hashed manifest
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    with store.session() as s:
        audit.record(s, actor, "deploy.package", ref, {"path": str(final), "manifest_sha256": manifest_sha,
                                                       "few_shot": len(examples)})
    return PackageResult(str(final), ref, files, len(examples), excluded, signed_by, manifest_sha), Changes()


def trusted_keys(store: Store) -> dict[str, bytes]:
    """Public keys this site trusts (its own site key among them), by key id."""
    from vital_desktop.store.models import TrustKey

    with store.read() as s:
        return {k.key_id: bytes.fromhex(k.public_key) for k in s.scalars(sa.select(TrustKey).where(TrustKey.revoked.is_(False)))}


def verify_package(path: Path | str, *, public_keys: dict[str, bytes] | None = None) -> dict[str, Any]:
    """Check every file of a package against its manifest, and the manifest's Ed25519 signature
    against `public_keys` (key id -> raw public key) when given."""
    folder = Path(path)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise ValidationError(f"{folder} is not a deployment package (no manifest.json)")
    manifest = json.loads(manifest_path.read_bytes())
    problems = []
    for name, entry in manifest.get("files", {}).items():
        file = folder / name
        if not file.is_file():
            problems.append(f"{name} is missing")
        elif file.stat().st_size != entry["size"] or _sha256(file) != entry["sha256"]:
            problems.append(f"{name} does not match its SHA-256 in the manifest")
    signature = None
    sig_path = folder / "manifest.sig.json"
    if sig_path.is_file():
        from vital_desktop.bundles.envelope import decode_json_envelope

        body, signatures = decode_json_envelope(sig_path.read_bytes(), MANIFEST_PAYLOAD_TYPE)
        if body != manifest_path.read_bytes():
            problems.append("manifest.json differs from the signed manifest")
        signature = [sig.key_id for sig in signatures]
        if public_keys is not None:
            from vital_desktop.bundles.envelope import pae
            from vital_desktop.bundles.keys import verify_ed25519

            message = pae(MANIFEST_PAYLOAD_TYPE, body)
            verified = [sig.key_id for sig in signatures
                        if sig.key_id in public_keys and verify_ed25519(public_keys[sig.key_id], sig.sig, message)]
            if not verified:
                problems.append("the manifest signature is not valid for any trusted key")
    elif public_keys is not None:
        problems.append("the package is not signed")
    return {"ok": not problems, "problems": problems, "signed_by": signature, "model": manifest.get("model")}
