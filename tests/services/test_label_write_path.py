"""The one label write path: a named test per weakness it closes (each failed before it).

Silent expert overwrite through Mode A, silent restriction lift by another user, claims ignored
by rollback and import, NaN stored in a box, ``$``-anchored patterns accepting a trailing newline.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import snapshot_tables
from tests.services.test_templates_review import SPEC, FakePrelabeler
from vital_desktop.core.errors import ConflictError, PermissionDenied, ValidationError
from vital_desktop.core.strict_json import anchored_pattern, canonical_json, pattern_matches, strict_validator
from vital_desktop.services import generate, labels, review, templates

CRACK = {"defect_type": "crack", "severity": "minor"}


def _set(site, user="inspector", item="INS-0001", data=CRACK, **kw):
    result, _ = labels.set_label(site.store, actor=site.user(user), sheet=site.sheet, item_ref=item,
                                 label_type="classification", label_data=data, **kw)
    return result


def _label(site, item="INS-0001"):
    return labels.get_label(site.store, sheet=site.sheet, item_ref=item, label_type="classification")


@pytest.fixture
def generated(small_site):
    engineer = small_site.user("engineer")
    templates.create_template(small_site.store, actor=engineer, spec=SPEC)
    templates.publish_template(small_site.store, actor=engineer, ref="Crystal check@1.0.0")
    generate.generate_training_sheet(small_site.store, actor=engineer, sheet="Crystals", template="Crystal check",
                                     name="ts", ai_mode="llm", prelabeler=FakePrelabeler())
    return small_site


def test_mode_a_approval_of_an_older_ai_pair_does_not_overwrite_the_experts_label(generated) -> None:
    store = generated.store
    pair = review.find_pair(store, training_sheet="ts", item_ref="INS-0003")
    assert pair.status == "unlabeled" and pair.answer["defect_type"] == "crack"
    # After the AI pair was generated, the expert labels the item in the labeling tool.
    expert = review.label_item(store, actor=generated.user("inspector"), sheet="Crystals", item_ref="INS-0003",
                               label_type="classification", label_data={"defect_type": "inclusion"})[0]
    assert expert.outcome == "created"
    # The reviewer (the same expert, even) approves the stale AI pair: a conflict, not version 2.
    outcome, _ = review.approve(store, actor=generated.user("inspector"), pair_id=pair.id)
    assert outcome.label_outcome == "conflict"
    label = _label(generated, "INS-0003")
    assert (label.version, label.label_data, label.review_state) == (1, {"defect_type": "inclusion"}, "conflict")
    assert outcome.pair.status == "flagged" and "conflict" in outcome.pair.review_reason
    # Mode A shows the item's current canonical label beside the AI answer.
    shown = review.find_pair(store, training_sheet="ts", item_ref="INS-0003")
    assert shown.current_label_data == {"defect_type": "inclusion"} and shown.current_label_version == 1
    assert shown.answer["defect_type"] == "crack"
    [conflict] = labels.list_conflicts(store, sheet="Crystals")
    assert conflict.kind == "stale" and conflict.proposed_data["defect_type"] == "crack"


def test_mode_a_bulk_approval_does_not_overwrite_a_newer_expert_label(generated) -> None:
    store = generated.store
    review.label_item(store, actor=generated.user("engineer"), sheet="Crystals", item_ref="INS-0009",
                      label_type="classification", label_data={"defect_type": "none"})
    result, _ = review.bulk_action(store, actor=generated.user("engineer"), training_sheet="ts", action="approve",
                                   threshold=0.85)
    assert result.conflicts == 1
    assert _label(generated, "INS-0009").label_data == {"defect_type": "none"}
    assert review.find_pair(store, training_sheet="ts", item_ref="INS-0009").status == "flagged"


def test_another_user_dropping_a_prohibited_use_is_a_conflict_even_with_the_same_data(small_site) -> None:
    _set(small_site, user="inspector", prohibited_uses=["training"], usage_reason="serial number visible")
    before = _label(small_site)
    lifted = _set(small_site, user="inspector2", prohibited_uses=[], expected_version=1)
    assert lifted.outcome == "conflict"
    after = _label(small_site)
    assert after.prohibited_uses == ["training"] and after.version == before.version
    [conflict] = labels.list_conflicts(small_site.store, sheet="Crystals")
    assert conflict.kind == "relaxation" and "no longer prohibits training" in conflict.detail
    # Another inspector cannot accept it; the owner can.
    with pytest.raises(PermissionDenied, match="owner inspector"):
        labels.resolve_conflict(small_site.store, actor=small_site.user("inspector2"), conflict_id=conflict.id,
                                accept=True)
    info, _ = labels.resolve_conflict(small_site.store, actor=small_site.user("inspector"), conflict_id=conflict.id,
                                      accept=True)
    assert info.prohibited_uses == [] and info.version == 2 and info.review_state == "ok"


def test_adding_an_allowed_use_is_a_relaxation_but_tightening_is_not(small_site) -> None:
    _set(small_site, user="inspector", allowed_uses=["testing"])
    assert _set(small_site, user="inspector2", allowed_uses=["testing", "training"],
                expected_version=1).outcome == "conflict"
    tightened = _set(small_site, user="inspector2", allowed_uses=[], expected_version=1)
    assert tightened.outcome == "updated" and tightened.label.allowed_uses == []
    # The owner relaxes their own label directly; so does an admin.
    assert _set(small_site, user="inspector", allowed_uses=["testing"], expected_version=2).outcome == "updated"
    assert _set(small_site, user="admin", allowed_uses=["testing", "evaluation"],
                expected_version=3).outcome == "updated"


def test_a_save_that_gives_no_constraints_keeps_the_current_ones(small_site) -> None:
    _set(small_site, user="inspector", prohibited_uses=["training"], usage_reason="serial number visible")
    result = _set(small_site, user="inspector2", data={"defect_type": "none"}, expected_version=1)
    assert result.outcome == "updated"
    assert result.label.prohibited_uses == ["training"] and result.label.usage_reason == "serial number visible"


def test_rollback_respects_another_experts_claim(small_site) -> None:
    _set(small_site, user="inspector")
    _set(small_site, user="inspector", data={"defect_type": "none"})
    review.claim_items(small_site.store, actor=small_site.user("inspector2"), sheet="Crystals",
                       label_type="classification", item_refs=["INS-0001"])
    before = snapshot_tables(small_site.store)
    with pytest.raises(ConflictError, match="claimed by inspector2"):
        labels.rollback(small_site.store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                        label_type="classification", to_version=1)
    assert snapshot_tables(small_site.store) == before


def test_withdraw_respects_another_experts_claim(small_site) -> None:
    _set(small_site, user="inspector")
    review.claim_items(small_site.store, actor=small_site.user("inspector2"), sheet="Crystals",
                       label_type="classification", item_refs=["INS-0001"])
    before = snapshot_tables(small_site.store)
    with pytest.raises(ConflictError, match="claimed by inspector2"):
        labels.withdraw_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals",
                              item_ref="INS-0001", label_type="classification")
    assert snapshot_tables(small_site.store) == before


def test_import_respects_another_experts_claim_and_names_the_row(small_site, tmp_path: Path) -> None:
    review.claim_items(small_site.store, actor=small_site.user("inspector2"), sheet="Crystals",
                       label_type="classification", item_refs=["INS-0002"])
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"sheet": "Crystals", "item_ref": f"INS-{i:04d}", "label_type": "classification",
                                        "label_data": CRACK}) + "\n" for i in range(4)))
    before = snapshot_tables(small_site.store)
    with pytest.raises(ConflictError, match=r"row 3: item 'INS-0002' .*claimed by inspector2"):
        labels.import_labels(small_site.store, actor=small_site.user("inspector"), path=path)
    assert snapshot_tables(small_site.store) == before


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_in_a_box_are_refused(small_site, bad: float) -> None:
    before = snapshot_tables(small_site.store)
    box = {"x": 1.0, "y": 2.0, "width": bad, "height": 4.0, "label": "crack"}
    with pytest.raises(ValidationError, match=r"not finite|finite"):
        labels.set_label(small_site.store, actor=small_site.user("inspector"), sheet="Crystals", item_ref="INS-0001",
                         label_type="localization", label_data={"boxes": [box]})
    assert snapshot_tables(small_site.store) == before


def test_nan_in_an_imported_label_file_is_refused_naming_the_row(small_site, tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"sheet": "Crystals", "item_ref": "INS-0001", "label_type": "localization", '
                    '"label_data": "{\\"boxes\\": [{\\"x\\": NaN, \\"y\\": 1, \\"width\\": 2, \\"height\\": 2, '
                    '\\"label\\": \\"crack\\"}]}"}\n')
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="row 1"):
        labels.import_labels(small_site.store, actor=small_site.user("inspector"), path=path)
    assert snapshot_tables(small_site.store) == before


def test_canonical_json_refuses_non_finite_numbers_naming_where() -> None:
    with pytest.raises(ValidationError, match="boxes/0/x"):
        canonical_json({"boxes": [{"x": float("nan")}]})
    assert canonical_json({"b": 1, "a": [1.5]}) == '{"a":[1.5],"b":1}'


def test_dollar_anchored_pattern_does_not_accept_a_trailing_newline() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string", "pattern": "^[a-z]+$"}}}
    validator = strict_validator(schema)
    assert validator.is_valid({"code": "abc"})
    assert not validator.is_valid({"code": "abc\n"})
    # `$` inside a class or escaped stays literal.
    assert anchored_pattern(r"^[$]\$x$") == r"^[$]\$x\Z"
    assert pattern_matches("^a$", "a") and not pattern_matches("^a$", "a\n")


def test_template_answers_use_anchored_patterns(small_site) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["name"] = "Anchored"
    spec["output_schema"]["properties"]["code"] = {"type": "string", "pattern": "^[a-z]+$"}
    info, _ = templates.create_template(small_site.store, actor=small_site.user("engineer"), spec=spec)
    with pytest.raises(ValidationError, match="does not match"):
        templates.check_answer(small_site.store, info, {"defect_type": "crack", "code": "abc\n"})


def _csv(path: Path, rows: list[list]) -> Path:
    import csv

    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data", "prohibited_uses"])
        writer.writerows(rows)
    return path


def test_bulk_batches_follow_the_same_rules_as_single_saves(tmp_path: Path, small_site) -> None:
    from tests.conftest import write_small_dataset
    from vital_desktop.services import sheets

    images, metadata = write_small_dataset(tmp_path / "big", n=60)
    sheets.import_sheet(small_site.store, actor=small_site.user("engineer"), name="Big", metadata_path=metadata,
                        key_column="inspection_id", image_root=images, image_column="image_path")
    rows = [["Big", f"INS-{i:04d}", "classification", json.dumps(CRACK), "training" if i % 2 else ""]
            for i in range(50)]
    outcome, _ = labels.import_labels(small_site.store, actor=small_site.user("inspector"),
                                      path=_csv(tmp_path / "a.csv", rows))
    assert outcome.created == 50
    hist = labels.history(small_site.store, sheet="Big", item_ref="INS-0001", label_type="classification")
    assert [(h.version, h.action, h.prohibited_uses) for h in hist] == [(1, "create", ["training"])]
    # Another user's file: different data -> conflicts; dropping a prohibited use -> conflict too.
    changed = [list(r) for r in rows]
    changed[0][3] = json.dumps({"defect_type": "none"})
    changed[1][4] = "[]"
    outcome, _ = labels.import_labels(small_site.store, actor=small_site.user("inspector2"),
                                      path=_csv(tmp_path / "b.csv", changed))
    assert (outcome.created, outcome.updated, outcome.unchanged, outcome.conflicts) == (0, 0, 48, 2)
    kinds = sorted(c.kind for c in labels.list_conflicts(small_site.store, sheet="Big"))
    assert kinds == ["other_user", "relaxation"]
    # The owner's own file updates both.
    outcome, _ = labels.import_labels(small_site.store, actor=small_site.user("inspector"),
                                      path=_csv(tmp_path / "c.csv", changed))
    assert (outcome.updated, outcome.unchanged) == (2, 48)
    assert labels.get_label(small_site.store, sheet="Big", item_ref="INS-0001",
                            label_type="classification").prohibited_uses == []
    # NaN in the vectorised path: refused, naming the row.
    bad = [list(r) for r in rows]
    bad[7][3] = '{"defect_type": "crack", "severity": NaN}'
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="row 8"):
        labels.import_labels(small_site.store, actor=small_site.user("inspector"), path=_csv(tmp_path / "d.csv", bad))
    assert snapshot_tables(small_site.store) == before


def test_a_save_returns_exactly_the_label_it_stored_for_every_outcome(small_site) -> None:
    """A save returns what it wrote without reading it back: the same as a fresh read, whatever
    the outcome (created, updated, unchanged, conflict), and the audit chain still verifies."""
    from vital_desktop.store import audit

    steps = [
        ("created", dict(user="inspector", prohibited_uses=["training"], usage_reason="serial number visible",
                         notes="first look", confidence="high")),
        ("updated", dict(user="inspector", data={"defect_type": "inclusion", "severity": "major"},
                         expected_version=1)),
        ("unchanged", dict(user="inspector", data={"severity": "major", "defect_type": "inclusion"})),
        ("conflict", dict(user="inspector2", prohibited_uses=[], expected_version=2)),
        ("conflict", dict(user="inspector2", data={"defect_type": "none"}, expected_version=1)),
    ]
    for expected, kw in steps:
        result = _set(small_site, **kw)
        assert result.outcome == expected
        assert result.label == _label(small_site), expected
    stored = _label(small_site)
    assert (stored.version, stored.review_state, stored.prohibited_uses) == (2, "conflict", ["training"])
    with small_site.store.read() as s:
        assert audit.verify(s).ok
        assert [r["action"] for r in audit.recent(s, 4)][:3] == ["label.conflict", "label.conflict", "label.updated"]
