"""Accounts and sign-in: each weakness the security review found has a named test here."""

from __future__ import annotations

import dataclasses
import os
import stat

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.core.errors import ConflictError, PermissionDenied, ValidationError
from vital_desktop.core.users import Role, User
from vital_desktop.services import accounts, site


def test_a_forged_user_object_is_refused_by_services(small_site) -> None:
    real = small_site.user("admin")
    forged = User(id=real.id, username=real.username, role=Role.ADMIN)
    before = snapshot_tables(small_site.store)
    with pytest.raises(PermissionDenied, match="not signed in"):
        accounts.add_user(small_site.store, actor=forged, username="mallory", password="a-long-password-1",
                          role="admin")
    # A genuine inspector promoted by hand (dataclasses.replace keeps the old credential) fails too.
    promoted = dataclasses.replace(small_site.user("inspector"), role=Role.ADMIN)
    with pytest.raises(PermissionDenied, match="not signed in"):
        accounts.add_user(small_site.store, actor=promoted, username="mallory", password="a-long-password-1",
                          role="admin")
    assert snapshot_tables(small_site.store) == before


def test_the_acting_user_is_checked_against_the_accounts_table(small_site) -> None:
    from vital_desktop.services import labels

    inspector = small_site.user("inspector")
    accounts.set_active(small_site.store, actor=small_site.user("admin"), username="inspector", active=False)
    before = snapshot_tables(small_site.store)
    with pytest.raises(PermissionDenied, match="disabled"):
        labels.set_label(small_site.store, actor=inspector, sheet="Crystals", item_ref="INS-0001",
                         label_type="classification", label_data={"defect_type": "crack"})
    assert snapshot_tables(small_site.store) == before


@pytest.mark.parametrize("password, why", [
    (" " * 8, "at least"), (" " * 14, "whitespace"), ("\t\n \u00a0" * 4, "whitespace"), ("short-pw", "at least"),
    ("mallory-admin", "user name"),
])
def test_weak_passwords_are_refused(small_site, password: str, why: str) -> None:
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=why):
        accounts.add_user(small_site.store, actor=small_site.user("admin"),
                          username="mallory-admin" if why == "user name" else "mallory", password=password,
                          role="inspector")
    assert snapshot_tables(small_site.store) == before


def test_failed_logins_are_audited_and_throttled(small_site) -> None:
    store = small_site.store
    for _ in range(accounts.MAX_FAILED_LOGINS):
        with pytest.raises(PermissionDenied, match="wrong password"):
            accounts.authenticate(store, "engineer", "not-the-password")
    rows = [r for r in site.audit_log(store, limit=50) if r["target"] == "engineer"]
    assert [r["action"] for r in rows].count("auth.login_failed") == accounts.MAX_FAILED_LOGINS
    # Now even the right password is refused for a while...
    with pytest.raises(PermissionDenied, match="too many failed sign-ins"):
        accounts.authenticate(store, "engineer", PASSWORDS["engineer"])
    assert site.audit_log(store, limit=1)[0]["action"] == "auth.login_throttled"
    # ...until an administrator enables the account again.
    accounts.set_active(store, actor=small_site.user("admin"), username="engineer", active=True)
    assert accounts.authenticate(store, "engineer", PASSWORDS["engineer"]).username == "engineer"
    assert site.verify_audit(store).ok


def test_unknown_users_cost_one_scrypt_like_known_users(small_site, monkeypatch) -> None:
    """No timing oracle: every failure path derives exactly one scrypt key (a dummy one if unknown)."""
    accounts._dummy_hash()  # made once per process, not per sign-in
    calls: list[str] = []
    real = accounts.check_password

    def counting(password: str, stored: str) -> bool:
        calls.append(stored)
        return real(password, stored)

    monkeypatch.setattr(accounts, "check_password", counting)
    for name in ("engineer", "nobody-here"):
        with pytest.raises(PermissionDenied) as caught:
            accounts.authenticate(small_site.store, name, "not-the-password")
        assert caught.value.message == "unknown user or wrong password"
    assert len(calls) == 2 and calls[1] == accounts._dummy_hash()
    accounts.set_active(small_site.store, actor=small_site.user("admin"), username="inspector2", active=False)
    calls.clear()
    with pytest.raises(PermissionDenied, match="unknown user or wrong password"):
        accounts.authenticate(small_site.store, "inspector2", PASSWORDS["inspector2"])
    assert len(calls) == 1


def test_disable_enable_and_passwd(small_site) -> None:
    store, admin = small_site.store, small_site.user("admin")
    accounts.set_active(store, actor=admin, username="inspector", active=False)
    with pytest.raises(PermissionDenied):
        accounts.authenticate(store, "inspector", PASSWORDS["inspector"])
    accounts.set_active(store, actor=admin, username="inspector", active=True)
    inspector = accounts.authenticate(store, "inspector", PASSWORDS["inspector"])
    # Own password: needs the current one; other users' passwords need an admin.
    with pytest.raises(PermissionDenied, match="current"):
        accounts.change_password(store, actor=inspector, username="inspector", new_password="brand-new-secret-1")
    accounts.change_password(store, actor=inspector, username="inspector", new_password="brand-new-secret-1",
                             current_password=PASSWORDS["inspector"])
    with pytest.raises(PermissionDenied):
        accounts.change_password(store, actor=inspector, username="engineer", new_password="brand-new-secret-2")
    accounts.change_password(store, actor=admin, username="engineer", new_password="brand-new-secret-2")
    assert accounts.authenticate(store, "engineer", "brand-new-secret-2").username == "engineer"
    assert accounts.authenticate(store, "inspector", "brand-new-secret-1").username == "inspector"
    with pytest.raises(ConflictError, match="last active administrator|your own"):
        accounts.set_active(store, actor=admin, username="admin", active=False)


def test_the_cli_has_user_disable_enable_passwd(small_site, monkeypatch, capsys) -> None:
    from vital_desktop.cli import main

    small_site.store.close()
    home = str(small_site.home)
    monkeypatch.setenv("VITAL_USER", "admin")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["admin"])
    assert main(["--home", home, "user", "disable", "engineer"]) == 0
    monkeypatch.setenv("NEW_USER_PASSWORD", " " * 16)
    assert main(["--home", home, "user", "passwd", "engineer"]) == 2
    assert "whitespace" in capsys.readouterr().err
    monkeypatch.setenv("NEW_USER_PASSWORD", "engineer-new-pass-1")
    assert main(["--home", home, "user", "passwd", "engineer"]) == 0
    assert main(["--home", home, "user", "enable", "engineer"]) == 0
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", "engineer-new-pass-1")
    assert main(["--home", home, "user", "disable", "inspector"]) == 4  # engineers cannot
    small_site.store = __import__("vital_desktop.store", fromlist=["open_store"]).open_store(small_site.home)


def test_store_file_and_site_folder_are_owner_only(small_site) -> None:
    from vital_desktop.store import open_store

    home = small_site.home
    small_site.store.close()
    os.chmod(home / "site.duckdb", 0o644)  # as an older version left it
    os.chmod(home, 0o755)
    small_site.store = open_store(home)
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "site.duckdb").st_mode) == 0o600


def test_leftover_part_files_are_cleaned_at_start_up(small_site) -> None:
    from vital_desktop.store import open_store

    home = small_site.home
    small_site.store.close()
    models = home / "models"
    models.mkdir(exist_ok=True)
    (models / ".hub-abc.onnx.1234abcd.part").write_bytes(b"half a model")
    (models / "kept.onnx").write_bytes(b"a registered model")
    small_site.store = open_store(home)
    assert not (models / ".hub-abc.onnx.1234abcd.part").exists()
    assert (models / "kept.onnx").exists()
