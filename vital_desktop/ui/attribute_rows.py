"""Form rows for a label type's attribute fields: one widget per field, built from the type itself.

A choice field is a combo (with "—" for not given) labelled with the field's title, a number a
spin box (its lowest step shows "—": not given), a boolean a three-state check box (the middle
state: not given), a text field a line edit (empty: not given). `values()` returns only the
fields given, typed; the service checks them against the label type.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLineEdit, QWidget

from vital_desktop.services.label_types import AttributeField

NOT_GIVEN = "—"
_SPIN_LIMIT = 1e9


def _choice(attr: AttributeField) -> tuple[QWidget, Callable[[], Any]]:
    combo = QComboBox()
    combo.addItem(NOT_GIVEN, None)
    for choice in attr.choices:
        combo.addItem(choice, choice)
    return combo, combo.currentData


def _number(attr: AttributeField) -> tuple[QWidget, Callable[[], Any]]:
    spin = QDoubleSpinBox()
    spin.setDecimals(3)
    low = attr.minimum if attr.minimum is not None else -_SPIN_LIMIT
    spin.setRange(low - 1, attr.maximum if attr.maximum is not None else _SPIN_LIMIT)
    spin.setSpecialValueText(NOT_GIVEN)  # shown at the minimum, which is below every allowed value
    spin.setValue(spin.minimum())
    return spin, lambda: None if spin.value() == spin.minimum() else spin.value()


def _boolean(attr: AttributeField) -> tuple[QWidget, Callable[[], Any]]:
    box = QCheckBox()
    box.setTristate(True)
    box.setCheckState(Qt.CheckState.PartiallyChecked)
    box.setToolTip("checked: yes, empty: no, filled: not given")

    def value() -> bool | None:
        state = box.checkState()
        return None if state == Qt.CheckState.PartiallyChecked else state == Qt.CheckState.Checked

    return box, value


def _text(attr: AttributeField) -> tuple[QWidget, Callable[[], Any]]:
    edit = QLineEdit()
    edit.setPlaceholderText("optional" if not attr.required else "required")
    return edit, lambda: edit.text().strip() or None


#: attribute field type -> widget maker (widget, value getter)
WIDGETS: dict[str, Callable[[AttributeField], tuple[QWidget, Callable[[], Any]]]] = {
    "choice": _choice, "number": _number, "boolean": _boolean, "text": _text,
}


class AttributeRows:
    """The attribute rows of one form, inserted after row `first_row`, rebuilt per label type."""

    def __init__(self, form: QFormLayout, first_row: int) -> None:
        self.form = form
        self.first_row = first_row
        self.label_type: str | None = None
        self.fields: list[AttributeField] = []
        self.widgets: dict[str, QWidget] = {}
        self._getters: dict[str, Callable[[], Any]] = {}

    def show(self, label_type: str | None, fields: Sequence[AttributeField]) -> None:
        """Rows for `fields` (those of `label_type`); nothing changes if the type is the same."""
        if label_type == self.label_type:
            return
        self.clear()
        self.label_type, self.fields = label_type, list(fields)
        for offset, attr in enumerate(fields):
            widget, getter = WIDGETS.get(attr.type, _text)(attr)
            widget.setObjectName(f"attr_{attr.name}")
            self.widgets[attr.name], self._getters[attr.name] = widget, getter
            self.form.insertRow(self.first_row + offset, (attr.title or attr.name) + (" *" if attr.required else ""),
                                widget)

    def clear(self) -> None:
        for _ in self.widgets:
            self.form.removeRow(self.first_row)
        self.widgets, self._getters, self.label_type, self.fields = {}, {}, None, []

    def reset(self) -> None:
        """Every field back to not given (after the feedback was added)."""
        label_type, fields = self.label_type, self.fields
        self.clear()
        self.show(label_type, fields)

    def values(self) -> dict[str, Any]:
        """The fields given, by name (typed: str, float or bool)."""
        out = {name: getter() for name, getter in self._getters.items()}
        return {name: value for name, value in out.items() if value is not None}
