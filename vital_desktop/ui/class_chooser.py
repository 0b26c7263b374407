"""Choosing a class by keyboard, for any number of classes; and the list of a label's shapes.

`ClassChooser` lists the label type's classes in order, each with its colour and key (its own
shortcut, else 1–9 and 0 by position). When the classes outnumber the digit keys a filter field
appears: typing on the canvas starts it, the list narrows as one types, Up/Down move through
the matches, Enter picks the highlighted one and hands the keyboard back, Escape gives up.

`ShapeList` is the side panel of a geometry label: the class for new shapes (a `ClassChooser`),
the shapes drawn so far (select one to edit it on the canvas) and a remove button.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QKeyEvent, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.ui.shape_model import DIGIT_KEYS, ClassSpec, ShapeModel, key_of
from vital_desktop.ui.widgets import muted_label

#: rows shown at once before the class list scrolls
VISIBLE_ROWS = 10


def swatch(color: str, size: int = 12) -> QIcon:
    """A small square of the class colour."""
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class ClassChooser(QWidget):
    """The classes of a label type; one is chosen (by key, click or filter)."""

    changed = Signal()
    #: the filter gave the keyboard back (after Enter or Escape): the caller refocuses its canvas
    filter_finished = Signal()

    def __init__(self, classes: list[ClassSpec], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.classes = classes
        self.chosen = -1
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText(f"type to filter {len(classes)} classes (Enter picks, Esc cancels)")
        self.filter.setClearButtonEnabled(True)
        self.filter.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.filter.setVisible(self.filterable)
        self.filter.textChanged.connect(self._apply_filter)
        self.filter.installEventFilter(self)
        layout.addWidget(self.filter)
        self.no_match = muted_label("", wrap=False)
        self.no_match.setVisible(False)
        layout.addWidget(self.no_match)
        self.list = QListWidget()
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows move between items, not classes
        self.list.setUniformItemSizes(True)
        for i, spec in enumerate(classes):
            key = key_of(classes, i)
            entry = QListWidgetItem(swatch(spec.color), f"{key or ' '}   {spec.title}")
            entry.setData(Qt.ItemDataRole.UserRole, i)
            entry.setToolTip(spec.name if spec.title == spec.name else f"{spec.title} ({spec.name})")
            self.list.addItem(entry)
        self.list.itemClicked.connect(lambda entry: self.pick(entry.data(Qt.ItemDataRole.UserRole)))
        rows = min(max(len(classes), 1), VISIBLE_ROWS)
        self.list.setFixedHeight(rows * max(self.list.sizeHintForRow(0), 18) + 6)
        layout.addWidget(self.list)

    @property
    def filterable(self) -> bool:
        """More classes than digit keys: type-to-filter is offered."""
        return len(self.classes) > len(DIGIT_KEYS)

    # --- value ------------------------------------------------------------------------------
    def index(self) -> int:
        """The chosen class's position (-1: none)."""
        return self.chosen

    def value(self) -> str | None:
        index = self.index()
        return self.classes[index].name if index >= 0 else None

    def pick(self, index: int) -> bool:
        """Choose the index-th class; False when there is none."""
        if not 0 <= index < len(self.classes):
            return False
        changed = index != self.index()
        self.set_index(index)
        if changed:
            self.changed.emit()
        return True

    def set_index(self, index: int) -> None:
        """Show the index-th class as chosen (-1: none), without emitting `changed`."""
        self.chosen = index if 0 <= index < self.list.count() else -1
        self.list.blockSignals(True)
        self.list.clearSelection()
        if 0 <= index < self.list.count():
            entry = self.list.item(index)
            self.list.setCurrentItem(entry)
            entry.setSelected(True)
            self.list.scrollToItem(entry)
        else:
            self.list.setCurrentRow(-1)
        self.list.blockSignals(False)

    def set_value(self, name: str | None) -> None:
        names = [c.name for c in self.classes]
        self.set_index(names.index(name) if name in names else -1)

    # --- type to filter -------------------------------------------------------------------------
    def start_filter(self, text: str) -> bool:
        """Begin filtering with the typed text (from the canvas); False when there is no filter."""
        if not self.filterable:
            return False
        self.filter.setFocus()
        self.filter.setText(self.filter.text() + text if self.filter.hasFocus() else text)
        return True

    def matches(self) -> list[int]:
        """Classes the filter shows, in order."""
        return [i for i in range(self.list.count()) if not self.list.item(i).isHidden()]

    def _apply_filter(self, text: str) -> None:
        needle = text.strip().lower()
        for i, spec in enumerate(self.classes):
            hit = not needle or needle in spec.title.lower() or needle in spec.name.lower()
            self.list.item(i).setHidden(not hit)
        shown = self.matches()
        if shown and self.index() not in shown:
            self._highlight(shown[0])
        self.no_match.setText(f"no class matches “{text.strip()}”" if needle and not shown else "")
        self.no_match.setVisible(bool(needle and not shown))

    def _highlight(self, index: int) -> None:
        """Move the filter's highlight (the current row) without choosing it yet."""
        self.list.blockSignals(True)
        self.list.setCurrentRow(index, self.list.selectionModel().SelectionFlag.NoUpdate)
        self.list.scrollToItem(self.list.item(index))
        self.list.blockSignals(False)

    def _finish(self, accept: bool) -> None:
        if accept:
            shown = self.matches()
            row = self.list.currentRow()
            if shown:
                self.pick(row if row in shown else shown[0])
        self.filter.blockSignals(True)
        self.filter.clear()
        self.filter.blockSignals(False)
        self._apply_filter("")
        self.set_index(self.chosen)
        self.filter_finished.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.filter and event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent) \
                and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):
            event.accept()  # Enter picks and Escape cancels here; they are not the window's shortcuts
            return True
        if watched is self.filter and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Escape):
                self._finish(accept=key != Qt.Key.Key_Escape)
                return True
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up):
                shown = self.matches()
                if shown:
                    row = self.list.currentRow()
                    at = shown.index(row) if row in shown else -1
                    at = min(at + 1, len(shown) - 1) if key == Qt.Key.Key_Down else max(at - 1, 0)
                    self._highlight(shown[at])
                return True
        return super().eventFilter(watched, event)


#: the labeling tool's key hints under the image, by shape kind (None: a class form)
TOOL_HINTS = {
    None: "1–9 pick a class · Enter save and next · ←/→ move · Ctrl+Z undo · wheel zoom, drag pan, double-click fit",
    "boxes": "1–9 class · drag draws a box · Backspace deletes · Enter save and next · Ctrl+Z undo · "
             "wheel zoom, right-drag pan",
    "polygons": "1–9 class · click adds a vertex · Enter closes the polygon, then saves · Backspace deletes a "
                "vertex · Esc drops the open polygon · Ctrl+Z undo · wheel zoom, right-drag pan",
    "points": "1–9 class · click adds a point · drag moves · Backspace deletes · Enter save and next · "
              "Ctrl+Z undo · wheel zoom, right-drag pan",
}

HINTS = {
    "boxes": "drag to draw a box · drag a box to move it, a corner to resize · Backspace deletes",
    "polygons": "click to add vertices · Enter or a click on the first vertex closes · drag a vertex or "
                "the shape · Backspace deletes a vertex",
    "points": "click to add a point · drag to move · Backspace deletes",
}


class ShapeList(QWidget):
    """The class for new shapes, the shapes of the label, and a remove button."""

    def __init__(self, model: ShapeModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.chooser = ClassChooser(model.classes)
        self.chooser.set_index(model.current_class)
        self.chooser.changed.connect(lambda: model.pick_class(self.chooser.index()))
        self.list = QListWidget()
        self.list.setMaximumHeight(120)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.itemClicked.connect(lambda entry: model.select(self.list.row(entry)))
        remove = QPushButton("Remove selected")
        remove.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        remove.clicked.connect(model.delete)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.chooser)
        layout.addWidget(muted_label(HINTS[model.kind]))
        row = QHBoxLayout()
        self.count = muted_label("", wrap=False)
        row.addWidget(self.count, 1)
        row.addWidget(remove)
        layout.addLayout(row)
        layout.addWidget(self.list)
        self._signature: tuple = ()
        model.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        """Rebuild the list only when shapes were added, removed or relabelled (not on every drag step)."""
        model = self.model
        self.chooser.set_index(model.current_class)
        signature = tuple((s.get("label"), len(s.get("points", ())) if model.kind == "polygons" else 0)
                          for s in model.shapes)
        if signature != self._signature:
            self._signature = signature
            self.list.clear()
            for shape in model.shapes:
                spec = model.class_of(shape)
                title = spec.title if spec else str(shape.get("label", ""))
                what = f"{len(shape['points'])} vertices" if model.kind == "polygons" else \
                    (f"{shape['width']:.0f}×{shape['height']:.0f}" if model.kind == "boxes" else
                     f"({shape['x']:.0f}, {shape['y']:.0f})")
                self.list.addItem(QListWidgetItem(swatch(model.color_of(shape)), f"{title}  {what}"))
            noun = {"boxes": "box(es)", "polygons": "polygon(s)", "points": "point(s)"}[model.kind]
            self.count.setText(f"{len(model.shapes)} {noun}")
        self.list.blockSignals(True)
        self.list.setCurrentRow(model.selected if model.selected is not None else -1)
        self.list.blockSignals(False)
