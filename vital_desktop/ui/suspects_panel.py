"""IMPROVE's "Possibly mislabelled" queue: canonical labels the classifier confidently disagrees with.

The search (out-of-fold probabilities over a sheet's gated labels, `services.assist`) runs as a
background job; each row opens the item in the Canonical Labeling Tool, where an expert keeps
or corrects the label through the one label write path. Nothing is changed from here.
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QWidget

from vital_desktop.services import assist
from vital_desktop.services import sheets as sheet_service
from vital_desktop.ui.charts import fill_table, read_only_table, selected_data
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.permissions import permitted
from vital_desktop.ui.widgets import Card, muted_label, show_error, title_label


class SuspectsPanel(Card):
    """A sheet picker, a Find button and the table of suspect labels (most doubtful first)."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(None, parent)
        self.context = context
        self.report: assist.SuspectReport | None = None
        row = QHBoxLayout()
        row.addWidget(title_label("Possibly mislabelled"))
        row.addStretch(1)
        row.addWidget(QLabel("Sheet"))
        self.sheet_pick = QComboBox()
        row.addWidget(self.sheet_pick)
        self.find_button = QPushButton("Find")
        self.find_button.setToolTip("Train on all but one fold at a time and list the labels it contradicts")
        self.find_button.clicked.connect(lambda: self.find_suspects())
        self.find_button.setEnabled(False)
        row.addWidget(self.find_button)
        self.open_button = QPushButton("Open in labeling tool")
        self.open_button.clicked.connect(self.open_selected)
        row.addWidget(self.open_button)
        self.body.addLayout(row)
        self.table = read_only_table(["item", "labelled as", "model says", "p(label)", "p(model)"])
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.body.addWidget(self.table, 1)
        self.message = muted_label("Find lists labels that a model trained without them confidently contradicts.")
        self.body.addWidget(self.message)
        context.query("sheets", lambda op: sheet_service.list_sheets(op.store), on_result=self._show_sheets, owner=self)

    def _show_sheets(self, sheets: list) -> None:
        for info in sheets:
            self.sheet_pick.addItem(info.name, info.name)
        self.find_button.setEnabled(permitted(self.context.user, "label") and self.sheet_pick.count() > 0)

    def find_suspects(self) -> None:
        sheet = self.sheet_pick.currentData()
        if not sheet:
            return
        self.find_button.setEnabled(False)
        self.message.setText(f"Checking the labels of {sheet} …")

        def failed(exc: BaseException) -> None:
            self.find_button.setEnabled(True)
            self.message.setText("")
            show_error(self, "Possibly mislabelled", exc)

        self.context.query("Finding possibly mislabelled labels",
                           lambda op: assist.label_suspects(op.store, actor=op.actor, sheet=sheet, progress=op.progress),
                           on_result=self.show_report, on_error=failed, cancellable=True, visible=True)

    def show_report(self, report: assist.SuspectReport) -> None:
        self.report = report
        self.find_button.setEnabled(True)
        rows = [(s.item_ref, s.given, s.suggested, f"{s.p_given:.2f}", f"{s.p_suggested:.2f}") for s in report.suspects]
        fill_table(self.table, rows, data=[s.item_ref for s in report.suspects])
        self.message.setText(f"{len(report.suspects)} of {report.labels_checked} labels look doubtful "
                             f"({report.folds}-fold, {', '.join(report.representation)}).")

    def open_selected(self) -> None:
        item = selected_data(self.table)
        if item and self.report is not None:
            self.context.navigate("canonical", sheet=self.report.sheet, item=item)
