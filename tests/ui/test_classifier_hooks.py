"""IMPROVE's "Possibly mislabelled" panel and the "Label next" hook, on the demo site through real services."""

from __future__ import annotations

import pytest

from tests.ui.test_lifecycle_pages import open_window, wait_idle
from vital_desktop.services.demo_site import DEMO_SHEET


@pytest.fixture
def demo_store(demo_home):
    from vital_desktop.store.db import open_store

    store = open_store(demo_home)
    yield store
    store.close()


@pytest.mark.slow
def test_suspects_panel_lists_doubtful_labels_and_label_next_ranks_unlabelled_items(qtbot, demo_store, settings):
    from vital_desktop.ui.label_next import suggest_next

    window = open_window(qtbot, demo_store, "engineer", settings, stage="improve")
    panel = window.pages["improve"].suspects
    panel.sheet_pick.setCurrentIndex(panel.sheet_pick.findData(DEMO_SHEET))
    panel.find_suspects()
    qtbot.waitUntil(lambda: "labels look doubtful" in panel.message.text(), timeout=180_000)
    assert panel.report is not None and panel.table.rowCount() == len(panel.report.suspects)
    for suspect in panel.report.suspects:
        assert suspect.given != suspect.suggested

    received = []
    suggest_next(window.pages["improve"].context, sheet=DEMO_SHEET, label_type="classification", count=4,
                 on_items=received.append)
    qtbot.waitUntil(lambda: bool(received), timeout=120_000)
    (items,) = received
    assert [i.rank for i in items] == [1, 2, 3, 4] and all(i.predicted_class for i in items)
    wait_idle(qtbot, window)
    window.close()
