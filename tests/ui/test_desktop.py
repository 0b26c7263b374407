"""The desktop app driven through its widgets on a real (small) site store.

Each test opens the main window on a private copy of the site built in conftest.py, drives it
with clicks and key presses, and checks the store through the services.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.ui.conftest import SHEET, settle
from vital_desktop.services import generate as generate_service
from vital_desktop.services import labels as label_service
from vital_desktop.services import review as review_service
from vital_desktop.ui.actions import ACTIONS, STAGES


def tool_of(window):
    return window.pages["canonical"]


def error_boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]


def focus(qtbot, window) -> None:
    """Give the main window the keyboard again (offscreen Qt does not when a dialog closes)."""
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)


def review_ready(qtbot, page, name: str) -> None:
    """Until the review page shows a pair of training sheet `name` (it loads in the background)."""
    qtbot.waitUntil(lambda: page.current is not None and page.current.name == name and page.pair is not None
                    and not page.busy, timeout=10_000)


def wait_idle(qtbot, window) -> None:
    """Until no background job of this window is running (so teardown finds no busy thread)."""
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)


def test_main_window_clicks_through_every_stage(qtbot, window):
    assert window.current_stage == "data"
    data = window.pages["data"]
    assert data.current is not None and data.current.name == SHEET
    # thumbnails arrive from the worker pool, not the GUI thread
    qtbot.waitUntil(lambda: data.model.index(0).data(Qt.ItemDataRole.DecorationRole) is not None, timeout=10_000)
    data.grid.setCurrentIndex(data.model.index(2))
    assert data.item_title.text() == "INS-00003"
    assert data.metadata_table.rowCount() > 3
    for key, _title in STAGES:
        qtbot.mouseClick(window.breadcrumb.buttons[key], Qt.MouseButton.LeftButton)
        assert window.current_stage == key
        assert window.stack.currentWidget().widget() is window.pages[key] is window.current_page()
        assert window.breadcrumb.buttons[key].isChecked()
    qtbot.mouseClick(window.canonical_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    assert window.current_stage == "canonical"
    assert tool_of(window).item is not None
    qtbot.keyClick(window, Qt.Key.Key_Escape)
    assert window.current_stage == "improve"
    wait_idle(qtbot, window)
    assert not error_boxes()


def test_menus_list_every_action_with_its_shortcut_and_question_mark_shows_them(qtbot, window):
    texts = {a.text() for menu in window.menuBar().findChildren(type(window.menuBar().addMenu("x")))
             for a in menu.actions()}
    for spec in ACTIONS:
        assert spec.text in texts
        assert [s.toString() for s in window.qactions[spec.name].shortcuts()] != [] or not spec.shortcuts
    window.dispatch(next(a for a in ACTIONS if a.name == "shortcuts"))
    dialog = window.shortcuts_dialog
    assert dialog.isVisible()
    table = dialog.layout().itemAt(0).widget()
    rows = {table.item(r, 1).text() for r in range(table.rowCount())}
    assert "Save and next unlabeled" in rows and "Approve pair" in rows
    dialog.close()


def test_the_wow_moment_label_once_then_pre_approved_then_review_creates_a_label(qtbot, window, store):
    # 1. Canonical Labeling Tool, keyboard only: pick class 1 (inclusion), Enter saves and moves on.
    qtbot.mouseClick(window.canonical_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = tool_of(window)
    tool.set_label_type("classification")  # the demo's type: a site without labels has no default
    qtbot.waitUntil(lambda: tool.ready and tool.form.label_type.name == "classification", timeout=10_000)
    first = tool.item.item_ref
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != first, timeout=10_000)
    qtbot.waitUntil(lambda: not tool.saving, timeout=10_000)  # moved on at once; the save lands next
    label = label_service.get_label(store, sheet=SHEET, item_ref=first, label_type="classification")
    assert label is not None and label.label_data["defect_type"] == "inclusion"

    # 2. GENERATE: the dialog previews the labeled item as pre-approved; generation opens LABEL.
    window.go("generate")
    page = window.pages["generate"]
    settle(qtbot, window)
    row = next(i for i, t in enumerate(page.templates) if t.label_type == "classification")
    page.table.selectRow(row)
    dialog = page.open_generate()
    settle(qtbot, window)
    assert dialog.preview.rowCount() == 3
    states = {dialog.preview.item(r, 0).text(): dialog.preview.item(r, 1).text() for r in range(3)}
    assert states[first].startswith("pre-approved")
    dialog.ai_mode.setCurrentIndex(dialog.ai_mode.findData("none"))
    name = dialog.name.text()
    qtbot.mouseClick(dialog.generate_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_stage == "label", timeout=20_000)
    label_page = window.pages["label"]
    qtbot.waitUntil(lambda: label_page.current is not None and label_page.current.name == name
                    and label_page.summary is not None and label_page.pair is not None, timeout=10_000)
    assert label_page.summary.pre_approved == 1
    pair = review_service.find_pair(store, training_sheet=name, item_ref=first)
    assert pair.status == "labeled" and pair.source == "canonical"

    # 3. Review (Mode A): E edits the answer (no AI pre-label in this mode), approving creates the label.
    assert label_page.filter.currentData() == "needs_review"
    reviewed = label_page.pair.item_ref
    assert label_service.get_label(store, sheet=SHEET, item_ref=reviewed, label_type="classification") is None
    focus(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_E)
    label_page.edit_dialog.edit.setPlainText(json.dumps({"defect_type": "crack", "severity": "minor"}))
    label_page.edit_dialog._check()
    qtbot.waitUntil(lambda: review_service.find_pair(store, training_sheet=name, item_ref=reviewed).status
                    == "labeled", timeout=10_000)
    created = label_service.get_label(store, sheet=SHEET, item_ref=reviewed, label_type="classification")
    assert created is not None and created.label_data["defect_type"] == "crack"
    wait_idle(qtbot, window)
    assert label_page.summary.approved_in_review == 1

    # 4. Flag with the keyboard, with a reason typed in the reason field.
    flagged = label_page.pair.item_ref
    label_page.reason.setText("glare hides the edge")
    focus(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_F)
    qtbot.waitUntil(lambda: review_service.find_pair(store, training_sheet=name, item_ref=flagged).status
                    == "flagged", timeout=10_000)
    wait_idle(qtbot, window)
    assert not error_boxes()


def test_approve_key_creates_the_canonical_label(qtbot, window, store, engineer, tmp_path):
    from vital_desktop.bundles.samples import tiny_classifier_onnx
    from vital_desktop.services import registry

    # A real (tiny) ONNX classifier pre-labels the pairs, so A has an AI answer to approve.
    model_file = tmp_path / "tiny.onnx"
    model_file.write_bytes(tiny_classifier_onnx(["inclusion", "crack", "delamination", "surface_contamination",
                                                 "none"]))
    # Registered under the name the template's model reference gives.
    info, _ = registry.register_model(store, actor=engineer, path=model_file, kind="onnx_classifier",
                                      name="defect-classifier")
    registry.activate_model(store, actor=engineer, name="defect-classifier", version=info.version)
    generate_service.generate_training_sheet(store, actor=engineer, sheet=SHEET, name="review me",
                                             ai_mode="classifier",
                                             template="Defect Classification - Visual Inspection")
    window.go("label", training_sheet="review me")
    page = window.pages["label"]
    review_ready(qtbot, page, "review me")
    pair = page.pair
    assert pair.answer is not None and pair.status == "unlabeled"
    qtbot.keyClick(window, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: review_service.find_pair(store, training_sheet="review me", item_ref=pair.item_ref)
                    .status == "labeled", timeout=10_000)
    label = label_service.get_label(store, sheet=SHEET, item_ref=pair.item_ref, label_type="classification")
    assert label is not None and label.label_data["defect_type"] == pair.answer["defect_type"]
    wait_idle(qtbot, window)


def test_undo_and_redo_of_label_actions(qtbot, window, store):
    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = tool_of(window)
    item = tool.item.item_ref
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != item, timeout=10_000)
    qtbot.waitUntil(lambda: not tool.saving, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert tool.item.item_ref == item
    qtbot.keyClick(window, Qt.Key.Key_2)  # crack
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != item, timeout=10_000)
    qtbot.waitUntil(lambda: not tool.saving, timeout=10_000)

    def current():
        return label_service.get_label(store, sheet=SHEET, item_ref=item, label_type="classification")

    assert current().label_data["defect_type"] == "crack" and current().version == 2

    def settled() -> bool:  # undo/redo run on the writer thread; the tool shows the item afterwards
        return not tool.undoing and not window.context.jobs.jobs and tool.ready

    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(settled, timeout=10_000)
    assert current().label_data["defect_type"] == "inclusion"  # the previous label, as a new version
    assert current().version == 3
    assert tool.item.item_ref == item  # undo shows the item it touched
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(settled, timeout=10_000)
    assert current().label_data["defect_type"] == "crack"
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(settled, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(settled, timeout=10_000)
    assert current() is None  # undo of the first save withdraws the label; its history stays
    qtbot.waitUntil(lambda: tool.model.status_of(tool.position) == "unlabeled", timeout=10_000)
    actions = [v.action for v in label_service.history(store, sheet=SHEET, item_ref=item, label_type="classification")
               ] if current() else None
    assert actions is None
    wait_idle(qtbot, window)
    assert not error_boxes()


def test_history_rollback_and_other_label_types(qtbot, window, store, engineer):
    for data in ({"defect_type": "crack"}, {"defect_type": "delamination"}):
        label_service.set_label(store, actor=engineer, sheet=SHEET, item_ref="INS-00004", label_type="classification",
                                label_data=data)
    label_service.set_label(store, actor=engineer, sheet=SHEET, item_ref="INS-00004", label_type="severity",
                            label_data={"severity": "major"})
    window.go("canonical", sheet=SHEET, item="INS-00004", label_type="classification")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = tool_of(window)
    assert tool.item.item_ref == "INS-00004"
    qtbot.waitUntil(lambda: tool.labels_ready, timeout=5000)  # labels load in the background
    assert tool.history.count() == 2
    others = [tool.other_labels.item(i).text() for i in range(tool.other_labels.count())]
    assert any("Severity" in text and "major" in text for text in others)
    tool.history.setCurrentRow(1)  # v1 (newest first)
    tool.rollback_selected()
    qtbot.waitUntil(lambda: label_service.get_label(store, sheet=SHEET, item_ref="INS-00004",
                                                    label_type="classification").version == 3, timeout=10_000)
    assert label_service.get_label(store, sheet=SHEET, item_ref="INS-00004",
                                   label_type="classification").label_data == {"defect_type": "crack"}
    wait_idle(qtbot, window)
    assert tool.history.count() == 3


def test_filter_by_status_and_localization_boxes(qtbot, window, store):
    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = tool_of(window)
    tool.set_label_type("localization")
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    shapes = tool.form.shape_model
    assert shapes is not None and shapes.kind == "boxes" and tool.image_view.model is shapes
    shapes.add_box(10, 12, 40, 30)
    assert len(shapes.shapes) == 1
    item = tool.item.item_ref
    qtbot.keyClick(window, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: tool.item.item_ref != item, timeout=10_000)
    qtbot.waitUntil(lambda: not tool.saving, timeout=10_000)
    stored = label_service.get_label(store, sheet=SHEET, item_ref=item, label_type="localization")
    assert stored.label_data["boxes"][0]["width"] == 40
    tool.set_filter("labeled")
    assert tool.model.rowCount() == 1 and tool.item.item_ref == item
    tool.set_filter("unlabeled")
    assert tool.model.rowCount() == tool.sheet.item_count - 1
    wait_idle(qtbot, window)


def test_deep_link_opens_the_tool_on_an_item_and_window_state_is_remembered(qtbot, store, engineer, settings):
    from vital_desktop.app import build_main_window

    window = build_main_window(store, engineer, stage="canonical", sheet=SHEET, item="INS-00005", settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: tool_of(window).ready, timeout=10_000)
    assert tool_of(window).item.item_ref == "INS-00005"
    window.resize(701, 503)  # within the offscreen screen, which clamps restored geometry
    expected = (window.size().width(), window.size().height())  # the layout's minimum width may win
    window.go("generate")
    window.close()
    assert settings.value("window/stage") == "generate"
    again = build_main_window(store, engineer, settings=settings)
    qtbot.addWidget(again)
    assert again.current_stage == "generate"
    # offscreen Qt's screen is 800 px wide and clamps a restored width; the height comes back exactly
    assert again.size().height() == expected[1] == 503
    again.close()


def test_create_sheet_wizard_from_a_dropped_csv(qtbot, window, tmp_path):
    from PIL import Image

    images = tmp_path / "drop" / "images"
    images.mkdir(parents=True)
    with open(tmp_path / "drop" / "records.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["scan_id", "file", "temperature_c"])
        for i in range(6):
            Image.new("L", (16, 16), 40 * i).save(images / f"s{i}.png")
            writer.writerow([f"S-{i}", f"s{i}.png", 20 + i])
    data = window.pages["data"]
    wizard = data.open_dropped([tmp_path / "drop"])
    assert wizard is not None
    assert wizard.metadata_page.path_edit.text().endswith("records.csv")
    wizard.metadata_page.name_edit.setText("Dropped scans")
    wizard.metadata_page.tag_boxes["PII"].setChecked(True)
    wizard.next()
    assert wizard.columns_page.key_combo.currentText() == "scan_id"
    assert wizard.columns_page.image_column() == "file"
    wizard.next()
    assert Path(wizard.folder_page.folder_edit.text()) == images
    wizard.next()
    assert wizard.preview_page.table.rowCount() == 6
    assert wizard.preview_page.table.item(0, 2).text() == "yes"
    wizard.next()  # commit: import runs in the background
    qtbot.waitUntil(lambda: wizard.import_page.done, timeout=10_000)
    assert wizard.created_sheet == "Dropped scans"
    wizard.accept()
    wait_idle(qtbot, window)
    assert data.current.name == "Dropped scans" and data.current.classification == ["PII"]
    assert data.model.rowCount() == 6


def test_big_sheet_opens_with_pages_fetched_on_demand(qtbot, window, tmp_path, engineer):
    from vital_desktop.services import sheets

    path = tmp_path / "big.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["reading_id", "value"])
        writer.writerows([f"R-{i:06d}", i] for i in range(5000))
    _report, changes = sheets.import_sheet(window.context.store, actor=engineer, name="Big", metadata_path=path,
                                           key_column="reading_id")
    window.context.announce(changes)
    window.go("data", sheet="Big")
    data = window.pages["data"]
    qtbot.waitUntil(lambda: data.current is not None and data.current.name == "Big", timeout=10_000)
    assert data.model.rowCount() == 5000
    qtbot.waitUntil(lambda: data.model.index(0).data() == "R-000000", timeout=10_000)
    assert data.model.pager.loaded_pages() <= 3  # only what was painted, not the whole sheet
    data.grid.scrollToBottom()
    qtbot.waitUntil(lambda: data.model.index(4999).data() == "R-004999", timeout=10_000)
    wait_idle(qtbot, window)


def test_a_failing_worker_reaches_the_user(qtbot, window):
    def boom(_progress):
        raise RuntimeError("disk on fire")

    window.context.run("Exploding job", boom)
    qtbot.waitUntil(lambda: bool(error_boxes()), timeout=10_000)
    box = error_boxes()[0]
    assert "disk on fire" in box.text()
    assert "Traceback" in box.detailedText()
    box.close()


def test_cancel_stops_a_job_between_steps(qtbot, window):
    import time

    seen = []

    def slow(progress):
        progress.start(1000, "slow")
        for _ in range(1000):
            progress.check()
            time.sleep(0.005)
            progress.advance()
        return "finished"

    job = window.context.run("Slow job", slow, cancellable=True, on_error=seen.append)
    qtbot.waitUntil(lambda: job.snapshot().done > 0, timeout=5000)
    assert window.job_bar.rows  # shown in the status bar with a Cancel button
    job.cancel()
    qtbot.waitUntil(lambda: not job.running, timeout=5000)
    assert seen and type(seen[0]).__name__ == "Cancelled"
    assert not window.job_bar.rows


@pytest.mark.parametrize("role_user", ["ivan"])
def test_an_inspector_cannot_import_a_sheet_and_is_told_why(qtbot, store, settings, role_user):
    from vital_desktop.app import build_main_window
    from vital_desktop.services import accounts

    inspector = accounts.get_user(store, role_user)
    window = build_main_window(store, inspector, stage="generate", settings=settings)
    qtbot.addWidget(window)
    settle(qtbot, window)
    page = window.pages["generate"]
    # refused up front: the buttons are disabled and a visible label says why (not only a tooltip)
    assert not page.new_button.isEnabled() and not page.generate_button.isEnabled()
    assert not page.edit_button.isEnabled() and not page.publish_button.isEnabled()
    assert page.reason.isVisibleTo(page) and "inspector" in page.reason.text()
    assert page.open_editor(None) is None  # no form an inspector cannot save
    assert page.open_generate() is None
    window.go("data")
    data = window.pages["data"]
    assert not data.create_button.isEnabled() and "inspector" in data.reason.text()
    window.close()


def test_enter_moves_on_at_once_and_a_refused_save_returns_to_its_item(qtbot, window, store):
    from vital_desktop.services import accounts

    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = tool_of(window)
    item = tool.item.item_ref
    # Another expert holds a claim on this item, so the save will be refused by the store.
    other = accounts.get_user(store, "ivan")
    review_service.claim_items(store, actor=other, sheet=SHEET, label_type="classification", item_refs=[item])
    qtbot.waitUntil(lambda: tool.labels_ready, timeout=5000)  # its label version is known (read in the background)
    qtbot.keyClick(window, Qt.Key.Key_1)
    qtbot.keyClick(window, Qt.Key.Key_Return)
    assert tool.item.item_ref != item  # moved on without waiting for the store
    qtbot.waitUntil(lambda: bool(error_boxes()), timeout=10_000)
    box = error_boxes()[0]
    assert "claimed by ivan" in box.text()
    box.close()
    assert tool.item.item_ref == item and not tool.saving  # back on the refused item
    assert tool.model.status_of(tool.position) == "unlabeled"
    assert label_service.get_label(store, sheet=SHEET, item_ref=item, label_type="classification") is None


def test_claim_next_reserves_items_for_this_expert(qtbot, window, store):
    from vital_desktop.services import accounts

    window.go("canonical", label_type="classification")  # the demo's type (a fresh site has no default)
    qtbot.waitUntil(lambda: window.pages["canonical"].ready, timeout=10_000)
    tool = tool_of(window)
    qtbot.mouseClick(tool.claim_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Claimed" in tool.message.text(), timeout=10_000)
    claims = review_service.list_claims(store, sheet=SHEET)
    assert len(claims) == 20 and {c["claimed_by"] for c in claims} == {"alice"}
    # Another expert cannot label a claimed item meanwhile.
    from vital_desktop.core.errors import ConflictError

    with pytest.raises(ConflictError, match="claimed by alice"):
        label_service.set_label(store, actor=accounts.get_user(store, "ivan"), sheet=SHEET,
                                item_ref=claims[0]["item_ref"], label_type="classification",
                                label_data={"defect_type": "none"})
    wait_idle(qtbot, window)


def test_page_actions_are_in_the_menus_and_enabled_only_on_their_page(qtbot, window):
    page_actions = [a for a in ACTIONS if a.scope in ("train", "deploy", "improve", "calibration", "bundles")]
    assert {a.name for a in page_actions} >= {"train_start", "mc_run", "bundle_verify", "deploy_activate"}
    for spec in page_actions:
        assert window.qactions[spec.name].shortcut().toString(), spec.name  # listed with its key
    window.go("calibration")
    assert window.current_stage == "calibration"
    assert window.qactions["mc_run"].isEnabled() and not window.qactions["train_start"].isEnabled()
    window.go("train")
    assert window.qactions["train_start"].isEnabled() and not window.qactions["mc_run"].isEnabled()
    wait_idle(qtbot, window)


def test_review_pages_through_pairs_without_skipping_reviewed_ones(qtbot, window, store, engineer, monkeypatch):
    from vital_desktop.ui import label_page

    monkeypatch.setattr(label_page, "PAIR_PAGE", 4)  # 30 pairs -> 8 pages
    generate_service.generate_training_sheet(store, actor=engineer, sheet=SHEET, name="paged", ai_mode="none",
                                             template="Defect Classification - Visual Inspection")
    window.go("label", training_sheet="paged")
    page = window.pages["label"]
    review_ready(qtbot, page, "paged")
    seen = [page.pair.item_ref]
    for _ in range(5):  # flag the first five: they leave "needs review" but must not shift the pages
        page.reason.setText("second opinion")
        qtbot.keyClick(window, Qt.Key.Key_F)
        qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
        seen.append(page.pair.item_ref)
    expected = review_service.pair_refs(store, training_sheet="paged")[:6]
    assert seen == expected
    assert page.position_label.text().startswith("6 / ")
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: not page.busy, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: not page.busy and page.pair.item_ref == expected[3], timeout=10_000)  # across a page
    wait_idle(qtbot, window)


def test_pages_do_no_store_work_on_the_gui_thread(qtbot, gui_thread_store_calls, window):
    """Every read and write of these pages runs off the GUI thread (the operation layer)."""
    for stage in ("data", "generate", "train", "deploy", "monitor", "improve", "calibration"):
        window.go(stage)
        settle(qtbot, window)
    window.pages["data"].reload()
    window.refresh()  # every page reloads what it shows
    settle(qtbot, window)
    assert gui_thread_store_calls == []


def test_no_page_of_the_shell_reaches_for_the_store():
    """No page uses `context.store` (tests/test_architecture.py checks every `.store` in ui/)."""
    import re

    ui = Path(__file__).resolve().parents[2] / "vital_desktop" / "ui"
    legacy = {"context.py", "operations.py"}
    offenders = [f"{path.name}:{n}" for path in sorted(ui.glob("*.py")) if path.name not in legacy
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"\b(context|ctx)\.store\b", line)]
    assert offenders == []


def test_modifier_shortcuts_are_bound_once():
    """A Ctrl/Alt shortcut does one thing (Ctrl+Shift+A was both activate and accept)."""
    seen: dict[str, str] = {}
    for spec in ACTIONS:
        for keys in spec.shortcuts:
            if "Ctrl" in keys or "Alt" in keys:
                assert keys not in seen, f"{keys} is bound to {seen[keys]} and {spec.name}"
                seen[keys] = spec.name
