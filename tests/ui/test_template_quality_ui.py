"""GENERATE's Quality tab: Evaluate and Optimise run off the GUI thread and show their scores.

The language model is replaced by a small rule-based pre-labeler (these tests are about the page;
the real model is exercised in tests/services/test_template_quality.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import bundled_gguf_or_skip
from tests.ui.conftest import SHEET, settle
from vital_desktop.services import generate, labels, sheets, template_eval

TEMPLATE = "Defect Classification - Visual Inspection"


@pytest.fixture
def labelled(store, engineer, monkeypatch):
    """Ten canonical labels on the UI site, and a stand-in model that is right only when the
    system prompt tells it to ground its answer in the record."""
    items = sheets.list_items(store, SHEET, limit=10)
    truth = {}
    for i, item in enumerate(items):
        data = {"defect_type": "crack" if i % 2 else "none", "severity": "critical" if i % 2 else "none"}
        labels.set_label(store, actor=engineer, sheet=SHEET, item_ref=item.item_ref, label_type="classification",
                         label_data=data)
        truth[item.item_ref] = data

    class Stand:
        def __init__(self, template):
            self.template = template

        def prelabel(self, requests, progress):
            grounded = "Base the answer only" in self.template.system_prompt
            return [generate.Prelabel(truth[r.item_ref] if grounded else {"defect_type": "none", "severity": "none"},
                                      0.8, "llm") for r in requests]

    monkeypatch.setattr(template_eval, "make_prelabeler", lambda store, template, mode: Stand(template))
    return truth


def _page(window, qtbot):
    window.go("generate")
    page = window.pages["generate"]
    settle(qtbot, window)
    names = [t.name for t in page.templates]
    page.table.selectRow(names.index(TEMPLATE))
    settle(qtbot, window)
    return page


def test_evaluate_and_optimise_from_the_quality_tab(window, qtbot, labelled) -> None:
    page = _page(window, qtbot)
    tab = page.quality
    assert tab.template is not None and tab.template.name == TEMPLATE
    assert tab.table.rowCount() == 0 and "Not evaluated yet" in tab.fields.text()

    dialog = tab.open_evaluate()
    qtbot.waitUntil(lambda: dialog.sheet.count() > 0, timeout=10_000)
    dialog.limit.setValue(6)
    dialog.start()
    qtbot.waitUntil(lambda: dialog.result is not None, timeout=30_000)
    assert "accuracy defect_type: 50.0 %" in dialog.output.toPlainText()
    dialog.reject()
    settle(qtbot, window)
    qtbot.waitUntil(lambda: tab.table.rowCount() == 1, timeout=10_000)
    assert tab.table.item(0, 1).text() == "50.0 %" and tab.table.item(0, 5).text() == "evaluation"
    assert "Per field: defect_type 50.0 %" in tab.fields.text()

    optimise = tab.open_optimise()
    qtbot.waitUntil(lambda: optimise.sheet.count() > 0, timeout=10_000)
    optimise.items.setValue(3)
    optimise.candidates.setValue(4)
    optimise.start()
    qtbot.waitUntil(lambda: optimise.result is not None, timeout=60_000)
    result = optimise.result
    assert result.proposed_ref == f"{TEMPLATE}@1.1.0"
    assert optimise.scores.item(0, 0).text() == "accuracy"
    assert optimise.scores.item(0, 2).text() == "100.0 %"  # the proposal on the selection split
    assert "proposed" in optimise.output.toPlainText() and optimise.review_button.isEnabled()
    optimise.review_button.click()
    settle(qtbot, window)
    assert page.tabs.currentIndex() == page.versions_tab
    qtbot.waitUntil(lambda: page.publish_button.text() == "Publish 1.1.0", timeout=10_000)


def test_cancel_stores_nothing(window, qtbot, labelled, monkeypatch) -> None:
    page = _page(window, qtbot)
    dialog = page.quality.open_evaluate()
    qtbot.waitUntil(lambda: dialog.sheet.count() > 0, timeout=10_000)

    class Slow:
        def prelabel(self, requests, progress):
            dialog.job.cancel()  # the user presses Cancel while the first item is answered
            return [generate.Prelabel({"defect_type": "none"}, 0.5, "llm") for _ in requests]

    monkeypatch.setattr(template_eval, "make_prelabeler", lambda store, template, mode: Slow())
    dialog.start()
    qtbot.waitUntil(lambda: dialog.job is None, timeout=30_000)
    assert "Cancelled" in dialog.status.text() and dialog.result is None
    dialog.reject()
    settle(qtbot, window)
    assert page.quality.table.rowCount() == 0


def test_deploy_shows_a_language_models_speed_on_this_machine(qtbot, store, engineer, settings) -> None:
    bundled_gguf_or_skip()
    from vital_desktop.app import build_main_window
    from vital_desktop.services import llm_speed, registry

    model = registry.ensure_default_llm(store, actor=engineer)
    window = build_main_window(store, engineer, stage="deploy", settings=settings)
    qtbot.addWidget(window)
    window.show()
    settle(qtbot, window)
    page = window.pages["deploy"]

    def select_llm() -> None:
        page.table.selectRow(next(i for i, m in enumerate(page.models) if m.id == model.id))

    select_llm()
    assert "not measured yet" in page.detail.values["Speed here"].text()
    assert "declared in the file" in page.detail.values["Chat template"].text()
    sample = {"threads": 1, "prompt_tokens": 128, "prompt_tokens_per_s": 250.0, "generated_tokens": 32,
              "generation_tokens_per_s": 60.0, "load_seconds": 0.2, "load_average": 1.5}
    llm_speed.record(store, model, sample)  # what a first use records (the measurement itself: tests/inference)
    page.reload()
    settle(qtbot, window)
    select_llm()
    assert "prompt 250 tok/s, generation 60 tok/s (1 thread, load 1.5" in page.detail.values["Speed here"].text()
    window.close()
