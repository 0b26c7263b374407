"""The Canonical Labeling Tool's header and centre pane: widgets only, no decisions.

`ToolHeader` holds the title, the sheet / label type / filter pickers, the progress count and
the Claim and Close buttons; `ItemPane` holds the item's caption (reference, status, position,
"Label next…"), the canvas (or a document's text / a series' plot in its place), the item's
metadata and the key hints. The tool (`ui.labeling_tool`) connects their signals and decides;
the side panel (`ui.label_side_panel`) is the third part.
"""

from __future__ import annotations

from collections.abc import Mapping

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget

from vital_desktop.services import review as review_service
from vital_desktop.services.label_types import LabelType
from vital_desktop.ui import theme
from vital_desktop.ui.class_chooser import TOOL_HINTS as HINTS
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.image_view import ImageView
from vital_desktop.ui.item_views import ItemContentView
from vital_desktop.ui.label_actions import CLAIM_BATCH
from vital_desktop.ui.widgets import muted_label, title_label

FILTERS = (("All items", None), ("Unlabeled", "unlabeled"), ("Labeled", "labeled"), ("Conflicting", "conflict"))


def _picker(chars: int) -> QComboBox:
    combo = QComboBox()
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(chars)  # long names elide; the tooltip shows them whole
    combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
    return combo


class ToolHeader(QWidget):
    """Title, Sheet / Label type / Show pickers, the labeled count, Claim and Close."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        top = QHBoxLayout(self)
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(title_label("Canonical Labeling Tool", "pageTitle"))
        top.addSpacing(12)
        self.sheet_combo = _picker(10)
        self.type_combo = _picker(9)
        self.filter_combo = QComboBox()
        self.filter_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        for text, value in FILTERS:
            self.filter_combo.addItem(text, value)
        for label, widget in (("Sheet", self.sheet_combo), ("Label type", self.type_combo),
                              ("Show", self.filter_combo)):
            top.addWidget(muted_label(label, wrap=False))
            top.addWidget(widget)
        top.addStretch(1)
        self.progress_label = QLabel("")
        top.addWidget(self.progress_label)
        self.claim_button = QPushButton(f"Claim {CLAIM_BATCH}")
        self.claim_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.claim_button.setToolTip(f"Reserve the next {CLAIM_BATCH} unlabeled items for "
                                     f"{review_service.DEFAULT_CLAIM_MINUTES} minutes so no other expert labels them "
                                     "meanwhile (your saves release them)")
        top.addWidget(self.claim_button)
        self.close_button = QPushButton("Close")
        self.close_button.setToolTip("Close the labeling tool (Esc)")
        self.close_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        top.addWidget(self.close_button)

    def set_label_types(self, types: Mapping[str, LabelType], current: str | None = None) -> None:
        """List the label types by title (without emitting a choice); select `current` if given."""
        self.type_combo.blockSignals(True)
        self.type_combo.clear()
        for name, label_type in types.items():
            self.type_combo.addItem(label_type.title, name)
        if current is not None:
            self.type_combo.setCurrentIndex(self.type_combo.findData(current))
        self.type_combo.blockSignals(False)

    def show_progress(self, counts: Mapping[str, int], item_count: int) -> None:
        """'n / N labeled', with the conflicts counted and named (`counts`: items per label status)."""
        labeled, conflicts = counts.get("labeled", 0), counts.get("conflict", 0)
        text = f"<b>{labeled + conflicts:,} / {item_count:,}</b> labeled"
        if conflicts:
            text += f" · <span style='color:{theme.DANGER}'>{conflicts} conflicting</span>"
        self.progress_label.setText(text)


class ItemPane(QWidget):
    """The item being labeled: caption, canvas (or its content view), metadata and key hints."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        caption = QHBoxLayout()
        self.item_title = title_label("")
        self.item_status = QLabel("")
        self.item_status.setTextFormat(Qt.TextFormat.RichText)
        caption.addWidget(self.item_title)
        caption.addWidget(self.item_status)
        caption.addStretch(1)
        self.position_label = muted_label("", wrap=False)
        caption.addWidget(self.position_label)
        self.suggest_button = QPushButton("Label next…")
        self.suggest_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.suggest_button.setToolTip("Ask the active classifier which unlabeled items would teach it most; "
                                       "Enter then goes through them in that order")
        caption.addWidget(self.suggest_button)
        layout.addLayout(caption)
        self.image_view = ImageView()
        # documents and telemetry items show their text / plot in place of the image (ui/item_views)
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.image_view)
        self.content_view = ItemContentView(context)
        self.view_stack.addWidget(self.content_view)
        layout.addWidget(self.view_stack, 1)
        self.context_label = muted_label("")
        self.context_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.context_label)
        self.hint = muted_label(HINTS[None])
        layout.addWidget(self.hint)

    def show_status(self, status: str, version: str) -> None:
        """The label status dot ('● labeled') and its version line."""
        color = theme.STATUS_COLORS.get(status, theme.MUTED)
        self.item_status.setText(f"<span style='color:{color}; font-weight:600'>● {status}</span>"
                                 f"<span style='color:{theme.MUTED}'>{version}</span>")
