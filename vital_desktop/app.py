"""`vital-desktop`: open the site store, sign in, show the main window.

    vital-desktop [--home DIR] [--stage label] [--sheet NAME] [--item REF] [--user NAME]

``VITAL_USER``/``VITAL_PASSWORD`` sign in without the dialog (demos, tests, kiosk laptops).
Heavy modules (onnxruntime, llama_cpp, numba) are imported by the pages that need them, so
the window is usable quickly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

STAGE_CHOICES = ("data", "generate", "label", "train", "deploy", "monitor", "improve", "canonical")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vital-desktop", description="VITAL Desktop")
    parser.add_argument("--home", type=Path, default=None, help="site folder (default: VITAL_HOME or the user data dir)")
    parser.add_argument("--stage", choices=STAGE_CHOICES, default=None, help="stage to open")
    parser.add_argument("--sheet", default=None, help="sheet to open (deep link)")
    parser.add_argument("--item", default=None, help="item to open (deep link)")
    parser.add_argument("--user", default=None, help="user name (default: VITAL_USER)")
    parser.add_argument("--quit-after-show", action="store_true", help=argparse.SUPPRESS)  # start-up benchmark
    return parser.parse_args(argv)


def build_main_window(store, user, *, stage: str | None = None, sheet: str | None = None, item: str | None = None,
                      settings=None, freeze_long_lived: bool = False):
    """The main window on an open store, showing `stage` (deep links: sheet, item). The app passes
    `freeze_long_lived` (see `ui.collector`); tests, whose windows come and go, do not."""
    from vital_desktop.ui.context import AppContext
    from vital_desktop.ui.shell import MainWindow
    from vital_desktop.ui.workers import engine_threads

    store.set_engine_threads(engine_threads())  # a core stays free for the window
    context = AppContext(store, user)
    window = MainWindow(context, settings=settings, freeze_long_lived=freeze_long_lived)
    target = stage or ("canonical" if item and not stage else None) or window.last_stage()
    if stage is None and sheet and target not in ("data", "label", "canonical"):
        target = "data"
    window.go(target, sheet=sheet, item=item)
    return window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from PySide6.QtWidgets import QApplication, QMessageBox

    from vital_desktop.core import sitelog
    from vital_desktop.core.errors import VitalError
    from vital_desktop.services import accounts
    from vital_desktop.store.db import default_home
    from vital_desktop.ui.login import LoginDialog
    from vital_desktop.ui.theme import STYLE_SHEET

    home = Path(args.home).expanduser() if args.home else default_home()
    if home.is_dir():
        sitelog.configure(home, process="app")
    _log_uncaught_exceptions()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv[:1])
    app.setApplicationName("VITAL Desktop")
    app.setOrganizationName("VITAL")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
    try:
        store = open_store_waiting(home)
    except VitalError as exc:
        sitelog.log_user_error(exc, "opening the site")
        QMessageBox.critical(None, "VITAL Desktop", exc.message)
        return exc.exit_code
    if store is None:  # the user chose not to wait for the process holding the site
        return 1
    sitelog.configure(home, process="app")
    username = args.user or os.environ.get("VITAL_USER", "")
    password = os.environ.get("VITAL_PASSWORD")
    user = None
    if username and password is not None:
        try:
            user = accounts.authenticate(store, username, password)
        except VitalError as exc:
            sitelog.log_user_error(exc, "signing in")
            print(f"vital-desktop: {exc.message}", file=sys.stderr)
    if user is None:
        dialog = LoginDialog(store, username)
        if dialog.exec() != LoginDialog.DialogCode.Accepted or dialog.user is None:
            store.close()
            return 1
        user = dialog.user
    window = build_main_window(store, user, stage=args.stage, sheet=args.sheet, item=args.item, freeze_long_lived=True)
    bridge = start_bridge(window.context)
    window.show()
    if args.quit_after_show:
        from PySide6.QtCore import QTimer

        # one event-loop turn after show: the window has painted and accepts input
        QTimer.singleShot(0, window.close)
    code = app.exec()
    if bridge is not None:
        bridge.stop()
    store.close()
    return code


def open_store_waiting(home: Path, *, poll_ms: int = 500):
    """Open the site store; if a `vital` command holds it, say which and offer to wait.

    Returns the store, or None when the user gives up waiting. Other errors are raised.
    """
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog

    from vital_desktop.core.errors import StoreLockedError
    from vital_desktop.store.db import describe_holder, open_store

    try:
        return open_store(home, holder="the VITAL Desktop app")
    except StoreLockedError:
        holder = describe_holder(home) or "another process"
    answer = QMessageBox.question(
        None, "VITAL Desktop",
        f"This site is in use by {holder}.\n\nWait until it finishes? The window opens as soon as the "
        "site is free (only one program can hold a site's store at a time).",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
    if answer != QMessageBox.StandardButton.Yes:
        return None
    waiting = QProgressDialog(f"Waiting for {holder} to finish…", "Stop waiting", 0, 0)
    waiting.setWindowTitle("VITAL Desktop")
    waiting.setMinimumDuration(0)
    waiting.show()
    try:
        while True:
            loop = QEventLoop()
            QTimer.singleShot(poll_ms, loop.quit)
            loop.exec()
            QApplication.processEvents()
            if waiting.wasCanceled():
                return None
            try:
                return open_store(home, holder="the VITAL Desktop app")
            except StoreLockedError:
                now = describe_holder(home)
                if now:
                    waiting.setLabelText(f"Waiting for {now} to finish…")
    finally:
        waiting.close()


def start_bridge(context):
    """Let `vital` commands run inside this app while it holds the site (see vital_desktop.bridge)."""
    from PySide6.QtCore import QObject, Signal, Slot

    from vital_desktop.bridge import BridgeServer
    from vital_desktop.core.changes import Changes
    from vital_desktop.core.progress import format_eta

    class Relay(QObject):
        """Lives in the GUI thread: the bridge's threads emit, these slots run queued here."""

        said = Signal(str)
        ended = Signal(str, int)

        @Slot(str)
        def say(self, text: str) -> None:
            context.say(text)

        @Slot(str, int)
        def end(self, title: str, code: int) -> None:
            context.say(f"{title} (command line) {'finished' if code == 0 else f'ended with status {code}'}")
            if code == 0:  # a command may have changed anything: every page refreshes its part
                context.announce(Changes(**{name: True for name in Changes.__dataclass_fields__}))

    relay = Relay(context)
    relay.said.connect(relay.say)
    relay.ended.connect(relay.end)

    def on_progress(command, snap) -> None:
        left = format_eta(snap.eta_s)
        relay.said.emit(f"{command.title} (command line): {snap.done}/{snap.total}"
                        + (f", {left} left" if left else "") + (f" — {snap.message}" if snap.message else ""))

    server = BridgeServer(
        context.store.home, context.store,
        on_start=lambda command: relay.said.emit(f"{command.title} (command line) running…"),
        on_progress=on_progress,
        on_end=lambda command, code: relay.ended.emit(command.title, code),
    )
    context.bridge_relay = relay  # keep the relay alive as long as the context
    return server if server.start() else None


def _log_uncaught_exceptions() -> None:
    """An exception nobody caught (a Qt slot, a thread) reaches the site log with its traceback."""
    import threading

    log = logging.getLogger("vital_desktop.app")
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        log.critical("uncaught exception", exc_info=(kind, value, tb))
        previous(kind, value, tb)

    def thread_hook(info) -> None:
        log.critical("uncaught exception in thread %s", getattr(info.thread, "name", "?"),
                     exc_info=(info.exc_type, info.exc_value, info.exc_traceback))

    sys.excepthook = hook
    threading.excepthook = thread_hook


def entry() -> None:
    """Console-script entry point: `main()`, then a quiet exit (see core.process)."""
    from vital_desktop.core.process import run_and_exit

    run_and_exit(main)


if __name__ == "__main__":
    entry()
