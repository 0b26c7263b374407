"""The page protocol every stage follows, and the placeholder for stages still to come."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget

from vital_desktop.core.changes import Changes
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.widgets import Card, muted_label, title_label


class Page(QWidget):
    """A stage's page: refreshes its part on `Changes`, opens deep links."""

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


class PlaceholderPage(Page):
    """A stage whose page is not built yet: says what is coming, and what works meanwhile."""

    def __init__(self, context: AppContext, stage: str, title: str, coming: str, meanwhile: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.stage = stage
        self.title = title
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 20, 24, 20)
        layout.addWidget(title_label(title, "pageTitle"))
        card = Card("Coming to this page")
        card.body.addWidget(muted_label(coming))
        if meanwhile:
            card.body.addWidget(title_label("Meanwhile"))
            card.body.addWidget(muted_label(meanwhile))
        layout.addWidget(card)
        layout.addStretch(1)
