"""Calibration page: whole decays by default (TCS factors and sum peaks shown), per line on request."""

from __future__ import annotations

from PySide6.QtCore import Qt


def _run(qtbot, window, page) -> None:
    page.detail = None
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail is not None, timeout=300_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=120_000)


def _cells(table) -> list[list[str]]:
    return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def test_whole_decays_show_tcs_factors_and_per_line_does_not(qtbot, window) -> None:
    window.go("calibration")
    page = window.pages["calibration"]
    page.histories.setCurrentText("2e4")
    page.distance.setValue(1.0)
    page.nuclide.setCurrentText("Co-60")
    _run(qtbot, window, page)
    assert page.detail.info.mode == "whole_decay"
    rows = _cells(page.lines)
    assert {r[0][:6] for r in rows} == {"1173.2", "1332.4"}
    assert all("±" in r[7] for r in rows)  # a TCS factor with its uncertainty on every line
    assert "2505.7 keV" in page.summary.values["Whole decays"].text()
    page.per_line.setChecked(True)
    _run(qtbot, window, page)
    assert page.detail.info.mode == "per_line"
    assert all(r[7] == "—" for r in _cells(page.lines))
    assert "Whole decays" not in page.summary.values or not page.summary.values["Whole decays"].isVisible()


def test_fit_curve_plots_points_curve_and_band(qtbot, window) -> None:
    window.go("calibration")
    page = window.pages["calibration"]
    page.histories.setCurrentText("4e4")
    page.curve_energies.setText("80, 1500, 5")
    page.detail = None
    qtbot.mouseClick(page.curve_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail is not None, timeout=300_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=120_000)
    assert "Curve run" in page.message.text()
    assert page.curve_plot.isVisibleTo(page) and page.curve_plot.points == 5 and page.curve_plot.curve_points > 50
    page.curve_energies.setText("100, 200")
    page.run_curve()
    assert "at least 3" in page.message.text() or "3 energies" in page.message.text()


def test_fit_to_measurements_reports_the_fit_and_saves_a_preset(qtbot, window, tmp_path) -> None:
    from vital_desktop.montecarlo import Line, Options, SimulationConfig, Source, simulate
    from vital_desktop.montecarlo.characterize import PARAMETERS
    from vital_desktop.montecarlo.config import detector_preset

    det = PARAMETERS["dead_layer_cm"][0](detector_preset("hpge-coax-40pct"), 0.1)
    config = SimulationConfig(detector=det, source=Source(kind="point", distance_cm=10.0),
                              lines=tuple(Line(e) for e in (59.54, 122.06, 661.66)), options=Options())
    result = simulate(config, histories=300_000, seed=8, workers=2)
    csv_path = tmp_path / "measured.csv"
    csv_path.write_text("energy_kev,efficiency,sigma\n" + "".join(
        f"{x.energy_kev},{x.peak_efficiency.value},{max(x.peak_efficiency.sigma, 0.01 * x.peak_efficiency.value)}\n"
        for x in result.lines))
    window.go("calibration")
    page = window.pages["calibration"]
    page.detector.setCurrentIndex(page.detector.findData("hpge-coax-40pct"))
    page.histories.setCurrentText("3e4")
    page.fit_grid.setText("dead_layer_cm=0.04:0.16:4")
    page.fit_preset.setText("bench-hpge")
    page.characterize(str(csv_path))
    qtbot.waitUntil(lambda: "Fit:" in page.message.text(), timeout=120_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=120_000)
    assert "dead_layer_cm" in page.message.text() and "bench-hpge" in page.message.text()
    qtbot.waitUntil(lambda: page.detector.findData("bench-hpge") >= 0, timeout=30_000)
    page.fit_grid.setText("wobble=0:1:3")
    page.characterize(str(csv_path))
    assert "unknown fit parameter" in page.message.text()
