"""A form generated from a label type's JSON Schema.

enum → radio buttons for the class field (picked with the number keys), a combo box otherwise;
number/integer → spin box (optional ones behind a 'set' check box); boolean → check box;
string → line edit; an array of boxes → a box list tied to the image view. `value()` returns
a dict the label type's schema accepts; the service validates it again.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.services.labels import LabelType

UNSET = "—"


def _title(name: str, spec: dict) -> str:
    return spec.get("title") or name.replace("_", " ").capitalize()


class ClassPicker(QWidget):
    """Radio buttons '1 inclusion', '2 crack', …: the class field, one key per class."""

    changed = Signal()

    def __init__(self, values: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.values = values
        self.group = QButtonGroup(self)
        self.group.setExclusive(True)
        layout = QGridLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setHorizontalSpacing(12)
        for i, value in enumerate(values):
            text = f"{i + 1}  {value}" if i < 9 else str(value)
            button = QRadioButton(text.replace("_", " "))
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows move between items, not classes
            self.group.addButton(button, i)
            layout.addWidget(button, i // 2, i % 2)
        self.group.idToggled.connect(lambda _id, on: on and self.changed.emit())

    def pick(self, index: int) -> bool:
        button = self.group.button(index)
        if button is None:
            return False
        button.setChecked(True)
        return True

    def value(self) -> Any:
        index = self.group.checkedId()
        return self.values[index] if index >= 0 else None

    def set_value(self, value: Any) -> None:
        self.group.setExclusive(False)
        for button in self.group.buttons():
            button.setChecked(False)
        self.group.setExclusive(True)
        if value in self.values:
            self.group.button(self.values.index(value)).setChecked(True)


class OptionalNumber(QWidget):
    changed = Signal()

    def __init__(self, spec: dict, integer: bool, required: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.spin = QSpinBox() if integer else QDoubleSpinBox()
        low = spec.get("minimum", spec.get("exclusiveMinimum", -1e9))
        high = spec.get("maximum", spec.get("exclusiveMaximum", 1e9))
        if not integer:
            self.spin.setDecimals(3)  # type: ignore[union-attr]
            self.spin.setSingleStep(0.05 if high - low <= 1 else 1.0)  # type: ignore[union-attr]
        self.spin.setRange(int(low) if integer else low, int(high) if integer else high)
        self.spin.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.enabled = QCheckBox("set")
        self.enabled.setChecked(required)
        self.enabled.setVisible(not required)
        self.enabled.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.spin.setEnabled(required)
        self.enabled.toggled.connect(self.spin.setEnabled)
        self.enabled.toggled.connect(lambda _on: self.changed.emit())
        self.spin.valueChanged.connect(lambda _v: self.changed.emit())
        layout.addWidget(self.spin, 1)
        layout.addWidget(self.enabled)

    def value(self) -> Any:
        return self.spin.value() if self.enabled.isChecked() else None

    def set_value(self, value: Any) -> None:
        self.enabled.setChecked(value is not None or not self.enabled.isVisible())
        if value is not None:
            self.spin.setValue(value)


class BoxList(QWidget):
    """Localization boxes: drawn on the image (drag), listed here, removed with the button."""

    changed = Signal()

    def __init__(self, labels: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.boxes: list[dict] = []
        self.label_combo = QComboBox()
        self.label_combo.addItems(labels)
        self.label_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.list = QListWidget()
        self.list.setMaximumHeight(120)
        self.list.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        remove = QPushButton("Remove box")
        remove.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        remove.clicked.connect(self._remove)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(self.label_combo, 1)
        row.addWidget(remove)
        layout.addLayout(row)
        layout.addWidget(self.list)

    def add_box(self, x: float, y: float, width: float, height: float) -> None:
        self.boxes.append({"x": x, "y": y, "width": width, "height": height, "label": self.label_combo.currentText()})
        self._refresh()

    def pick(self, index: int) -> bool:
        if 0 <= index < self.label_combo.count():
            self.label_combo.setCurrentIndex(index)
            return True
        return False

    def _remove(self) -> None:
        row = self.list.currentRow()
        if row < 0 and self.boxes:
            row = len(self.boxes) - 1
        if 0 <= row < len(self.boxes):
            del self.boxes[row]
            self._refresh()

    def _refresh(self) -> None:
        self.list.clear()
        for box in self.boxes:
            self.list.addItem(f"{box['label']}  at ({box['x']:.0f}, {box['y']:.0f})  "
                              f"{box['width']:.0f}×{box['height']:.0f}")
        self.changed.emit()

    def value(self) -> list[dict]:
        return [dict(b) for b in self.boxes]

    def set_value(self, value: Any) -> None:
        self.boxes = [dict(b) for b in (value or [])]
        self._refresh()


class SchemaForm(QWidget):
    """Fields of one label type; `value()` is the label data."""

    changed = Signal()

    def __init__(self, label_type: LabelType, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label_type = label_type
        schema = label_type.schema
        self.required = set(schema.get("required", []))
        self.fields: dict[str, Any] = {}
        self.class_picker: ClassPicker | None = None
        self.box_list: BoxList | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(8)
        for name, spec in schema.get("properties", {}).items():
            widget = self._field(name, spec)
            self.fields[name] = widget
            title = _title(name, spec) + ("" if name in self.required else " (optional)")
            if isinstance(widget, (ClassPicker, BoxList)):
                form.addRow(title, None)
                form.addRow(widget)
            else:
                form.addRow(title, widget)

    def _field(self, name: str, spec: dict) -> QWidget:
        kind = spec.get("type")
        required = name in self.required
        if "enum" in spec and name == self.label_type.class_field:
            picker = ClassPicker([str(v) for v in spec["enum"]])
            picker.changed.connect(self.changed)
            self.class_picker = picker
            return picker
        if "enum" in spec:
            combo = QComboBox()
            combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
            if not required:
                combo.addItem(UNSET)
            combo.addItems([str(v) for v in spec["enum"]])
            combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
            return combo
        if kind in ("number", "integer"):
            number = OptionalNumber(spec, kind == "integer", required)
            number.changed.connect(self.changed)
            return number
        if kind == "boolean":
            box = QCheckBox()
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.toggled.connect(lambda _on: self.changed.emit())
            if name == self.label_type.class_field:
                picker = ClassPicker(["false", "true"])
                picker.changed.connect(self.changed)
                self.class_picker = picker
                return picker
            return box
        if kind == "array" and spec.get("items", {}).get("type") == "object":
            labels = spec["items"].get("properties", {}).get("label", {}).get("enum", [])
            boxes = BoxList([str(v) for v in labels])
            boxes.changed.connect(self.changed)
            self.box_list = boxes
            return boxes
        edit = QLineEdit()
        if "maxLength" in spec:
            edit.setMaxLength(int(spec["maxLength"]))
        edit.textChanged.connect(lambda _t: self.changed.emit())
        return edit

    def pick_class(self, index: int) -> bool:
        """Number keys: choose the index-th class (or box label for localization)."""
        if self.class_picker is not None:
            return self.class_picker.pick(index)
        if self.box_list is not None:
            return self.box_list.pick(index)
        return False

    def value(self) -> dict:
        data: dict[str, Any] = {}
        properties = self.label_type.schema.get("properties", {})
        for name, widget in self.fields.items():
            spec = properties[name]
            if isinstance(widget, ClassPicker):
                value = widget.value()
                if spec.get("type") == "boolean" and value is not None:
                    value = value == "true"
            elif isinstance(widget, QComboBox):
                value = None if widget.currentText() == UNSET else widget.currentText()
            elif isinstance(widget, (OptionalNumber, BoxList)):
                value = widget.value()
            elif isinstance(widget, QCheckBox):
                value = widget.isChecked()
            else:
                value = widget.text().strip() or None
            if value is not None:
                data[name] = value
        return data

    def set_value(self, data: dict | None) -> None:
        data = data or {}
        for name, widget in self.fields.items():
            value = data.get(name)
            if isinstance(widget, ClassPicker):
                widget.set_value(("true" if value else "false") if isinstance(value, bool) else value)
            elif isinstance(widget, QComboBox):
                widget.setCurrentText(str(value) if value is not None else (UNSET if widget.findText(UNSET) >= 0
                                                                             else widget.itemText(0)))
            elif isinstance(widget, (OptionalNumber, BoxList)):
                widget.set_value(value)
            elif isinstance(widget, QCheckBox):
                widget.setChecked(bool(value))
            else:
                widget.setText("" if value is None else str(value))

    def missing_required(self) -> list[str]:
        data = self.value()
        return [name for name in self.required if name not in data]
