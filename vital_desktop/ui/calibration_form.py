"""The Calibration page's configuration form: its fields, which of them apply, and reading them.

`CalibrationForm` is mixed into `CalibrationPage` (the way Qt Designer's `setupUi` classes are):
`_build_form()` creates the fields as attributes of the page and returns their layout; the
page adds the run, curve and fit actions and the results. The form's rules: a field that does not
apply to the source kind is disabled and not read (a point keeps no radius); a source preset
(shipped, or saved at this site with `vital mc save-source`) fills the source's fields, and
choosing another source kind drops the preset; `build_config()` turns the form into a validated
`montecarlo.SimulationConfig`. Site presets (fitted detectors, saved sources) are read off the
GUI thread through the operation layer.
"""

from __future__ import annotations

from dataclasses import fields as dataclass_fields
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QWidget,
)

from vital_desktop.core.errors import ValidationError
from vital_desktop.services import calibration
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.widgets import muted_label

CRYSTAL_MATERIALS = ("nai", "csi", "ge", "labr3", "bgo", "pvt")
HISTORY_CHOICES = ("1e5", "2e5", "1e6", "1e7")
ABSORBER_MATERIALS = ("al", "cu", "sn", "cd", "pb", "fe", "pvt")
SHIELD_MATERIALS = ("pb", "fe", "concrete", "cu")


def _spin(low: float, high: float, value: float, decimals: int = 2, suffix: str = " cm") -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


class CalibrationForm:
    """The configuration fields of the Calibration page and the rules that read them (a mixin)."""

    context: AppContext

    def _build_form(self) -> QFormLayout:
        """Create the form's fields (attributes of the page) and return their layout."""
        from vital_desktop.montecarlo import detector_presets, nuclide_library, source_presets
        from vital_desktop.montecarlo.config import SOURCE_KINDS

        self.presets = detector_presets()
        self.source_presets = source_presets()
        self.nuclides = nuclide_library()
        self.site_presets: dict[str, dict] = {}
        self.site_source_presets: dict[str, dict] = {}
        form = QFormLayout()
        self.detector = QComboBox()
        for key, preset in self.presets.items():
            self.detector.addItem(key, key)
            self.detector.setItemData(self.detector.count() - 1, preset.get("title", key), Qt.ItemDataRole.ToolTipRole)
        self.detector.currentIndexChanged.connect(lambda _i: self._preset_changed())
        form.addRow("Detector", self.detector)
        self.detector_title = muted_label()
        form.addRow("", self.detector_title)
        self.custom = QCheckBox("Custom crystal dimensions")
        self.custom.toggled.connect(lambda _on: self._update_enabled())
        form.addRow("", self.custom)
        self.material = QComboBox()
        self.material.addItems(CRYSTAL_MATERIALS)
        form.addRow("Crystal material", self.material)
        self.crystal_radius = _spin(0.01, 100.0, 3.81)
        form.addRow("Crystal radius", self.crystal_radius)
        self.crystal_height = _spin(0.01, 100.0, 7.62)
        form.addRow("Crystal height", self.crystal_height)
        self.source_kind = QComboBox()
        self.source_kind.addItems(list(SOURCE_KINDS))
        self.source_kind.setToolTip("point or disk (on or off the axis), a cylindrical volume (coaxial or off the "
                                    "axis), or a Marinelli beaker around the end cap")
        self.source_kind.currentIndexChanged.connect(lambda _i: self._update_enabled())
        form.addRow("Source", self.source_kind)
        self.source_preset = QComboBox()
        self.source_preset.addItem("custom dimensions", "")
        for key, preset in self.source_presets.items():
            self.source_preset.addItem(str(preset.get("title", key)), key)
        self.source_preset.setToolTip("A shipped beaker or a source saved at this site (vital mc save-source): "
                                      "fills the source's fields below, which you can still change")
        self.source_preset.currentIndexChanged.connect(lambda _i: self._source_preset_changed())
        form.addRow("Source preset", self.source_preset)
        self.distance = _spin(0.0, 10_000.0, 10.0)
        self.distance.setToolTip("From the detector's front face (end cap) to the source plane / container bottom "
                                 "(Marinelli: to the bottom of its well; 0 = sitting on the end cap)")
        form.addRow("Distance", self.distance)
        self.source_offset = _spin(0.0, 1000.0, 0.0)
        self.source_offset.setToolTip("Distance of the source (a volume's axis) off the detector axis")
        form.addRow("Off-axis offset", self.source_offset)
        self.source_radius = _spin(0.0, 100.0, 2.5)
        self.source_radius.setToolTip("Disk radius; container or beaker inner radius")
        form.addRow("Source radius", self.source_radius)
        self.source_height = _spin(0.0, 100.0, 2.0)
        self.source_height.setToolTip("Volume fill height; Marinelli inner height")
        form.addRow("Fill height", self.source_height)
        well_row = QWidget()
        well_layout = QHBoxLayout(well_row)
        well_layout.setContentsMargins(0, 0, 0, 0)
        self.well_radius = _spin(0.0, 100.0, 4.2)
        self.well_radius.setToolTip("Marinelli: inner radius of the re-entrant well (the end cap must fit)")
        self.well_depth = _spin(0.0, 100.0, 7.8)
        self.well_depth.setToolTip("Marinelli: inner depth of the well, from the rim")
        well_layout.addWidget(self.well_radius)
        well_layout.addWidget(self.well_depth)
        form.addRow("Well radius, depth", well_row)
        self.wall = _spin(0.0, 10.0, 0.0, 3)
        self.wall.setToolTip("Container / beaker wall thickness (polypropylene for a Marinelli preset)")
        form.addRow("Wall", self.wall)
        self.source_material = QComboBox()
        self.source_material.addItems(["water", "concrete", "air", "pp"])
        self.source_material.setEditable(True)
        form.addRow("Source contents", self.source_material)
        absorber_row = QWidget()
        absorber_layout = QHBoxLayout(absorber_row)
        absorber_layout.setContentsMargins(0, 0, 0, 0)
        self.absorber_material = QComboBox()
        self.absorber_material.addItems(["none", *ABSORBER_MATERIALS])
        self.absorber_thickness = _spin(0.001, 50.0, 0.1, 3)
        self.absorber_gap = _spin(0.0, 1000.0, 0.0)
        self.absorber_gap.setToolTip("Distance from the detector's front face to the absorber")
        for absorber_part in (self.absorber_material, self.absorber_thickness, self.absorber_gap):
            absorber_layout.addWidget(absorber_part)
        form.addRow("Absorber (gap)", absorber_row)
        shield_row = QWidget()
        shield_layout = QHBoxLayout(shield_row)
        shield_layout.setContentsMargins(0, 0, 0, 0)
        self.shield_material = QComboBox()
        self.shield_material.addItems(["none", *SHIELD_MATERIALS])
        self.shield_wall = _spin(0.1, 100.0, 5.0)
        self.shield_wall.setToolTip("Closed cylindrical shield around source and detector: wall thickness")
        shield_layout.addWidget(self.shield_material)
        shield_layout.addWidget(self.shield_wall)
        form.addRow("Shield", shield_row)
        backing_row = QWidget()
        backing_layout = QHBoxLayout(backing_row)
        backing_layout.setContentsMargins(0, 0, 0, 0)
        self.backing_material = QComboBox()
        self.backing_material.addItems(["none", *SHIELD_MATERIALS, "al"])
        self.backing_material.setToolTip("A plate right behind a point or disk source (holder, shelf): "
                                         "backscatter raises the gross counts")
        self.backing_thickness = _spin(0.01, 100.0, 1.0)
        backing_layout.addWidget(self.backing_material)
        backing_layout.addWidget(self.backing_thickness)
        form.addRow("Backing plate", backing_row)
        self.backing_material.currentIndexChanged.connect(lambda _i: self._update_enabled())
        self.absorber_material.currentIndexChanged.connect(lambda _i: self._update_enabled())
        self.shield_material.currentIndexChanged.connect(lambda _i: self._update_enabled())
        emission = QWidget()
        emission_layout = QHBoxLayout(emission)
        emission_layout.setContentsMargins(0, 0, 0, 0)
        self.use_nuclide = QRadioButton("Nuclide")
        self.use_energy = QRadioButton("Energy")
        group = QButtonGroup(emission)
        group.addButton(self.use_nuclide)
        group.addButton(self.use_energy)
        self.use_nuclide.setChecked(True)
        self.use_nuclide.toggled.connect(lambda _on: self._update_enabled())
        self.nuclide = QComboBox()
        self.nuclide.addItems(list(self.nuclides))
        self.nuclide.setCurrentText("Cs-137" if "Cs-137" in self.nuclides else self.nuclide.currentText())
        self.energy = _spin(1.0, 10_000.0, 661.657, 3, " keV")
        for widget in (self.use_nuclide, self.nuclide, self.use_energy):
            emission_layout.addWidget(widget)
        emission_layout.addStretch(1)
        form.addRow("Emission", emission)
        self.per_line = QCheckBox("One photon per history (no coincidence summing)")
        self.per_line.setToolTip("Off: a nuclide with a decay scheme runs as whole decays (sum peaks and "
                                 "true-coincidence-summing factors); on: each line on its own")
        form.addRow("", self.per_line)
        form.addRow("Gamma energy", self.energy)
        self.histories = QComboBox()
        self.histories.setEditable(True)
        self.histories.addItems(HISTORY_CHOICES)
        self.histories.setCurrentText("1e6")
        self.histories.setToolTip("Photon histories (1e7 is fine; the uncertainty falls as 1/sqrt(histories))")
        form.addRow("Histories", self.histories)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(1)
        form.addRow("Seed", self.seed)
        self.run_name = QLineEdit()
        self.run_name.setPlaceholderText("optional name of the stored run")
        form.addRow("Name", self.run_name)
        return form

    def _preset_changed(self) -> None:
        preset = self.presets.get(self.detector.currentData(), {})
        self.detector_title.setText(preset.get("title", ""))
        crystal = preset.get("crystal", {})
        if crystal:
            self.material.setCurrentText(str(crystal.get("material", "nai")))
            self.crystal_radius.setValue(float(crystal.get("radius_cm", 3.81)))
            self.crystal_height.setValue(float(crystal.get("height_cm", 7.62)))
        self._update_enabled()

    def _update_enabled(self) -> None:
        custom = self.custom.isChecked()
        for widget in (self.material, self.crystal_radius, self.crystal_height):
            widget.setEnabled(custom)
        kind = self.source_kind.currentText()
        # a field that does not apply to the source kind is disabled (and not used): a point keeps no radius
        self.source_offset.setEnabled(kind in ("point", "disk", "volume"))
        self.source_radius.setEnabled(kind in ("disk", "volume", "marinelli"))
        self.source_height.setEnabled(kind in ("volume", "marinelli"))
        self.source_material.setEnabled(kind in ("volume", "marinelli"))
        self.wall.setEnabled(kind in ("volume", "marinelli"))
        self.well_radius.setEnabled(kind == "marinelli")
        self.well_depth.setEnabled(kind == "marinelli")
        self.backing_material.setEnabled(kind in ("point", "disk"))
        self.backing_thickness.setEnabled(kind in ("point", "disk") and self.backing_material.currentText() != "none")
        preset = self._selected_source_preset()
        if preset is not None and preset.get("kind") != kind:
            self.source_preset.setCurrentIndex(0)  # another kind of source: the preset no longer applies
        self.nuclide.setEnabled(self.use_nuclide.isChecked())
        self.per_line.setEnabled(self.use_nuclide.isChecked())
        for spin in (self.absorber_thickness, self.absorber_gap):
            spin.setEnabled(self.absorber_material.currentText() != "none")
        self.shield_wall.setEnabled(self.shield_material.currentText() != "none")
        self.energy.setEnabled(not self.use_nuclide.isChecked())

    def build_config(self) -> Any:
        """The simulation configuration of the form (validated by the service before any work)."""
        from vital_desktop.montecarlo import detector_preset, make_config
        from vital_desktop.montecarlo.config import detector_from_dict

        name = self.detector.currentData()
        # a preset fitted at this site comes from the query in _load_site_presets
        site = self.site_presets.get(name)
        detector = detector_from_dict(site["detector"]) if site else detector_preset(name)
        if self.custom.isChecked():
            detector = replace(detector, name=f"{detector.name} (custom)", material=self.material.currentText(),
                               radius_cm=self.crystal_radius.value(), height_cm=self.crystal_height.value())
        source = self.build_source()
        if self.use_nuclide.isChecked():
            config = make_config(detector=detector, source=source, nuclide=self.nuclide.currentText(),
                                 per_line=True if self.per_line.isChecked() else None)
        else:
            config = make_config(detector=detector, source=source, energies_kev=[self.energy.value()])
        return self._with_surroundings(config)

    def build_source(self) -> Any:
        """The source of the form: only the fields that apply to its kind are read.

        A chosen preset gives the fields the form does not show (the wall's material, a density, the
        backing plate's radius); the form's own fields override it.
        """
        from vital_desktop.montecarlo import Backing, Source

        kind = self.source_kind.currentText()
        preset = self._selected_source_preset() or {}
        known = {f.name for f in dataclass_fields(Source)}
        fields: dict[str, Any] = {k: v for k, v in preset.items() if k in known and k != "backing"}
        fields.update(kind=kind, distance_cm=self.distance.value())
        if kind != "marinelli":
            fields["offset_cm"] = self.source_offset.value()
        if kind != "point":
            fields["radius_cm"] = self.source_radius.value()
        if kind in ("volume", "marinelli"):
            fields.update(height_cm=self.source_height.value(), wall_cm=self.wall.value(),
                          material=self.source_material.currentText() or "water")
        if kind == "marinelli":
            fields.update(well_radius_cm=self.well_radius.value(), well_depth_cm=self.well_depth.value())
        if kind in ("point", "disk") and self.backing_material.currentText() != "none":
            material = self.backing_material.currentText()
            saved = preset.get("backing") or {}
            radius = float(saved.get("radius_cm") or max(10.0, self.source_offset.value() + self.source_radius.value()
                                                         + 5.0))
            density = saved.get("density_g_cm3") if saved.get("material") == material else None
            fields["backing"] = Backing(material=material, radius_cm=radius, thickness_cm=self.backing_thickness.value(),
                                        density_g_cm3=density)
        return Source(**fields)

    def _source_preset_changed(self) -> None:
        preset = self._selected_source_preset()
        if preset is None:
            return
        self.source_kind.setCurrentText(str(preset.get("kind", "point")))
        for widget, key in ((self.distance, "distance_cm"), (self.source_offset, "offset_cm"),
                            (self.source_radius, "radius_cm"), (self.source_height, "height_cm"),
                            (self.well_radius, "well_radius_cm"), (self.well_depth, "well_depth_cm"),
                            (self.wall, "wall_cm")):
            if preset.get(key) is not None:
                widget.setValue(float(preset[key]))
        self.source_material.setCurrentText(str(preset.get("material", "water")))
        backing = preset.get("backing")
        if preset.get("kind") in ("point", "disk"):
            self.backing_material.setCurrentText(str(backing["material"]) if backing else "none")
            if backing:
                self.backing_thickness.setValue(float(backing["thickness_cm"]))
        self._update_enabled()

    def _with_surroundings(self, config: Any) -> Any:
        from vital_desktop.montecarlo import Absorber, Shield, validate

        absorbers: tuple[Absorber, ...] = ()
        if self.absorber_material.currentText() != "none":
            absorbers = (Absorber(material=self.absorber_material.currentText(),
                                  thickness_cm=self.absorber_thickness.value(), gap_cm=self.absorber_gap.value(),
                                  radius_cm=max(5.0, config.detector.outer_radius_cm + 1.0)),)
        shield = None
        if self.shield_material.currentText() != "none":
            shield = Shield(material=self.shield_material.currentText(), wall_cm=self.shield_wall.value())
        if not absorbers and shield is None:
            return config
        config = replace(config, absorbers=absorbers, shield=shield)
        validate(config)
        return config

    def histories_value(self) -> float:
        text = self.histories.currentText().strip().replace("_", "").replace(",", "")
        try:
            return float(text)
        except ValueError:
            raise ValidationError(f"number of histories must be a number like 1e6, got {text!r}") from None

    # --- site presets -------------------------------------------------------------------------------
    def _load_site_presets(self) -> None:
        """Detectors fitted and sources saved at this site, added to the lists (read in the compute pool)."""
        self.context.query("site calibration presets",
                           lambda op: (calibration.site_presets(op.store), calibration.site_source_presets(op.store)),
                           key="calibration.site_presets", on_result=self._show_site_presets)

    def _show_site_presets(self, presets: tuple[dict[str, dict], dict[str, dict]]) -> None:
        self.site_presets, self.site_source_presets = presets
        for key in self.site_presets:
            if self.detector.findData(key) < 0:
                self.detector.addItem(key, key)
                self.detector.setItemData(self.detector.count() - 1, "fitted at this site",
                                          Qt.ItemDataRole.ToolTipRole)
        for key, preset in self.site_source_presets.items():
            if self.source_preset.findData(key) < 0:
                source = preset.get("source", {})
                self.source_preset.addItem(f"{key} (this site, {source.get('kind', '?')})", key)
                note = (preset.get("provenance") or {}).get("note") or ""
                self.source_preset.setItemData(self.source_preset.count() - 1,
                                               f"saved at this site by {preset.get('created_by', '?')}"
                                               + (f": {note}" if note else ""), Qt.ItemDataRole.ToolTipRole)

    def _selected_source_preset(self) -> dict[str, Any] | None:
        """The chosen source preset's fields (shipped or this site's), or None for custom dimensions."""
        key = self.source_preset.currentData() or ""
        if key in self.source_presets:
            return dict(self.source_presets[key])
        if key in self.site_source_presets:
            return dict(self.site_source_presets[key].get("source", {}))
        return None
