"""Application updates through the signed bundle channel ``app`` (real Ed25519 keys, a real store,
a small fake release archive: the frozen build is too slow for tests).

Each refusal leaves the store as it was (but for the ledger row), unpacks nothing and leaves the
installed version's pointer alone; a failed self-check rolls back and says why; the store backup
made before the new version starts is a store that opens and can be put back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PASSWORDS, ROLES, snapshot_tables
from vital_desktop.bundles.errors import BundleRefused
from vital_desktop.bundles.keys import SigningKey
from vital_desktop.bundles.simulator import HubKeys, HubSimulator, Payload

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "installer" / "linux" / "vital-launcher.sh"
PASSING = '#!/bin/sh\necho \'{"ok": true, "version": "%s", "checks": []}\'\n'
FAILING = ('#!/bin/sh\necho "vital: self-check of VITAL Desktop %s failed: store: migration 19 does not apply to '
           'this site" >&2\nexit 1\n')
#: A fake `vital` that is the real command line of this source tree (the "installed" version).
REAL_CLI = '#!/bin/sh\nexec "%s" -m vital_desktop.cli "$@"\n'


def _platform() -> str:
    from vital_desktop.services.app_update import platform_tag

    return platform_tag()


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def release_archive(folder: Path, version: str, platform: str, vital_script: str) -> tuple[bytes, bytes]:
    """(archive bytes, SBOM bytes) of a tiny release: ``vital-desktop-V-P/vital`` and a data file."""
    top = f"vital-desktop-{version}-{platform}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data, mode in ((f"{top}/vital", vital_script.encode(), 0o755),
                                 (f"{top}/vital-desktop", vital_script.encode(), 0o755),
                                 (f"{top}/_internal/data.bin", bytes(range(256)) * 16, 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    archive = buffer.getvalue()
    sbom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
            "metadata": {"component": {"type": "application", "name": "vital-desktop", "version": version,
                                       "hashes": [{"alg": "SHA-256", "content": hashlib.sha256(archive).hexdigest()}]}},
            "components": []}
    return archive, json.dumps(sbom).encode()


@dataclass
class AppSite:
    store: object
    home: Path
    admin: object
    hub: HubSimulator
    app_keys: list[SigningKey]
    install: object
    now: int

    def payloads(self, version: str = "0.2.0", platform: str | None = None, script: str | None = None,
                 sbom: bytes | None = None, with_sbom: bool = True) -> list[Payload]:
        platform = platform or _platform()
        archive, made_sbom = release_archive(self.home.parent, version, platform, script or PASSING % version)
        payloads = [Payload("release", "app_release", f"vital-desktop-{version}-{platform}.tar.gz", archive,
                            {"version": version, "platform": platform})]
        if with_sbom:
            payloads.append(Payload("sbom", "app_sbom", f"vital-desktop-{version}-{platform}.cdx.json",
                                    sbom if sbom is not None else made_sbom))
        return payloads

    def bundle(self, *, signers: list[SigningKey] | None = None, **kwargs) -> Path:
        build_keys = {k: kwargs.pop(k) for k in ("cut", "tail", "sequence") if k in kwargs}
        return self.hub.build("app", self.payloads(**kwargs), signers=signers or self.app_keys, **build_keys).path

    def update(self, path: Path):
        from vital_desktop.services import app_update

        return app_update.update_app(self.store, actor=self.admin, path=path, install=self.install, now=self.now)

    def snapshot(self) -> dict:
        tables = {k: v for k, v in snapshot_tables(self.store).items() if k not in ("bundle_ledger", "audit_log")}
        tables["settings"] = [row for row in tables.get("settings", []) if row[0] != "'audit_head'"]
        return tables

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.install.root)) for p in self.install.root.rglob("*"))


@pytest.fixture(scope="module")
def app_keys() -> tuple[HubKeys, list[SigningKey]]:
    return HubKeys.generate(), [SigningKey.generate(), SigningKey.generate()]


def _hub(folder: Path, app_keys, now: int) -> HubSimulator:
    keys, release_keys = app_keys
    hub = HubSimulator(folder, site_id="site-a", now=now, keys=keys)
    hub.channel_keys["app"] = list(release_keys)
    hub.roots[1] = hub.make_root(1)  # the root names two release-channel keys and an app threshold of 2
    return hub


@pytest.fixture(scope="module")
def site_template(tmp_path_factory, app_keys) -> tuple[Path, int]:
    """A site (admin, site id) trusting a hub with release-channel keys; built once, copied per test."""
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, exchange
    from vital_desktop.store import audit, open_store
    from vital_desktop.store.models import Setting

    now = int(time.time())
    base = tmp_path_factory.mktemp("app-site")
    home = base / "home"
    store = open_store(home)
    try:
        accounts.add_user(store, actor=SYSTEM_USER, username="admin", password=PASSWORDS["admin"],
                          role=ROLES["admin"])
        with store.session() as s:
            s.add(Setting(key="site_id", value="site-a"))
            audit.record(s, SYSTEM_USER, "test.site_id", "site-a")
        exchange.install_root_of_trust(store, _hub(base / "hub", app_keys, now).root_file(1), now=now)
    finally:
        store.close()
    return home, now


@pytest.fixture
def site(tmp_path: Path, app_keys, site_template) -> AppSite:
    from vital_desktop.services import accounts
    from vital_desktop.services.app_update import AppInstall
    from vital_desktop.store import open_store

    template, now = site_template
    home = tmp_path / "home"
    shutil.copytree(template, home)
    store = open_store(home)
    root = tmp_path / "app"
    (root / "versions" / "0.1.0").mkdir(parents=True)
    _executable(root / "versions" / "0.1.0" / "vital", REAL_CLI % sys.executable)
    (root / "current").write_text("0.1.0\n")
    admin = accounts.get_user(store, "admin")
    site = AppSite(store, home, admin, _hub(tmp_path / "stick", app_keys, now), app_keys[1],
                   AppInstall(root, _platform()), now)
    yield site
    site.store.close()


def _ledger(site: AppSite) -> list[dict]:
    from vital_desktop.services import app_update

    return app_update.ledger_rows(site.store)


def _audit_actions(site: AppSite) -> list[str]:
    with site.store.engine.connect() as conn:
        return [r[0] for r in conn.exec_driver_sql("SELECT action FROM audit_log ORDER BY seq").fetchall()]


def test_an_update_unpacks_beside_the_installed_version_and_waits_for_the_next_start(site: AppSite) -> None:
    result = site.update(site.bundle())
    assert result.outcome == "staged" and result.version == "0.2.0" and result.from_version == "0.1.0"
    assert (site.install.root / "versions" / "0.2.0" / "vital").is_file()
    assert (site.install.root / "versions" / "0.1.0" / "vital").is_file()  # never over the installed one
    assert site.install.current() == "0.1.0" and site.install.pending()["version"] == "0.2.0"
    assert {c["check"] for c in result.checks} >= {"release_signatures", "platform", "app_release_version", "sbom"}
    assert _ledger(site)[0]["outcome"] == "accepted" and "app.update.staged" in _audit_actions(site)
    # the same bundle again changes nothing
    (site.install.root / "pending.json").unlink()
    assert site.update(_same(site)).outcome == "already_imported"


def _same(site: AppSite) -> Path:
    """The last bundle file the simulator wrote (the same bytes again)."""
    return sorted(site.hub.folder.glob("*.vbundle"))[-1]


def test_the_next_start_switches_after_a_passing_self_check_with_a_store_backup(site: AppSite) -> None:
    from vital_desktop.services import app_update
    from vital_desktop.store import open_store

    site.update(site.bundle())
    site.store.close()
    result = app_update.finish_pending(site.install, site.home)
    assert result["action"] == "switched", result
    assert site.install.current() == "0.2.0" and site.install.previous() == "0.1.0"
    assert site.install.pending() is None and site.install.last()["action"] == "switched"
    backup = Path(result["backup"])
    assert backup.is_file() and backup.parent == site.home / "backups"
    # the backup is a store that opens read-only and holds the site's users
    import duckdb

    with duckdb.connect(str(backup), read_only=True) as conn:
        assert conn.execute("SELECT username FROM users").fetchall() == [("admin",)]
    site.store = open_store(site.home)
    assert [r["outcome"] for r in _ledger(site)][:2] == ["switched", "accepted"]
    assert "app.update.switched" in _audit_actions(site)


def test_a_failed_self_check_rolls_back_and_says_why(site: AppSite) -> None:
    from vital_desktop.services import app_update
    from vital_desktop.store import open_store

    site.update(site.bundle(script=FAILING % "0.2.0"))
    site.store.close()
    result = app_update.finish_pending(site.install, site.home)
    assert result["action"] == "rolled_back"
    assert "migration 19 does not apply" in result["reason"] and "rolled back" in result["text"]
    assert site.install.current() == "0.1.0" and site.install.pending() is None
    assert (site.install.root / "versions" / "0.1.0" / "vital").is_file()
    site.store = open_store(site.home)
    assert _ledger(site)[0]["outcome"] == "rolled_back" and "migration 19" in _ledger(site)[0]["reason"]
    assert "app.update.rolled_back" in _audit_actions(site)


@pytest.mark.parametrize(("bend", "codes", "words"), [
    ({"cut": 100}, ("truncated",), "bytes"),
    ({"signers": "strangers"}, ("unknown_key",), "does not trust"),
    ({"signers": "one"}, ("threshold", "app_signatures"), "2"),
    ({"platform": "windows-x86_64"}, ("app_platform",), "windows-x86_64"),
    ({"version": "0.0.9"}, ("app_not_newer",), "not newer"),
    ({"version": "0.1.0"}, ("app_not_newer",), "not newer"),
    ({"sbom": b'{"bomFormat": "CycloneDX", "metadata": {"component": {"hashes": []}}}'}, ("app_sbom",), "SBOM"),
    ({"sbom": b"not json"}, ("app_sbom",), "SBOM"),
])
def test_bad_update_bundles_are_refused_and_change_nothing(site: AppSite, bend: dict, codes: tuple, words: str) -> None:
    bend = dict(bend)
    if bend.get("signers") == "strangers":
        bend["signers"] = [SigningKey.generate(), SigningKey.generate()]
    elif bend.get("signers") == "one":
        bend["signers"] = site.app_keys[:1]
    path = site.bundle(**bend)
    before, files = site.snapshot(), site.files()
    with pytest.raises(BundleRefused) as caught:
        site.update(path)
    assert caught.value.code in codes, caught.value.message
    assert words in caught.value.message
    assert site.snapshot() == before and site.files() == files
    assert site.install.current() == "0.1.0" and site.install.pending() is None
    from vital_desktop.services import exchange

    assert exchange.ledger(site.store, limit=1)[0]["outcome"] == "refused"


def test_a_release_archive_with_a_link_out_of_its_folder_is_refused(site: AppSite) -> None:
    platform = _platform()
    top = f"vital-desktop-0.2.0-{platform}"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        script = (PASSING % "0.2.0").encode()
        info = tarfile.TarInfo(f"{top}/vital")
        info.size = len(script)
        tar.addfile(info, io.BytesIO(script))
        link = tarfile.TarInfo(f"{top}/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
        tar.addfile(link)
    payload = Payload("release", "app_release", f"{top}.tar.gz", buffer.getvalue(),
                      {"version": "0.2.0", "platform": platform})
    path = site.hub.build("app", [payload], signers=site.app_keys).path
    files = site.files()
    with pytest.raises(BundleRefused, match="links outside the app folder"):
        site.update(path)
    assert site.files() == files


def test_an_app_bundle_is_not_a_bundle_import(site: AppSite) -> None:
    from vital_desktop.services import exchange

    before = site.snapshot()
    with pytest.raises(BundleRefused) as caught:
        exchange.import_bundle(site.store, actor=site.admin, path=site.bundle(), now=site.now)
    assert caught.value.code == "app_bundle" and "vital app update" in caught.value.message
    assert site.snapshot() == before


def test_rollback_points_back_and_the_store_backup_restores(site: AppSite) -> None:
    from vital_desktop.core.errors import ValidationError
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, app_update
    from vital_desktop.store import open_store

    with pytest.raises(ValidationError, match="no previous version"):
        app_update.rollback(site.store, actor=site.admin, install=site.install)
    site.update(site.bundle())
    site.store.close()
    result = app_update.finish_pending(site.install, site.home)
    site.store = open_store(site.home)
    accounts.add_user(site.store, actor=SYSTEM_USER, username="engineer", password=PASSWORDS["engineer"],
                      role="engineer")  # written by the new version, after the backup
    rolled = app_update.rollback(site.store, actor=site.admin, install=site.install)
    assert rolled["current"] == "0.1.0" and site.install.current() == "0.1.0" and site.install.previous() == "0.2.0"
    assert "app.rollback" in _audit_actions(site)
    site.store.close()
    aside = app_update.restore_store(site.home, Path(result["backup"]))
    assert aside.is_file()
    site.store = open_store(site.home)
    assert [u.username for u in accounts.list_users(site.store)] == ["admin"]


def test_self_check_passes_on_a_site_and_names_what_fails(site: AppSite, tmp_path: Path) -> None:
    from vital_desktop.services.self_check import SelfCheckFailed, self_check

    report = self_check(site.home)
    assert report["ok"] and [c["check"] for c in report["checks"]] == ["imports", "store", "models"]
    assert not (site.home / "backups").exists()  # the check never writes the site
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "site.duckdb").write_bytes(b"this is not a database" * 100)
    with pytest.raises(SelfCheckFailed, match="store"):
        self_check(broken)


@pytest.mark.slow  # three command-line processes (about 10 s)
@pytest.mark.skipif(sys.platform == "win32", reason="the Linux launcher is a POSIX shell script")
def test_the_launcher_switches_at_the_next_start_through_the_command_line(site: AppSite) -> None:
    from vital_desktop.services import app_update

    root = site.install.root
    (root / "bin").mkdir()
    for name in ("vital", "vital-desktop"):
        shutil.copy(LAUNCHER, root / "bin" / name)
    path = site.bundle()
    site.store.close()
    env = {**os.environ, "VITAL_HOME": str(site.home), "VITAL_USER": "admin", "VITAL_PASSWORD": PASSWORDS["admin"],
           "VITAL_NO_BRIDGE": "1", "PYTHONPATH": str(ROOT)}
    # the real `vital app update` of the installed version (0.1.0 is this source tree's CLI)
    done = subprocess.run([str(root / "bin" / "vital"), "--json", "app", "update", str(path), "--app-root", str(root)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outcome"] == "staged"
    versions = subprocess.run([str(root / "bin" / "vital"), "--json", "app", "versions", "--app-root", str(root)],
                              env=env, capture_output=True, text=True, timeout=300, check=False)
    assert json.loads(versions.stdout)["pending"]["version"] == "0.2.0"
    # the next start: the launcher has 0.1.0 self-check 0.2.0, switches, and starts 0.2.0
    started = subprocess.run([str(root / "bin" / "vital-desktop")], env=env, capture_output=True, text=True,
                             timeout=300, check=False)
    assert started.returncode == 0, started.stderr
    assert '"version": "0.2.0"' in started.stdout  # the fake 0.2.0 ran
    assert app_update.AppInstall(root).current() == "0.2.0"


def test_the_bundles_page_checks_say_when_this_copy_is_not_installed(site: AppSite, monkeypatch) -> None:
    from vital_desktop.services import app_update

    path = site.bundle()
    monkeypatch.delenv(app_update.APP_ROOT_ENV, raising=False)
    report = app_update.verify_here(site.store, path, now=site.now)
    assert report["outcome"] == "refused" and report["code"] == "not_installed"
    monkeypatch.setenv(app_update.APP_ROOT_ENV, str(site.install.root))
    report = app_update.verify_here(site.store, path, now=site.now)
    assert report["outcome"] == "ok", report["reason"]
    assert {c["check"] for c in report["checks"]} >= {"release_signatures", "platform", "sbom"}


def test_vital_app_verify_and_versions_on_the_command_line(site: AppSite, monkeypatch, capsys) -> None:
    from vital_desktop import cli
    from vital_desktop.store import open_store

    other = site.bundle(platform="windows-x86_64")
    site.store.close()
    monkeypatch.setenv("VITAL_USER", "admin")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["admin"])
    monkeypatch.setenv("VITAL_NO_BRIDGE", "1")
    root = str(site.install.root)
    status = cli.main(["--home", str(site.home), "--json", "app", "verify", str(other), "--app-root", root])
    out = capsys.readouterr()
    assert status != 0 and out.out == "" and "windows-x86_64" in out.err
    status = cli.main(["--home", str(site.home), "--json", "app", "versions", "--app-root", root])
    report = json.loads(capsys.readouterr().out)
    assert status == 0 and report["current"] == "0.1.0" and [v["version"] for v in report["versions"]] == ["0.1.0"]
    site.store = open_store(site.home)
