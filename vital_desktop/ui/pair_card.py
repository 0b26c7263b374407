"""The right-hand card of the Mode A review page: one Q&A pair and the keys that review it.

Widgets and their wording only: the pair's reference and status, the filter and position, the
image (or a document's text / a series' plot in its place), the AI answer beside the item's
canonical label as it is now, the sensor context, the rendered prompt, Approve / Edit / Reject /
Flag, the reason field and the message line. `ui.label_page` loads pairs and acts.
"""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from vital_desktop.services.review import PairInfo
from vital_desktop.ui import theme
from vital_desktop.ui.context import AppContext
from vital_desktop.ui.image_view import ImageView
from vital_desktop.ui.item_views import ItemContentView
from vital_desktop.ui.widgets import Card, muted_label, primary_button, title_label

PAIR_FILTERS = (("Needs review", "needs_review"), ("Unlabeled", "unlabeled"), ("Approved", "labeled"),
                ("Rejected", "rejected"), ("Flagged", "flagged"), ("All pairs", None))
REASON_HINT = "reason for reject / flag — Enter rejects (Shift+R / Shift+F to type one)"
#: the review actions: name, button text (with its key)
REVIEW_BUTTONS = (("approve", "Approve  (A)"), ("edit", "Edit…  (E)"), ("reject", "Reject  (R)"),
                  ("flag", "Flag  (F)"))


def muted(text: str) -> str:
    return f"<span style='color:{theme.MUTED}'>{text}</span>"


class PairCard(Card):
    """One pair under review; `buttons`, `reason`, `previous_button`, `next_button` are the page's to connect."""

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent=parent)
        top = QHBoxLayout()
        self.pair_title = title_label("")
        self.pair_state = QLabel("")
        self.pair_state.setTextFormat(Qt.TextFormat.RichText)
        top.addWidget(self.pair_title)
        top.addWidget(self.pair_state, 1)
        self.filter = QComboBox()
        for text, value in PAIR_FILTERS:
            self.filter.addItem(text, value)
        self.filter.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        top.addWidget(muted_label("Show", wrap=False))
        top.addWidget(self.filter)
        self.position_label = muted_label("", wrap=False)
        top.addWidget(self.position_label)
        self.body.addLayout(top)
        body = QSplitter(Qt.Orientation.Horizontal)
        self.image_view = ImageView()
        # documents and telemetry items show their text / plot in place of the image (ui/item_views)
        self.view_stack = QStackedWidget()
        self.view_stack.addWidget(self.image_view)
        self.content_view = ItemContentView(context)
        self.view_stack.addWidget(self.content_view)
        body.addWidget(self.view_stack)
        body.addWidget(self._texts())
        body.setSizes([480, 420])
        self.body.addWidget(body, 1)
        self.body.addLayout(self._actions())
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.body.addWidget(self.message)

    def _texts(self) -> QWidget:
        texts = QWidget()
        texts_layout = QVBoxLayout(texts)
        texts_layout.setContentsMargins(0, 0, 0, 0)
        answers = QHBoxLayout()
        self.answer, self.canonical = QLabel(""), QLabel("")
        for label, heading in ((self.answer, "AI answer"), (self.canonical, "Canonical label now")):
            column = QVBoxLayout()
            column.addWidget(title_label(heading))
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            column.addWidget(label, 1)
            answers.addLayout(column, 1)
        texts_layout.addLayout(answers)
        texts_layout.addWidget(title_label("Sensor context"))
        self.sensor = muted_label("")
        texts_layout.addWidget(self.sensor)
        texts_layout.addWidget(title_label("Rendered prompt"))
        self.prompt = QPlainTextEdit()
        self.prompt.setReadOnly(True)
        self.prompt.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        texts_layout.addWidget(self.prompt, 1)
        return texts

    def _actions(self) -> QHBoxLayout:
        actions = QHBoxLayout()
        self.reason = QLineEdit()
        self.reason.setPlaceholderText(REASON_HINT)
        self.reason.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.buttons: dict[str, QPushButton] = {}
        for name, text in REVIEW_BUTTONS:
            button = primary_button(text) if name == "approve" else QPushButton(text)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            self.buttons[name] = button
            actions.addWidget(button)
        actions.addWidget(self.reason, 1)
        self.previous_button = QPushButton("←")
        self.next_button = QPushButton("→")
        for button in (self.previous_button, self.next_button):
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            actions.addWidget(button)
        return actions

    # --- showing ------------------------------------------------------------------------------
    def show_empty(self, title: str) -> None:
        """No pair: say why and clear everything else."""
        self.pair_title.setText(title)
        for widget in (self.pair_state, self.answer, self.canonical, self.sensor):
            widget.setText("")
        self.position_label.setText("")
        self.prompt.setPlainText("")
        self.image_view.set_shape_model(None)
        self.image_view.show_pixmap(None, "")

    def show_pair_texts(self, pair: PairInfo) -> None:
        """Reference, status and source, and the AI answer with its confidence and notes."""
        self.pair_title.setText(pair.item_ref)
        color = theme.STATUS_COLORS.get(pair.status, theme.MUTED)
        source = {"canonical": "pre-approved from its canonical label"}.get(pair.source, f"source: {pair.source}")
        conflict = f" · <span style='color:{theme.DANGER}'>label conflict</span>" if pair.label_conflict else ""
        self.pair_state.setText(f"<span style='color:{color}; font-weight:600'>● {pair.status}</span>"
                                f"{muted(f' · {source}')}{conflict}")
        confidence = f"{pair.confidence:.2f}" if pair.confidence is not None else "—"
        answer = json.dumps(pair.answer, ensure_ascii=False) if pair.answer is not None else "(no answer)"
        error = f"<br><span style='color:{theme.DANGER}'>AI error: {pair.ai_error}</span>" if pair.ai_error else ""
        reason = f"<br>{muted(f'review note: {pair.review_reason}')}" if pair.review_reason else ""
        self.answer.setText(f"<span style='font-family:monospace'>{answer}</span><br>"
                            f"{muted('confidence')} <b>{confidence}</b>{error}{reason}")

    def show_canonical(self, answer: dict | None, data: dict | None, version: int | None, by: str | None) -> None:
        """The item's canonical label as it is now, and whether it is the AI answer."""
        if data is None:
            self.canonical.setText(muted("none yet: approving creates it"))
            return
        same = answer is not None and data == answer
        note = "same as the AI answer" if same else "differs from the AI answer"
        color = theme.SUCCESS if same else theme.WARNING
        who = f" by {by}" if by else ""
        self.canonical.setText(f"<span style='font-family:monospace'>{json.dumps(data, ensure_ascii=False)}</span>"
                               f"<br>{muted(f'v{version}{who}')} · <span style='color:{color}'>{note}</span>")

    def show_canonical_pending(self, version: int) -> None:
        self.canonical.setText(muted(f"v{version} …"))

    def show_error(self, text: str) -> None:
        self.message.setText(f"<span style='color:{theme.DANGER}'>{text}</span>")
