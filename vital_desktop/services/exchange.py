"""Bundle exchange with the hub: site identity, root of trust, import, verify, export, ledger.

This is the only module that joins `vital_desktop.bundles` (format, crypto, trust decisions)
to the store. Import runs, in order: one bounded copy from the stick into private staging ->
signatures on the raw manifest bytes -> strict parse -> policy (`bundles.trust.decide`) ->
every payload streamed out and hashed -> content checks -> ONE store transaction holding the
payloads, the ledger row and the channel's new state. A refusal writes only a ledger row (and,
for the same version with different content, an audit alarm). Staging is removed whatever
happens; `store.db` cleans what a killed process left behind at the next start.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop import __version__ as APP_VERSION
from vital_desktop.bundles import canonical
from vital_desktop.bundles.envelope import PAYLOAD_TYPE_MANIFEST
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey, fingerprint
from vital_desktop.bundles.limits import CLOCK_SKEW_SECONDS, MAX_ROOT_BYTES
from vital_desktop.bundles.manifest import check_layout, parse_manifest
from vital_desktop.bundles.payloads import CheckedPayload
from vital_desktop.bundles.pipeline import SignedBundle, extract_and_check, open_signed
from vital_desktop.bundles.reader import StagedFile, copy_to_staging, extract_entry, read_raw
from vital_desktop.bundles.trust import (
    ChannelState,
    Check,
    Decision,
    Root,
    RootChain,
    SiteContext,
    decide,
    load_trusted_root,
    manifest_digest,
    valid_signers,
)
from vital_desktop.bundles.writer import PayloadSource, write_sealed_bundle
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, ValidationError, VitalError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import SYSTEM_USER, User
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.bulk import query_arrow
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    BundleChannelState,
    BundleLedgerEntry,
    ModelRow,
    Setting,
    Template,
    TrustKey,
)

SITE_ID_SETTING = "site_id"
ROOT_SETTING = "trust.root"
SITE_KEY_FILE = "site-signing.pem"
SITE_PUBLIC_FILE = "site-signing.pub"
EXPORT_LIFETIME = 365 * 86400
BUNDLE_SUFFIX = ".vbundle"


def _checkpoint(name: str) -> None:
    """A named point in the import pipeline; the crash tests replace this to kill the process here."""


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)


def _ts(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)


def _seconds(value: dt.datetime | None) -> int | None:
    return None if value is None else int(value.replace(tzinfo=dt.UTC).timestamp())


def _get_setting(session: Session, key: str) -> Any:
    row = session.get(Setting, key)
    return None if row is None else row.value


def _set_setting(session: Session, key: str, value: Any) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()


# --- site identity and root of trust ------------------------------------------------------------


def keys_dir(store: Store) -> Path:
    path = store.home / "keys"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def ensure_site_identity(store: Store, site_id: str) -> bool:
    """Create the site's Ed25519 key pair once (private key mode 0600); True if it was created now."""
    folder = keys_dir(store)
    private_path = folder / SITE_KEY_FILE
    if private_path.exists():
        return False
    key = SigningKey.generate()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.to_pem())
    (folder / SITE_PUBLIC_FILE).write_text(key.public_raw.hex() + "\n", "utf-8")
    with store.session() as s:
        if s.get(TrustKey, key.key_id) is None:
            s.add(TrustKey(key_id=key.key_id, public_key=key.public_raw.hex(), role="site", channels=["exports"],
                           source=f"generated for site {site_id}"))
        audit.record(s, SYSTEM_USER, "site.key_created", site_id, {"key_id": key.key_id})
    return True


def site_key(store: Store) -> SigningKey:
    path = keys_dir(store) / SITE_KEY_FILE
    if not path.exists():
        raise ValidationError("this site has no signing key yet; run `vital init` (or `vital bundle keygen`)")
    return SigningKey.from_pem(path.read_bytes())


@dataclass(frozen=True)
class SiteIdentity:
    site_id: str
    key_id: str
    public_key: str
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def site_identity(store: Store) -> SiteIdentity:
    """What the hub administrator registers: site id and public key (confirm the fingerprint by phone)."""
    with store.read() as s:
        site_id = _get_setting(s, SITE_ID_SETTING)
    if not site_id:
        raise ValidationError("this store has no site id; run `vital init`")
    key = site_key(store)
    return SiteIdentity(site_id, key.key_id, key.public_raw.hex(), fingerprint(key.public_raw))


def _sync_trust_keys(session: Session, root: Root, source: str) -> None:
    """Mirror the root's keys into `trust_keys` (for listing); the signed root stays the authority."""
    now = utcnow()
    seen = set()
    for kid, public in root.root_keys.items():
        seen.add(kid)
        _upsert_key(session, kid, public.hex(), "root", ["truststore"], None, source)
    for kid, info in root.signing_keys.items():
        seen.add(kid)
        _upsert_key(session, kid, info.public.hex(), "channel", sorted(info.channels), _ts(info.expires), source)
    seen.add(root.hub_encryption_key_id)
    _upsert_key(session, root.hub_encryption_key_id, root.hub_encryption_public.hex(), "hub_encryption", ["exports"],
                None, source)
    for row in session.scalars(sa.select(TrustKey).where(TrustKey.role != "site")):
        if row.key_id not in seen and not row.revoked:
            row.revoked = True
            row.revoked_at = now
    for kid in root.revoked:
        row = session.get(TrustKey, kid)
        if row is not None and not row.revoked:
            row.revoked, row.revoked_at = True, now


def _upsert_key(session: Session, kid: str, public_hex: str, role: str, channels: list[str],
                expires: dt.datetime | None, source: str) -> None:
    row = session.get(TrustKey, kid)
    if row is None:
        session.add(TrustKey(key_id=kid, public_key=public_hex, role=role, channels=channels, expires_at=expires,
                             source=source))
    else:
        row.role, row.channels, row.expires_at = role, channels, expires


@dataclass(frozen=True)
class RootInfo:
    version: int
    name: str
    fingerprints: list[str]
    expires: str
    installed: bool

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def root_fingerprints(root: Root) -> list[str]:
    return [fingerprint(public) for _, public in sorted(root.root_keys.items())]


def install_root_of_trust(store: Store, root_json_path: Path | str, *, actor: User = SYSTEM_USER,
                          now: int | None = None) -> RootInfo:
    """Install the hub's root (shipped with the installer). Only once: later roots arrive as truststore bundles."""
    require(actor, "manage_trust")
    path = Path(root_json_path)
    data = path.read_bytes() if path.stat().st_size <= MAX_ROOT_BYTES else b""
    root = load_trusted_root(data, _now(now))
    with store.session() as s:
        current = _get_setting(s, ROOT_SETTING)
        if current is not None:
            if current == data.decode("utf-8"):
                return RootInfo(root.version, root.name, root_fingerprints(root), str(_ts(root.expires)), False)
            raise ConflictError("a root of trust is already installed; a new one must arrive as a truststore bundle")
        _set_setting(s, ROOT_SETTING, data.decode("utf-8"))
        _sync_trust_keys(s, root, f"installed from {path.name}")
        audit.record(s, actor, "trust.root_installed", f"root v{root.version}",
                     {"fingerprints": root_fingerprints(root), "name": root.name})
    return RootInfo(root.version, root.name, root_fingerprints(root), str(_ts(root.expires)), True)


def _load_root(session: Session, now: int) -> Root:
    text = _get_setting(session, ROOT_SETTING)
    return load_trusted_root(text.encode("utf-8") if isinstance(text, str) else None, now)


def trust_status(store: Store, *, now: int | None = None) -> dict[str, Any]:
    """The installed root (or why it is unusable) and the key table."""
    with store.read() as s:
        try:
            root: Root | None = _load_root(s, _now(now))
            problem = ""
        except BundleRefused as exc:
            root, problem = None, exc.message
        keys = [{"key_id": k.key_id, "role": k.role, "channels": k.channels, "expires_at": k.expires_at,
                 "revoked": k.revoked} for k in s.scalars(sa.select(TrustKey).order_by(TrustKey.role, TrustKey.key_id))]
        channels = [{"channel": c.channel, "epoch": c.epoch, "sequence": c.sequence, "issued_at": c.issued_at,
                     "bundle_id": c.bundle_id} for c in s.scalars(sa.select(BundleChannelState))]
    return {"root": root.describe() if root else None, "fingerprints": root_fingerprints(root) if root else [],
            "problem": problem, "keys": keys, "channels": channels}


# --- evaluation (shared by verify and import) ----------------------------------------------------


@dataclass
class Evaluation:
    """Everything learnt about one bundle so far; filled in step by step."""

    source: Path
    staged: StagedFile | None = None
    signed: SignedBundle | None = None
    decision: Decision | None = None
    payloads: list[CheckedPayload] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    refusal: BundleRefused | None = None
    new_root: Root | None = None

    @property
    def outcome(self) -> str:
        if self.refusal is not None:
            return "refused"
        return "already_imported" if self.decision and self.decision.outcome == "already_imported" else "ok"

    def report(self) -> dict[str, Any]:
        manifest = self.signed.manifest if self.signed else None
        root = self.signed
        return {
            "file": str(self.source), "file_sha256": self.staged.sha256 if self.staged else None,
            "outcome": self.outcome,
            "reason": self.refusal.message if self.refusal else "",
            "code": self.refusal.code if self.refusal else "",
            "signers": sorted(root.signers) if root else [],
            "bundle_id": manifest.bundle_id if manifest else None,
            "channel": manifest.channel if manifest else None,
            "issuer": manifest.issuer if manifest else None,
            "epoch": manifest.epoch if manifest else None,
            "sequence": manifest.sequence if manifest else None,
            "issued_at": str(_ts(manifest.issued_at)) if manifest else None,
            "expires": str(_ts(manifest.expires)) if manifest else None,
            "sites": list(manifest.sites) if manifest else [],
            "entries": [e.to_dict() for e in manifest.entries] if manifest else [],
            "checks": [c.to_dict() for c in self.checks],
        }


def _site_context(session: Session, signed: SignedBundle, now: int) -> SiteContext:
    manifest = signed.manifest
    site_id = _get_setting(session, SITE_ID_SETTING)
    if not site_id:
        raise BundleRefused("no_site_id", "this store has no site id; run `vital init` first")
    row = session.get(BundleChannelState, manifest.channel)
    state = None if row is None else ChannelState(row.epoch, row.sequence, _seconds(row.issued_at), row.manifest_sha256)
    newest = session.scalar(sa.select(sa.func.max(BundleChannelState.issued_at))
                            .where(BundleChannelState.channel != "exports"))
    same_version = same_id = None
    accepted = session.scalars(sa.select(BundleLedgerEntry).where(
        BundleLedgerEntry.outcome == "accepted",
        sa.or_(BundleLedgerEntry.bundle_id == manifest.bundle_id,
               sa.and_(BundleLedgerEntry.channel == manifest.channel, BundleLedgerEntry.epoch == manifest.epoch,
                       BundleLedgerEntry.sequence == manifest.sequence)))).all()
    for entry in accepted:
        sha = (entry.details or {}).get("manifest_sha256")
        if entry.bundle_id == manifest.bundle_id:
            same_id = sha
        if (entry.channel, entry.epoch, entry.sequence) == (manifest.channel, manifest.epoch, manifest.sequence):
            same_version = sha
    return SiteContext(site_id=str(site_id), app_version=APP_VERSION, now=now, channel=state,
                       newest_issued_at=_seconds(newest), accepted_same_version_sha256=same_version,
                       accepted_same_id_sha256=same_id)


def _evaluate(store: Store, source: Path, work: Path, now: int, progress: Progress) -> Evaluation:
    """Copy, verify, decide, extract and check; never writes to the store."""
    evaluation = Evaluation(source)
    try:
        evaluation.staged = copy_to_staging(source, work / "bundle", on_chunk=lambda n: progress.check())
        evaluation.checks.append(Check("copy", True, "", f"copied {evaluation.staged.size} bytes into staging"))
        _checkpoint("copied")
        with store.read() as s:
            root = _load_root(s, now)
            evaluation.signed = open_signed(evaluation.staged.path, root)
            decision = decide(root, evaluation.signed.manifest, evaluation.signed.manifest_bytes,
                              set(evaluation.signed.signers), _site_context(s, evaluation.signed, now))
        evaluation.decision = decision
        evaluation.checks.extend(decision.checks)
        if decision.outcome == "already_imported":
            return evaluation
        decision.raise_if_refused()
        _checkpoint("verified")
        total = evaluation.signed.manifest.payload_length
        progress.start(total, "checking payloads")
        evaluation.payloads = extract_and_check(evaluation.signed, work, on_bytes=lambda n: (progress.advance(n),
                                                                                              progress.check()))
        evaluation.checks.append(Check("payloads", True, "", f"{len(evaluation.payloads)} entries hashed and checked"))
        if any(p.entry.kind == "onnx_model" for p in evaluation.payloads):
            _check_runnable(evaluation.payloads)
            evaluation.checks.append(Check("model_contract", True, "", "ONNX models meet the classifier contract"))
        if evaluation.signed.manifest.channel == "truststore":
            chain = RootChain(root)
            for payload in evaluation.payloads:
                chain.step(payload.path.read_bytes())
            evaluation.new_root = chain.finish(now)
            evaluation.checks.append(Check("root_chain", True, "",
                                           f"root v{root.version} -> v{evaluation.new_root.version} verified step by step"))
        _checkpoint("extracted")
    except BundleRefused as exc:
        evaluation.refusal = exc
        if not any(not c.ok for c in evaluation.checks):
            evaluation.checks.append(Check("refused", False, exc.code, exc.message))
    return evaluation


def _work_dir(store: Store, prefix: str) -> Path:
    work = store.staging_dir / f"{prefix}-{new_id()}"
    work.mkdir(mode=0o700)
    return work


def verify_bundle(store: Store, path: Path | str, *, now: int | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Explain a bundle without importing it: every check and the outcome an import would have."""
    work = _work_dir(store, "verify")
    try:
        evaluation = _evaluate(store, Path(path), work, _now(now), progress or Progress())
        return evaluation.report()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- import ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportResult:
    outcome: str  # accepted | already_imported
    bundle_id: str
    channel: str
    sequence: int
    summary: dict[str, Any]
    changes: Changes

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "bundle_id": self.bundle_id, "channel": self.channel,
                "sequence": self.sequence, "summary": self.summary}


def _ledger_row(evaluation: Evaluation, actor: User, outcome: str, reason: str,
                details: dict[str, Any]) -> BundleLedgerEntry:
    manifest = evaluation.signed.manifest if evaluation.signed else None
    if evaluation.signed is not None:
        details = {"manifest_sha256": evaluation.signed.manifest_sha256, **details}
    return BundleLedgerEntry(
        bundle_id=manifest.bundle_id if manifest else None,
        file_sha256=evaluation.staged.sha256 if evaluation.staged else None,
        direction=manifest.direction if manifest else "hub_to_site",
        channel=manifest.channel if manifest else None, epoch=manifest.epoch if manifest else None,
        sequence=manifest.sequence if manifest else None, issuer=manifest.issuer if manifest else None,
        issued_at=_ts(manifest.issued_at) if manifest else None, outcome=outcome, reason=reason[:2000],
        details=details, source_path=str(evaluation.source)[:1000], acted_by=actor.username,
    )


def _record_refusal(store: Store, actor: User, evaluation: Evaluation, error: BundleRefused) -> None:
    alarm = bool(error.details.get("alarm"))
    with store.session() as s:
        s.add(_ledger_row(evaluation, actor, "refused", error.message,
                          {"code": error.code, "checks": [c.to_dict() for c in evaluation.checks]}))
        if alarm:
            manifest = evaluation.signed.manifest if evaluation.signed else None
            audit.record(s, actor, "bundle.alarm", manifest.bundle_id if manifest else str(evaluation.source),
                         {"code": error.code, "message": error.message,
                          "channel": manifest.channel if manifest else None,
                          "sequence": manifest.sequence if manifest else None,
                          "file_sha256": evaluation.staged.sha256 if evaluation.staged else None})


def import_bundle(store: Store, *, actor: User, path: Path | str, progress: Progress | None = None,
                  now: int | None = None) -> ImportResult:
    """Import one bundle all-or-nothing (admin only); a refusal is recorded and raised as `BundleRefused`."""
    require(actor, "import_bundle")
    progress = progress or Progress()
    now = _now(now)
    work = _work_dir(store, "import")
    try:
        evaluation = _evaluate(store, Path(path), work, now, progress)
        if evaluation.refusal is not None:
            _record_refusal(store, actor, evaluation, evaluation.refusal)
            raise evaluation.refusal
        assert evaluation.signed is not None and evaluation.decision is not None
        manifest = evaluation.signed.manifest
        if evaluation.decision.outcome == "already_imported":
            return ImportResult("already_imported", manifest.bundle_id, manifest.channel, manifest.sequence,
                                {"message": "this bundle was already imported; nothing changed"}, Changes())
        try:
            staged_models = _place_model_files(store, evaluation.payloads)
            summary, changes = _commit(store, actor, evaluation, staged_models, now)
        except BundleRefused as exc:
            evaluation.checks.append(Check("apply", False, exc.code, exc.message))
            _record_refusal(store, actor, evaluation, exc)
            raise
        return ImportResult("accepted", manifest.bundle_id, manifest.channel, manifest.sequence, summary, changes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_runnable(payloads: list[CheckedPayload]) -> None:
    """An ONNX model must meet the same classifier contract as a locally registered one, so a
    model that imports is a model that runs (the bundle layer checks structure, not meaning)."""
    from vital_desktop.inference.classifier import check_contract

    for payload in payloads:
        if payload.entry.kind == "onnx_model":
            try:
                check_contract(payload.path)
            except VitalError as exc:
                raise BundleRefused("content", f"entry {payload.entry.id!r} ({payload.entry.name}): "
                                               f"{exc.message}") from exc


def _place_model_files(store: Store, payloads: list[CheckedPayload]) -> dict[str, Path]:
    """Model files go to `models/` under their SHA-256 before the transaction (atomic rename).

    Content-addressed names mean a crash before commit leaves at most an unreferenced file that
    a later import of the same model reuses; the store never references a missing file.
    """
    placed = {}
    for payload in payloads:
        if payload.entry.kind not in ("onnx_model", "gguf_model"):
            continue
        suffix = ".onnx" if payload.entry.kind == "onnx_model" else ".gguf"
        target = store.models_dir / f"hub-{payload.entry.sha256}{suffix}"
        if not target.exists():
            temp = target.with_name(f".{target.name}.{new_id()[:8]}.part")
            shutil.copyfile(payload.path, temp)
            with open(temp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, target)
        placed[payload.entry.id] = target
    return placed


def _commit(store: Store, actor: User, evaluation: Evaluation, model_files: dict[str, Path],
            now: int) -> tuple[dict[str, Any], Changes]:
    assert evaluation.signed is not None
    manifest = evaluation.signed.manifest
    with store.session() as s:
        # Re-read the channel inside the transaction: nothing may have moved since the decision.
        row = s.get(BundleChannelState, manifest.channel)
        if row is not None and (row.epoch, row.sequence) >= (manifest.epoch, manifest.sequence):
            raise BundleRefused("rollback", "the channel moved on while this bundle was being checked")
        applier = APPLIERS[manifest.channel]
        summary, changes = applier(s, actor, evaluation, model_files)
        s.add(_ledger_row(evaluation, actor, "accepted", "", {"summary": summary,
                                                              "signers": sorted(evaluation.signed.signers)}))
        if row is None:
            row = BundleChannelState(channel=manifest.channel)
            s.add(row)
        row.epoch, row.sequence = manifest.epoch, manifest.sequence
        row.issued_at = _ts(manifest.issued_at)
        row.bundle_id = manifest.bundle_id
        row.manifest_sha256 = evaluation.signed.manifest_sha256
        row.updated_at = utcnow()
        audit.record(s, actor, "bundle.import", manifest.bundle_id,
                     {"channel": manifest.channel, "epoch": manifest.epoch, "sequence": manifest.sequence,
                      "summary": summary})
        s.flush()
        _checkpoint("before_commit")
    _checkpoint("committed")
    return summary, changes | Changes(bundles=True)


def _json_payload(payload: CheckedPayload) -> dict[str, Any]:
    assert isinstance(payload.json, dict)
    return payload.json


#: Bundle entry kinds and the registry's model kinds (what `services.registry` and predict use).
REGISTRY_KIND = {"onnx_model": "onnx_classifier", "gguf_model": "gguf"}


def _apply_models(s: Session, actor: User, evaluation: Evaluation,
                  model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    by_id = {p.entry.id: p for p in evaluation.payloads}
    added, unchanged = [], []
    for payload in evaluation.payloads:
        if payload.entry.kind not in ("onnx_model", "gguf_model"):
            continue
        card = _json_payload(by_id[str(payload.entry.meta["card"])])
        existing = s.scalar(sa.select(ModelRow).where(ModelRow.name == card["name"], ModelRow.version == card["version"]))
        if existing is not None:
            if existing.file_sha256 != payload.entry.sha256:
                raise BundleRefused("content_conflict",
                                    f"model {card['name']} v{card['version']} already exists here with other content")
            unchanged.append(f"{card['name']} v{card['version']}")
            continue
        s.add(ModelRow(name=card["name"], version=card["version"], kind=REGISTRY_KIND[payload.entry.kind],
                       path=str(model_files[payload.entry.id]), file_sha256=payload.entry.sha256,
                       size_bytes=payload.entry.length, classes=payload.info.get("classes") or card.get("classes") or [],
                       card=card, origin="hub", status="registered", created_by=actor.username))
        added.append(f"{card['name']} v{card['version']}")
    return {"models_added": added, "models_unchanged": unchanged}, Changes(models=bool(added))


def _apply_templates(s: Session, actor: User, evaluation: Evaluation,
                     model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    added, unchanged = [], []
    for payload in evaluation.payloads:
        doc = _json_payload(payload)
        fields = {"label_type": doc["label_type"], "description": doc.get("description", ""),
                  "system_prompt": doc["system_prompt"], "user_prompt": doc["user_prompt"],
                  "input_schema": doc["input_schema"], "output_schema": doc["output_schema"],
                  "few_shot": doc.get("few_shot", []), "model_ref": doc.get("model_ref", {}),
                  "notes": doc.get("notes", "")}
        existing = s.scalar(sa.select(Template).where(Template.name == doc["name"], Template.version == doc["version"]))
        if existing is not None:
            same = all(canonical.dumps(getattr(existing, k)) == canonical.dumps(v) for k, v in fields.items())
            if not same or existing.status != "published":
                raise BundleRefused("content_conflict", f"template {doc['name']}@{doc['version']} already exists here "
                                                        "with different content (published versions are immutable)")
            unchanged.append(f"{doc['name']}@{doc['version']}")
            continue
        s.add(Template(name=doc["name"], version=doc["version"], status="published", origin="hub",
                       created_by=actor.username, published_at=utcnow(), **fields))
        added.append(f"{doc['name']}@{doc['version']}")
    return {"templates_added": added, "templates_unchanged": unchanged}, Changes(templates=bool(added))


def _apply_labels(s: Session, actor: User, evaluation: Evaluation,
                  model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    from vital_desktop.services import labels

    totals: dict[str, int] = {}
    for payload in evaluation.payloads:
        assert payload.table is not None
        rows = payload.table.to_pylist()
        try:
            outcome = labels.apply_incoming_labels(s, actor, rows, origin="hub")
        except VitalError as exc:
            raise BundleRefused("content", f"labels in {payload.entry.name}: {exc.message}") from exc
        for key, value in outcome.to_dict().items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals, Changes(labels=True)


def _apply_truststore(s: Session, actor: User, evaluation: Evaluation,
                      model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    root = evaluation.new_root
    assert root is not None
    _set_setting(s, ROOT_SETTING, root.envelope.decode("utf-8"))
    _sync_trust_keys(s, root, f"truststore bundle {evaluation.signed.manifest.bundle_id if evaluation.signed else ''}")
    audit.record(s, actor, "trust.root_updated", f"root v{root.version}",
                 {"revoked": sorted(root.revoked), "fingerprints": root_fingerprints(root)})
    return {"root_version": root.version, "revoked": sorted(root.revoked)}, Changes()


def _apply_config(s: Session, actor: User, evaluation: Evaluation,
                  model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    keys = []
    for payload in evaluation.payloads:
        for key, value in _json_payload(payload).items():
            _set_setting(s, key, value)
            keys.append(key)
    return {"settings": sorted(keys)}, Changes()


APPLIERS: dict[str, Callable[[Session, User, Evaluation, dict[str, Path]], tuple[dict[str, Any], Changes]]] = {
    "models": _apply_models,
    "templates": _apply_templates,
    "labels": _apply_labels,
    "truststore": _apply_truststore,
    "config": _apply_config,
}


# --- ledger ---------------------------------------------------------------------------------------


def ledger(store: Store, *, limit: int = 100) -> list[dict[str, Any]]:
    """Newest first: every bundle seen (accepted, refused) and every export written."""
    with store.read() as s:
        rows = s.scalars(sa.select(BundleLedgerEntry).order_by(BundleLedgerEntry.recorded_at.desc()).limit(limit)).all()
        return [{"at": r.recorded_at, "outcome": r.outcome, "direction": r.direction, "channel": r.channel, "epoch": r.epoch,
                 "sequence": r.sequence, "bundle_id": r.bundle_id, "issuer": r.issuer, "reason": r.reason,
                 "code": (r.details or {}).get("code", ""), "file_sha256": r.file_sha256, "by": r.acted_by}
                for r in rows]


# --- export ---------------------------------------------------------------------------------------

EXPORT_QUERIES: dict[str, str] = {
    "canonical_labels": """
        SELECT c.id AS label_id, ? AS site_id, c.sheet_id, s.name AS sheet_name, c.item_ref, c.label_type,
               CAST(c.label_data AS VARCHAR) AS label_data, CAST(c.version AS BIGINT) AS version,
               CAST(c.allowed_uses AS VARCHAR) AS allowed_uses, CAST(c.prohibited_uses AS VARCHAR) AS prohibited_uses,
               c.usage_reason, CAST(c.data_classification AS VARCHAR) AS data_classification, c.confidence, c.notes,
               c.review_state, c.origin, c.created_by, c.updated_by, CAST(c.updated_at AS TIMESTAMP) AS updated_at,
               CAST(s.classification AS VARCHAR) AS _sheet_tags
        FROM canonical_labels c LEFT JOIN sheets s ON s.id = c.sheet_id
        WHERE c.updated_at > ? AND c.updated_at <= ? ORDER BY c.updated_at, c.id""",
    "feedback": """
        SELECT f.id, ? AS site_id, f.prediction_id, f.model_id, f.sheet_id, f.item_ref, f.predicted_class,
               f.corrected_class, CAST(f.corrected_label AS VARCHAR) AS corrected_label, f.comment, f.status,
               f.review_note, f.created_by, CAST(f.created_at AS TIMESTAMP) AS created_at, f.reviewed_by,
               CAST(f.reviewed_at AS TIMESTAMP) AS reviewed_at, CAST(s.classification AS VARCHAR) AS _sheet_tags
        FROM feedback_items f LEFT JOIN sheets s ON s.id = f.sheet_id
        WHERE coalesce(f.reviewed_at, f.created_at) > ? AND coalesce(f.reviewed_at, f.created_at) <= ?
        ORDER BY f.created_at, f.id""",
    "predictions": """
        SELECT p.id, ? AS site_id, p.model_id, p.model_name, CAST(p.model_version AS BIGINT) AS model_version, p.kind,
               p.sheet_id, p.item_ref, CAST(p.output AS VARCHAR) AS output, p.predicted_class,
               CAST(p.confidence AS DOUBLE) AS confidence, CAST(p.latency_ms AS DOUBLE) AS latency_ms,
               p.image_mean, p.image_std, p.created_by, CAST(p.created_at AS TIMESTAMP) AS created_at,
               CAST(s.classification AS VARCHAR) AS _sheet_tags
        FROM predictions p LEFT JOIN sheets s ON s.id = p.sheet_id WHERE p.created_at > ? AND p.created_at <= ? ORDER BY p.created_at, p.id""",
    "mc_results": """
        SELECT m.id, ? AS site_id, m.name, m.status, CAST(m.config AS VARCHAR) AS config, CAST(m.seed AS BIGINT) AS seed,
               CAST(m.histories AS BIGINT) AS histories, CAST(m.results AS VARCHAR) AS results,
               CAST(m.spectrum AS VARCHAR) AS spectrum, m.engine_version, m.duration_s, m.created_by,
               CAST(m.created_at AS TIMESTAMP) AS created_at
        FROM mc_runs m WHERE m.created_at > ? AND m.created_at <= ? ORDER BY m.created_at, m.id""",
}

EPOCH_START = dt.datetime(1970, 1, 1)


def _governed(table: Any, gate: Any) -> tuple[Any, dict[str, int]]:
    from vital_desktop.services.site import govern_arrow

    return govern_arrow(table, gate)


@dataclass(frozen=True)
class ExportResult:
    path: str
    bundle_id: str
    sequence: int
    rows: dict[str, int]
    size: int
    file_sha256: str
    #: Rows the export gate kept home ({"kind: reason": count}), e.g. PHI without a hub policy.
    withheld: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def export_gate(session: Session, *, use: str | None, destination: str) -> Any:
    from vital_desktop.services.site import export_gate as gate

    return gate(session, use=use, destination=destination)


def export_bundle(store: Store, *, actor: User, to_dir: Path | str, progress: Progress | None = None,
                  now: int | None = None) -> ExportResult:
    """Write the site's new labels, feedback, predictions and MC results since the last export.

    The file is signed by the site key and encrypted to the hub; it is re-read from the target
    folder and verified before the export is recorded, so "success" means the stick holds it.
    """
    require(actor, "export_bundle")
    progress = progress or Progress()
    now_s = _now(now)
    cut = _ts(now_s)
    assert cut is not None
    key = site_key(store)
    with store.read() as s:
        root = _load_root(s, now_s)
        site_id = _get_setting(s, SITE_ID_SETTING)
        if not site_id:
            raise ValidationError("this store has no site id; run `vital init`")
        state = s.get(BundleChannelState, "exports")
        since = state.issued_at if state is not None and state.issued_at is not None else EPOCH_START
        last_used = s.scalar(sa.select(sa.func.max(BundleLedgerEntry.sequence))
                             .where(BundleLedgerEntry.direction == "site_to_hub")) or 0
        sequence = max(state.sequence if state else 0, int(last_used)) + 1
    work = _work_dir(store, "export")
    try:
        progress.start(len(EXPORT_QUERIES), "reading tables")
        sources, rows = [], {}
        withheld: dict[str, int] = {}
        with store.read() as s:
            gate = export_gate(s, use=None, destination="hub")
            for kind, sql in EXPORT_QUERIES.items():
                table, kept_out = _governed(query_arrow(s, sql, [site_id, since, cut]), gate)
                rows[kind] = table.num_rows
                for reason, count in kept_out.items():
                    withheld[f"{kind}: {reason}"] = count
                target = work / f"{kind}.parquet"
                pq.write_table(table, target)
                sources.append(PayloadSource(kind.replace("_", "-"), kind, f"{kind}.parquet", path=target))
                progress.advance(1)
                progress.check()
            head = audit.signed_head(s)
            chain = audit.verify(s)
        if not chain.ok:
            raise VitalError(f"the audit log does not verify, so no export is written: {chain.reason}")
        if head is None or "signature" not in head:
            raise ValidationError("the audit log has no signed head to send; run `vital audit verify`")
        # The hub checks this head continues the one it saw last (a cut or rewritten log shows there).
        sources.append(PayloadSource("audit-head", "audit_head", "audit_head.json", data=canonical.dumps(head)))
        bundle_id = new_id()
        # Reserve the sequence first: a crash after writing the file can never reuse its number.
        with store.session() as s:
            s.add(BundleLedgerEntry(bundle_id=bundle_id, direction="site_to_hub", channel="exports", epoch=0,
                                    sequence=sequence, issuer=site_id, issued_at=cut, outcome="export_started",
                                    details={"rows": rows}, source_path="", acted_by=actor.username))
        target = Path(to_dir) / f"vital-export-{site_id}-{sequence:06d}{BUNDLE_SUFFIX}"
        written = write_sealed_bundle(target, sources, key, site_id=str(site_id), sequence=sequence,
                                      hub_key_id=root.hub_encryption_key_id, hub_public=root.hub_encryption_public,
                                      issued_at=now_s, expires=now_s + EXPORT_LIFETIME, work_dir=work,
                                      bundle_id=bundle_id)
        _verify_written_export(target, key, written.manifest_sha256, work)
        with store.session() as s:
            s.add(BundleLedgerEntry(bundle_id=bundle_id, file_sha256=written.file_sha256, direction="site_to_hub",
                                    channel="exports", epoch=0, sequence=sequence, issuer=site_id, issued_at=cut,
                                    outcome="exported", details={"rows": rows, "manifest_sha256":
                                                                 written.manifest_sha256},
                                    source_path=str(target), acted_by=actor.username))
            row = s.get(BundleChannelState, "exports")
            if row is None:
                row = BundleChannelState(channel="exports")
                s.add(row)
            row.epoch, row.sequence, row.issued_at = 0, sequence, cut
            row.bundle_id, row.manifest_sha256, row.updated_at = bundle_id, written.manifest_sha256, utcnow()
            audit.record(s, actor, "bundle.export", bundle_id, {"sequence": sequence, "rows": rows,
                                                                "withheld": withheld, "path": str(target)})
        progress.finish("export written and verified")
        return ExportResult(str(target), bundle_id, sequence, rows, written.size, written.file_sha256, withheld)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _verify_written_export(target: Path, key: SigningKey, manifest_sha256: str, work: Path) -> None:
    """Re-read what landed on the stick: signature, layout and every entry's hash."""
    check_dir = work / "reread"
    check_dir.mkdir()
    try:
        raw = read_raw(target)
        if manifest_digest(raw.manifest_bytes) != manifest_sha256:
            raise VitalError(f"the export on {target.parent} does not hold the manifest just written")
        if key.key_id not in valid_signers({key.key_id: key.public_raw}, PAYLOAD_TYPE_MANIFEST, raw.manifest_bytes,
                                            raw.signatures):
            raise VitalError(f"the export on {target.parent} does not carry a valid site signature")
        manifest = parse_manifest(raw.manifest_bytes)
        check_layout(manifest, raw.payload_offset, raw.file_size)
        for index, entry in enumerate(manifest.entries):
            extract_entry(target, raw.payload_offset, entry, check_dir / f"entry-{index}")
            (check_dir / f"entry-{index}").unlink()
    except BundleRefused as exc:
        raise VitalError(f"the export written to {target} did not verify when read back: {exc.message}") from exc
    finally:
        shutil.rmtree(check_dir, ignore_errors=True)


__all__ = [
    "CLOCK_SKEW_SECONDS", "ExportResult", "ImportResult", "RootInfo", "ensure_site_identity", "export_bundle",
    "import_bundle", "install_root_of_trust", "ledger", "site_identity", "trust_status", "verify_bundle",
]
