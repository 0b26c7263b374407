"""The `vital` command while another process holds the site: the bridge, the holder file, the log.

The server side runs here in the test process on a really open store (as the desktop app
runs it); the client is a real `vital` subprocess, so the socket, the peer check and the
relay of stdout/stderr/exit status are all exercised for real.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env
from vital_desktop import bridge
from vital_desktop.core import sitelog
from vital_desktop.core.errors import StoreLockedError, ValidationError
from vital_desktop.core.progress import ProgressSnapshot, format_eta
from vital_desktop.store.db import describe_holder, open_store

REPO = Path(__file__).resolve().parents[2]


def _vital(home: Path, *args: str, user: str = "engineer", extra_env: dict | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    env = cli_env(user, home)
    env["PYTHONPATH"] = str(REPO)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "vital_desktop.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


@pytest.fixture
def served(small_site):
    """The small site held open by this process with the bridge listening (the app's situation)."""
    events: list[tuple] = []
    server = bridge.BridgeServer(
        small_site.home, small_site.store,
        on_start=lambda c: events.append(("start", c.title)),
        on_end=lambda c, code: events.append(("end", c.title, code)),
    )
    assert server.start()
    yield small_site, server, events
    server.stop()


def test_command_runs_in_the_holder_and_prints_as_alone(served) -> None:
    site, server, events = served
    through_app = _vital(site.home, "--json", "sheet", "list")
    text_through_app = _vital(site.home, "sheet", "list")
    assert through_app.returncode == 0, through_app.stderr
    assert [s["name"] for s in json.loads(through_app.stdout)["sheets"]] == ["Crystals"]
    assert ("end", "vital sheet list", 0) in events
    # the same commands alone, once the holder lets go, print exactly the same
    server.stop()
    site.store.close()
    alone = _vital(site.home, "--json", "sheet", "list")
    text_alone = _vital(site.home, "sheet", "list")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout) == json.loads(through_app.stdout)
    assert text_alone.stdout == text_through_app.stdout
    site.store = open_store(site.home)


def test_writes_through_the_app_land_in_its_store(served) -> None:
    site, _, _ = served
    done = _vital(site.home, "--json", "label", "set", "--sheet", "Crystals", "--item", "INS-0002",
                  "--type", "classification", "--data", '{"defect_type": "crack"}', user="inspector")
    assert done.returncode == 0, done.stderr
    from vital_desktop.services import labels

    [label] = labels.labels_for_sheet(site.store, sheet="Crystals")
    assert label.item_ref == "INS-0002" and label.created_by == "inspector"


def test_errors_keep_their_status_and_stderr(served) -> None:
    site, _, _ = served
    wrong = _vital(site.home, "sheet", "list", extra_env={"VITAL_PASSWORD": "not-the-password"})
    assert wrong.returncode == 4 and "wrong password" in wrong.stderr and wrong.stdout == ""
    missing = _vital(site.home, "--json", "sheet", "show", "No Such Sheet")
    assert missing.returncode == 3 and json.loads(missing.stderr.splitlines()[-1])["error"] == "not_found"
    # the app's own environment never signs a client in: no password sent means refused
    env_less = _vital(site.home, "sheet", "list", extra_env={"VITAL_PASSWORD": ""})
    assert env_less.returncode == 4


def test_init_is_refused_while_the_app_holds_the_site(served) -> None:
    site, _, _ = served
    refused = _vital(site.home, "init", "--demo")
    assert refused.returncode == StoreLockedError.exit_code
    assert "desktop app has this site open" in refused.stderr
    # a new user's password is read from the caller's environment, which the app does not have
    adding = _vital(site.home, "user", "add", "newcomer", "--role", "inspector", user="admin",
                    extra_env={"NEW_USER_PASSWORD": "a-long-enough-password"})
    assert adding.returncode == StoreLockedError.exit_code and "vital user add" in adding.stderr


def test_malformed_request_is_answered_not_crashed(served) -> None:
    site, _, _ = served
    sock = bridge.connect(site.home)
    assert sock is not None
    with sock:
        sock.sendall(b'{"version": 99}\n')
        answer = sock.makefile("r").read()
    assert '"exit": 2' in answer
    # and the server still serves the next command
    assert _vital(site.home, "sheet", "list").returncode == 0


def test_no_app_means_no_bridge(small_site) -> None:
    small_site.store.close()
    assert bridge.connect(small_site.home) is None
    done = _vital(small_site.home, "--json", "sheet", "list")
    assert done.returncode == 0
    small_site.store = open_store(small_site.home)


def test_a_locked_store_names_its_holder(small_site, tmp_path: Path) -> None:
    small_site.store.close()
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, pathlib
        from vital_desktop.store.db import open_store
        store = open_store({str(small_site.home)!r}, holder="vital train --sheet Crystals")
        pathlib.Path({str(ready)!r}).write_text("1")
        time.sleep(30)
    """)], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        for _ in range(300):
            if ready.exists():
                break
            time.sleep(0.1)
        described = describe_holder(small_site.home)
        assert described is not None and "vital train --sheet Crystals" in described
        assert f"process {holder.pid}" in described
        with pytest.raises(StoreLockedError, match="vital train --sheet Crystals"):
            open_store(small_site.home)
    finally:
        holder.kill()
        holder.wait()
    # a holder that died leaves a stale file: it names nobody
    assert describe_holder(small_site.home) is None
    small_site.store = open_store(small_site.home)


def test_site_log_keeps_errors_with_tracebacks(tmp_path: Path) -> None:
    home = tmp_path / "site"
    home.mkdir()
    path = sitelog.configure(home, process="test")
    try:
        try:
            raise ValidationError("the thing a user read")
        except ValidationError as exc:
            sitelog.log_user_error(exc, "a dialog")
        logging.getLogger("vital_desktop.test").warning("plain %s", "warning")
    finally:
        sitelog.detach()
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    entries = sitelog.read_entries(home)
    shown = next(e for e in entries if "the thing a user read" in e["message"])
    assert shown["level"] == "ERROR" and shown["process"] == "test" and "ValidationError" in shown["traceback"]
    assert any(e["message"] == "plain warning" for e in entries)


def test_pipe_closed_early_exits_quietly(tmp_path: Path) -> None:
    # `vital … | head`: a command whose reader stops early leaves with no traceback
    script = tmp_path / "noisy.py"
    script.write_text(textwrap.dedent("""
        from vital_desktop.core.process import run_and_exit
        def main():
            for i in range(200000):
                print(f"line {i} of a long listing")
            return 0
        run_and_exit(main)
    """))
    done = subprocess.run(f"{sys.executable} {script} | head -n 2", shell=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60, check=False)
    assert done.stdout.splitlines() == ["line 0 of a long listing", "line 1 of a long listing"]
    assert done.stderr == ""


def test_time_left() -> None:
    assert format_eta(None) == "" and format_eta(42.4) == "42 s" and format_eta(185) == "3 min 5 s"
    assert format_eta(3600 + 720) == "1 h 12 min"
    assert ProgressSnapshot(25, 100, "", 10.0).eta_s == pytest.approx(30.0)
    assert ProgressSnapshot(0, 100, "", 10.0).eta_s is None and ProgressSnapshot(5, 5, "", 1.0).eta_s is None


def test_support_bundle_has_the_log_and_no_label_content(small_site, tmp_path: Path) -> None:
    import zipfile

    from vital_desktop.services import labels, support

    secret_note = "patient Jane Roe, ward 7"
    labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                     label_type="classification", label_data={"defect_type": "crack"}, notes=secret_note)
    sitelog.configure(small_site.home, process="test")
    try:
        try:
            raise ValidationError(f"label {{'notes': {secret_note!r}}} refused for 'INS-0001'")
        except ValidationError as exc:
            sitelog.log_user_error(exc, "a dialog")
    finally:
        sitelog.detach()
    bundle = support.write_support_bundle(small_site.store, actor=small_site.user("inspector"),
                                          out=tmp_path / "out" / "diag.zip")
    with zipfile.ZipFile(bundle.path) as archive:
        names = set(archive.namelist())
        blob = b"".join(archive.read(n) for n in names)
        manifest = json.loads(archive.read("manifest.json"))
    assert names == {"manifest.json", "log.jsonl"} and bundle.log_entries >= 1
    assert secret_note.encode() not in blob and b"Jane Roe" not in blob and b"crack" not in blob
    assert manifest["store"]["rows"]["canonical_labels"] == 1 and manifest["label_content"] is False
    assert manifest["versions"]["packages"]["duckdb"]
    assert b"ValidationError" in blob  # the traceback's shape survives redaction
    assert not list((tmp_path / "out").glob("*.part"))
