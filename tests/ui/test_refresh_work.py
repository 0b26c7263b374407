"""A page reloading while a job runs does little on the GUI thread: charts get new data on the
items they have (no clear-and-replot), and charts, tables and key/value panels showing the data
they already show are left alone (pytest-qt, offscreen, real pyqtgraph widgets)."""

from __future__ import annotations

from vital_desktop.ui.charts import BarChart, LineChart, SpectrumPlot, fill_table, read_only_table
from vital_desktop.ui.widgets import KeyValuePanel


def _items(plot) -> list:
    return list(plot.getPlotItem().items)


def test_line_chart_updates_its_curve_in_place_and_skips_the_same_series(qtbot) -> None:
    chart = LineChart("accuracy", "accuracy")
    qtbot.addWidget(chart)
    chart.show_series(["2025-03-01", "2025-03-02"], [0.5, 0.75], reference=0.6, reference_name="alert below 60%")
    items, curve = _items(chart), chart.curve
    assert list(curve.getData()[1]) == [0.5, 0.75] and chart.reference.isVisible()
    assert chart.reference.value() == 0.6 and chart.reference.label.format == "alert below 60%"
    chart.show_series(["2025-03-01", "2025-03-02", "2025-03-03"], [0.5, 0.75, 0.9])
    assert _items(chart) == items and chart.curve is curve  # same items, new data
    assert list(curve.getData()[1]) == [0.5, 0.75, 0.9] and not chart.reference.isVisible()
    assert chart.values == [0.5, 0.75, 0.9]
    ticks = chart.getAxis("bottom")._tickLevels
    chart.getAxis("bottom").setTicks(None)  # if the same series were drawn again, its ticks would come back
    chart.show_series(["2025-03-01", "2025-03-02", "2025-03-03"], [0.5, 0.75, 0.9])
    assert chart.getAxis("bottom")._tickLevels is None and ticks is not None
    chart.show_series([], [])
    assert len(chart.curve.getData()[0] if chart.curve.getData()[0] is not None else []) == 0


def test_bar_chart_keeps_one_bar_item_and_its_colours(qtbot) -> None:
    chart = BarChart("classes", "predictions")
    qtbot.addWidget(chart)
    chart.show_bars(["a", "b"], [3, 4], colors=["#ff0000", "#00ff00"])
    bars = chart.bars
    assert list(bars.opts["height"]) == [3, 4] and bars._brushes is not None
    chart.show_bars(["a", "b", "c"], [1, 2, 5])
    assert chart.bars is bars and _items(chart).count(bars) == 1
    assert list(bars.opts["height"]) == [1, 2, 5] and bars._brushes is None and chart.values == [1, 2, 5]
    chart.show_bars([], [])
    assert chart.values == [] and bars.boundingRect().isEmpty()


def test_spectrum_plot_reuses_its_curve_and_skips_the_same_spectrum(qtbot) -> None:
    plot = SpectrumPlot()
    qtbot.addWidget(plot)
    spectrum = {"edges_kev": [0.0, 10.0, 20.0, 30.0], "raw": [0.1, 0.0, 0.3]}
    plot.show_spectrum(spectrum)
    curve = plot.curve
    assert plot.points == 3 and curve in _items(plot) and plot.empty_text not in _items(plot)
    plot.show_spectrum(dict(spectrum))
    assert plot.curve is curve and _items(plot).count(curve) == 1
    plot.show_spectrum({"edges_kev": [0.0, 10.0, 20.0], "raw": [0.2, 0.4]})
    assert plot.points == 2 and len(curve.getData()[1]) == 2 and _items(plot).count(curve) == 1
    plot.show_spectrum({"edges_kev": [0.0, 10.0, 20.0], "raw": [0.2]})  # edges that do not fit the counts
    assert plot.points == 0 and plot.empty_text in _items(plot) and curve not in _items(plot)


def test_fill_table_keeps_the_cells_of_the_rows_already_shown(qtbot) -> None:
    table = read_only_table(["name", "count"])
    qtbot.addWidget(table)
    fill_table(table, [("a", 1), ("b", 2)], data=["id-a", "id-b"])
    first = table.item(0, 0)
    fill_table(table, [("a", 1), ("b", 2)], data=["id-a", "id-b"])
    assert table.item(0, 0) is first  # nothing rebuilt
    fill_table(table, [("a", 1), ("b", 3)], data=["id-a", "id-b"])
    assert table.item(1, 1).text() == "3" and table.item(0, 0) is not first
    fill_table(table, [("a", 1), ("b", 3)], data=["id-a", "id-c"])  # same text, other data: rebuilt
    from PySide6.QtCore import Qt

    assert table.item(1, 0).data(Qt.ItemDataRole.UserRole) == "id-c"


def test_key_value_panel_keeps_the_rows_already_shown(qtbot) -> None:
    panel = KeyValuePanel()
    qtbot.addWidget(panel)
    panel.set_rows([("Items", "3 items"), ("Kind", "Images")])
    label = panel.values["Items"]
    panel.set_rows([("Items", "3 items"), ("Kind", "Images")])
    assert panel.values["Items"] is label and panel.form.rowCount() == 2
    panel.set_rows([("Items", "4 items")])
    assert panel.values["Items"].text() == "4 items" and panel.form.rowCount() == 1 and "Kind" not in panel.values


def test_labeling_progress_counts_follow_saves_without_recounting(qtbot, window) -> None:
    from collections import Counter

    from PySide6.QtCore import Qt

    from tests.ui.conftest import SHEET
    from tests.ui.test_keyboard_labeling import activate, press

    window.go("canonical", sheet=SHEET)
    tool = window.pages["canonical"]
    qtbot.waitUntil(lambda: tool.ready and tool.model is not None and tool.labels_ready, timeout=10_000)
    before = tool.model.status_counts["labeled"]
    assert tool.model.status_counts == Counter(tool.model.statuses.values())
    assert f"<b>{before:,} / " in tool.progress_label.text()
    activate(qtbot, window)
    press(qtbot, window, Qt.Key.Key_1, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not tool.saving, timeout=10_000)
    assert tool.model.status_counts["labeled"] == before + 1
    assert +tool.model.status_counts == Counter(tool.model.statuses.values())  # kept in step, not recounted
    assert f"<b>{before + 1:,} / " in tool.progress_label.text()
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)
