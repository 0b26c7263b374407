"""Bundle exchange with the hub: import and verify here; identity, root of trust and ledger in
`exchange_site`, site->hub export in `exchange_export` (every name importable from here).

This is the only module that joins `vital_desktop.bundles` (format, crypto, trust decisions)
to the store. Import runs, in order: one bounded copy from the stick into private staging ->
signatures on the raw manifest bytes -> strict parse -> policy (`bundles.trust.decide`) ->
every payload streamed out and hashed -> content checks -> ONE store transaction holding the
payloads, the ledger row and the channel's new state. A refusal writes only a ledger row (and,
for the same version with different content, an audit alarm). Staging is removed whatever
happens; `store.db` cleans what a killed process left behind at the next start.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from vital_desktop import __version__ as APP_VERSION
from vital_desktop.bundles import canonical
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey  # noqa: F401 - re-exported
from vital_desktop.bundles.limits import CLOCK_SKEW_SECONDS
from vital_desktop.bundles.payloads import CheckedPayload
from vital_desktop.bundles.pipeline import SignedBundle, extract_and_check, open_signed, peek_signed
from vital_desktop.bundles.reader import StagedFile, copy_to_staging
from vital_desktop.bundles.trust import (
    ChannelState,
    Check,
    Decision,
    Root,
    RootChain,
    SiteContext,
    decide,
    require_unexpired_root,
)
from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import VitalError
from vital_desktop.core.ids import new_id, utcnow
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services import exchange_channel
from vital_desktop.services.accounts import require
from vital_desktop.services.exchange_export import (  # noqa: F401 - re-exported
    EPOCH_START,
    EXPORT_QUERIES,
    ExportResult,
    _governed,
    _verify_written_export,
    export_bundle,
    export_gate,
)
from vital_desktop.services.exchange_site import (  # noqa: F401 - re-exported
    BUNDLE_SUFFIX,
    EXPORT_LIFETIME,
    ROOT_SETTING,
    SITE_ID_SETTING,
    SITE_KEY_FILE,
    SITE_PUBLIC_FILE,
    RootInfo,
    SiteIdentity,
    _get_setting,
    _load_root,
    _now,
    _seconds,
    _set_setting,
    _sync_trust_keys,
    _ts,
    _upsert_key,
    _work_dir,
    ensure_site_identity,
    install_root_of_trust,
    keys_dir,
    ledger,
    root_fingerprints,
    site_identity,
    site_key,
    trust_status,
)
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import (
    BundleChannelState,
    BundleLedgerEntry,
    ModelRow,
    Template,
)


def _checkpoint(name: str) -> None:
    """A named point in the import pipeline; the crash tests replace this to kill the process here."""


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


#: A second decision on top of `decide` for one channel (``app``: `services.app_update`), made
#: before any payload is extracted: (root, signed bundle, decision) -> decision.
Refine = Callable[[Root, SignedBundle, Decision], Decision]


def _evaluate(store: Store, source: Path, work: Path, now: int, progress: Progress,
              refine: Refine | None = None) -> Evaluation:
    """Copy, verify, decide, extract and check; never writes to the store."""
    evaluation = Evaluation(source)
    try:
        with store.read() as s:
            root = _load_root(s, now, allow_expired=True)
        # Header, manifest and signatures straight from the stick, verified before any payload
        # byte is copied; the copy is then capped at the size that signed manifest declares.
        peeked = peek_signed(source, root)
        require_unexpired_root(root, peeked.manifest.channel, now)
        declared = peeked.raw.payload_offset + peeked.manifest.payload_length
        evaluation.checks.append(Check("pre_check", True, "", "header, manifest and signatures verified on the "
                                                              "medium before copying"))
        evaluation.staged = copy_to_staging(source, work / "bundle", max_bytes=declared,
                                            on_chunk=lambda n: progress.check())
        evaluation.checks.append(Check("copy", True, "", f"copied {evaluation.staged.size} bytes into staging"))
        _checkpoint("copied")
        with store.read() as s:
            evaluation.signed = open_signed(evaluation.staged.path, root)
            if evaluation.signed.manifest_sha256 != peeked.manifest_sha256:
                raise BundleRefused("changed_while_copying", f"{source} changed while it was being copied")
            decision = decide(root, evaluation.signed.manifest, evaluation.signed.manifest_bytes,
                              set(evaluation.signed.signers), _site_context(s, evaluation.signed, now))
        if refine is not None:
            decision = refine(root, evaluation.signed, decision)
        evaluation.decision = decision
        evaluation.checks.extend(decision.checks)
        if decision.outcome == "already_imported":
            return evaluation
        decision.raise_if_refused()
        _checkpoint("verified")
        total = evaluation.signed.manifest.payload_length
        progress.start(total, "checking payloads")
        def on_bytes(count: int) -> None:
            progress.advance(count)
            progress.check()

        evaluation.payloads = extract_and_check(evaluation.signed, work, on_bytes=on_bytes)
        evaluation.checks.append(Check("payloads", True, "", f"{len(evaluation.payloads)} entries hashed and checked"))
        if any(p.entry.kind in REGISTRY_KIND for p in evaluation.payloads):
            _check_runnable(evaluation.payloads)
            evaluation.checks.append(Check("model_contract", True, "", "models meet their contract and ran once "
                                                                       "on a dummy input under a memory cap"))
        if evaluation.signed.manifest.channel == "truststore":
            chain = RootChain(root)
            for payload in evaluation.payloads:
                chain.step(payload.path.read_bytes())
            evaluation.new_root = chain.finish(now)
            evaluation.checks.append(Check("root_chain", True, "",
                                           f"root v{root.version} -> v{evaluation.new_root.version} verified step by step"))
        with store.read() as s:
            # The checks `import` makes against what this site already holds, so `verify` says the same.
            _check_against_store(s, evaluation)
        _checkpoint("extracted")
    except BundleRefused as exc:
        evaluation.refusal = exc
    except OSError as exc:
        evaluation.refusal = BundleRefused("io", f"cannot read or stage {source}: {exc.strerror or exc} "
                                                 "(is the medium readable and is there room in the site folder?)")
    except (RecursionError, MemoryError, ArithmeticError, ValueError, LookupError, TypeError) as exc:
        # Payload parsers (Arrow, JSON, ONNX...) on hostile input: a clear refusal, never a traceback.
        evaluation.refusal = BundleRefused("content", f"a payload could not be read safely: "
                                                      f"{type(exc).__name__}: {str(exc)[:200]}")
    if evaluation.refusal is not None and not any(not c.ok for c in evaluation.checks):
        evaluation.checks.append(Check("refused", False, evaluation.refusal.code, evaluation.refusal.message))
    return evaluation


def _check_against_store(s: Session, evaluation: Evaluation) -> None:
    """Content conflicts with what the site holds (same model version or template version with
    other content): refused by `verify` and `import` alike, before the import transaction."""
    by_id = {p.entry.id: p for p in evaluation.payloads}
    for payload in evaluation.payloads:
        if payload.entry.kind in REGISTRY_KIND:
            card = _json_payload(by_id[str(payload.entry.meta["card"])])
            existing = s.scalar(sa.select(ModelRow).where(ModelRow.name == card["name"],
                                                          ModelRow.version == card["version"]))
            if existing is not None and existing.file_sha256 != payload.entry.sha256:
                raise BundleRefused("content_conflict",
                                    f"model {card['name']} v{card['version']} already exists here with other content")
        elif payload.entry.kind == "template":
            doc = _json_payload(payload)
            existing_t = s.scalar(sa.select(Template).where(Template.name == doc["name"],
                                                            Template.version == doc["version"]))
            if existing_t is not None and not _same_template(existing_t, doc):
                raise BundleRefused("content_conflict", f"template {doc['name']}@{doc['version']} already exists "
                                                        "here with different content (published versions are immutable)")
    evaluation.checks.append(Check("site_state", True, "", "no conflict with models or templates already here"))


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
            try:
                staged_models = _place_model_files(store, evaluation.payloads)
            except OSError as exc:
                raise BundleRefused("io", f"cannot place the model files in {store.models_dir}: "
                                          f"{exc.strerror or exc} (is there room in the site folder?)") from exc
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
    from vital_desktop.inference.sandbox import trial_load_gguf, trial_run_onnx
    from vital_desktop.services.registry import KIND_CHECKERS, KIND_GGUF

    for payload in payloads:
        try:
            if payload.entry.kind == "onnx_model":
                check_contract(payload.path)
                trial_run_onnx(payload.path)  # custom-domain ops and memory bombs refused here
            elif payload.entry.kind == "gguf_model":
                # The header check and card of direct registration (no chat template: refused), then a load.
                payload.info["card"] = KIND_CHECKERS[KIND_GGUF](payload.path).card
                trial_load_gguf(payload.path)
            elif payload.entry.kind == "onnx_backbone":
                _decide_backbone(payload)
        except VitalError as exc:
            raise BundleRefused("content", f"entry {payload.entry.id!r} ({payload.entry.name}): "
                                           f"{exc.message}") from exc


def _decide_backbone(payload: CheckedPayload) -> None:
    """Run a backbone payload in the sandbox, then observe it once here; `trust.decide_backbone` decides."""
    from vital_desktop.bundles.trust import BackboneTrial, decide_backbone
    from vital_desktop.inference.backbone import observe_backbone
    from vital_desktop.inference.sandbox import trial_run_onnx

    sandbox_error = None
    try:
        trial_run_onnx(payload.path)  # custom-domain ops and memory bombs refused in a capped child first
    except VitalError as exc:
        sandbox_error = exc.message
    seen = observe_backbone(payload.path) if sandbox_error is None else {}
    decide_backbone(BackboneTrial(
        entry=payload.entry.id, sandbox_error=sandbox_error, problem=seen.get("problem"),
        input_shape=tuple(seen.get("input_shape", ())), channels=int(seen.get("channels", 0)),
        output_shape=seen.get("output_shape"), output_finite=bool(seen.get("output_finite", True))))


def _place_model_files(store: Store, payloads: list[CheckedPayload]) -> dict[str, Path]:
    """Model files go to `models/` under their SHA-256 before the transaction (atomic rename).

    Content-addressed names mean a crash before commit leaves at most an unreferenced file that
    a later import of the same model reuses; the store never references a missing file.
    """
    placed = {}
    for payload in payloads:
        if payload.entry.kind not in REGISTRY_KIND:
            continue
        suffix = ".gguf" if payload.entry.kind == "gguf_model" else ".onnx"
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
        row = exchange_channel.require_unmoved(s, manifest)
        applier = APPLIERS[manifest.channel]
        summary, changes = applier(s, actor, evaluation, model_files)
        s.add(_ledger_row(evaluation, actor, "accepted", "", {"summary": summary,
                                                              "signers": sorted(evaluation.signed.signers)}))
        exchange_channel.advance(s, row, manifest.channel, epoch=manifest.epoch, sequence=manifest.sequence,
                                 issued_at=_ts(manifest.issued_at), bundle_id=manifest.bundle_id,
                                 manifest_sha256=evaluation.signed.manifest_sha256)
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
REGISTRY_KIND = {"onnx_model": "onnx_classifier", "gguf_model": "gguf", "onnx_backbone": "onnx_backbone"}


def _apply_models(s: Session, actor: User, evaluation: Evaluation,
                  model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    by_id = {p.entry.id: p for p in evaluation.payloads}
    added, unchanged = [], []
    for payload in evaluation.payloads:
        if payload.entry.kind not in REGISTRY_KIND:
            continue
        # What the file itself declares (a GGUF's header facts) wins over what the hub's card says.
        card = _json_payload(by_id[str(payload.entry.meta["card"])]) | payload.info.get("card", {})
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


def _template_fields(doc: dict[str, Any]) -> dict[str, Any]:
    return {"label_type": doc["label_type"], "description": doc.get("description", ""),
            "system_prompt": doc["system_prompt"], "user_prompt": doc["user_prompt"],
            "input_schema": doc["input_schema"], "output_schema": doc["output_schema"],
            "few_shot": doc.get("few_shot", []), "model_ref": doc.get("model_ref", {}), "notes": doc.get("notes", "")}


def _same_template(existing: Template, doc: dict[str, Any]) -> bool:
    return existing.status == "published" and all(
        canonical.dumps(getattr(existing, k)) == canonical.dumps(v) for k, v in _template_fields(doc).items())


def _apply_templates(s: Session, actor: User, evaluation: Evaluation,
                     model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    added, unchanged = [], []
    for payload in evaluation.payloads:
        doc = _json_payload(payload)
        fields = _template_fields(doc)
        existing = s.scalar(sa.select(Template).where(Template.name == doc["name"], Template.version == doc["version"]))
        if existing is not None:
            if not _same_template(existing, doc):
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


def _apply_taxonomy(s: Session, actor: User, evaluation: Evaluation,
                    model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    """Hub label-type versions: new ones published; one that disagrees with a local edit is held
    for review beside it (never overwriting the site's change)."""
    from vital_desktop.services import label_type_edits

    outcomes: dict[str, list[str]] = {"added": [], "unchanged": [], "stale": [], "review": []}
    for payload in evaluation.payloads:
        doc = _json_payload(payload)
        try:
            outcome = label_type_edits.apply_hub_version(s, actor, doc)
        except VitalError as exc:
            raise BundleRefused("content", f"label type in {payload.entry.name}: {exc.message}") from exc
        outcomes[outcome].append(f"{doc['name']}@{doc['version']}")
    return ({f"label_types_{k}": v for k, v in outcomes.items()},
            Changes(label_types=bool(outcomes["added"] or outcomes["review"])))


def _refuse_app(s: Session, actor: User, evaluation: Evaluation,
                model_files: dict[str, Path]) -> tuple[dict[str, Any], Changes]:
    """An application update is not store content: `services.app_update` installs it."""
    raise BundleRefused("app_bundle", "this is an application update: install it with `vital app update FILE` "
                                      "(or the Bundles page's application section), not as a bundle import")


APPLIERS: dict[str, Callable[[Session, User, Evaluation, dict[str, Path]], tuple[dict[str, Any], Changes]]] = {
    "models": _apply_models,
    "templates": _apply_templates,
    "labels": _apply_labels,
    "truststore": _apply_truststore,
    "config": _apply_config,
    "taxonomy": _apply_taxonomy,
    "app": _refuse_app,
}


__all__ = [
    "CLOCK_SKEW_SECONDS", "ExportResult", "ImportResult", "RootInfo", "ensure_site_identity", "export_bundle",
    "import_bundle", "install_root_of_trust", "ledger", "site_identity", "trust_status", "verify_bundle",
]
