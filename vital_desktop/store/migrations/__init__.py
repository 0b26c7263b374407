"""Forward-only schema migrations: numbered SQL files in this folder, applied in order.

`NNNN_description.sql` files hold plain DuckDB DDL separated by ``;`` at line ends. A
migration runs in one transaction together with its `schema_version` row, so a crash leaves
the file at the previous version. Never edit an applied migration; add a new one. DuckDB
cannot alter column types or drop/rename columns in place: such changes rebuild the table
(create new, copy, drop, rename) inside the migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import sqlalchemy as sa

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: str

    def statements(self) -> list[str]:
        return [s.strip() for s in re.split(r";\s*\n", self.sql + "\n") if s.strip() and not _only_comments(s)]


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())


def all_migrations() -> list[Migration]:
    found = []
    for entry in resources.files(__name__).iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2).replace("_", " "), entry.read_text("utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migration numbers must be 1..N without gaps, found {versions}")
    return found


def latest_version() -> int:
    return len(all_migrations())


def current_version(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        exists = conn.exec_driver_sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).scalar()
        if not exists:
            return 0
        return int(conn.exec_driver_sql("SELECT coalesce(max(version), 0) FROM schema_version").scalar() or 0)


def apply_pending(engine: sa.Engine, current: int, *, upto: int | None = None) -> int:
    """Apply migrations after `current` (up to `upto`, for tests that build old files)."""
    version = current
    for migration in all_migrations():
        if migration.version <= current or (upto is not None and migration.version > upto):
            continue
        with engine.begin() as conn:
            for statement in migration.statements():
                conn.exec_driver_sql(statement)
            conn.execute(
                sa.text("INSERT INTO schema_version (version, description, applied_at) VALUES (:v, :d, now())"),
                {"v": migration.version, "d": migration.description},
            )
        version = migration.version
    return version
