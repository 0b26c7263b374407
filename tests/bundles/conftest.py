"""Fixtures for bundle tests: a small site that trusts a simulated hub, and refusal helpers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.simulator import NOW, HubSimulator

#: Tables a refusal may write to: the ledger row and (for alarms) the audit log.
REFUSAL_TABLES = {"bundle_ledger", "audit_log"}


@dataclass
class BundleSite:
    store: object
    admin: object
    hub: HubSimulator
    small: object

    def snapshot(self) -> dict:
        tables = {k: v for k, v in snapshot_tables(self.store).items() if k not in REFUSAL_TABLES}
        # The audit log's head pointer moves with the audit log (alarms), nothing else may.
        tables["settings"] = [row for row in tables.get("settings", []) if row[0] != "'audit_head'"]
        return tables

    def import_(self, path: Path, now: int = NOW):
        from vital_desktop.services import exchange

        return exchange.import_bundle(self.store, actor=self.admin, path=path, now=now)

    def refused(self, path: Path, code: str | tuple[str, ...], now: int = NOW) -> BundleRefused:
        """Import must be refused with `code`, change nothing but the ledger, and record the refusal."""
        from vital_desktop.services import exchange

        codes = (code,) if isinstance(code, str) else code
        before = self.snapshot()
        ledger_before = len(exchange.ledger(self.store, limit=10_000))
        with pytest.raises(BundleRefused) as caught:
            exchange.import_bundle(self.store, actor=self.admin, path=path, now=now)
        assert caught.value.code in codes, caught.value.message
        assert self.snapshot() == before
        rows = exchange.ledger(self.store, limit=10_000)
        assert len(rows) == ledger_before + 1
        assert rows[0]["outcome"] == "refused" and rows[0]["code"] == caught.value.code
        return caught.value


@pytest.fixture(scope="session")
def hub_keys():
    from vital_desktop.bundles.simulator import HubKeys

    return HubKeys.generate()


@pytest.fixture(scope="session")
def bundle_site_template(tmp_path_factory, hub_keys) -> Path:
    """A site trusting the simulated hub: users, one 12-item sheet, site id, key, root (built once)."""
    from tests.conftest import PASSWORDS, ROLES, write_small_dataset
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, exchange, sheets
    from vital_desktop.store import audit, open_store
    from vital_desktop.store.models import Setting

    base = tmp_path_factory.mktemp("bundle-site")
    images, metadata = write_small_dataset(base / "data")
    home = base / "home"
    store = open_store(home)
    try:
        for name in ("admin", "engineer"):
            accounts.add_user(store, actor=SYSTEM_USER, username=name, password=PASSWORDS[name], role=ROLES[name])
        from vital_desktop.services.demo_site import seed_demo_label_types

        seed_demo_label_types(store)
        sheets.import_sheet(store, actor=accounts.get_user(store, "engineer"), name="Crystals", metadata_path=metadata,
                            key_column="inspection_id", image_root=images, image_column="image_path")
        with store.session() as s:
            s.add(Setting(key="site_id", value="site-a"))
            audit.record(s, SYSTEM_USER, "test.site_id", "site-a")
        exchange.ensure_site_identity(store, "site-a")
        hub = HubSimulator(base / "hub", site_id="site-a", keys=hub_keys)
        exchange.install_root_of_trust(store, hub.root_file(1), now=NOW)
    finally:
        store.close()
    return home


@dataclass
class _Users:
    users: dict

    def user(self, name: str):
        return self.users[name]


@pytest.fixture
def bundle_site(bundle_site_template: Path, tmp_path: Path, hub_keys) -> BundleSite:
    import shutil

    from vital_desktop.services import accounts
    from vital_desktop.store import open_store

    home = tmp_path / "home"
    shutil.copytree(bundle_site_template, home)
    store = open_store(home)
    users = {name: accounts.get_user(store, name) for name in ("admin", "engineer")}
    hub = HubSimulator(tmp_path / "stick", site_id="site-a", keys=hub_keys)
    yield BundleSite(store, users["admin"], hub, _Users(users))
    store.close()
