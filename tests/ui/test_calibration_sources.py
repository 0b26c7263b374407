"""Calibration page: the source kind decides which fields apply (the others are disabled and not
read), a Marinelli preset fills the beaker's dimensions, and a beaker run is stored."""

from __future__ import annotations

from PySide6.QtCore import Qt


def test_source_fields_follow_the_kind_and_a_marinelli_preset_runs(qtbot, window) -> None:
    window.go("calibration")
    page = window.pages["calibration"]
    page.source_kind.setCurrentText("point")
    page.source_radius.setValue(3.0)
    assert not page.source_radius.isEnabled() and not page.well_radius.isEnabled()
    assert page.source_offset.isEnabled() and page.backing_material.isEnabled()
    assert page.build_source().radius_cm == 0.0  # a point source keeps no radius
    page.source_kind.setCurrentText("volume")
    page.source_offset.setValue(2.0)
    source = page.build_source()
    assert source.kind == "volume" and source.offset_cm == 2.0 and source.radius_cm == 3.0
    assert not page.well_depth.isEnabled() and not page.backing_material.isEnabled()
    page.source_kind.setCurrentText("marinelli")
    index = page.source_preset.findData("marinelli-1l")
    page.source_preset.setCurrentIndex(index)
    assert page.well_radius.isEnabled() and not page.source_offset.isEnabled()
    source = page.build_source()
    assert (source.kind, source.well_radius_cm, source.wall_material, source.offset_cm) == ("marinelli", 4.2, "pp", 0.0)
    assert abs(source.contents_volume_cm3 - 997.0) < 1.0
    page.use_energy.setChecked(True)
    page.energy.setValue(661.657)
    page.histories.setCurrentText("2e4")
    page.detail = None
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail is not None, timeout=90_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=60_000)
    assert page.detail.info.source == "marinelli"
    assert page.detail.config["source"]["well_depth_cm"] == 7.8
    # going back to a point clears the preset choice and disables the beaker's fields
    page.source_kind.setCurrentText("point")
    assert page.source_preset.currentIndex() == 0 and not page.wall.isEnabled()


def test_site_source_presets_are_listed_and_fill_the_form(qtbot, window, store, engineer) -> None:
    from dataclasses import replace

    from vital_desktop.montecarlo import Backing, Source
    from vital_desktop.services import calibration

    jar = Source(kind="volume", distance_cm=1.5, offset_cm=2.0, radius_cm=3.5, height_cm=4.0, wall_cm=0.3,
                 material="water", wall_material="pp", density_g_cm3=1.2)
    shelf = Source(kind="point", distance_cm=5.0, backing=Backing(material="fe", radius_cm=12.0, thickness_cm=0.8))
    calibration.save_source_preset(store, actor=engineer, name="lab-jar", source=jar, note="the 250 mL jar")
    calibration.save_source_preset(store, actor=engineer, name="steel-shelf", source=shelf)
    window.go("calibration")
    page = window.pages["calibration"]
    page._load_site_presets()
    qtbot.waitUntil(lambda: page.source_preset.findData("steel-shelf") >= 0, timeout=30_000)
    assert page.source_preset.findData("marinelli-1l") >= 0  # the shipped ones stay
    page.source_kind.setCurrentText("point")
    page.source_preset.setCurrentIndex(page.source_preset.findData("lab-jar"))
    assert page.source_kind.currentText() == "volume" and page.source_offset.value() == 2.0
    # the form's fields, and what the form does not show (wall material, density) from the preset
    assert page.build_source() == jar
    page.source_radius.setValue(2.5)
    assert page.build_source() == replace(jar, radius_cm=2.5)
    page.source_preset.setCurrentIndex(page.source_preset.findData("steel-shelf"))
    assert page.source_kind.currentText() == "point" and page.backing_material.currentText() == "fe"
    assert page.build_source() == shelf
    page.source_kind.setCurrentText("disk")  # another kind: the preset no longer applies
    assert page.source_preset.currentIndex() == 0
