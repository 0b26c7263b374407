"""`vital init` needs an administrator on an existing site; the demo never enters a real site."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.core.errors import PermissionDenied
from vital_desktop.services import accounts, site
from vital_desktop.store import open_store


def _real_site(tmp_path):
    home = tmp_path / "real"
    site.init_site(home, site_id="plant-7", admin=("boss", "boss-password-1"))
    return home


def _snapshot(home):
    store = open_store(home)
    try:
        return snapshot_tables(store)
    finally:
        store.close()


def test_init_admin_on_an_existing_site_needs_an_admin_sign_in(tmp_path) -> None:
    home = _real_site(tmp_path)
    before = _snapshot(home)
    with pytest.raises(PermissionDenied, match="sign in as an administrator"):
        site.init_site(home, admin=("mallory", "mallory-password-1"))
    assert _snapshot(home) == before
    store = open_store(home)
    accounts.add_user(store, actor=accounts.get_user(store, "boss"), username="eng", password="engineer-pass-1",
                      role="engineer")
    store.close()
    before = _snapshot(home)
    with pytest.raises(PermissionDenied):  # an engineer is not enough
        site.init_site(home, admin=("mallory", "mallory-password-1"),
                       sign_in=lambda s: accounts.authenticate(s, "eng", "engineer-pass-1"))
    assert _snapshot(home) == before
    report = site.init_site(home, admin=("second", "second-admin-pass"),
                            sign_in=lambda s: accounts.authenticate(s, "boss", "boss-password-1"))
    assert "admin user second" in report.steps


def test_init_demo_on_a_real_site_installs_neither_demo_root_nor_demo_users(tmp_path) -> None:
    home = _real_site(tmp_path)
    before = _snapshot(home)
    for sign_in in (None, lambda s: accounts.authenticate(s, "boss", "boss-password-1")):
        with pytest.raises(PermissionDenied, match="real site"):
            site.init_site(home, demo=True, sign_in=sign_in)
    assert _snapshot(home) == before
    store = open_store(home)
    try:
        assert [u.username for u in accounts.list_users(store)] == ["boss"]
        assert site.get_setting(store, "trust.root") is None
    finally:
        store.close()


def test_init_demo_on_a_store_without_a_site_id_is_refused(small_site) -> None:
    """A store that exists (users, a sheet) but was never initialised is not a demo store either."""
    small_site.store.close()
    before = _snapshot(small_site.home)
    with pytest.raises(PermissionDenied, match="real site"):
        site.init_site(small_site.home, demo=True)
    assert _snapshot(small_site.home) == before
    small_site.store = open_store(small_site.home)


def test_rerunning_init_that_changes_nothing_needs_no_sign_in(tmp_path) -> None:
    home = _real_site(tmp_path)
    before = _snapshot(home)
    report = site.init_site(home)
    assert report.created is False and _snapshot(home) == before


def test_the_cli_init_admin_on_an_existing_site_needs_sign_in(small_site, monkeypatch, capsys) -> None:
    from vital_desktop.cli import main

    small_site.store.close()
    home = str(small_site.home)
    monkeypatch.delenv("VITAL_USER", raising=False)
    monkeypatch.setenv("VITAL_PASSWORD", "mallory-password-1")
    before = _snapshot(small_site.home)
    assert main(["--home", home, "init", "--admin", "mallory"]) == 4
    assert "administrator" in capsys.readouterr().err
    assert _snapshot(small_site.home) == before
    monkeypatch.setenv("VITAL_USER", "admin")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["admin"])
    monkeypatch.setenv("NEW_USER_PASSWORD", "second-admin-pass")
    assert main(["--home", home, "init", "--admin", "second"]) == 0
    small_site.store = open_store(small_site.home)
    assert "second" in [u.username for u in accounts.list_users(small_site.store)]
