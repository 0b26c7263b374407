"""TRAIN, DEPLOY, MONITOR, IMPROVE, Calibration and Bundles pages driven on the demo site.

Each test opens the main window on a private copy of the demo site (`demo_home`), works the
page through its widgets and real services (numba, onnxruntime, Ed25519), waits for the
background job, and checks what the page shows and what the store holds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from vital_desktop.services.demo_site import DEMO_SHEET

REPO = Path(__file__).resolve().parents[2]
MODEL_BUNDLE = REPO / "bundles" / "demo" / "01-model-update.vbundle"


@pytest.fixture
def demo_store(demo_home):
    from vital_desktop.store.db import open_store

    store = open_store(demo_home)
    yield store
    store.close()


def open_window(qtbot, store, username: str, settings, stage: str = "data"):
    from PySide6.QtWidgets import QApplication

    from vital_desktop.app import build_main_window
    from vital_desktop.services import accounts
    from vital_desktop.ui.theme import STYLE_SHEET

    QApplication.instance().setStyleSheet(STYLE_SHEET)
    window = build_main_window(store, accounts.get_user(store, username), stage=stage, settings=settings)
    qtbot.addWidget(window)
    window.show()
    wait_idle(qtbot, window)
    return window


@pytest.fixture
def engineer_window(qtbot, demo_store, settings):
    window = open_window(qtbot, demo_store, "engineer", settings)
    yield window
    wait_idle(qtbot, window)
    window.close()


@pytest.fixture
def admin_window(qtbot, demo_store, settings):
    window = open_window(qtbot, demo_store, "admin", settings)
    yield window
    wait_idle(qtbot, window)
    window.close()


def wait_idle(qtbot, window, timeout: int = 60_000) -> None:
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=timeout)


def cell_texts(table) -> list[list[str]]:
    return [[table.item(r, c).text() if table.item(r, c) else "" for c in range(table.columnCount())]
            for r in range(table.rowCount())]


def test_every_lifecycle_page_opens_on_the_demo_site(qtbot, engineer_window):
    window = engineer_window
    for stage in ("train", "deploy", "monitor", "improve", "calibration"):
        window.go(stage)
        assert window.current_stage == stage
        assert type(window.pages[stage]).__name__ != "PlaceholderPage"
        wait_idle(qtbot, window)
    deploy = window.pages["deploy"]
    refs = {(row[0], row[1]) for row in cell_texts(deploy.table)}
    assert ("defect-classifier", "1") in refs
    # the engineer does not get a Bundles button (administrators only)
    assert "bundles" not in window.tool_buttons and "calibration" in window.tool_buttons


def test_train_page_shows_the_gates_trains_a_model_and_shows_its_card_and_lineage(qtbot, engineer_window):
    window = engineer_window
    window.go("train")
    wait_idle(qtbot, window)
    page = window.pages["train"]
    assert page.source_choice() == ("sheet", DEMO_SHEET)
    qtbot.waitUntil(lambda: "Training Prohibited" in page.gates.values, timeout=20_000)
    # the demo keeps 20 labels out of training (serial numbers): the dual gate says so
    assert page.gates.values["Training Prohibited"].text().endswith("20</b>")
    assert "130" in page.gates.values["Training Allowed"].text()
    page.model_name.setText("gui-classifier")
    page.activate_after.setChecked(True)
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.last_result is not None or "failed" in page.train_result.text(), timeout=60_000)
    wait_idle(qtbot, window)
    result = page.last_result
    assert result is not None, page.train_result.text()
    assert result.name == "gui-classifier" and result.images == 130
    assert 0.0 < result.held_out_accuracy <= 1.0
    assert f"{result.held_out_accuracy:.1%}" in page.train_result.text()
    # the model card of the new model: accuracy, per-class rows, a square confusion matrix
    assert page.model_pick.currentData() == result.model_id
    assert f"{result.held_out_accuracy:.1%}" in page.card_view.headline.text()
    assert page.card_view.per_class.rowCount() == len(result.classes)
    assert page.card_view.confusion.rowCount() == page.card_view.confusion.columnCount() == len(result.classes)
    # lineage: sheet -> canonical label versions (130 of them)
    lineage = page.lineage_view.info
    assert lineage is not None and len(lineage.sources) == 1
    assert len(lineage.sources[0].canonical_labels) == 130
    # DEPLOY shows it active (activated after training)
    window.go("deploy")
    wait_idle(qtbot, window)
    rows = cell_texts(window.pages["deploy"].table)
    assert any(r[0] == "gui-classifier" and r[3] == "active" for r in rows)


def test_train_and_activate_keeps_the_model_but_says_why_it_was_not_activated(qtbot, engineer_window, monkeypatch):
    from vital_desktop.services import activation_check

    # the comparison itself is tested on real models (tests/services/test_activation_check.py);
    # here it reports the new model as worse, and TRAIN must say so without losing the model
    def worse(store, *, model, progress=None):
        return activation_check.ActivationCheck("gui-worse@1", "defect-classifier@1", DEMO_SHEET, items=20,
                                                candidate_correct=10, active_correct=19, only_candidate=0,
                                                only_active=9, p_worse=activation_check.mcnemar_worse_p(9, 0))

    monkeypatch.setattr(activation_check, "compare_with_active", worse)
    window = engineer_window
    window.go("train")
    wait_idle(qtbot, window)
    page = window.pages["train"]
    page.model_name.setText("gui-worse")
    page.activate_after.setChecked(True)
    qtbot.mouseClick(page.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.last_result is not None or "failed" in page.train_result.text(), timeout=60_000)
    wait_idle(qtbot, window)
    assert page.last_result is not None, page.train_result.text()
    text = page.train_result.text()
    assert "Trained <b>gui-worse@1</b>" in text and "Not activated" in text and "50.0% against 95.0%" in text
    window.go("deploy")
    wait_idle(qtbot, window)
    rows = cell_texts(window.pages["deploy"].table)
    assert any(r[0] == "gui-worse" and r[3] != "active" for r in rows)
    assert any(r[0] == "defect-classifier" and r[3] == "active" for r in rows)


def test_train_page_refuses_a_bad_model_name_with_the_reason(qtbot, engineer_window, monkeypatch):
    from vital_desktop.ui import train_page

    shown = []
    monkeypatch.setattr(train_page, "show_error", lambda parent, title, exc: shown.append(str(exc)))
    window = engineer_window
    window.go("train")
    wait_idle(qtbot, window)
    page = window.pages["train"]
    page.model_name.setText("Bad Name!")
    page.train()
    qtbot.waitUntil(lambda: "failed" in page.train_result.text(), timeout=20_000)
    assert "lower-case" in page.train_result.text()
    assert shown and page.train_button.isEnabled()


def test_monitor_reloads_during_a_report_make_one_more_report_not_a_queue(qtbot, engineer_window, monkeypatch):
    window = engineer_window
    window.go("monitor")
    page = window.pages["monitor"]
    wait_idle(qtbot, window)
    started: list[str] = []
    change = page.context.change

    def counting(title, fn, **options):
        if title == "Monitoring report":
            started.append(title)
        return change(title, fn, **options)

    monkeypatch.setattr(page.context, "change", counting)
    for _ in range(5):  # five reloads while the first report is on its way (a job reporting changes, F5…)
        page.refresh()
    wait_idle(qtbot, window)
    assert len(started) == 2 and not page.refresh_again
    assert page.report is not None


def test_monitor_shows_numbers_after_predictions_and_validates_thresholds(qtbot, engineer_window):
    from vital_desktop.services import monitor

    window = engineer_window
    window.go("monitor")
    page = window.pages["monitor"]
    wait_idle(qtbot, window)
    assert page.report is not None and page.report.predictions == 0
    page.classify_sheet(DEMO_SHEET)
    qtbot.waitUntil(lambda: page.report is not None and page.report.predictions > 0, timeout=60_000)
    wait_idle(qtbot, window)
    report = page.report
    assert page.figure_predictions.value.text() == f"{report.predictions:,}"
    assert page.figure_p95.value.text().endswith(" ms")
    assert report.accuracy["overall"] is not None  # the demo's labelled items were predicted
    assert page.figure_accuracy.value.text() == f"{report.accuracy['overall']:.1%}"
    assert sum(page.confidence_chart.values) == report.predictions - report.errors
    assert sum(page.class_chart.values) == report.predictions - report.errors
    assert page.accuracy_chart.values  # at least one day
    assert page.drift_table.rowCount() >= 1 and "Method" in page.drift_method.text()
    # thresholds: an inconsistent pair is refused on the page, a valid change is stored
    page.threshold_editors["psi_warning"].setValue(0.5)
    page.threshold_editors["psi_alert"].setValue(0.2)
    assert page.save_thresholds() is False
    assert "watch level" in page.threshold_message.text()
    page.threshold_editors["psi_warning"].setValue(0.1)
    page.threshold_editors["psi_alert"].setValue(0.3)
    assert page.save_thresholds() is True
    qtbot.waitUntil(lambda: "saved" in page.threshold_message.text(), timeout=10_000)
    wait_idle(qtbot, window)
    assert monitor.get_thresholds(window.context.store).psi_alert == pytest.approx(0.3)


def test_improve_inspector_flags_engineer_accepts_and_gaps_rank_the_new_class(qtbot, demo_store, settings):
    from vital_desktop.services import accounts, feedback, labels
    from vital_desktop.services import predict as predict_service

    engineer = accounts.get_user(demo_store, "engineer")
    predictions, _ = predict_service.predict_images(demo_store, actor=engineer, sheet=DEMO_SHEET,
                                                    item_refs=["INS-00001", "INS-00002"])
    inspector_window = open_window(qtbot, demo_store, "inspector", settings, stage="improve")
    page = inspector_window.pages["improve"]
    assert not page.accept_button.isEnabled()  # inspectors flag, engineers review
    index = page.prediction_pick.findData(predictions[0].id)
    assert index >= 0
    page.prediction_pick.setCurrentIndex(index)
    wrong = next(c for c in labels.get_label_type(demo_store, "classification").classes() if c != predictions[0].predicted_class)
    page.corrected.setCurrentText(wrong)
    page.add_feedback()
    qtbot.waitUntil(lambda: "waits for expert review" in page.flag_message.text(), timeout=10_000)
    page.prediction_pick.setCurrentIndex(page.prediction_pick.findData(predictions[1].id))
    page.corrected.setCurrentText("edge_chipping")
    page.add_feedback()
    qtbot.waitUntil(lambda: page.queue.rowCount() == 2, timeout=10_000)
    wait_idle(qtbot, inspector_window)
    inspector_window.close()

    window = open_window(qtbot, demo_store, "engineer", settings, stage="improve")
    page = window.pages["improve"]
    qtbot.waitUntil(lambda: page.gaps is not None, timeout=20_000)
    assert page.gaps.findings[0].kind == "new_class" and page.gaps.findings[0].cls == "edge_chipping"
    assert cell_texts(page.findings)[0][2] == "edge_chipping"
    row = next(r for r, info in enumerate(page.items) if info.corrected_class == wrong)
    page.queue.selectRow(row)
    assert page.accept_button.isEnabled()
    qtbot.keyClicks(page.note, "matches the image")
    qtbot.keyClick(page.note, Qt.Key.Key_Return)  # Enter in the review note accepts
    # 10 s was too short in 2 of ~20 runs of this file here, after earlier tests in the same
    # process (the cause was not found: it never failed when the test ran alone)
    qtbot.waitUntil(lambda: "Accepted" in page.review_message.text(), timeout=30_000)
    assert page.note.text() == ""
    wait_idle(qtbot, window)
    accepted = feedback.list_feedback(demo_store, status="accepted")
    assert [f.corrected_class for f in accepted] == [wrong]
    # the new-class item cannot be accepted into the labels (not in the taxonomy)
    page.queue.selectRow(next(r for r, info in enumerate(page.items) if info.corrected_class == "edge_chipping"))
    assert not page.accept_button.isEnabled() and page.reject_button.isEnabled()
    window.close()


def test_calibration_runs_a_small_monte_carlo_and_shows_uncertainties(qtbot, engineer_window):
    window = engineer_window
    window.go("calibration")
    wait_idle(qtbot, window)
    assert not any(b.isChecked() for b in window.breadcrumb.buttons.values())
    page = window.pages["calibration"]
    page.histories.setCurrentText("2e5")
    page.nuclide.setCurrentText("Cs-137")
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: page.detail is not None, timeout=90_000)
    wait_idle(qtbot, window)
    assert "stored" in page.message.text()
    assert page.detail.info.histories == 200_000
    lines = cell_texts(page.lines)
    assert lines and lines[0][0].startswith("661.6")
    assert all("±" in value for value in lines[0][2:6])  # every result with its uncertainty
    assert "±" in page.summary.values["Calibration factor"].text()
    assert page.spectrum.points > 10
    assert page.runs.rowCount() == 1


def test_calibration_refuses_bad_histories_before_any_work(qtbot, engineer_window):
    window = engineer_window
    window.go("calibration")
    wait_idle(qtbot, window)
    page = window.pages["calibration"]
    page.histories.setCurrentText("lots")
    page.run()
    assert "histories" in page.message.text()
    assert page.run_job is None and page.runs.rowCount() == 0


def test_bundles_verify_then_import_and_refuse_a_tampered_copy(qtbot, admin_window, tmp_path):
    from vital_desktop.services import exchange, registry

    window = admin_window
    assert "bundles" in window.tool_buttons
    qtbot.mouseClick(window.tool_buttons["bundles"], Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    page = window.pages["bundles"]
    assert type(page).__name__ == "BundlesPage"
    assert "version <b>1</b>" in page.trust.values["Version"].text()

    tampered = tmp_path / "tampered.vbundle"
    shutil.copy(MODEL_BUNDLE, tampered)
    data = bytearray(tampered.read_bytes())
    data[-10] ^= 0xFF  # one flipped bit inside the last payload
    tampered.write_bytes(bytes(data))
    page.verify(str(tampered))
    qtbot.waitUntil(lambda: page.report is not None and page.report["file"] == str(tampered), timeout=30_000)
    assert page.report["outcome"] == "refused"
    assert not page.import_button.isEnabled()
    failed = [page.checks.item(i).text() for i in range(page.checks.count()) if page.checks.item(i).text().startswith("✘")]
    assert failed, "the failing check is listed"
    assert "Refused" in page.outcome.text() and page.report["reason"] in page.outcome.text()

    page.verify(str(MODEL_BUNDLE))
    qtbot.waitUntil(lambda: page.report is not None and page.report["file"] == str(MODEL_BUNDLE), timeout=30_000)
    assert page.report["outcome"] == "ok", page.report["reason"]
    texts = [page.checks.item(i).text() for i in range(page.checks.count())]
    assert texts and all(t.startswith("✔") for t in texts)
    assert page.import_button.isEnabled()
    before = {m.ref for m in registry.list_models(window.context.store)}
    qtbot.mouseClick(page.import_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Imported" in page.outcome.text() or "refused" in page.outcome.text(), timeout=30_000)
    wait_idle(qtbot, window)
    assert "Imported" in page.outcome.text(), page.outcome.text()
    assert {m.ref for m in registry.list_models(window.context.store)} > before
    ledger = exchange.ledger(window.context.store)
    assert ledger[0]["outcome"] == "accepted"
    assert cell_texts(page.ledger)[0][1] == "accepted"
    assert not page.import_button.isEnabled()


def test_an_inspector_does_not_see_the_bundles_page(qtbot, demo_store, settings):
    window = open_window(qtbot, demo_store, "inspector", settings)
    assert "bundles" not in window.tool_buttons
    window.go("bundles")  # no "coming to this page" placeholder: the page does not open at all
    assert "bundles" not in window.pages and window.current_stage == "data"
    assert "administrators" in window.statusBar().currentMessage()
    # and the TRAIN/DEPLOY actions an inspector may not take are disabled, with a visible reason
    window.go("train")
    wait_idle(qtbot, window)
    train = window.pages["train"]
    assert not train.train_button.isEnabled() and train.train_reason.isVisibleTo(train)
    assert "inspector" in train.train_reason.text()
    window.go("deploy")
    wait_idle(qtbot, window)
    deploy = window.pages["deploy"]
    assert not deploy.activate_button.isEnabled() and "inspector" in deploy.reason.text()
    wait_idle(qtbot, window)
    window.close()


def test_train_page_names_the_model_after_its_source_until_a_name_is_typed(qtbot, engineer_window):
    from vital_desktop.ui.train_page import suggested_model_name

    assert suggested_model_name("Defect Detection - Scintillator Crystals") == "defect-detection-scintillator-crystals-classifier"
    assert suggested_model_name("Ü?!") == "site-classifier"
    window = engineer_window
    window.go("train")
    wait_idle(qtbot, window)
    page = window.pages["train"]
    assert page.model_name.text() == suggested_model_name(page.source_choice()[1])  # nothing of the demo's own
    qtbot.keyClicks(page.model_name, "-mine")  # the user's own name is kept from now on
    typed = page.model_name.text()
    page.refresh_summary()
    assert page.model_name.text() == typed
