"""MONITOR stage: what the prediction log says about a classifier — accuracy over time where
experts labelled the predicted items, confidence, class mix, latency percentiles, drift against
the training baseline (PSI and a two-sample KS test, method named), alerts and their thresholds.

The report is one `services.monitor.monitor_report` call in the background; thresholds are
edited here with the same validation as `vital monitor --set`.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.core.changes import Changes
from vital_desktop.services import monitor, registry
from vital_desktop.services import predict as predict_service
from vital_desktop.services import sheets as sheet_service
from vital_desktop.ui import theme
from vital_desktop.ui.charts import (
    BarChart,
    JobProgress,
    LineChart,
    fill_model_picker,
    fill_table,
    read_only_table,
)
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import gate, reason_label
from vital_desktop.ui.widgets import (
    Card,
    compact_combo,
    error_text,
    muted_label,
    primary_button,
    show_error,
    title_label,
)
from vital_desktop.ui.workers import Job

#: (minimum, maximum, decimals) of each threshold's editor; ints get a spin box
THRESHOLD_LIMITS: dict[str, tuple[float, float, int]] = {
    "psi_alert": (0.0, 10.0, 3),
    "psi_warning": (0.0, 10.0, 3),
    "accuracy_min": (0.0, 1.0, 3),
    "min_labelled": (0, 10_000_000, 0),
    "latency_p95_ms": (0.0, 600_000.0, 1),
    "low_confidence": (0.0, 1.0, 3),
    "low_confidence_fraction_max": (0.0, 1.0, 3),
    "resolution_unseen_fraction_max": (0.0, 1.0, 3),
    "ks_alpha": (0.0, 1.0, 5),
    "min_predictions": (0, 100_000_000, 0),
    "noise_floor_factor": (0.0, 100.0, 2),
    "alert_cooldown_hours": (0.0, 100_000.0, 1),
}

DRIFT_TITLES = {
    "image_mean": ("input image mean", "PSI (10 quantile bins) + KS"),
    "image_std": ("input image std. dev.", "PSI (10 quantile bins) + KS"),
    "resolution": ("input resolution", "PSI (categories); unseen share"),
    "predicted_class_mix": ("predicted-class mix", "PSI (categories)"),
}


class Figure(QFrame):
    """A big number with a caption (the dashboard's key figures)."""

    def __init__(self, caption: str, parent: QWidget | None = None, *, wrap: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        layout.setSpacing(2)
        self.value = QLabel("—")
        self.value.setStyleSheet("font-size: 16pt; font-weight: 600;")
        self.caption = muted_label(caption, wrap=wrap)  # a long caption wraps: the row fits 1280 px
        layout.addWidget(self.value)
        layout.addWidget(self.caption)

    def set(self, value: str, caption: str | None = None, color: str | None = None) -> None:
        self.value.setText(value)
        self.value.setStyleSheet(f"font-size: 16pt; font-weight: 600; color: {color or theme.TEXT};")
        if caption is not None:
            self.caption.setText(caption)


def drift_status(name: str, entry: dict[str, Any], t: monitor.MonitorThresholds, predictions: int) -> tuple[str, str]:
    """(status text, colour) of one drift row, by the same rules as `monitor.evaluate_alerts`."""
    if name == "resolution":
        unseen = entry.get("unseen_fraction")
        if unseen is not None and predictions >= t.min_predictions and unseen > t.resolution_unseen_fraction_max:
            return "ALERT", theme.DANGER
    value = entry.get("psi")
    if value is None:
        return "no data", theme.MUTED
    floor = entry.get("noise_floor") or 0.0
    if predictions < t.min_predictions:
        return f"too few ({predictions} < {t.min_predictions})", theme.MUTED
    if value > t.psi_alert and value > t.noise_floor_factor * floor:
        return "ALERT", theme.DANGER
    if value > t.psi_warning:
        return "watch", theme.WARNING
    return "ok", theme.SUCCESS


class MonitorPage(Page):
    """The monitoring dashboard of one model."""

    stage = "monitor"
    title = "MONITOR"

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        self.report: monitor.MonitorReport | None = None
        self.report_job: Job | None = None
        #: a refresh asked for while a report was being computed: one more report when it ends
        self.refresh_again = False
        outer = QVBoxLayout(self)
        outer.setContentsMargins(20, 16, 20, 8)
        outer.setSpacing(theme.SPACING)
        header = QHBoxLayout()
        header.addWidget(title_label("Monitor", "pageTitle"))
        header.addSpacing(12)
        header.addWidget(QLabel("Model"))
        self.model_pick = compact_combo()
        self.model_pick.setMinimumWidth(240)
        self.model_pick.currentIndexChanged.connect(lambda _i: self.refresh())
        header.addWidget(self.model_pick)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Recompute every figure from the prediction log (F5)")
        self.refresh_button.clicked.connect(lambda: self.refresh())
        header.addWidget(self.refresh_button)
        header.addStretch(1)
        header.addWidget(QLabel("Classify items of"))
        self.sheet_pick = compact_combo()
        self.sheet_pick.setMinimumWidth(220)
        header.addWidget(self.sheet_pick)
        self.predict_button = primary_button("Classify sheet")
        self.predict_button.setToolTip("Run the selected model on every image of the sheet; each prediction is "
                                       "logged and feeds this dashboard")
        self.predict_button.clicked.connect(lambda: self.classify_sheet())
        gate(context.user, "predict", [self.predict_button], None, "Classifying sheets")
        header.addWidget(self.predict_button)
        outer.addLayout(header)
        self.progress = JobProgress()
        outer.addWidget(self.progress)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(theme.SPACING)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)

        self.status = muted_label()
        layout.addWidget(self.status)
        figures = QHBoxLayout()
        self.figure_predictions = Figure("predictions")
        self.figure_accuracy = Figure("accuracy where labelled", wrap=True)
        self.figure_p50 = Figure("latency p50")
        self.figure_p95 = Figure("latency p95")
        self.figure_p99 = Figure("latency p99")
        self.figure_low = Figure("low-confidence share")
        for figure in (self.figure_predictions, self.figure_accuracy, self.figure_p50, self.figure_p95,
                       self.figure_p99, self.figure_low):
            figures.addWidget(figure, 3 if figure is self.figure_accuracy else 1)
        layout.addLayout(figures)

        charts = QHBoxLayout()
        self.accuracy_chart = LineChart("Accuracy over time (expert-labelled items)", "accuracy", "day",
                                        y_range=(0.0, 1.0))
        self.confidence_chart = BarChart("Confidence histogram", "predictions", "confidence")
        self.class_chart = BarChart("Predicted class distribution", "predictions", color=theme.ACCENT_DARK)
        for chart in (self.accuracy_chart, self.confidence_chart, self.class_chart):
            chart.setFixedHeight(240)
            charts.addWidget(chart, 1)
        layout.addLayout(charts)

        lower = QGridLayout()
        lower.setHorizontalSpacing(theme.SPACING)
        drift_card = Card("Drift against the training baseline")
        self.drift_table = read_only_table(["statistic", "PSI", "noise floor", "KS statistic (p)", "method",
                                            "threshold", "status"])
        self.drift_table.setMinimumHeight(160)
        drift_card.body.addWidget(self.drift_table)
        self.drift_method = muted_label()
        drift_card.body.addWidget(self.drift_method)
        lower.addWidget(drift_card, 0, 0, 1, 2)
        alerts_card = Card("Alerts")
        self.alerts = QListWidget()
        self.alerts.setMinimumHeight(140)
        alerts_card.body.addWidget(self.alerts)
        lower.addWidget(alerts_card, 1, 0)
        thresholds_card = Card("Alert thresholds")
        self.threshold_form = QFormLayout()
        self.threshold_editors: dict[str, QDoubleSpinBox | QSpinBox] = {}
        for f in fields(monitor.MonitorThresholds):
            low, high, decimals = THRESHOLD_LIMITS.get(f.name, (0.0, 1e9, 3))
            editor: QDoubleSpinBox | QSpinBox
            if decimals == 0:
                editor = QSpinBox()
                editor.setRange(int(low), int(high))
            else:
                editor = QDoubleSpinBox()
                editor.setDecimals(decimals)
                editor.setRange(low, high)
                editor.setSingleStep(10 ** -(decimals - 1) if decimals > 1 else 1)
            self.threshold_editors[f.name] = editor
            self.threshold_form.addRow(f.name.replace("_", " "), editor)
        thresholds_card.body.addLayout(self.threshold_form)
        save_row = QHBoxLayout()
        self.threshold_message = muted_label()
        save_row.addWidget(self.threshold_message, 1)
        self.save_thresholds_button = QPushButton("Save thresholds")
        self.save_thresholds_button.clicked.connect(lambda: self.save_thresholds())
        save_row.addWidget(self.save_thresholds_button)
        thresholds_card.body.addLayout(save_row)
        self.threshold_reason = reason_label()
        thresholds_card.body.addWidget(self.threshold_reason)
        self.can_set_thresholds = gate(context.user, "deploy", [self.save_thresholds_button, *self.threshold_editors.values()],
                                       self.threshold_reason, "Changing alert thresholds")
        lower.addWidget(thresholds_card, 1, 1)
        lower.setColumnStretch(0, 3)
        lower.setColumnStretch(1, 2)
        layout.addLayout(lower)

        self.load_thresholds()
        self.reload_models()
        self.reload_sheets()

    # --- choices --------------------------------------------------------------------------------
    def reload_models(self, select: str | None = None) -> None:
        self.context.query("classifiers", lambda op: registry.list_models(op.store, kind=registry.KIND_ONNX),
                           key="monitor.models", on_result=lambda models: self._show_models(models, select))

    def _show_models(self, models: list, select: str | None) -> None:
        fill_model_picker(self.model_pick, models, select)
        self.refresh()

    def reload_sheets(self) -> None:
        self.context.query("sheets", lambda op: sheet_service.list_sheets(op.store), key="monitor.sheets",
                           on_result=self._show_sheets)

    def _show_sheets(self, sheets: list) -> None:
        current = self.sheet_pick.currentText()
        self.sheet_pick.clear()
        for sheet in sheets:
            if sheet.image_column:
                self.sheet_pick.addItem(sheet.name)
        index = self.sheet_pick.findText(current)
        self.sheet_pick.setCurrentIndex(max(index, 0))

    # --- the report -----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the report in the background (new alerts are recorded, as `vital monitor` does)."""
        model_id = self.model_pick.currentData()
        if model_id is None:
            self.status.setText("No classifier registered yet: train one on TRAIN or import a model bundle.")
            self._show_no_data()
            return
        if self.report_job is not None and self.report_job.running:
            # Reloads asked for meanwhile (a job reporting changes, F5) make one more report when
            # this one ends, with the model chosen then, not a queue of reports behind the writer.
            self.refresh_again = True
            return
        self.status.setText("computing…")

        def report(op):
            result = monitor.monitor_report(op.store, model=model_id, record_alerts=True, actor=op.actor)
            recorded = monitor.list_alerts(op.store, model=result.model_id, limit=50)
            overlap = monitor.labelled_training_overlap(op.store, model=model_id)
            return (result, recorded, overlap), Changes()

        # recording alerts writes: the writer thread, never the GUI thread
        self.report_job = self.context.change("Monitoring report", report, on_result=self._report_ready,
                                              on_error=self._report_failed, visible=False)
        self.report_job.ended.connect(self._report_ended)

    def _report_ended(self) -> None:
        if self.refresh_again:
            self.refresh_again = False
            self.refresh()

    def _report_ready(self, value: tuple) -> None:
        report, self.recorded_alerts, self.training_overlap = value
        self.show_report(report)

    def _show_no_data(self) -> None:
        self.alerts.clear()
        self.alerts.addItem("No data: no predictions logged for this model yet, so nothing can be checked.")

    def _report_failed(self, exc: BaseException) -> None:
        self.status.setText(f"Cannot compute the report: {error_text(exc)}")

    def show_report(self, report: monitor.MonitorReport) -> None:
        self.report = report
        t = report.thresholds
        if report.predictions == 0:
            self.status.setText(f"{report.model}: no predictions logged yet. Classify a sheet (top right), or run "
                                "`vital predict`; every prediction is logged and appears here.")
        else:
            self.status.setText(f"{report.model}: {report.predictions:,} predictions from {(report.first_at or '')[:16]} "
                                f"to {(report.last_at or '')[:16]}"
                                + (f", about {report.per_day:,.0f} per day" if report.per_day else "")
                                + (f"; {report.errors} images could not be read" if report.errors else ""))
        self.figure_predictions.set(f"{report.predictions:,}")
        acc = report.accuracy
        if acc.get("overall") is not None:
            color = theme.DANGER if acc["overall"] < t.accuracy_min else theme.SUCCESS
            held = acc.get("training_held_out")
            labelled, in_training = getattr(self, "training_overlap", (0, 0))
            note = ""
            if labelled and in_training * 2 > labelled:
                note = (f"; {in_training} of {labelled} are training items (optimistic: held-out "
                        + (f"{held:.0%})" if held is not None else "unknown)"))
                color = theme.WARNING
            self.figure_accuracy.set(f"{acc['overall']:.1%}", f"accuracy on {acc['labelled']} labelled"
                                     + (f" (training {held:.0%})" if held is not None and not note else "") + note,
                                     color)
        else:
            self.figure_accuracy.set("—", "accuracy: no labelled predictions yet")
        for figure, key in ((self.figure_p50, "p50"), (self.figure_p95, "p95"), (self.figure_p99, "p99")):
            value = report.latency_ms.get(key)
            latency_color = theme.DANGER if key == "p95" and value is not None and value > t.latency_p95_ms else None
            figure.set(f"{value:.2f} ms" if value is not None else "—", None, latency_color)
        low = report.low_confidence_fraction
        self.figure_low.set(f"{low:.1%}" if low is not None else "—", f"confidence below {t.low_confidence:.2f}",
                            theme.WARNING if low is not None and low > t.low_confidence_fraction_max else None)

        daily = acc.get("daily", [])
        self.accuracy_chart.show_series([d["day"] for d in daily], [d["accuracy"] for d in daily],
                                        reference=t.accuracy_min, reference_name=f"alert below {t.accuracy_min:.0%}")
        self.accuracy_chart.setToolTip("\n".join(f"{d['day']}: {d['correct']}/{d['labelled']} = {d['accuracy']:.1%}"
                                                 for d in daily) or "no labelled predictions yet")
        histogram = report.confidence_histogram
        self.confidence_chart.show_bars([f"{h['lower']:.1f}" for h in histogram], [h["count"] for h in histogram],
                                        colors=[theme.WARNING if h["upper"] <= t.low_confidence + 1e-9 else theme.ACCENT
                                                for h in histogram])
        classes = report.class_distribution
        self.class_chart.show_bars([c["class"] for c in classes], [c["count"] for c in classes])
        self.class_chart.setToolTip("\n".join(f"{c['class']}: {c['count']} ({c['fraction']:.1%})" for c in classes))

        self._show_drift(report)
        self._show_alerts(report)

    def _show_drift(self, report: monitor.MonitorReport) -> None:
        drift, t = report.drift, report.thresholds
        if not drift.get("available"):
            fill_table(self.drift_table, [("—", "", "", "", "", "", drift.get("reason", "no baseline"))])
            self.drift_method.setText("Method: " + drift.get("method", ""))
            return
        rows, colors = [], {}
        for r, (name, entry) in enumerate(drift.get("statistics", {}).items()):
            title, method = DRIFT_TITLES.get(name, (name, "PSI"))
            status, color = drift_status(name, entry, t, report.predictions)
            ks = "—"
            if entry.get("ks_statistic") is not None:
                ks = f"{entry['ks_statistic']:.3f} (p={entry['ks_pvalue']:.2g})"
            threshold = f"PSI > {t.psi_alert:g} (watch {t.psi_warning:g})"
            if name == "resolution":
                threshold += f"; unseen > {t.resolution_unseen_fraction_max:.0%}"
                if entry.get("unseen_fraction") is not None:
                    title += f" — {entry['unseen_fraction']:.0%} unseen"
            psi_value = entry.get("psi")
            rows.append((title, f"{psi_value:.3f}" if psi_value is not None else "—",
                         f"{entry['noise_floor']:.3f}" if entry.get("noise_floor") is not None else "—",
                         ks, method, threshold, status))
            colors[(r, 6)] = color
        fill_table(self.drift_table, rows, colors=colors)
        self.drift_method.setText(f"Method: {drift.get('method', '')}. Baseline: {drift.get('baseline_count')} "
                                  "training images.")

    def _show_alerts(self, report: monitor.MonitorReport) -> None:
        self.alerts.clear()
        for alert in report.alerts:
            item = QListWidgetItem(f"● now  [{alert.kind}] {alert.message}")
            item.setForeground(Qt.GlobalColor.darkRed)
            self.alerts.addItem(item)
        for alert in getattr(self, "recorded_alerts", []):
            self.alerts.addItem(f"{(alert.created_at or '')[:16]}  [{alert.kind}] {alert.message}")
        if self.alerts.count() == 0:
            if report.predictions == 0:
                self.alerts.addItem("No data: no predictions logged for this model yet, so nothing can be checked.")
            else:
                self.alerts.addItem(f"No alerts: every figure is within its threshold ({report.predictions:,} "
                                    "predictions checked).")

    # --- thresholds -----------------------------------------------------------------------------
    def load_thresholds(self) -> None:
        self.context.query("alert thresholds", lambda op: monitor.get_thresholds(op.store), key="monitor.thresholds",
                           on_result=self._show_thresholds)

    def _show_thresholds(self, thresholds: monitor.MonitorThresholds) -> None:
        self.thresholds = thresholds
        for name, editor in self.threshold_editors.items():
            editor.setValue(getattr(thresholds, name))

    def threshold_values(self) -> dict[str, float]:
        return {name: editor.value() for name, editor in self.threshold_editors.items()}

    def save_thresholds(self) -> bool:
        """Validate and store the edited thresholds; the dashboard is recomputed with them."""
        values = self.threshold_values()
        problems = []
        if values["psi_warning"] > values["psi_alert"]:
            problems.append("the PSI watch level must not be above the PSI alert level")
        if values["ks_alpha"] <= 0:
            problems.append("the KS significance level must be above 0")
        if problems:
            self.threshold_message.setText(f"<span style='color:{theme.DANGER}'>{'; '.join(problems)}</span>")
            return False
        if not self.can_set_thresholds:
            return False
        current = self.thresholds.to_dict() if getattr(self, "thresholds", None) else {}
        changed = {k: v for k, v in values.items() if k not in current or abs(float(current[k]) - float(v)) > 1e-12}
        if not changed:
            self.threshold_message.setText("nothing changed")
            return True
        self.context.change(
            "Saving thresholds", lambda op: monitor.set_thresholds(op.store, actor=op.actor, **changed),
            on_result=lambda _t: self.threshold_message.setText(f"saved: {', '.join(sorted(changed))}"),
            on_error=lambda exc: show_error(self, "Alert thresholds", exc))
        return True

    # --- predictions ------------------------------------------------------------------------------
    def classify_sheet(self, sheet: str | None = None) -> None:
        """Classify every image of a sheet with the selected model (each prediction logged)."""
        sheet = sheet or self.sheet_pick.currentText()
        model_id = self.model_pick.currentData()
        if not sheet or model_id is None or self.progress.running():
            return
        def done(predictions: list) -> None:
            failed = sum(1 for p in predictions if p.error)
            self.context.say(f"Classified {len(predictions)} items of {sheet}" + (f" ({failed} unreadable)" if failed else ""))

        job = self.context.change(
            f"Classifying {sheet}",
            lambda op: predict_service.predict_images(op.store, actor=op.actor, model=model_id, sheet=sheet,
                                                      progress=op.progress),
            on_result=done, on_error=lambda exc: show_error(self, "Classify sheet", exc), cancellable=True)
        self.progress.follow(job)

    # --- page protocol --------------------------------------------------------------------------
    def on_changes(self, changes: Changes) -> None:
        if changes.models:
            self.load_thresholds()
            self.reload_models()
        elif changes.predictions or changes.labels:
            self.refresh()
        if changes.sheets:
            self.reload_sheets()

    def activate(self, **arguments: Any) -> None:
        if arguments.get("model"):
            self.reload_models(select=arguments["model"])
