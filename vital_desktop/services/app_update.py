"""Updating the application itself through the signed bundle channel ``app``.

An installed copy lives in one folder (the *app root*, `installer/install.sh` makes it):

    versions/<version>/     each version unpacked whole, beside the others (never over one)
    current                 pointer file: the version the launcher starts (replaced atomically)
    previous                pointer file: the version before it (for `vital app rollback`)
    pending.json            an update unpacked and waiting for the next start
    last-update.json        what the launcher did last (switched, or rolled back and why)
    bin/vital, bin/vital-desktop   the launcher (installer/linux/vital-launcher.sh)

`update_app` verifies (signatures, `bundles.trust.decide` and `decide_app_update`: two
release-channel signatures, this platform, a newer version; then the SBOM and every archive
member), unpacks into ``versions/<version>/`` and writes ``pending.json``; nothing the running
version uses is touched. At the next start the launcher calls `finish_pending` in the CURRENT
(known good) version: it backs up the site store, runs the new version's ``vital self-check``
(imports, the store migrated on a copy, the active models load), and only if that passes
switches ``current``; otherwise it leaves ``current`` as it was (the update is rolled back)
and says why. The bundle ledger and the audit log record every step: staged, switched or
rolled back, and manual rollbacks.
"""

from __future__ import annotations

import json
import logging
import os
import platform as _platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from vital_desktop import __version__ as APP_VERSION
from vital_desktop.bundles.app_release import extract_release, sbom_archive_hashes
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.pipeline import SignedBundle
from vital_desktop.bundles.trust import (
    APP_CHANNEL,
    Check,
    Decision,
    InstalledApp,
    Root,
    check_app_sbom,
    decide_app_update,
)
from vital_desktop.core.errors import ValidationError, VitalError
from vital_desktop.core.ids import new_id
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.services import exchange, exchange_channel
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import STORE_FILENAME, Store
from vital_desktop.store.models import BundleLedgerEntry

VERSIONS_DIR = "versions"
CURRENT_FILE = "current"
PREVIOUS_FILE = "previous"
PENDING_FILE = "pending.json"
LAST_FILE = "last-update.json"
#: Store backups made before a new version's migrations (in the site folder, beside the store).
BACKUPS_DIR = "backups"
#: The launcher waits this long for a new version's self-check.
SELF_CHECK_TIMEOUT_S = 600
APP_ROOT_ENV = "VITAL_APP_ROOT"

log = logging.getLogger(__name__)


def platform_tag() -> str:
    """This computer's release platform (``linux-x86_64``), named as `installer/package.py` names archives."""
    system = {"linux": "linux", "win32": "windows", "darwin": "macos"}.get(sys.platform, sys.platform)
    return f"{system}-{_platform.machine().lower().replace('amd64', 'x86_64')}"


def write_pointer(path: Path, text: str) -> None:
    """Replace a small file atomically (temp file, fsync, rename): a reader sees old or new, never half."""
    temp = path.with_name(f".{path.name}.{new_id()[:8]}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)


@dataclass(frozen=True)
class AppInstall:
    """An installed copy's app root (see the module docstring for its layout)."""

    root: Path
    platform: str = ""

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS_DIR

    def version_dir(self, version: str) -> Path:
        return self.versions_dir / version

    def _read(self, name: str) -> str | None:
        path = self.root / name
        text = path.read_text("utf-8").strip() if path.is_file() else ""
        return text or None

    def current(self) -> str | None:
        return self._read(CURRENT_FILE)

    def previous(self) -> str | None:
        return self._read(PREVIOUS_FILE)

    def pending(self) -> dict[str, Any] | None:
        text = self._read(PENDING_FILE)
        return json.loads(text) if text else None

    def last(self) -> dict[str, Any] | None:
        text = self._read(LAST_FILE)
        return json.loads(text) if text else None

    def installed(self) -> InstalledApp:
        return InstalledApp(self.current() or APP_VERSION, self.platform or platform_tag())

    def versions(self) -> list[str]:
        from vital_desktop.bundles.trust import parse_version

        if not self.versions_dir.is_dir():
            return []
        names = [p.name for p in self.versions_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(names, key=parse_version)


def resolve_install(explicit: Path | str | None = None) -> AppInstall:
    """The app root: `explicit`, else ``VITAL_APP_ROOT``, else the folder a frozen app runs from."""
    if explicit is None and os.environ.get(APP_ROOT_ENV):
        explicit = os.environ[APP_ROOT_ENV]
    if explicit is None and getattr(sys, "frozen", False):
        here = Path(sys.executable).resolve().parent
        if here.parent.name == VERSIONS_DIR:
            explicit = here.parent.parent
    if explicit is None:
        raise ValidationError("this VITAL Desktop is not an installed copy (it does not run from "
                              f"versions/<version>/): pass --app-root DIR or set {APP_ROOT_ENV}")
    root = Path(explicit).expanduser().resolve()
    if not root.is_dir():
        raise ValidationError(f"the app root {root} does not exist")
    return AppInstall(root)


# --- verify and stage -------------------------------------------------------------------------------


def _refiner(install: AppInstall, now: int) -> exchange.Refine:
    def refine(root: Root, signed: SignedBundle, decision: Decision) -> Decision:
        return decide_app_update(root, signed.manifest, set(signed.signers), decision, install.installed(), now)

    return refine


def _evaluate(store: Store, path: Path, install: AppInstall, work: Path, now: int,
              progress: Progress) -> exchange.Evaluation:
    evaluation = exchange._evaluate(store, path, work, now, progress, refine=_refiner(install, now))
    if evaluation.refusal is None and evaluation.signed is not None and evaluation.decision is not None \
            and evaluation.decision.outcome == "accept":
        sboms = [p for p in evaluation.payloads if p.entry.kind == "app_sbom"]
        hashes = sbom_archive_hashes(sboms[0].json) if sboms else None
        check = check_app_sbom(evaluation.signed.manifest, hashes)
        evaluation.checks.append(check)
        if not check.ok:
            evaluation.refusal = BundleRefused(check.code, check.message)
    if evaluation.refusal is None and evaluation.signed is not None \
            and evaluation.signed.manifest.channel != APP_CHANNEL:
        evaluation.refusal = BundleRefused("not_app", f"this is a {evaluation.signed.manifest.channel} bundle, "
                                                      "not an application update: use `vital bundle import`")
        evaluation.checks.append(Check("channel", False, "not_app", evaluation.refusal.message))
    return evaluation


def verify_app_bundle(store: Store, path: Path | str, *, install: AppInstall, now: int | None = None) -> dict[str, Any]:
    """Every check an update would make, without unpacking or writing anything."""
    work = exchange._work_dir(store, "app-verify")
    try:
        evaluation = _evaluate(store, Path(path), install, work, exchange._now(now), Progress())
        return {**evaluation.report(), "installed": install.installed().version, "platform": install.installed().platform}
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass(frozen=True)
class AppUpdateResult:
    outcome: str  # staged | already_imported
    version: str
    from_version: str
    bundle_id: str
    path: str
    checks: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _place(install: AppInstall, archive: Path, version: str, top: str) -> Path:
    """Unpack beside the other versions: into a hidden staging folder, then one rename."""
    install.versions_dir.mkdir(parents=True, exist_ok=True)
    final = install.version_dir(version)
    if final.exists():
        if version in (install.current(), install.previous()):
            raise BundleRefused("app_exists", f"version {version} is already installed in {final}")
        shutil.rmtree(final)  # a copy left by an update that never switched
    staging = install.versions_dir / f".unpack-{new_id()[:12]}"
    staging.mkdir()
    try:
        unpacked = extract_release(archive, staging, top)
        os.replace(unpacked, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _ledger_step(s: Any, actor: User | str, *, version: str, outcome: str, reason: str, details: dict[str, Any],
                 bundle_id: str | None = None) -> None:
    """One row of the bundle ledger for a step after the bundle was accepted (switched, rolled back)."""
    s.add(BundleLedgerEntry(bundle_id=bundle_id, direction="hub_to_site", channel=APP_CHANNEL, outcome=outcome,
                            reason=reason[:2000], details={"version": version, **details},
                            acted_by=actor if isinstance(actor, str) else actor.username))


def update_app(store: Store, *, actor: User, path: Path | str, install: AppInstall, now: int | None = None,
               progress: Progress | None = None) -> AppUpdateResult:
    """Verify an application update and unpack it beside the installed version, for the next start."""
    require(actor, "import_bundle")
    now = exchange._now(now)
    progress = progress or Progress()
    pending = install.pending()
    if pending is not None:
        raise ValidationError(f"version {pending.get('version')} is already waiting for the next start; start the "
                              "app once (or remove pending.json) before staging another update")
    from_version = install.installed().version
    work = exchange._work_dir(store, "app-update")
    try:
        evaluation = _evaluate(store, Path(path), install, work, now, progress)
        if evaluation.refusal is not None:
            exchange._record_refusal(store, actor, evaluation, evaluation.refusal)
            raise evaluation.refusal
        assert evaluation.signed is not None and evaluation.decision is not None
        manifest = evaluation.signed.manifest
        entries = [e for e in manifest.entries if e.kind == "app_release"]
        version = str(entries[0].meta.get("version", "")) if entries else ""
        if evaluation.decision.outcome == "already_imported":
            return AppUpdateResult("already_imported", version, from_version, manifest.bundle_id, "",
                                   [c.to_dict() for c in evaluation.checks])
        [release] = [p for p in evaluation.payloads if p.entry.kind == "app_release"]
        try:
            placed = _place(install, release.path, version, str(release.info["top"]))
        except BundleRefused as exc:
            exchange._record_refusal(store, actor, evaluation, exc)
            raise
        except OSError as exc:
            refusal = BundleRefused("io", f"cannot unpack into {install.versions_dir}: {exc.strerror or exc} "
                                          "(is there room?)")
            exchange._record_refusal(store, actor, evaluation, refusal)
            raise refusal from exc
        pending_doc = {"version": version, "from": from_version, "bundle_id": manifest.bundle_id,
                       "manifest_sha256": evaluation.signed.manifest_sha256, "staged_at": now,
                       "staged_by": actor.username}
        try:
            with store.session() as s:
                row = exchange_channel.require_unmoved(s, manifest, "the app channel")
                summary = {"version": version, "from": from_version, "path": str(placed)}
                s.add(exchange._ledger_row(evaluation, actor, "accepted", "", {
                    "summary": summary, "step": "staged", "signers": sorted(evaluation.signed.signers)}))
                exchange_channel.advance(s, row, manifest.channel, epoch=manifest.epoch, sequence=manifest.sequence,
                                         issued_at=exchange._ts(manifest.issued_at), bundle_id=manifest.bundle_id,
                                         manifest_sha256=evaluation.signed.manifest_sha256)
                audit.record(s, actor, "app.update.staged", manifest.bundle_id, summary)
                s.flush()
                write_pointer(install.root / PENDING_FILE, json.dumps(pending_doc, indent=1))
        except BaseException:
            (install.root / PENDING_FILE).unlink(missing_ok=True)
            shutil.rmtree(placed, ignore_errors=True)
            raise
        return AppUpdateResult("staged", version, from_version, manifest.bundle_id, str(placed),
                               [c.to_dict() for c in evaluation.checks])
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- the launcher's step: back up, self-check, switch or roll back --------------------------------


def backup_store(home: Path, label: str) -> Path | None:
    """A consistent copy of the site store (checkpointed first) in ``backups/``; None if no store yet."""
    import duckdb

    source = home / STORE_FILENAME
    if not source.is_file():
        return None
    try:
        with duckdb.connect(str(source)) as conn:
            conn.execute("CHECKPOINT")
    except duckdb.Error as exc:
        raise VitalError(f"the site store {source} cannot be opened to back it up (is the app running?): "
                         f"{str(exc)[:200]}") from exc
    folder = home / BACKUPS_DIR
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"site-before-{label}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.duckdb"
    temp = target.with_name(f".{target.name}.part")
    shutil.copy2(source, temp)
    os.chmod(temp, 0o600)
    os.replace(temp, target)
    return target


def restore_store(home: Path, backup: Path) -> Path:
    """Put a backup back as the site store (the store must be closed); the replaced file is kept aside."""
    import duckdb

    backup = Path(backup)
    if not backup.is_file():
        raise ValidationError(f"no store backup at {backup}")
    try:
        duckdb.connect(str(backup), read_only=True).close()
    except duckdb.Error as exc:
        raise ValidationError(f"{backup} is not a readable store backup: {exc}") from exc
    target = home / STORE_FILENAME
    aside = target.with_name(f"{target.stem}.replaced-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.duckdb")
    temp = target.with_name(f".{target.name}.restore")
    shutil.copy2(backup, temp)
    if target.exists():
        os.replace(target, aside)
    wal = target.with_name(target.name + ".wal")
    if wal.exists():
        os.replace(wal, aside.with_name(aside.name + ".wal"))
    os.replace(temp, target)
    return aside


def _executable(folder: Path) -> Path:
    return folder / ("vital.exe" if sys.platform == "win32" else "vital")


def run_self_check(folder: Path, home: Path, timeout: float = SELF_CHECK_TIMEOUT_S) -> tuple[bool, str]:
    """Run ``vital self-check`` of the version in `folder` against `home`: (passed, why)."""
    program = _executable(folder)
    if not program.is_file():
        return False, f"{program} is missing"
    env = {**os.environ, "VITAL_NO_BRIDGE": "1", "VITAL_HOME": str(home)}
    env.pop(APP_ROOT_ENV, None)
    try:
        done = subprocess.run([str(program), "--home", str(home), "--json", "self-check"], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return False, f"the self-check did not finish in {int(timeout)} s"
    except OSError as exc:
        return False, f"the new version does not start: {exc.strerror or exc}"
    if done.returncode == 0:
        try:
            if json.loads(done.stdout.strip().splitlines()[-1]).get("ok") is True:
                return True, "the self-check passed"
        except (ValueError, IndexError, AttributeError):
            pass
        return False, "the self-check printed no passing report"
    lines = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()]
    return False, (lines[-1][:500] if lines else f"the self-check exited with status {done.returncode}")


def _record_step(home: Path, *, action: str, version: str, outcome: str, reason: str,
                 details: dict[str, Any], bundle_id: str | None) -> str:
    """Ledger row and audit record of a launcher step, written by the current (known good) version;
    returns a warning when they could not be written (the step itself stands)."""
    from vital_desktop.store.db import open_store

    if not (home / STORE_FILENAME).is_file():
        return ""
    try:
        store = open_store(home, create=False, holder="vital launcher (app update)")
    except VitalError as exc:
        log.warning("could not record %s in the ledger and audit log: %s", action, exc.message)
        return f" (not recorded in the ledger: {exc.message})"
    try:
        with store.session() as s:
            _ledger_step(s, "launcher", version=version, outcome=outcome, reason=reason, details=details,
                         bundle_id=bundle_id)
            audit.record(s, "launcher", action, bundle_id or version, {"version": version, "reason": reason, **details})
    finally:
        store.close()
    return ""


def finish_pending(install: AppInstall, home: Path, *, timeout: float = SELF_CHECK_TIMEOUT_S) -> dict[str, Any]:
    """The launcher's step before starting: switch to a pending update only if its self-check passes."""
    pending = install.pending()
    current = install.current()
    if pending is None:
        return {"action": "none", "current": current, "text": f"no update waiting; starting {current}"}
    version = str(pending.get("version", ""))
    bundle_id = pending.get("bundle_id")
    folder = install.version_dir(version)
    backup = None
    try:
        backup = backup_store(home, version)
    except (OSError, VitalError) as exc:
        passed, why = False, f"the site store could not be backed up first ({exc}); the update waits"
    else:
        passed, why = run_self_check(folder, home, timeout) if folder.is_dir() else (False, f"{folder} is missing")
    details = {"from": current, "backup": str(backup) if backup else None}
    if passed:
        if current:
            write_pointer(install.root / PREVIOUS_FILE, current + "\n")
        write_pointer(install.root / CURRENT_FILE, version + "\n")
        (install.root / PENDING_FILE).unlink(missing_ok=True)
        result = {"action": "switched", "current": version, "previous": current, "reason": why, **details}
        text = f"updated to VITAL Desktop {version} (was {current}); store backup {backup}"
        text += _record_step(home, action="app.update.switched", version=version, outcome="switched", reason=why,
                     details=details, bundle_id=bundle_id)
    else:
        (install.root / PENDING_FILE).unlink(missing_ok=True)
        result = {"action": "rolled_back", "current": current, "failed": version, "reason": why, **details}
        text = (f"the update to VITAL Desktop {version} was rolled back: {why}. Still running {current}; "
                f"the unpacked copy stays in {folder} for diagnosis")
        text += _record_step(home, action="app.update.rolled_back", version=version, outcome="rolled_back", reason=why,
                     details=details, bundle_id=bundle_id)
    write_pointer(install.root / LAST_FILE, json.dumps({**result, "at": int(time.time())}, indent=1))
    return {**result, "text": text}


# --- versions and manual rollback -------------------------------------------------------------------


def app_versions(install: AppInstall) -> dict[str, Any]:
    """What is installed: every version folder, which is current, previous, pending, and the last step."""
    current, previous, pending = install.current(), install.previous(), install.pending()
    rows = [{"version": v, "current": v == current, "previous": v == previous,
             "pending": bool(pending and pending.get("version") == v), "path": str(install.version_dir(v))}
            for v in install.versions()]
    text = "\n".join(f"{'*' if r['current'] else ' '} {r['version']:<12}"
                     f"{' (previous)' if r['previous'] else ''}{' (waiting for the next start)' if r['pending'] else ''}"
                     for r in rows) or "no versions installed here"
    return {"app_root": str(install.root), "platform": install.installed().platform, "current": current,
            "previous": previous, "pending": pending, "last": install.last(), "versions": rows, "text": text}


def rollback(store: Store, *, actor: User, install: AppInstall) -> dict[str, Any]:
    """Point ``current`` back at the previous version (admin only); the next start runs it."""
    require(actor, "import_bundle")
    current, previous = install.current(), install.previous()
    if not previous or not install.version_dir(previous).is_dir():
        raise ValidationError("there is no previous version to roll back to")
    with store.session() as s:
        details = {"from": current, "to": previous}
        _ledger_step(s, actor, version=previous, outcome="rolled_back", reason="rolled back by an administrator",
                     details=details)
        audit.record(s, actor, "app.rollback", previous, details)
        s.flush()
        write_pointer(install.root / CURRENT_FILE, previous + "\n")
        if current:
            write_pointer(install.root / PREVIOUS_FILE, current + "\n")
    return {"current": previous, "previous": current,
            "text": f"the next start runs VITAL Desktop {previous} (was {current}); a store backup made before "
                    f"{current}'s migrations is in the site's backups/ folder (`vital app rollback --restore-store`)"}


def store_backups(home: Path) -> list[Path]:
    """The store backups made before updates, oldest first."""
    folder = home / BACKUPS_DIR
    return sorted(folder.glob("site-before-*.duckdb"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []


def ledger_rows(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    """The app channel's ledger rows, newest first (for `vital app versions` and the Bundles page)."""
    with store.read() as s:
        rows = s.scalars(sa.select(BundleLedgerEntry).where(BundleLedgerEntry.channel == APP_CHANNEL)
                         .order_by(BundleLedgerEntry.recorded_at.desc()).limit(limit)).all()
        return [{"at": str(r.recorded_at), "outcome": r.outcome, "reason": r.reason, "bundle_id": r.bundle_id,
                 "version": (r.details or {}).get("version") or (r.details or {}).get("summary", {}).get("version"),
                 "acted_by": r.acted_by} for r in rows]


def verify_here(store: Store, path: Path | str, *, now: int | None = None) -> dict[str, Any]:
    """`verify_app_bundle` against the copy that is running (for the Bundles page): a copy that is not
    installed (run from source) gets a refusal saying so instead of an exception."""
    try:
        install = resolve_install()
    except ValidationError as exc:
        report = exchange.verify_bundle(store, path, now=now)
        return {**report, "outcome": "refused", "code": "not_installed", "reason": exc.message}
    return verify_app_bundle(store, path, install=install, now=now)


def update_here(store: Store, *, actor: User, path: Path | str, progress: Progress | None = None) -> AppUpdateResult:
    """`update_app` for the copy that is running (the Bundles page)."""
    return update_app(store, actor=actor, path=path, install=resolve_install(), progress=progress)
