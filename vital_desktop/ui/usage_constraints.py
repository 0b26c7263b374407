"""The usage-constraints box of the labeling tool: allowed / prohibited uses with a reason.

The sheet's data-classification tags are shown and force their prohibitions on a new label.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QGridLayout, QGroupBox, QLabel, QLineEdit, QWidget

from vital_desktop.core.governance import TAG_PROHIBITS, USES
from vital_desktop.services.labels import LabelInfo
from vital_desktop.ui.widgets import muted_label


class UsageConstraints(QGroupBox):
    """Allowed / prohibited uses with a reason; the sheet's classification tags are shown and enforced."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Usage constraints", parent)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(14)
        grid.addWidget(muted_label("use", wrap=False), 0, 0)
        grid.addWidget(muted_label("allowed", wrap=False), 0, 1)
        grid.addWidget(muted_label("prohibited", wrap=False), 0, 2)
        self.allowed: dict[str, QCheckBox] = {}
        self.prohibited: dict[str, QCheckBox] = {}
        for row, use in enumerate(USES, start=1):
            grid.addWidget(QLabel(use.replace("_", "-")), row, 0)
            allowed, prohibited = QCheckBox(), QCheckBox()
            for box in (allowed, prohibited):
                box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            allowed.setChecked(True)
            prohibited.toggled.connect(lambda on, a=allowed: on and a.setChecked(False))
            allowed.toggled.connect(lambda on, p=prohibited: on and p.setChecked(False))
            grid.addWidget(allowed, row, 1)
            grid.addWidget(prohibited, row, 2)
            self.allowed[use], self.prohibited[use] = allowed, prohibited
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("reason (e.g. serial numbers visible)")
        grid.addWidget(QLabel("Reason"), len(USES) + 1, 0)
        grid.addWidget(self.reason, len(USES) + 1, 1, 1, 2)
        self.tags_note = muted_label("")
        grid.addWidget(self.tags_note, len(USES) + 2, 0, 1, 3)
        self.tags: list[str] = []

    def set_tags(self, tags: list[str]) -> None:
        self.tags = tags
        notes = [f"{t}: {', '.join(TAG_PROHIBITS[t][0])} prohibited" for t in tags if TAG_PROHIBITS.get(t, ((),))[0]]
        self.tags_note.setText("Sheet classification — " + "; ".join(notes) if notes else "")

    def set_value(self, label: LabelInfo | None) -> None:
        if label is None:
            forced = {u for t in self.tags for u in TAG_PROHIBITS.get(t, ((), ""))[0]}
            for use in USES:
                self.prohibited[use].setChecked(use in forced)
                self.allowed[use].setChecked(use not in forced)
            self.reason.setText("")
            return
        for use in USES:
            self.prohibited[use].setChecked(use in label.prohibited_uses)
            self.allowed[use].setChecked(use in label.allowed_uses)
        self.reason.setText(label.usage_reason)

    def value(self) -> tuple[list[str], list[str], str]:
        allowed = [u for u, box in self.allowed.items() if box.isChecked()]
        prohibited = [u for u, box in self.prohibited.items() if box.isChecked()]
        return allowed, prohibited, self.reason.text().strip()
