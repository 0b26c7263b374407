"""Opening the site store: one DuckDB file, SQLAlchemy 2 engine, forward-only migrations.

`open_store(home)` resolves the site folder (``--home`` > ``VITAL_HOME`` > platformdirs),
takes DuckDB's file lock (a second process gets `StoreLockedError` naming the file and the
holder), copies the file aside before any migration, and applies pending migrations.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from vital_desktop.core.errors import StoreLockedError, VitalError
from vital_desktop.store import migrations

STORE_FILENAME = "site.duckdb"
#: Who holds the store right now (pid, what, since): lets a starting app say what it waits for.
HOLDER_FILENAME = "store-holder.json"


def default_home() -> Path:
    """The site folder: ``VITAL_HOME`` if set, else the platform's user data directory."""
    env = os.environ.get("VITAL_HOME")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("vital-desktop", "VITAL"))


@dataclass(frozen=True)
class MigrationReport:
    from_version: int
    to_version: int
    backup_path: Path | None


class Store:
    """The open site store. Use `session()` for a unit of work (commits on success).

    One writer lock serialises write transactions from this process: DuckDB refuses
    concurrent updates of the same row ("Conflict on update"), and a desktop app has few
    writers, so serialising is simpler and safer than retrying.
    """

    def __init__(self, home: Path, engine: sa.Engine, migration: MigrationReport) -> None:
        self.home = home
        self.path = home / STORE_FILENAME
        self.engine = engine
        self.migration = migration
        self._sessionmaker = sessionmaker(bind=engine, expire_on_commit=False)
        self.write_lock = threading.RLock()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any exception."""
        with self.write_lock:
            session = self._sessionmaker()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading only (never commits)."""
        session = self._sessionmaker()
        try:
            yield session
        finally:
            # close() ends the transaction without expiring loaded objects (rollback would).
            session.close()

    @property
    def staging_dir(self) -> Path:
        path = self.home / "staging"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def models_dir(self) -> Path:
        path = self.home / "models"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def set_engine_threads(self, threads: int) -> None:
        """How many threads DuckDB runs a query on, the asking thread included (the whole database)."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f"SET threads = {max(1, int(threads))}")

    def close(self) -> None:
        self.engine.dispose()
        _clear_holder(self.home)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCK_RE = re.compile(r"(PID \d+)", re.IGNORECASE)


def _raise_lock_error(path: Path, exc: Exception) -> None:
    text = str(exc)
    if "lock" in text.lower():
        holder = _LOCK_RE.search(text)
        described = describe_holder(path.parent)
        who = (f" by {described}" if described else
               f" by another process ({holder.group(1)})" if holder else " by another process")
        raise StoreLockedError(
            f"The site store {path} is in use{who}. Close the other VITAL window or command and try again.",
            details={"store": str(path)},
        ) from exc
    raise VitalError(f"Cannot open the site store {path}: {text}") from exc


def restrict_permissions(home: Path) -> None:
    """The site folder 0700 and the store file (and its WAL and backups) 0600: owner-only.

    Applied at every open, so a store made by an older version (0644) is tightened too.
    """
    try:
        if home.stat().st_uid != os.getuid():
            return
        os.chmod(home, 0o700)
        for child in home.glob(f"{STORE_FILENAME.split('.')[0]}*"):
            if child.is_file() and not child.is_symlink():
                os.chmod(child, 0o600)
    except (OSError, AttributeError):  # AttributeError: no getuid on Windows (ACLs apply there)
        pass


def make_engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{path}", future=True)


def open_store(
    home: Path | str | None = None, *, create: bool = True, migrate: bool = True, holder: str | None = None
) -> Store:
    """Open (and if needed create and migrate) the store in `home`.

    `holder` names this process's use of the store ("desktop app", "vital train …") in the
    site's holder file while it is open, so another process that finds the store locked can
    say what it is waiting for (`describe_holder`).
    """
    home = Path(home).expanduser() if home is not None else default_home()
    path = home / STORE_FILENAME
    if not path.exists() and not create:
        raise VitalError(f"No site store at {path}. Run `vital init` first.")
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    import duckdb

    # Take DuckDB's file lock up front so a second process fails now, clearly, not later.
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        _raise_lock_error(path, exc)
    restrict_permissions(home)
    engine = make_engine(path)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - re-raised as a clear error
        engine.dispose()
        _raise_lock_error(path, exc)
    report = MigrationReport(0, 0, None)
    if migrate:
        try:
            report = _migrate(engine, path)
        except BaseException:
            engine.dispose()
            raise
    store = Store(home, engine, report)
    _clean_staging(store)
    _write_holder(home, holder or "a VITAL process")
    return store


def _write_holder(home: Path, what: str) -> None:
    import json
    from datetime import UTC, datetime

    info = {"pid": os.getpid(), "what": what, "since": datetime.now(UTC).isoformat(timespec="seconds")}
    tmp = home / f".{HOLDER_FILENAME}.{os.getpid()}.tmp"
    try:
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, home / HOLDER_FILENAME)
    except OSError:
        tmp.unlink(missing_ok=True)


def _clear_holder(home: Path) -> None:
    import json

    path = home / HOLDER_FILENAME
    try:
        if json.loads(path.read_text("utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def describe_holder(home: Path | str) -> str | None:
    """'vital train --sheet S (process 4121, since 10:02:11 UTC)', or None if nobody live holds it."""
    import json

    try:
        info = json.loads((Path(home) / HOLDER_FILENAME).read_text("utf-8"))
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    since = str(info.get("since", ""))
    return f"{info.get('what', 'a VITAL process')} (process {pid}, since {since.replace('T', ' ')})"


def _migrate(engine: sa.Engine, path: Path) -> MigrationReport:
    current = migrations.current_version(engine)
    target = migrations.latest_version()
    if current > target:
        raise VitalError(
            f"The site store {path} has schema version {current}, newer than this app knows ({target}). "
            "Install the newer VITAL Desktop."
        )
    if current == target:
        return MigrationReport(current, current, None)
    backup = None
    if current > 0:
        # Copy the file aside before touching it: a failed migration can be undone by hand.
        with engine.connect() as conn:
            conn.exec_driver_sql("CHECKPOINT")
        engine.dispose()
        backup = path.with_name(f"{path.stem}.v{current}.bak{path.suffix}")
        shutil.copy2(path, backup)
    migrations.apply_pending(engine, current)
    return MigrationReport(current, target, backup)


def _clean_staging(store: Store) -> None:
    """Remove files left in staging by an import or export that died half-way, and the
    half-copied model files (``models/.*.part``) of an import killed before its rename."""
    models = store.home / "models"
    if models.is_dir():
        for leftover in models.glob(".*.part"):
            if leftover.is_file() and not leftover.is_symlink():
                leftover.unlink(missing_ok=True)
    staging = store.home / "staging"
    if staging.is_dir():
        for child in staging.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
