"""The shell's own guarantees: finish work in the app (resume, publish, users), confirm before
changing what serves or quitting mid-job, and fit a 1280x720 screen after visiting every page."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.ui.conftest import SHEET, settle
from vital_desktop.core.errors import Cancelled
from vital_desktop.core.progress import CancelToken, Progress
from vital_desktop.services import accounts
from vital_desktop.services import generate as generate_service
from vital_desktop.services import templates as template_service


def open_as(qtbot, store, settings, username: str, stage: str = "data"):
    from vital_desktop.app import build_main_window

    window = build_main_window(store, accounts.get_user(store, username), stage=stage, settings=settings)
    qtbot.addWidget(window)
    window.show()
    settle(qtbot, window)
    return window


def classification_template(store) -> template_service.TemplateInfo:
    return next(t for t in template_service.list_templates(store) if t.label_type == "classification"
                and t.status == "published")


def test_a_cancelled_generation_is_resumed_from_generate(qtbot, window, store, engineer):
    template = classification_template(store)
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generate_service.generate_training_sheet(store, actor=engineer, sheet=SHEET, template=template.ref,
                                                 name="stopped early", ai_mode="none",
                                                 progress=Progress(cancel=token))
    window.go("generate")
    settle(qtbot, window)
    page = window.pages["generate"]
    assert page.resume_card.isVisibleTo(page)
    assert page.resume_table.item(0, 0).text() == "stopped early"
    assert page.resume_table.item(0, 1).text() == "cancelled"
    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_stage == "label", timeout=20_000)
    settle(qtbot, window)
    info = generate_service.get_training_sheet(store, "stopped early")
    assert info.status == "complete"
    assert generate_service.summary(store, "stopped early").total == info.total_items


def test_a_draft_version_is_published_from_generate(qtbot, window, store, engineer):
    template = classification_template(store)
    draft, _ = template_service.edit_template(store, actor=engineer, ref=template.ref,
                                              changes={"description": "a clearer description"})
    assert draft.status == "draft"
    window.refresh()
    window.go("generate", template=draft.name)
    settle(qtbot, window)
    page = window.pages["generate"]
    # the library shows the published version; the newer draft is picked in Versions, ready to publish
    assert page.current is not None and page.current.name == draft.name
    assert "waits to be published" in page.detail_status.text()
    assert page.publish_button.isEnabled() and page.publish_button.text() == f"Publish {draft.version}"
    qtbot.mouseClick(page.publish_button, Qt.MouseButton.LeftButton)
    settle(qtbot, window)
    published = template_service.list_templates(store, name=draft.name, all_versions=True)
    assert next(t for t in published if t.ref == draft.ref).status == "published"
    assert page.current.ref == draft.ref and not page.publish_button.isEnabled()


def test_the_template_editor_keeps_the_text_when_the_save_is_refused(qtbot, window):
    window.go("generate")
    settle(qtbot, window)
    page = window.pages["generate"]
    editor = page.open_editor(None)
    settle(qtbot, window)
    editor.name.setText("my template")
    editor.user_prompt.setPlainText("Classify {{no_such_field}}")
    editor.save()
    qtbot.waitUntil(lambda: not editor.saving, timeout=10_000)
    assert editor.isVisible() and editor.message.text()
    assert editor.user_prompt.toPlainText() == "Classify {{no_such_field}}"  # the expert's text is kept
    editor.reject()


def test_admin_manages_users_and_every_change_is_audited(qtbot, store, settings):
    from vital_desktop.store import audit

    window = open_as(qtbot, store, settings, "root")
    assert "users" in window.tool_buttons
    window.go("users")
    settle(qtbot, window)
    page = window.pages["users"]
    page.add_username.setText("nina")
    page.add_display.setText("Nina N.")
    page.add_role.setCurrentIndex(page.add_role.findData("inspector"))
    page.add_password.setText("a-long-enough-password")
    qtbot.mouseClick(page.add_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "Added nina" in page.add_message.text(), timeout=10_000)
    settle(qtbot, window)
    assert accounts.authenticate(store, "nina", "a-long-enough-password").role.value == "inspector"

    page.table.selectRow([u.username for u in page.users].index("nina"))
    page.role.setCurrentIndex(page.role.findData("engineer"))
    page.change_role()
    settle(qtbot, window)
    page.new_password.setText("another-long-password")
    page.reset_password()
    settle(qtbot, window)
    assert accounts.authenticate(store, "nina", "another-long-password").role.value == "engineer"
    page.toggle_active()
    settle(qtbot, window)
    with pytest.raises(Exception, match="wrong password"):
        accounts.authenticate(store, "nina", "another-long-password")
    with store.read() as s:
        actions = {e["action"] for e in audit.recent(s, limit=20)}
    assert {"user.add", "user.role", "user.passwd", "user.disable"} <= actions

    # the administrator cannot lock themselves out
    page.table.selectRow([u.username for u in page.users].index("root"))
    assert not page.active_button.isEnabled()
    window.close()


def test_users_and_bundles_are_not_offered_to_engineers(qtbot, window):
    assert "users" not in window.tool_buttons and "bundles" not in window.tool_buttons
    window.go("users")
    assert window.current_stage == "data" and "users" not in window.pages


def test_service_refuses_removing_the_last_administrator(store):
    root = accounts.get_user(store, "root")
    with pytest.raises(Exception, match="last active administrator"):
        accounts.set_user_role(store, actor=root, username="root", role="engineer")
    with pytest.raises(Exception, match="own account"):
        accounts.set_active(store, actor=root, username="root", active=False)
    alice = accounts.get_user(store, "alice")
    with pytest.raises(Exception, match="may not manage users"):
        accounts.set_user_role(store, actor=alice, username="ivan", role="admin")


def test_quitting_while_a_job_runs_asks_and_cancels_cleanly(qtbot, window):
    import time

    def slow(progress):
        progress.start(2000, "slow")
        for _ in range(2000):
            progress.check()
            time.sleep(0.005)
            progress.advance()

    job = window.context.run("Slow job", slow, cancellable=True, on_error=lambda _exc: None)
    qtbot.waitUntil(lambda: job.snapshot().done > 0, timeout=5000)
    window.quit_answer = False
    assert window.close() is False  # the user said No: the window stays, the job runs on
    assert window.isVisible() and job.running
    window.quit_answer = True
    assert window.close() is True
    assert job.cancel_token.cancelled and window.context.jobs.active_threads() == 0
    assert job.snapshot().done < 2000


def test_activate_and_rollback_ask_first(qtbot, store, engineer, settings, tmp_path):
    window = open_as(qtbot, store, settings, "alice", stage="deploy")
    page = window.pages["deploy"]
    page.confirm_answer = False
    page.rollback()
    assert not window.context.jobs.jobs  # No: nothing ran
    window.close()


def test_window_fits_1280x720_after_visiting_every_page(qtbot, store, settings):
    from vital_desktop.ui import page_registry

    window = open_as(qtbot, store, settings, "root")
    window.resize(1280, 720)
    for stage in page_registry.PAGES:
        window.go(stage)
        settle(qtbot, window)
    hint, minimum = window.minimumSizeHint(), window.minimumSize()
    assert hint.width() <= 1280 and hint.height() <= 720, (hint.width(), hint.height())
    assert minimum.width() <= 1280 and minimum.height() <= 720
    window.close()


#: pages whose own layout is wider than 1280 px (they scroll horizontally inside the window); none
#: now (the labeling tool's and LABEL's were, until their panels wrapped and their titles elided)
WIDE_PAGES_ELSEWHERE: set[str] = set()


def test_every_shell_page_fits_1280x720_without_scrolling(qtbot, store, settings):
    from vital_desktop.ui import page_registry

    window = open_as(qtbot, store, settings, "root")
    too_big = {}
    for stage in page_registry.PAGES:
        window.go(stage)
        settle(qtbot, window)
        hint = window.pages[stage].minimumSizeHint()
        if stage not in WIDE_PAGES_ELSEWHERE and (hint.width() > 1240 or hint.height() > 600):
            too_big[stage] = (hint.width(), hint.height())
    assert too_big == {}
    window.close()


def test_an_empty_spectrum_shows_a_sentence_not_axes(qtbot):
    from vital_desktop.ui.charts import SpectrumPlot

    plot = SpectrumPlot()
    qtbot.addWidget(plot)
    plot.show()
    assert not plot.getPlotItem().getAxis("left").isVisible() and plot.empty_text.scene() is not None
    plot.show_spectrum({"edges_kev": [0.0, 10.0, 20.0, 30.0], "raw": [0.1, 0.0, 0.3]})
    assert plot.getPlotItem().getAxis("left").isVisible() and plot.points == 3
    plot.show_spectrum({"edges_kev": [0.0, 10.0], "raw": [0.0]})
    assert not plot.getPlotItem().getAxis("bottom").isVisible() and plot.points == 0
