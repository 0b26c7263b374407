"""GENERATE → LABEL: "label once, reuse everywhere", through the services and through the CLI.

The end-to-end case runs on a copy of the demo site (real sheet, real template library, real
ONNX classifier for the AI pre-labels).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.cli import main
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.services import generate, labels, review, templates
from vital_desktop.services.demo_site import DEMO_SHEET, DEMO_USERS
from vital_desktop.store import audit, open_store

DEFECT = "Defect Classification - Visual Inspection"
DEMO_PASSWORDS = {user: password for user, _, _, password in DEMO_USERS}


def _pairs(store, training_sheet: str) -> dict[str, review.PairInfo]:
    return {p.item_ref: p for p in review.list_pairs(store, training_sheet=training_sheet, limit=None)}


def _canonical(store) -> dict[str, labels.LabelInfo]:
    return {lab.item_ref: lab for lab in labels.labels_for_sheet(store, sheet=DEMO_SHEET, label_type="classification")}


def _assert_every_label_reused(store, training_sheet: str) -> dict[str, review.PairInfo]:
    """Every canonical label is a pre-approved pair with the label's current answer; nothing else is."""
    pairs = _pairs(store, training_sheet)
    current = _canonical(store)
    for ref, pair in pairs.items():
        if ref in current:
            assert pair.status == "labeled" and pair.source == "canonical" and pair.pre_approved, ref
            assert pair.answer == current[ref].label_data
            assert (pair.canonical_label_id, pair.canonical_label_version) == (current[ref].id, current[ref].version)
            assert pair.prohibited_uses == current[ref].prohibited_uses
        else:
            assert pair.status == "unlabeled" and pair.canonical_label_id is None, ref
    summary = generate.summary(store, training_sheet)
    assert summary.pre_approved == len(current) and summary.needs_review == len(pairs) - len(current)
    return pairs


def test_label_once_reuse_everywhere_through_services(demo_home) -> None:
    from vital_desktop.services import accounts

    store = open_store(demo_home)
    try:
        inspector, engineer = accounts.get_user(store, "inspector"), accounts.get_user(store, "engineer")
        before = len(_canonical(store))
        assert before > 100  # the demo site's seeded labels

        # (1) Mode B: claim an unlabeled image and label it.
        page = review.item_statuses(store, sheet=DEMO_SHEET, label_type="classification", status="unlabeled", limit=1)
        item = page.items[0].item_ref
        claim, _ = review.claim_items(store, actor=inspector, sheet=DEMO_SHEET, label_type="classification",
                                      item_refs=[item])
        assert claim.claimed == [item]
        result, _ = review.label_item(store, actor=inspector, sheet=DEMO_SHEET, item_ref=item,
                                      label_type="classification", label_data={"defect_type": "inclusion",
                                                                               "severity": "major"},
                                      notes="Foreign particle embedded during crystal growth", confidence="high")
        assert result.outcome == "created" and result.label.version == 1
        assert review.list_claims(store, sheet=DEMO_SHEET) == []  # labeling released the claim

        # (2) An improved template version, published; generation pre-approves every canonical label.
        v2, _ = templates.edit_template(store, actor=engineer, ref=DEFECT, changes={
            "user_prompt": "Inspect this scintillator crystal image {{image_path}} (crystal batch {{crystal_batch_id}}, "
                           "detector {{detector_serial}}) and classify its defect."})
        assert (v2.version, v2.status) == ("1.1.0", "draft")
        templates.publish_template(store, actor=engineer, ref=v2.ref)
        run, _ = generate.generate_training_sheet(store, actor=engineer, sheet=DEMO_SHEET, template=DEFECT,
                                                  name="Defect Q&A v2")
        assert run.training_sheet.template_version == "1.1.0"
        pairs = _assert_every_label_reused(store, "Defect Q&A v2")
        assert pairs[item].answer == {"defect_type": "inclusion", "severity": "major"}
        assert run.summary.pre_approved == before + 1

        # (3) An AI pre-label from the real classifier, approved in Mode A; the next generation reuses it.
        generate.generate_training_sheet(store, actor=engineer, sheet=DEMO_SHEET, template=DEFECT,
                                                     name="Defect Q&A v2 AI", ai_mode="classifier")
        proposals = [p for p in _pairs(store, "Defect Q&A v2 AI").values() if p.status == "unlabeled"]
        assert proposals and all(p.source == "classifier" for p in proposals)
        proposal = next(p for p in proposals if p.answer is not None)
        assert 0.0 <= proposal.confidence <= 1.0 and proposal.answer["defect_type"] in labels.get_label_type(
            store, "classification").classes()
        outcome, _ = review.approve(store, actor=inspector, pair_id=proposal.id)
        assert outcome.label_outcome == "created" and outcome.pair.status == "labeled"
        again, _ = generate.generate_training_sheet(store, actor=engineer, sheet=DEMO_SHEET, template=DEFECT,
                                                    name="Defect Q&A v2 again")
        pairs = _assert_every_label_reused(store, "Defect Q&A v2 again")
        expected = {k: v for k, v in proposal.answer.items() if k != "confidence"}
        assert pairs[proposal.item_ref].pre_approved and pairs[proposal.item_ref].answer == expected
        assert again.summary.pre_approved == before + 2

        # (4) A label changed, then rolled back: the next generation uses the rolled-back answer.
        review.label_item(store, actor=inspector, sheet=DEMO_SHEET, item_ref=item, label_type="classification",
                          label_data={"defect_type": "crack", "severity": "minor"})
        labels.rollback(store, actor=inspector, sheet=DEMO_SHEET, item_ref=item, label_type="classification",
                        to_version=1, reason="second look: it is an inclusion")
        generate.generate_training_sheet(store, actor=engineer, sheet=DEMO_SHEET, template=f"{DEFECT}@1.1.0",
                                         name="Defect Q&A after rollback")
        pairs = _assert_every_label_reused(store, "Defect Q&A after rollback")
        assert pairs[item].answer == {"defect_type": "inclusion", "severity": "major"}
        assert pairs[item].canonical_label_version == 3

        with store.read() as s:
            actions = {row["action"] for row in audit.recent(s, limit=200)}
            assert audit.verify(s).ok
        assert {"template.new_version", "template.publish", "generate.complete", "review.approve",
                "label.claim", "label.rollback"} <= actions
    finally:
        store.close()


@pytest.fixture
def demo_cli(demo_home, monkeypatch, capsys):
    def run(*args: str, user: str = "engineer") -> tuple[int, dict, str]:
        monkeypatch.setenv("VITAL_USER", user)
        monkeypatch.setenv("VITAL_PASSWORD", DEMO_PASSWORDS[user])
        code = main(["--home", str(demo_home), "--json", *args])
        out, err = capsys.readouterr()
        return code, (json.loads(out) if out.strip() else {}), err

    return run


def test_label_once_reuse_everywhere_through_the_cli(demo_cli, tmp_path) -> None:
    code, out, _ = demo_cli("review", "items", "--sheet", DEMO_SHEET, "--type", "classification", "--filter",
                            "unlabeled", "--limit", "1")
    assert code == 0
    item, labeled_before = out["items"][0]["item_ref"], out["counts"]["labeled"]
    # (1) Mode B
    code, out, _ = demo_cli("claim", "take", "--sheet", DEMO_SHEET, "--type", "classification", "--items", item,
                            user="inspector")
    assert code == 0 and out["claimed"] == [item]
    code, out, _ = demo_cli("review", "label", "--sheet", DEMO_SHEET, "--item", item, "--type", "classification",
                            "--data", '{"defect_type": "delamination", "severity": "minor"}', user="inspector")
    assert code == 0 and out["outcome"] == "created"
    # (2) template v2, published, generated
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"notes": "v2: clearer wording", "description": "Improved defect classification."}))
    code, out, _ = demo_cli("template", "edit", DEFECT, "--file", str(changes))
    assert code == 0 and out["template"]["version"] == "1.1.0"
    code, out, _ = demo_cli("template", "publish", f"{DEFECT}@1.1.0")
    assert code == 0 and out["template"]["status"] == "published"
    code, out, _ = demo_cli("template", "diff", f"{DEFECT}@1.0.0", f"{DEFECT}@1.1.0")
    assert code == 0 and set(out["changed_fields"]) == {"description", "notes"}
    code, out, _ = demo_cli("generate", "--sheet", DEMO_SHEET, "--template", DEFECT, "--name", "cli v2")
    assert code == 0 and out["summary"]["pre_approved"] == labeled_before + 1
    code, out, _ = demo_cli("review", "list", "-t", "cli v2", "--status", "labeled", "--limit", "1000")
    assert item in {p["item_ref"] for p in out["pairs"]}
    # (3) AI pre-label approved in Mode A, reused by the next generation
    code, out, _ = demo_cli("generate", "--sheet", DEMO_SHEET, "--template", DEFECT, "--name", "cli ai",
                            "--ai", "classifier")
    assert code == 0
    code, out, _ = demo_cli("review", "list", "-t", "cli ai", "--status", "unlabeled", "--source", "classifier",
                            "--limit", "1")
    target = out["pairs"][0]["item_ref"]
    code, out, _ = demo_cli("review", "approve", "-t", "cli ai", "--item", target, user="inspector")
    assert code == 0 and out["label_outcome"] == "created"
    code, out, _ = demo_cli("generate", "--sheet", DEMO_SHEET, "--template", DEFECT, "--name", "cli again")
    assert out["summary"]["pre_approved"] == labeled_before + 2
    # (4) rollback
    demo_cli("review", "label", "--sheet", DEMO_SHEET, "--item", item, "--type", "classification",
             "--data", '{"defect_type": "crack"}', user="inspector")
    code, out, _ = demo_cli("label", "rollback", "--sheet", DEMO_SHEET, "--item", item, "--type", "classification",
                            "--to-version", "1", user="inspector")
    assert code == 0 and out["label"]["version"] == 3
    demo_cli("generate", "--sheet", DEMO_SHEET, "--template", DEFECT, "--name", "cli rollback")
    code, out, _ = demo_cli("review", "list", "-t", "cli rollback", "--status", "labeled", "--limit", "1000")
    pair = next(p for p in out["pairs"] if p["item_ref"] == item)
    assert pair["answer"] == {"defect_type": "delamination", "severity": "minor"}
    assert pair["canonical_label_version"] == 3
    code, out, _ = demo_cli("training-sheet", "show", "cli rollback")
    assert code == 0 and out["summary"]["pre_approved"] == labeled_before + 2


def test_cli_bad_input_is_an_error_on_stderr_and_writes_nothing(demo_cli, demo_home) -> None:
    store = open_store(demo_home)
    before = snapshot_tables(store)
    store.close()
    code, out, err = demo_cli("generate", "--sheet", "No Such Sheet", "--template", DEFECT, "--name", "x")
    assert code == NotFoundError.exit_code and out == {} and "No Such Sheet" in err
    code, _, err = demo_cli("generate", "--sheet", DEMO_SHEET, "--template", f"{DEFECT}@9.9.9", "--name", "x")
    assert code == NotFoundError.exit_code and "no version 9.9.9" in err
    code, _, err = demo_cli("generate", "--sheet", DEMO_SHEET, "--template", "Predictive Maintenance", "--name", "x")
    assert code == ValidationError.exit_code and "hv_voltage" in err  # telemetry template on the image sheet
    code, _, err = demo_cli("template", "edit", DEFECT, "--user-prompt", "Classify", user="inspector")
    assert code != 0 and "may not edit template" in err
    store = open_store(demo_home)
    try:
        assert snapshot_tables(store) == before
    finally:
        store.close()
