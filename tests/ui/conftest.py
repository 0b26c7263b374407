"""UI test fixtures: offscreen Qt, isolated QSettings, a small real site, no leaked threads.

The site (a few dozen generated crystal images, the inspection-records CSV imported as a sheet,
one user per role) is built once per session and its store file copied per test (Anki's
`pylib/tests/shared.py` habit), so each test starts from the same state in milliseconds.
"""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import
# Nicer job threads (VITAL_WORKER_NICE, off by default) would starve behind other programs on a
# busy shared test machine; these tests are about behaviour (test_workers_priority checks it).
os.environ.setdefault("VITAL_WORKER_NICE", "0")

import shutil
import threading
from pathlib import Path

import pytest

from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.store.db import STORE_FILENAME, open_store

SHEET = "Defect Detection - Scintillator Crystals"
PASSWORD = "correct-horse-battery"
USERS = {"alice": "engineer", "ivan": "inspector", "root": "admin"}
N_IMAGES = 30


@pytest.fixture(scope="session")
def site_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated store with users and the demo sheet; images live next to it."""
    from vital_desktop.demo import generate_demo_files
    from vital_desktop.services import accounts, sheets

    root = tmp_path_factory.mktemp("ui-site")
    files = generate_demo_files(root / "data", n_images=N_IMAGES)
    home = root / "home"
    store = open_store(home)
    try:
        for name, role in USERS.items():
            accounts.add_user(store, actor=SYSTEM_USER, username=name, password=PASSWORD, role=role)
        from vital_desktop.services.demo_site import seed_demo_label_types

        seed_demo_label_types(store)  # the demo's label types, as site data
        sheets.import_sheet(store, actor=SYSTEM_USER, name=SHEET, metadata_path=files.inspection_records,
                            key_column="inspection_id", image_root=files.images_dir, image_column="image_path",
                            description="Synthetic scintillator crystal inspections with sensor context")
        _seed_template(store)
    finally:
        store.close()
    return home


def _seed_template(store) -> None:
    """The shipped template library (published), as `vital init --demo` installs it."""
    from vital_desktop.services import accounts, templates

    templates.load_library(store, actor=accounts.get_user(store, "alice"))


@pytest.fixture
def site_home(site_template: Path, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy2(site_template / STORE_FILENAME, home / STORE_FILENAME)
    return home


@pytest.fixture
def store(site_home: Path):
    opened = open_store(site_home)
    yield opened
    opened.close()


@pytest.fixture
def settings(tmp_path: Path):
    """QSettings in a per-test folder: window state from one test never leaks into another."""
    from PySide6.QtCore import QSettings

    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "VITAL", "vital-desktop")


@pytest.fixture
def engineer(store):
    from vital_desktop.services import accounts

    return accounts.get_user(store, "alice")


@pytest.fixture
def window(qtbot, store, engineer, settings):
    """The main window on the test site, signed in as an engineer; closed and drained after."""
    from vital_desktop.app import build_main_window
    from vital_desktop.ui.theme import STYLE_SHEET

    qtbot_app = qtbot  # noqa: F841 - ensures a QApplication exists
    from PySide6.QtWidgets import QApplication

    QApplication.instance().setStyleSheet(STYLE_SHEET)
    main = build_main_window(store, engineer, stage="data", settings=settings)
    qtbot.addWidget(main)
    main.show()
    settle(qtbot, main)
    yield main
    main.close()


def settle(qtbot, window, timeout: int = 20_000) -> None:
    """Until the window's background reads and writes are done (pages load off the GUI thread)."""
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=timeout)


@pytest.fixture
def gui_thread_store_calls(monkeypatch):
    """Every store session opened on the GUI thread, with the page module that asked (the contract:
    pages never do store work on the GUI thread)."""
    import traceback

    from vital_desktop.store.db import Store

    calls: list[str] = []
    for name in ("session", "read"):
        original = getattr(Store, name)

        def guarded(self, *args, _original=original, **kwargs):
            if threading.current_thread() is threading.main_thread():
                frames = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in traceback.extract_stack()
                          if "/vital_desktop/ui/" in f.filename]
                if frames:  # fixtures and tests may read on the main thread; pages may not
                    calls.append(" <- ".join(reversed(frames)))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Store, name, guarded)
    return calls


@pytest.fixture(autouse=True)
def no_leaked_threads(qapp):
    """Fail a test that leaves worker threads running (napari's habit)."""
    from PySide6.QtCore import QThreadPool

    before = {t.ident for t in threading.enumerate()}
    yield
    pool = QThreadPool.globalInstance()
    assert pool.waitForDone(5000), "global thread pool still busy after the test"
    leaked = [t for t in threading.enumerate()
              if t.ident not in before and t.is_alive() and not t.daemon and t is not threading.current_thread()]
    for thread in leaked:
        thread.join(timeout=5)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"threads left running: {still}"
