"""A classifier less accurate than the serving one on held-out labels is not activated unless asked.

On the demo site: v1 trained on the demo sheet serves; a model from elsewhere with the same class
names (a pooled-brightness classifier, so it does not suit the images) is compared with it on the
20 labelled items neither learnt from, refused by `deploy.activate`, the CLI and, after a question
that shows the comparison, DEPLOY; `--even-if-worse` / Yes activate it. A retrained v1 (v2) is not
refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import foreign_classifier_onnx, snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.interop import parse_spec
from vital_desktop.services import accounts, activation_check, demo_site, deploy, registry, training
from vital_desktop.store import open_store

SHEET = demo_site.DEMO_SHEET
DEMO_PASSWORDS = {name: password for name, _, _, password in demo_site.DEMO_USERS}


@pytest.fixture
def site(demo_home: Path, tmp_path: Path):
    store = open_store(demo_home)
    engineer = accounts.get_user(store, "engineer")
    v1, _ = training.train_classifier(store, actor=engineer, name="site-classifier", sheet=SHEET)
    deploy.activate(store, actor=engineer, model=v1.model_id)
    classes = registry.get_model(store, v1.model_id).classes
    foreign, _ = registry.register_foreign_classifier(
        store, actor=engineer, path=foreign_classifier_onnx(tmp_path / "elsewhere.onnx", channels=1, classes=len(classes)),
        spec=parse_spec("32,32", "1", "0.5", "0.25"), classes=classes, name="from-elsewhere")
    yield store, engineer, v1, foreign
    store.close()


@pytest.mark.slow
def test_a_less_accurate_classifier_is_refused_and_the_store_is_unchanged(site):
    store, engineer, v1, foreign = site
    check = activation_check.compare_with_active(store, model=foreign.id)
    assert check is not None and check.not_compared is None
    assert check.items == 20 and check.active_correct > check.candidate_correct  # the 20 evaluation-only labels
    assert check.only_active - check.only_candidate == check.active_correct - check.candidate_correct
    assert check.worse and check.p_worse < activation_check.WORSE_P
    assert "less accurate than site-classifier@1" in check.sentence()

    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match="Not activated") as refused:
        deploy.activate(store, actor=engineer, model=foreign.id)
    assert refused.value.details["worse"] is True and refused.value.details["items"] == 20
    assert snapshot_tables(store) == before  # nothing half-activated
    assert registry.get_model(store, v1.model_id).active

    info, _ = deploy.activate(store, actor=engineer, model=foreign.id, even_if_worse=True)
    assert info.active and not registry.get_model(store, v1.model_id).active
    # A rollback is a deliberate return to what served before: it is not second-guessed.
    rolled, _ = deploy.rollback(store, actor=engineer, name="from-elsewhere")
    assert rolled.id == v1.model_id


def test_the_exact_test_counts_disagreements_only():
    assert activation_check.mcnemar_worse_p(0, 0) == 1.0
    assert activation_check.mcnemar_worse_p(5, 0) == pytest.approx(1 / 32)
    assert activation_check.mcnemar_worse_p(26, 14) == pytest.approx(0.0403, abs=5e-4)  # the lifecycle's v1 vs v2
    assert activation_check.mcnemar_worse_p(3, 3) > 0.5


@pytest.mark.slow
def test_a_retrained_version_within_chance_is_activated(site):
    store, engineer, v1, _ = site
    v2, _ = training.train_classifier(store, actor=engineer, name="site-classifier", sheet=SHEET, seed=7)
    check = activation_check.compare_with_active(store, model=v2.model_id)
    assert check is not None and check.items == 20 and not check.worse
    info, _ = deploy.activate(store, actor=engineer, model=v2.model_id)
    assert info.active and info.version == 2
    assert activation_check.compare_with_active(store, model=v2.model_id) is None  # it serves now


@pytest.mark.slow
def test_the_command_line_compares_refuses_and_activates_when_told(site, demo_home, monkeypatch, capsys):
    from vital_desktop.cli import main

    store, _, v1, foreign = site
    store.close()  # the command line opens the site itself
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", DEMO_PASSWORDS["engineer"])

    def run(*args: str) -> tuple[int, dict]:
        code = main(["--home", str(demo_home), "--json", *args])
        out, err = capsys.readouterr()
        if code:  # the error as JSON on stderr's last line, stdout empty
            assert not out.strip()
            return code, json.loads(err.strip().splitlines()[-1])
        return code, json.loads(out)

    code, compared = run("deploy", "compare", "from-elsewhere@1")
    assert code == 0 and compared["worse"] is True and compared["items"] == 20
    code, refused = run("deploy", "activate", "from-elsewhere@1")
    assert code == 2 and refused["error"] == "invalid_input" and "--even-if-worse" in refused["message"]
    code, activated = run("deploy", "activate", "from-elsewhere@1", "--even-if-worse")
    assert code == 0 and activated["status"] == registry.STATUS_ACTIVE and activated["ref"] == "from-elsewhere@1"
    code, compared = run("deploy", "compare", "site-classifier@1")
    assert code == 0 and compared["worse"] is False and compared["candidate_correct"] > compared["active_correct"]


@pytest.mark.slow
def test_deploy_asks_with_the_comparison_before_activating_a_worse_model(site, qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from vital_desktop.app import build_main_window

    store, engineer, v1, foreign = site
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = build_main_window(store, engineer, stage="deploy", settings=settings)
    qtbot.addWidget(window)
    window.show()
    page = window.pages["deploy"]
    qtbot.waitUntil(lambda: any(m.id == foreign.id for m in page.models), timeout=10_000)
    page.reload(select=foreign.id)
    qtbot.waitUntil(lambda: page.selected_model_id() == foreign.id, timeout=10_000)

    page.confirm_answer = False
    page.activate_selected()
    qtbot.waitUntil(lambda: page.last_question is not None, timeout=30_000)
    title, text = page.last_question
    assert title == "Activate a less accurate model?"
    assert "less accurate than site-classifier@1" in text and "20 labelled items" in text
    qtbot.waitUntil(lambda: not window.context.jobs.jobs, timeout=10_000)
    assert registry.get_model(store, v1.model_id).active  # No: nothing changed

    page.confirm_answer, page.last_question = True, None
    page.activate_selected()
    qtbot.waitUntil(lambda: registry.get_model(store, foreign.id).active, timeout=30_000)
    window.quit_answer = True
    window.close()
