"""Bulk paths: Arrow tables inserted with one `INSERT … SELECT` inside the caller's transaction.

The ORM inserts ~10k rows/s on DuckDB; registering a pyarrow table and inserting from it runs
at ~300k rows/s (shared/STACK-NOTES.md). Both run in the same transaction as the session.
"""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

_counter = itertools.count()


def raw_connection(session: Session) -> Any:
    """The DuckDB connection under the session's current transaction."""
    return session.connection().connection.driver_connection


def insert_arrow(session: Session, table: str, data: pa.Table, casts: dict[str, str] | None = None) -> int:
    """Insert every row of `data` into `table` (columns by name); `casts` maps column → SQL type."""
    if data.num_rows == 0:
        return 0
    session.flush()
    raw = raw_connection(session)
    view = f"_arrow_in_{next(_counter)}"
    casts = casts or {}
    columns = data.column_names
    select = ", ".join(f"CAST({c} AS {casts[c]})" if c in casts else c for c in columns)
    raw.register(view, data)
    try:
        raw.execute(f"INSERT INTO {table} ({', '.join(columns)}) SELECT {select} FROM {view}")
    finally:
        raw.unregister(view)
    return data.num_rows


def query_arrow(session: Session, sql: str, params: list | None = None) -> pa.Table:
    """Run SQL on the session's connection and return an Arrow table."""
    session.flush()
    return raw_connection(session).sql(sql, params=params or None).to_arrow_table()
