"""Calibration plots: an efficiency curve with its points, fitted curve and 1-sigma band (log-log)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg

from vital_desktop.ui import theme
from vital_desktop.ui.charts import _style


class EfficiencyCurvePlot(pg.PlotWidget):
    """Full-energy-peak efficiency against energy, log-log: points ± 1σ, the fit and its band."""

    def __init__(self) -> None:
        super().__init__()
        _style(self, "Efficiency curve (full-energy peak, log-log)", "efficiency", "energy (keV)", height=220)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLogMode(x=True, y=True)
        self.points = 0
        self.curve_points = 0

    def show_curve(self, curve: Any | None) -> None:
        """Draw a fitted `montecarlo.curves.EfficiencyCurve` (or clear the plot for None)."""
        self.clear()
        self.points = self.curve_points = 0
        if curve is None:
            return
        e = np.asarray(curve.energies_kev)
        y = np.asarray(curve.efficiencies)
        s = np.asarray(curve.sigmas)
        grid = np.geomspace(e.min(), e.max(), 120)
        fit, band = curve.evaluate(grid)
        low = pg.PlotDataItem(grid, np.maximum(fit - band, fit * 1e-3), pen=pg.mkPen(None))
        high = pg.PlotDataItem(grid, fit + band, pen=pg.mkPen(None))
        self.addItem(low)
        self.addItem(high)
        self.addItem(pg.FillBetweenItem(low, high, brush=pg.mkBrush(theme.ACCENT_SOFT)))
        self.plot(grid, fit, pen=pg.mkPen(theme.ACCENT, width=2))
        # error bars as vertical segments (drawn as data, so the log axes transform them)
        bars_x = np.repeat(e, 2)
        bars_y = np.column_stack([np.maximum(y - s, y * 1e-3), y + s]).ravel()
        self.plot(bars_x, bars_y, connect="pairs", pen=pg.mkPen(theme.TEXT, width=1))
        self.plot(e, y, pen=None, symbol="o", symbolSize=6, symbolBrush=pg.mkBrush(theme.TEXT))
        self.points = int(e.size)
        self.curve_points = int(grid.size)
