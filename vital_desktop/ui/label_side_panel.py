"""The right-hand panel of the Canonical Labeling Tool: the label form and everything about it.

The form box (filled by the tool with a `SchemaForm`), notes and confidence, usage constraints,
Save / Undo / Redo, the message line, the item's labels of other types, and the history of the
current label with its rollback button. The panel only shows; the tool decides and saves.

It fits the narrow column of a 1280×720 window whatever the label type: the form's rows wrap
and its long titles are cut with "…" (`ui.schema_form`), and so is a long label-type title in
the form box's frame.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.services.content_review import CONTENT_CHANGED
from vital_desktop.services.labels import CONFIDENCE_LEVELS, LabelInfo
from vital_desktop.ui.usage_constraints import UsageConstraints
from vital_desktop.ui.widgets import muted_label, primary_button

GEOMETRY_NOUNS = {"boxes": "box(es)", "polygons": "polygon(s)", "points": "point(s)"}
#: widest the form box's title may be (a group box's title sets its minimum width)
TITLE_WIDTH = 260


def summarize(data: dict) -> str:
    """A label's data in one short line ('scratch, major' / '2 box(es)')."""
    for key, noun in GEOMETRY_NOUNS.items():
        if isinstance(data.get(key), list):
            return f"{len(data[key])} {noun}"
    parts = [str(v) if not isinstance(v, float) else f"{v:.2f}" for v in data.values() if v not in (None, "")]
    return ", ".join(parts)[:80] or "(empty)"


class LabelSidePanel(QWidget):
    """Form, details, actions, other labels and history of the item being labeled."""

    #: double-click on another label type's label: open that type
    other_type_opened = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(10)
        self.form_box = QGroupBox("Label")
        self.form_layout = QVBoxLayout(self.form_box)
        layout.addWidget(self.form_box)
        layout.addWidget(self._details())
        self.usage = UsageConstraints()
        layout.addWidget(self.usage)
        buttons = QHBoxLayout()
        self.save_button = primary_button("Save and next  (Enter)")
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        for button in (self.save_button, self.undo_button, self.redo_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            buttons.addWidget(button)
        self.undo_button.setEnabled(False)
        self.redo_button.setEnabled(False)
        layout.addLayout(buttons)
        self.changed_box = self._changed()
        layout.addWidget(self.changed_box)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        layout.addWidget(self.message)
        layout.addWidget(self._others())
        layout.addWidget(self._history())
        layout.addStretch(1)

    def _details(self) -> QGroupBox:
        details = QGroupBox("Notes and confidence")
        details_layout = QVBoxLayout(details)
        self.notes = QLineEdit()
        self.notes.setPlaceholderText("notes (what you saw, why this label) — Enter saves")
        details_layout.addWidget(self.notes)
        confidence_row = QHBoxLayout()
        confidence_row.addWidget(muted_label("confidence", wrap=False))
        self.confidence_group = QButtonGroup(self)
        for i, level in enumerate(CONFIDENCE_LEVELS):
            button = QRadioButton(level)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.confidence_group.addButton(button, i)
            confidence_row.addWidget(button)
        confidence_row.addStretch(1)
        details_layout.addLayout(confidence_row)
        return details

    def _changed(self) -> QGroupBox:
        """Shown when the label was made on an image whose content has since changed."""
        box = QGroupBox("The image changed")
        box_layout = QVBoxLayout(box)
        self.changed_note = muted_label("")
        box_layout.addWidget(self.changed_note)
        self.confirm_button = QPushButton("Label still holds  (Ctrl+K)")
        self.confirm_button.setToolTip("A new version of this label with the same content, for the new image; or "
                                       "relabel and save as usual")
        self.confirm_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        box_layout.addWidget(self.confirm_button)
        box.setVisible(False)
        return box

    def _others(self) -> QGroupBox:
        others = QGroupBox("Other labels of this item")
        others_layout = QVBoxLayout(others)
        self.other_labels = QListWidget()
        self.other_labels.setMaximumHeight(110)
        self.other_labels.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.other_labels.itemDoubleClicked.connect(self._other_opened)
        others_layout.addWidget(self.other_labels)
        others_layout.addWidget(muted_label("One label per (sheet, item, label type): double-click to open it."))
        return others

    def _history(self) -> QGroupBox:
        history = QGroupBox("History")
        history_layout = QVBoxLayout(history)
        self.history = QListWidget()
        self.history.setMaximumHeight(140)
        self.history.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        history_layout.addWidget(self.history)
        self.rollback_button = QPushButton("Roll back to the selected version")
        self.rollback_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        history_layout.addWidget(self.rollback_button)
        return history

    def _other_opened(self, entry: QListWidgetItem) -> None:
        label_type = entry.data(Qt.ItemDataRole.UserRole)
        if label_type:
            self.other_type_opened.emit(label_type)

    def set_form_title(self, text: str) -> None:
        """The form box's title, cut with "…" past `TITLE_WIDTH` (whole in the tooltip)."""
        shown = self.form_box.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, TITLE_WIDTH)
        self.form_box.setTitle(shown)
        self.form_box.setToolTip(text if shown != text else "")

    # --- values -----------------------------------------------------------------------------
    def confidence(self) -> str | None:
        checked = self.confidence_group.checkedId()
        return CONFIDENCE_LEVELS[checked] if checked >= 0 else None

    def set_details(self, label: LabelInfo | None) -> None:
        """Notes, confidence and usage of a stored label (or the defaults for a new one)."""
        self.notes.setText(label.notes if label else "")
        self.confidence_group.setExclusive(False)
        for button in self.confidence_group.buttons():
            button.setChecked(False)
        self.confidence_group.setExclusive(True)
        if label and label.confidence in CONFIDENCE_LEVELS:
            self.confidence_group.button(CONFIDENCE_LEVELS.index(label.confidence)).setChecked(True)
        self.usage.set_value(label)

    def show_labels(self, label: LabelInfo | None, all_labels: list[LabelInfo], versions: list, *,
                    label_type: str, type_title) -> None:
        """The other types' labels of the item and the current label's history."""
        self.other_labels.clear()
        for other in all_labels:
            if other.label_type == label_type:
                continue
            entry = QListWidgetItem(f"{type_title(other.label_type)}: "
                                    f"{summarize(other.label_data)}  (v{other.version}, {other.updated_by})")
            entry.setData(Qt.ItemDataRole.UserRole, other.label_type)
            self.other_labels.addItem(entry)
        if not self.other_labels.count():
            self.other_labels.addItem("— no other label types yet —")
        self.history.clear()
        if label is not None:
            for version in reversed(versions):
                entry = QListWidgetItem(f"v{version.version}  {version.action:<8} {version.changed_by}  "
                                        f"{(version.changed_at or '')[:16]}  —  {summarize(version.label_data)}")
                entry.setData(Qt.ItemDataRole.UserRole, version.version)
                entry.setToolTip(json.dumps(version.label_data, ensure_ascii=False)
                                 + (f"\n{version.reason}" if version.reason else ""))
                self.history.addItem(entry)
        self.rollback_button.setEnabled(label is not None and self.history.count() > 1)
        changed = label is not None and label.review_state == CONTENT_CHANGED
        self.changed_box.setVisible(changed)
        if changed:
            self.changed_note.setText(f"This {type_title(label_type)} label was made on the item's earlier "
                                      "content. Look at the image: relabel it, or confirm that it still holds.")
        self.message.setText("")
