"""The site store: SQLAlchemy models over one DuckDB file, migrations, and the audit log."""

from vital_desktop.store.db import Store, default_home, open_store

__all__ = ["Store", "default_home", "open_store"]
