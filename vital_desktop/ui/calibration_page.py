"""Calibration: Monte Carlo efficiency and calibration factors of a detector, on this laptop.

The form (`calibration_form.py`) builds a `montecarlo.SimulationConfig` (a preset detector,
optionally with custom dimensions; a point, disk, off-axis volume or Marinelli source, or a source
preset; a nuclide or a gamma energy), and `services.calibration.run_calibration` runs it in the
compute pool with progress and cancel (a cancelled run stores nothing). Every result is shown with
its 1-sigma statistical uncertainty, the pulse-height spectrum on a log scale, and the stored runs
can be reopened.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import Cancelled, ValidationError
from vital_desktop.services import calibration
from vital_desktop.ui import theme
from vital_desktop.ui.calibration_form import CalibrationForm
from vital_desktop.ui.calibration_plots import EfficiencyCurvePlot
from vital_desktop.ui.charts import (
    JobProgress,
    SpectrumPlot,
    fill_table,
    plus_minus,
    read_only_table,
    selected_data,
)
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import gate, reason_label
from vital_desktop.ui.workers import Job
from vital_desktop.ui.widgets import (
    Card,
    KeyValuePanel,
    error_text,
    muted_label,
    page_layout,
    primary_button,
    show_error,
)


class CalibrationPage(CalibrationForm, Page):
    """Monte Carlo calibration runs: configure, run in the background, read results ± uncertainty."""

    stage = "calibration"
    title = "CALIBRATION"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.detail: calibration.RunDetail | None = None
        self.run_job: Job | None = None

        root, _header = page_layout(self, "Calibration",
                                   "Monte Carlo photon transport: efficiencies and calibration factors with their "
                                   "statistical uncertainties; same configuration + seed → same numbers.")

        splitter = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(splitter, 1)

        # --- configuration --------------------------------------------------------------------
        config_card = Card("Configuration")
        form = self._build_form()
        config_card.body.addLayout(form)
        self.run_button = primary_button("Run")
        self.run_button.setToolTip("Simulate in the background (Ctrl+R); Esc cancels and stores nothing")
        self.run_button.clicked.connect(lambda: self.run())
        config_card.body.addWidget(self.run_button, 0, Qt.AlignmentFlag.AlignRight)
        curve_row = QWidget()
        curve_layout = QHBoxLayout(curve_row)
        curve_layout.setContentsMargins(0, 0, 0, 0)
        self.curve_energies = QLineEdit("50, 2000, 10")
        self.curve_energies.setToolTip("Efficiency curve: LOW, HIGH, POINTS (keV, spaced evenly in ln E), "
                                       "or a list of at least 4 energies; the order is chosen by cross-validation")
        self.curve_button = QPushButton("Fit curve")
        self.curve_button.setToolTip("Simulate the form's detector and source at these energies and fit the "
                                     "log-log efficiency curve with its covariance")
        self.curve_button.clicked.connect(lambda: self.run_curve())
        curve_layout.addWidget(self.curve_energies, 1)
        curve_layout.addWidget(self.curve_button)
        config_card.body.addWidget(curve_row)
        fit_row = QWidget()
        fit_layout = QHBoxLayout(fit_row)
        fit_layout.setContentsMargins(0, 0, 0, 0)
        self.fit_grid = QLineEdit("dead_layer_cm=0.03:0.15:5")
        self.fit_grid.setToolTip("Parameters to fit to measured peak efficiencies, NAME=LOW:HIGH:POINTS separated by "
                                 "spaces (dead_layer_cm, endcap_gap_cm, crystal_length_cm)")
        self.fit_preset = QLineEdit()
        self.fit_preset.setPlaceholderText("save as preset")
        self.fit_button = QPushButton("Fit to measurements…")
        self.fit_button.setToolTip("Choose a CSV (energy_kev, efficiency, sigma) measured in the form's geometry; the "
                                   "detector's parameters are fitted by Monte Carlo over the grid")
        self.fit_button.clicked.connect(lambda: self.characterize())
        for fit_part in (self.fit_grid, self.fit_preset, self.fit_button):
            fit_layout.addWidget(fit_part)
        config_card.body.addWidget(fit_row)
        self.run_reason = reason_label()
        config_card.body.addWidget(self.run_reason)
        self.can_run = gate(context.user, "run_calibration", [self.run_button, self.curve_button, self.fit_button],
                            self.run_reason, "Calibration runs")
        self.progress = JobProgress()
        config_card.body.addWidget(self.progress)
        self.message = muted_label()
        config_card.body.addWidget(self.message)
        config_card.body.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(config_card)
        # the absorber/shield/well rows hold two or three controls: wide enough that none is cut,
        # with room for the vertical scroll bar (the card scrolls at 720 px)
        needed = config_card.sizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4
        scroll.setMinimumWidth(min(max(470, needed), 560))
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        splitter.addWidget(scroll)

        # --- results and runs ------------------------------------------------------------------
        right = QSplitter(Qt.Orientation.Vertical)
        results_card = Card("Results")
        self.summary = KeyValuePanel()
        results_card.body.addWidget(self.summary)
        self.lines = read_only_table(["energy (keV)", "emission prob.", "total efficiency", "full-energy-peak efficiency",
                                      "peak-to-total", "peak cps/Bq", "apparent peak/decay", "TCS factor"])
        self.lines.setMinimumHeight(90)
        # whole headers and values (the table scrolls sideways) rather than columns squeezed to "…"
        self.lines.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        results_card.body.addWidget(self.lines)
        self.spectrum = SpectrumPlot()
        results_card.body.addWidget(self.spectrum, 1)
        self.curve_plot = EfficiencyCurvePlot()
        self.curve_plot.setVisible(False)
        results_card.body.addWidget(self.curve_plot, 1)
        right.addWidget(results_card)
        runs_card = Card("Past runs (click to show)")
        self.runs = read_only_table(["created", "name", "detector", "source", "distance", "emission", "histories",
                                     "CF (cps/Bq)"])
        self.runs.itemSelectionChanged.connect(self._run_selected)
        runs_card.body.addWidget(self.runs, 1)
        right.addWidget(runs_card)
        right.setSizes([560, 220])
        splitter.addWidget(right)
        splitter.setSizes([scroll.minimumWidth(), 890])

        self._preset_changed()
        self.reload_runs()
        self._load_site_presets()

    # --- form -----------------------------------------------------------------------------------
    # --- running ----------------------------------------------------------------------------------
    def run(self) -> None:
        """Start the run in the compute pool (not the writer thread: it can take minutes)."""
        if self.progress.running() or not self.can_run:
            return
        try:
            config = self.build_config()
            histories = self.histories_value()
        except Exception as exc:  # noqa: BLE001 - bad input is shown before any work
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            return
        seed, name = self.seed.value(), self.run_name.text().strip()
        self.message.setText("")
        self.run_button.setEnabled(False)

        def work(op: Any) -> tuple[calibration.RunInfo, Changes]:
            return calibration.run_calibration(op.store, actor=op.actor, config=config, histories=histories, seed=seed,
                                               name=name, progress=op.progress)

        def done(info: calibration.RunInfo) -> None:
            self.run_button.setEnabled(True)
            self.message.setText(f"Run {info.id[:8]} stored: {info.histories:,} histories in {info.duration_s or 0:.1f} s.")
            self.reload_runs(select=info.id)

        def failed(exc: BaseException) -> None:
            self.run_button.setEnabled(True)
            if isinstance(exc, Cancelled):
                self.message.setText("Cancelled; nothing was stored.")
                return
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            show_error(self, "Calibration run", exc)

        job = self.context.change("Monte Carlo run", work, on_result=done, on_error=failed, cancellable=True,
                                           long=True)
        self.run_job = job
        self.progress.follow(job)

    def curve_energies_value(self) -> list[float]:
        """The curve energies of the form: LOW, HIGH, POINTS or a list of energies (keV)."""
        from vital_desktop.montecarlo.curves import log_energies

        try:
            values = [float(x) for x in self.curve_energies.text().replace(";", ",").split(",") if x.strip()]
        except ValueError:
            raise ValidationError("curve energies must be numbers: LOW, HIGH, POINTS or a list of energies") from None
        if len(values) == 3 and values[2] == int(values[2]) and values[2] >= 3 and values[1] > values[0]:
            return log_energies(values[0], values[1], int(values[2]))
        if len(values) < 3:
            raise ValidationError("an efficiency curve needs at least 3 energies (or LOW, HIGH, POINTS)")
        return values

    def run_curve(self) -> None:
        """Simulate the form's geometry at the curve energies and fit the curve, in the background."""
        if self.progress.running() or not self.can_run:
            return
        try:
            from vital_desktop.montecarlo import make_config

            base = self.build_config()
            config = make_config(detector=base.detector, source=base.source, energies_kev=self.curve_energies_value(),
                                 options=base.options)
            config = replace(config, absorbers=base.absorbers, shield=base.shield)
            histories = self.histories_value()
        except Exception as exc:  # noqa: BLE001 - bad input is shown before any work
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            return
        seed, name = self.seed.value(), self.run_name.text().strip()
        self.curve_button.setEnabled(False)

        def work(op: Any) -> tuple[tuple[calibration.RunInfo, Any], Changes]:
            info, curve, changes = calibration.run_efficiency_curve(op.store, actor=op.actor, config=config,
                                                                    histories=histories, seed=seed, name=name,
                                                                    progress=op.progress)
            return (info, curve), changes

        def done(value: tuple[calibration.RunInfo, Any]) -> None:
            info, curve = value
            self.curve_button.setEnabled(True)
            self.message.setText(f"Curve run {info.id[:8]} stored: order {curve.order} ({curve.order_choice}), "
                                 f"χ² {curve.chi2:.1f} / {curve.dof}.")
            self.reload_runs(select=info.id)

        def failed(exc: BaseException) -> None:
            self.curve_button.setEnabled(True)
            if isinstance(exc, Cancelled):
                self.message.setText("Cancelled; nothing was stored.")
                return
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            show_error(self, "Efficiency curve", exc)

        job = self.context.change("Efficiency curve", work, on_result=done, on_error=failed, cancellable=True,
                                           long=True)
        self.run_job = job
        self.progress.follow(job)

    def characterize(self, csv_path: str | None = None) -> None:
        """Fit the form's detector to measured efficiencies (CSV) in the background; optionally save a preset."""
        from pathlib import Path

        from vital_desktop.montecarlo.characterize import parse_grid, read_measurements

        if self.progress.running() or not self.can_run:
            return
        if csv_path is None:
            csv_path, _ = QFileDialog.getOpenFileName(self, "Measured peak efficiencies", "", "CSV (*.csv)")
            if not csv_path:
                return
        try:
            measurements = read_measurements(Path(csv_path).read_text(encoding="utf-8"))
            grids = dict(parse_grid(spec) for spec in self.fit_grid.text().split())
            base = self.build_config()
            histories = self.histories_value()
        except (OSError, ValidationError) as exc:
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            return
        seed, name = self.seed.value(), self.fit_preset.text().strip()
        self.fit_button.setEnabled(False)

        def work(op: Any) -> tuple[Any, Changes]:
            return calibration.characterize_detector(
                op.store, actor=op.actor, detector=base.detector, source=base.source, measurements=measurements,
                grids=grids, histories=histories, seed=seed, options=base.options, save_as=name,
                progress=op.progress)

        def done(fit: Any) -> None:
            self.fit_button.setEnabled(True)
            parts = [f"{n} = {fit.best[n]:.4f} ± {fit.sigma[n]:.4f} cm" for n in fit.parameters]
            saved = f"; saved as preset {name!r}" if name else ""
            edge = f"; at the grid edge: {', '.join(fit.at_grid_edge)}" if fit.at_grid_edge else ""
            self.message.setText(f"Fit: {'; '.join(parts)}; χ² {fit.chi2_min:.1f} / {fit.dof} (p = "
                                 f"{fit.p_value:.2g}){edge}{saved}.")
            if name:
                self._load_site_presets()

        def failed(exc: BaseException) -> None:
            self.fit_button.setEnabled(True)
            if isinstance(exc, Cancelled):
                self.message.setText("Cancelled; nothing was stored.")
                return
            self.message.setText(f"<span style='color:{theme.DANGER}'>{error_text(exc)}</span>")
            show_error(self, "Characterization", exc)

        job = self.context.change("Characterization", work, on_result=done, on_error=failed,
                                           cancellable=True, long=True)
        self.run_job = job
        self.progress.follow(job)

    # --- runs and results ---------------------------------------------------------------------------
    def reload_runs(self, select: str | None = None) -> None:
        current = select or selected_data(self.runs)
        self.context.query("calibration runs", lambda op: calibration.list_runs(op.store), key="calibration.runs",
                           on_result=lambda runs: self._show_runs(runs, current))

    def _show_runs(self, runs: list, current: str | None) -> None:
        rows = []
        for r in runs:
            emission = r.nuclide or ", ".join(f"{e:g} keV" for e in r.energies_kev)
            factor = r.summary.get("calibration_factor_total_cps_per_bq")
            rows.append(((r.created_at or "")[:16], r.name, r.detector, r.source, f"{r.distance_cm:g} cm", emission,
                         f"{r.histories:,}", f"{factor:.4e}" if isinstance(factor, (int, float)) else "—"))
        fill_table(self.runs, rows, data=[r.id for r in runs])
        ids = [r.id for r in runs]
        if current is not None and current in ids:
            self.runs.blockSignals(True)
            self.runs.selectRow(ids.index(current))
            self.runs.blockSignals(False)
            if current is not None and (self.detail is None or self.detail.info.id != current):
                self.show_run(current)  # the row may have been selected already (a new run takes row 0)
        elif runs and self.detail is None:
            self.runs.selectRow(0)
        if not runs:
            self.summary.set_rows([("", "No runs yet: choose a detector, a source and a nuclide, then Run.")])

    def _run_selected(self) -> None:
        run_id = selected_data(self.runs)
        if run_id:
            self.show_run(run_id)

    def show_run(self, run_id: str) -> None:
        self.context.query("calibration run", lambda op: calibration.get_run(op.store, run_id), key="calibration.run",
                           on_result=self._show_detail)

    def _show_detail(self, detail: calibration.RunDetail) -> None:
        self.detail = detail
        info, results = detail.info, detail.results
        total, peak = results.get("total_cps_per_bq", {}), results.get("peak_cps_per_bq", {})
        summary_rows = [
            ("Run", f"{info.name}  ({info.id[:8]})"),
            ("Detector / source", f"{info.detector}; {info.source} source at {info.distance_cm:g} cm"),
            ("Calibration factor", (f"<b>{plus_minus(total.get('value'), total.get('sigma'))}</b> counts/s per Bq "
                                   "(all pulses)")),
            ("Full-energy peaks", f"{plus_minus(peak.get('value'), peak.get('sigma'))} counts/s per Bq"),
            ("Statistics", (f"{info.histories:,} histories, seed {info.seed}, {info.duration_s or 0:.2f} s, "
                           f"{info.engine_version}; uncertainties are 1 σ (statistical)")),
        ]
        whole = results.get("whole_decay") or {}
        peaks = {round(p["energy_kev"], 3): p for p in whole.get("peaks", [])}
        if whole:
            sums = [p for p in whole.get("peaks", []) if p["kind"] == "sum" and p["apparent_area_per_decay"]["value"] > 0]
            sums.sort(key=lambda p: -p["apparent_area_per_decay"]["value"])
            summary_rows.append(("Whole decays", (
                f"{whole.get('decays', 0):,} decays, angular correlation "
                f"{'on' if whole.get('angular_correlation') else 'off'}; sum peaks: "
                + (", ".join(f"{p['energy_kev']:.1f} keV ({p['apparent_area_per_decay']['value']:.2e}/decay)"
                             for p in sums[:4]) or "none"))))
        self.summary.set_rows(summary_rows, rich=True)
        rows = []
        for line in results.get("lines", []):
            tot, fep, pt, cps = (line.get(k, {}) for k in ("total_efficiency", "peak_efficiency", "peak_to_total",
                                                             "peak_cps_per_bq"))
            peak = peaks.get(round(line["energy_kev"], 3)) or {}
            area, tcs = peak.get("apparent_area_per_decay") or {}, peak.get("tcs_factor") or {}
            rows.append((f"{line['energy_kev']:.2f}", f"{line['probability']:.4g}",
                         plus_minus(tot.get("value"), tot.get("sigma")), plus_minus(fep.get("value"), fep.get("sigma")),
                         plus_minus(pt.get("value"), pt.get("sigma")), plus_minus(cps.get("value"), cps.get("sigma")),
                         plus_minus(area.get("value"), area.get("sigma")) if area else "—",
                         plus_minus(tcs.get("value"), tcs.get("sigma")) if tcs else "—"))
        fill_table(self.lines, rows)
        self.lines.setMaximumHeight(34 + 30 * min(max(len(rows), 1), 6))
        self.spectrum.show_spectrum(detail.spectrum)
        curve = calibration.stored_curve(detail) if results.get("curve") else None
        self.curve_plot.show_curve(curve)
        self.curve_plot.setVisible(curve is not None)

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.mc_runs:
            self.reload_runs()

    def activate(self, **arguments: Any) -> None:
        if arguments.get("run"):
            self.reload_runs(select=arguments["run"])
