"""The page protocol every stage follows."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QWidget

from vital_desktop.core.changes import Changes
from vital_desktop.ui.context import AppContext


class Page(QWidget):
    """A stage's page: refreshes its part on `Changes`, opens deep links.

    Pages never hold the store: they read with `context.query` and write with `context.change`
    (off the GUI thread), and refresh in `on_changes` from what a write reports.
    """

    stage = ""
    title = ""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        context.changed.connect(self.on_changes)

    def on_changes(self, changes: Changes) -> None:
        """Refresh what `changes` touched (pages override)."""

    def activate(self, **arguments: Any) -> None:
        """Called when the page is shown, with deep-link arguments (sheet, item…)."""
