"""The desktop app and the command line sharing a site: the bridge in the app, waiting for a holder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from tests.ui.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[2]


def _env(home: Path, user: str = "alice") -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "VITAL_HOME": str(home), "VITAL_USER": user,
            "VITAL_PASSWORD": PASSWORD}


def test_cli_runs_inside_the_open_app_and_the_app_hears_of_it(qtbot, window, site_home: Path) -> None:
    from vital_desktop.app import start_bridge

    messages: list[str] = []
    changes: list[object] = []
    window.context.status_message.connect(messages.append)
    window.context.changed.connect(changes.append)
    server = start_bridge(window.context)
    assert server is not None
    result: dict = {}

    def run() -> None:
        result["done"] = subprocess.run([sys.executable, "-m", "vital_desktop.cli", "--json", "sheet", "list"],
                                        env=_env(site_home), capture_output=True, text=True, timeout=60,
                                        check=False)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        qtbot.waitUntil(lambda: "done" in result, timeout=60_000)
        qtbot.waitUntil(lambda: any("finished" in m for m in messages), timeout=10_000)
    finally:
        worker.join()
        server.stop()
    assert result["done"].returncode == 0, result["done"].stderr
    assert '"sheets"' in result["done"].stdout
    assert any(m.startswith("vital sheet list (command line)") for m in messages)
    assert changes, "pages were not told that a command may have changed the site"


def test_app_waits_for_a_command_holding_the_site(qtbot, site_home: Path, monkeypatch, tmp_path: Path) -> None:
    from PySide6.QtWidgets import QMessageBox

    from vital_desktop.app import open_store_waiting

    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, pathlib
        from vital_desktop.store.db import open_store
        store = open_store({str(site_home)!r}, holder="vital train --sheet S")
        pathlib.Path({str(ready)!r}).write_text("1")
        time.sleep(2.0)
        store.close()
    """)], env=_env(site_home))
    asked: list[str] = []

    def answer(parent, title, text, *args, **kwargs):
        asked.append(text)
        return QMessageBox.StandardButton.Yes

    monkeypatch.setattr(QMessageBox, "question", answer)
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        store = open_store_waiting(site_home, poll_ms=100)
    finally:
        holder.wait(timeout=60)
    assert store is not None
    try:
        assert asked and "vital train --sheet S" in asked[0]
    finally:
        store.close()
