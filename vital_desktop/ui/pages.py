"""The page protocol every stage follows."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QShowEvent
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
        #: what changed while the page was hidden; applied when it is shown again
        self.pending_changes: Changes | None = None
        context.changed.connect(self._context_changed)

    def _context_changed(self, changes: Changes) -> None:
        # A hidden page does no work on a change (eight pages reloading at once is what froze the
        # window); it remembers what changed and refreshes once when it is shown.
        if self.isVisible():
            self.on_changes(changes)
        else:
            self.pending_changes = changes if self.pending_changes is None else self.pending_changes | changes

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        pending, self.pending_changes = self.pending_changes, None
        if pending is not None and pending.any():
            self.on_changes(pending)

    def on_changes(self, changes: Changes) -> None:
        """Refresh what `changes` touched (pages override); called only while the page is shown."""

    def activate(self, **arguments: Any) -> None:
        """Called when the page is shown, with deep-link arguments (sheet, item…)."""
