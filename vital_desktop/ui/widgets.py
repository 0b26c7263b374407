"""Small shared widgets: cards, titles, key/value panels, the error dialog."""

from __future__ import annotations

import html
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core import sitelog
from vital_desktop.core.errors import Cancelled, VitalError
from vital_desktop.ui import theme


def title_label(text: str, name: str = "sectionTitle") -> QLabel:
    label = QLabel(text)
    label.setObjectName(name)
    if name == "sectionTitle":
        label.setWordWrap(True)  # a long section title wraps rather than widening its card
    return label


def muted_label(text: str = "", *, wrap: bool = True) -> QLabel:
    label = QLabel(text)
    label.setProperty("muted", True)
    label.setWordWrap(wrap)
    return label


class ElidedLabel(QLabel):
    """One line of text that shrinks with its room: cut with "…" and whole in the tooltip, so a
    long title or path never sets the window's minimum width."""

    def __init__(self, text: str = "", parent: QWidget | None = None, *, minimum: int = 60) -> None:
        super().__init__(parent)
        self._full = ""
        self._minimum = minimum
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:
        self._full = text or ""
        self.setToolTip(self._full)
        super().setText(self._full)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def is_elided(self) -> bool:
        return super().text() != self._full

    def minimumSizeHint(self) -> QSize:
        return QSize(min(self._minimum, super().sizeHint().width()), super().minimumSizeHint().height())

    def sizeHint(self) -> QSize:
        return QSize(self.fontMetrics().horizontalAdvance(self._full) + 4, super().sizeHint().height())

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideRight, max(self.width(), 10))
        if shown != super().text():
            super().setText(shown)


def compact_combo(chars: int = 28) -> QComboBox:
    """A combo box whose width does not follow its longest entry (long sheet and template names
    would set the page's minimum width); the entry shows whole in the tooltip and the popup."""
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)
    combo.currentTextChanged.connect(combo.setToolTip)
    return combo


def fill_combo(combo: QComboBox, entries: Iterable[tuple[str, Any]],
               prefer: Iterable[Callable[[Any], bool]] = ()) -> None:
    """Replace a combo's entries with (text, data) pairs without emitting its change signals, then
    select the first entry whose data the first matching `prefer` test accepts (else the first)."""
    combo.blockSignals(True)
    combo.clear()
    for text, data in entries:
        combo.addItem(text, data)
    for wanted in prefer:
        index = next((i for i in range(combo.count()) if wanted(combo.itemData(i))), -1)
        if index >= 0:
            combo.setCurrentIndex(index)
            break
    combo.blockSignals(False)


def primary_button(text: str) -> QPushButton:
    button = QPushButton(text)
    button.setProperty("primary", True)
    return button


class Card(QFrame):
    """A white rounded panel with an optional title."""

    def __init__(self, title: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(14, 12, 14, 12)
        self.body.setSpacing(8)
        if title:
            self.body.addWidget(title_label(title))


class KeyValuePanel(QWidget):
    """Rows of 'key: value' with selectable values (paths can be copied)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(14)
        self.form.setVerticalSpacing(5)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignLeft)
        self.values: dict[str, QLabel] = {}
        self._shown: tuple[list[tuple[str, str]], bool] | None = None

    def set_rows(self, rows: Iterable[tuple[str, str]], *, rich: bool = False) -> None:
        """Show `rows` (key, value); the rows already shown are kept as they are (no relayout)."""
        rows = [(str(key), str(value)) for key, value in rows]
        if (rows, rich) == self._shown:
            return
        self._shown = (rows, rich)
        while self.form.rowCount():
            self.form.removeRow(0)
        self.values.clear()
        for key, value in rows:
            label = QLabel(value if rich else html.escape(str(value)))
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            key_label = muted_label(key, wrap=False)
            self.form.addRow(key_label, label)
            self.values[key] = label


def error_text(exc: BaseException) -> str:
    if isinstance(exc, VitalError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> None:
    """Every error reaches the user: VitalErrors as their message, others with the traceback."""
    if isinstance(exc, Cancelled):
        return
    sitelog.log_user_error(exc, title)
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(error_text(exc))
    if not isinstance(exc, VitalError):
        box.setDetailedText("".join(traceback.format_exception(exc)))
    box.setObjectName("errorBox")
    box.open()


def page_layout(page: QWidget, title: str, subtitle: str) -> tuple[QVBoxLayout, QHBoxLayout]:
    """Every page's frame: margins, a title with its one-line purpose, and a header row to
    which the page adds its buttons (after the stretch, so they sit at the right)."""
    root = QVBoxLayout(page)
    root.setContentsMargins(20, 16, 20, 16)
    root.setSpacing(theme.SPACING)
    header = QHBoxLayout()
    header.addWidget(title_label(title, "pageTitle"))
    purpose = ElidedLabel(subtitle)
    purpose.setProperty("muted", True)
    header.addWidget(purpose, 1)  # the purpose line gives way (elided) before any button does
    root.addLayout(header)
    return root, header
