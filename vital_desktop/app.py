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
                      settings=None):
    """The main window on an open store, showing `stage` (deep links: sheet, item)."""
    from vital_desktop.ui.context import AppContext
    from vital_desktop.ui.shell import MainWindow

    context = AppContext(store, user)
    window = MainWindow(context, settings=settings)
    target = stage or ("canonical" if item and not stage else None) or window.last_stage()
    if stage is None and sheet and target not in ("data", "label", "canonical"):
        target = "data"
    window.go(target, sheet=sheet, item=item)
    return window


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=os.environ.get("VITAL_LOG", "WARNING"))
    from PySide6.QtWidgets import QApplication, QMessageBox

    from vital_desktop.core.errors import VitalError
    from vital_desktop.services import accounts
    from vital_desktop.store.db import open_store
    from vital_desktop.ui.login import LoginDialog
    from vital_desktop.ui.theme import STYLE_SHEET

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("VITAL Desktop")
    app.setOrganizationName("VITAL")
    app.setStyle("Fusion")
    app.setStyleSheet(STYLE_SHEET)
    try:
        store = open_store(args.home)
    except VitalError as exc:
        QMessageBox.critical(None, "VITAL Desktop", exc.message)
        return exc.exit_code
    username = args.user or os.environ.get("VITAL_USER", "")
    password = os.environ.get("VITAL_PASSWORD")
    user = None
    if username and password is not None:
        try:
            user = accounts.authenticate(store, username, password)
        except VitalError as exc:
            print(f"vital-desktop: {exc.message}", file=sys.stderr)
    if user is None:
        dialog = LoginDialog(store, username)
        if dialog.exec() != LoginDialog.DialogCode.Accepted or dialog.user is None:
            store.close()
            return 1
        user = dialog.user
    window = build_main_window(store, user, stage=args.stage, sheet=args.sheet, item=args.item)
    window.show()
    if args.quit_after_show:
        from PySide6.QtCore import QTimer

        # one event-loop turn after show: the window has painted and accepts input
        QTimer.singleShot(0, window.close)
    code = app.exec()
    store.close()
    return code




def entry() -> None:
    """Console-script entry point: `main()`, then a quiet exit (see core.process)."""
    from vital_desktop.core.process import run_and_exit

    run_and_exit(main)


if __name__ == "__main__":
    entry()
