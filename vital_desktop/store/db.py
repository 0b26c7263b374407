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

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_LOCK_RE = re.compile(r"(PID \d+)", re.IGNORECASE)


def _raise_lock_error(path: Path, exc: Exception) -> None:
    text = str(exc)
    if "lock" in text.lower():
        holder = _LOCK_RE.search(text)
        who = f" by another process ({holder.group(1)})" if holder else " by another process"
        raise StoreLockedError(
            f"The site store {path} is in use{who}. Close the other VITAL window or command and try again.",
            details={"store": str(path)},
        ) from exc
    raise VitalError(f"Cannot open the site store {path}: {text}") from exc


def make_engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"duckdb:///{path}", future=True)


def open_store(home: Path | str | None = None, *, create: bool = True, migrate: bool = True) -> Store:
    """Open (and if needed create and migrate) the store in `home`."""
    home = Path(home).expanduser() if home is not None else default_home()
    path = home / STORE_FILENAME
    if not path.exists() and not create:
        raise VitalError(f"No site store at {path}. Run `vital init` first.")
    home.mkdir(parents=True, exist_ok=True)
    import duckdb

    # Take DuckDB's file lock up front so a second process fails now, clearly, not later.
    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        _raise_lock_error(path, exc)
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
    return store


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
    """Remove files left in staging by an import or export that died half-way."""
    staging = store.home / "staging"
    if staging.is_dir():
        for child in staging.iterdir():
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
