"""Calibration page: whole decays by default (TCS factors and sum peaks shown), per line on request."""

from __future__ import annotations

from PySide6.QtCore import Qt


def _run(qtbot, window, page) -> None:
    page.detail = None
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail is not None, timeout=90_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=60_000)


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
    qtbot.waitUntil(lambda: page.detail is not None, timeout=90_000)
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=60_000)
    assert "Curve run" in page.message.text()
    assert page.curve_plot.isVisibleTo(page) and page.curve_plot.points == 5 and page.curve_plot.curve_points > 50
    page.curve_energies.setText("100, 200")
    page.run_curve()
    assert "at least 3" in page.message.text() or "3 energies" in page.message.text()
