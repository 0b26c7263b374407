"""The site store: migrations, schema/model agreement, the cross-process lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from vital_desktop.core.errors import StoreLockedError
from vital_desktop.store import migrations, open_store
from vital_desktop.store.db import STORE_FILENAME, make_engine
from vital_desktop.store.models import Base


def test_fresh_store_is_at_latest_version(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert migrations.current_version(store.engine) == migrations.latest_version()
    assert store.migration.backup_path is None
    store.close()


def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with store.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            columns = {r[0] for r in conn.exec_driver_sql(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", (table.name,))}
            assert columns == {c.name for c in table.columns}, f"table {table.name} differs from its model"
    store.close()


def test_old_version_file_is_migrated_with_a_backup_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / STORE_FILENAME
    engine = make_engine(path)
    assert migrations.apply_pending(engine, 0, upto=1) == 1
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO settings (key, value, updated_at) VALUES ('site_id', '\"old-site\"', now())")
        assert conn.exec_driver_sql(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'monitor_alerts'").scalar() == 0
    engine.dispose()

    store = open_store(tmp_path)
    assert store.migration.from_version == 1
    assert store.migration.to_version == migrations.latest_version()
    assert store.migration.backup_path is not None and store.migration.backup_path.exists()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT value FROM settings WHERE key = 'site_id'").scalar() in ('"old-site"', 'old-site')
        conn.exec_driver_sql("SELECT count(*) FROM monitor_alerts").scalar()
    store.close()
    # The backup is the untouched version-1 file.
    backup_engine = make_engine(store.migration.backup_path)
    assert migrations.current_version(backup_engine) == 1
    backup_engine.dispose()


def test_a_newer_store_is_refused(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO schema_version VALUES (999, 'from the future', now())"))
    store.close()
    with pytest.raises(Exception, match="newer than this app knows"):
        open_store(tmp_path)


def test_second_process_gets_a_clear_lock_error(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    code = (
        "import sys\n"
        "from vital_desktop.store import open_store\n"
        "from vital_desktop.core.errors import StoreLockedError\n"
        f"try:\n    open_store({str(tmp_path)!r})\n"
        "except StoreLockedError as e:\n    print(e); sys.exit(7)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    store.close()
    assert result.returncode == 7, result.stderr
    assert str(tmp_path / STORE_FILENAME) in result.stdout
    assert "in use" in result.stdout
    assert issubclass(StoreLockedError, Exception)


def test_failed_transaction_leaves_nothing(tmp_path: Path) -> None:
    from vital_desktop.store.models import Setting

    store = open_store(tmp_path)
    with pytest.raises(RuntimeError), store.session() as s:
        s.add(Setting(key="k", value=1))
        s.flush()
        raise RuntimeError("boom")
    with store.read() as s:
        assert s.get(Setting, "k") is None
    store.close()


def test_packaged_demo_root_matches_the_demo_bundles() -> None:
    root = Path(__file__).resolve().parents[2]
    assert (root / "bundles/demo/root.json").read_bytes() == (
        root / "vital_desktop/resources/trust/demo-root.json").read_bytes(), \
        "re-run bundles/make_demo_bundles.py and copy bundles/demo/root.json to vital_desktop/resources/trust/"
