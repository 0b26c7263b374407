"""Templates (versions, immutability, validation), generation logic with fake pre-labelers
(failures kept, cancel and resume), review actions, bulk, claims and conflicts — on the small site."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import Cancelled, ConflictError, NotFoundError, PermissionDenied, ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.services import generate, labels, review, sheets, templates
from vital_desktop.store.models import LabelClaim

SPEC = {
    "name": "Crystal check",
    "label_type": "classification",
    "description": "small test template",
    "system_prompt": "You classify scintillator crystal defects.",
    "user_prompt": "Classify {{image_path}} from batch {{crystal_batch_id}}.",
    "input_schema": {"type": "object", "required": ["image_path"],
                     "properties": {"image_path": {"type": "string"}, "crystal_batch_id": {"type": "string"},
                                    "temperature_c": {"type": "number"}}},
    "output_schema": {"type": "object", "additionalProperties": False, "required": ["defect_type"],
                      "properties": {"defect_type": {"type": "string",
                                                     "enum": ["inclusion", "crack", "delamination",
                                                              "surface_contamination", "none"]},
                                     "severity": {"type": "string", "enum": ["none", "minor", "major", "critical"]},
                                     "confidence": {"type": "number", "minimum": 0, "maximum": 1}}},
    "few_shot": [{"variables": {"image_path": "a.png", "crystal_batch_id": "XL-1"},
                  "output": {"defect_type": "crack", "severity": "minor", "confidence": 0.8}}],
}


class FakePrelabeler:
    """Proposes 'crack' with confidences 0.1, 0.2, … by item position; item 5 gets an invalid answer."""

    def __init__(self, cancel_after_calls: int | None = None) -> None:
        self.calls = 0
        self.cancel_after_calls = cancel_after_calls

    def prelabel(self, requests, progress: Progress):
        self.calls += 1
        if self.cancel_after_calls is not None and self.calls > self.cancel_after_calls:
            progress.cancel.cancel()
            progress.check()
        out = []
        for r in requests:
            number = int(r.item_ref.split("-")[1])
            if number == 5:
                out.append(generate.Prelabel(None, None, "llm", raw_output='{"defect_type": "banana"}',
                                             error="the answer does not match the output schema"))
            else:
                confidence = round(0.1 * (number % 10), 2)
                out.append(generate.Prelabel({"defect_type": "crack", "confidence": confidence}, confidence, "llm"))
        return out


@pytest.fixture
def site(small_site):
    engineer = small_site.user("engineer")
    templates.create_template(small_site.store, actor=engineer, spec=SPEC)
    templates.publish_template(small_site.store, actor=engineer, ref="Crystal check@1.0.0")
    return small_site


# --- templates -----------------------------------------------------------------------------------


def test_published_versions_are_immutable_and_edits_make_new_versions(site) -> None:
    store, engineer = site.store, site.user("engineer")
    with pytest.raises(ConflictError, match="published and cannot change"):
        templates.update_draft(store, actor=engineer, ref="Crystal check@1.0.0", changes={"notes": "x"})
    with pytest.raises(ConflictError, match="already published"):
        templates.publish_template(store, actor=engineer, ref="Crystal check@1.0.0")
    draft, _ = templates.edit_template(store, actor=engineer, ref="Crystal check", changes={"notes": "first"})
    assert (draft.version, draft.status) == ("1.1.0", "draft")
    # A draft changes in place; the published version is untouched.
    same, _ = templates.edit_template(store, actor=engineer, ref="Crystal check@1.1.0", changes={"notes": "second"})
    assert same.version == "1.1.0" and same.notes == "second"
    assert templates.get_template(store, "Crystal check@1.0.0").notes == ""
    # Generation takes the latest *published* version; a draft must be published first.
    assert templates.get_template(store, "Crystal check", published_only=True).version == "1.0.0"
    with pytest.raises(ValidationError, match="is a draft"):
        generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check@1.1.0",
                                         name="from draft")
    major, _ = templates.edit_template(store, actor=engineer, ref="Crystal check@1.0.0",
                                       changes={"description": "new"}, bump="major")
    assert major.version == "2.0.0"
    result = templates.diff(store, "Crystal check@1.0.0", "Crystal check@1.1.0")
    assert list(result.fields) == ["notes"] and "+second" in result.fields["notes"]
    assert [t.version for t in templates.list_templates(store, all_versions=True)] == ["1.0.0", "1.1.0", "2.0.0"]
    with pytest.raises(PermissionDenied):
        templates.edit_template(store, actor=site.user("inspector"), ref="Crystal check", changes={"notes": "x"})


@pytest.mark.parametrize("change, message", [
    ({"output_schema": {"type": "object", "properties": {"defect_type": {"type": "banana"}}}},
     "output schema is not a valid JSON Schema"),
    ({"input_schema": {"type": "object", "properties": {"x": {"minimum": "zero"}}}}, "input schema is not a valid"),
    ({"user_prompt": "Classify {{image_path}} at {{humidity_percent}}"}, "not properties of the input schema"),
    ({"output_schema": {"type": "object", "properties": {"severity": {"type": "string"}}}}, "lacks defect_type"),
    ({"output_schema": {"type": "object", "properties": {"defect_type": {"type": "string", "enum": ["crack", "dent"]}}}},
     "allows dent"),
    ({"output_schema": {"type": "object", "required": ["defect_type", "why"],
                        "properties": {"defect_type": {"type": "string"}, "why": {"type": "string"}}}},
     "requires why"),
    ({"few_shot": [{"variables": {"image_path": "a.png", "crystal_batch_id": "1"}, "output": {"defect_type": "dent"}}]},
     "few-shot example 1"),
    ({"system_prompt": "You see {{image_path}}"}, "system prompt must not contain placeholders"),
    ({"label_type": "nonsense"}, "unknown label type"),
])
def test_bad_template_specs_are_refused_and_write_nothing(small_site, change, message) -> None:
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match=message):
        templates.create_template(small_site.store, actor=small_site.user("engineer"), spec={**SPEC, **change})
    assert snapshot_tables(small_site.store) == before


def test_library_installs_once(small_site) -> None:
    report, _ = templates.load_library(small_site.store, small_site.user("engineer"))
    assert len(report.installed) == 6 and "Calibration Insights@1.0.0" in report.installed
    again, _ = templates.load_library(small_site.store, small_site.user("engineer"))
    assert again.installed == [] and len(again.already_present) == 6


# --- generation -------------------------------------------------------------------------------------


def test_generation_bad_input_is_refused_and_writes_nothing(site) -> None:
    store, engineer = site.store, site.user("engineer")
    templates.load_library(store, engineer)
    before = snapshot_tables(store)
    cases = [
        (dict(sheet="Nope", template="Crystal check"), NotFoundError, "no sheet named 'Nope'"),
        (dict(sheet="Crystals", template="Nope"), NotFoundError, "no template named 'Nope'"),
        (dict(sheet="Crystals", template="Crystal check@3.0.0"), NotFoundError, "no version 3.0.0"),
        (dict(sheet="Crystals", template="Crystal check@one"), ValidationError, "not a semantic version"),
        # The library's defect template names detector_serial, which this sheet does not have.
        (dict(sheet="Crystals", template="Defect Classification - Visual Inspection"), ValidationError,
         "detector_serial"),
        (dict(sheet="Crystals", template="Crystal check", ai_mode="magic"), ValidationError, "unknown AI mode"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            generate.generate_training_sheet(store, actor=engineer, name="bad", **kwargs)
    with pytest.raises(PermissionDenied):
        generate.generate_training_sheet(store, actor=site.user("inspector"), sheet="Crystals",
                                         template="Crystal check", name="bad")
    assert snapshot_tables(store) == before


def test_failed_prelabels_are_kept_with_raw_text(site) -> None:
    store = site.store
    labels.set_label(store, actor=site.user("inspector"), sheet="Crystals", item_ref="INS-0002",
                     label_type="classification", label_data={"defect_type": "none"})
    result, _ = generate.generate_training_sheet(store, actor=site.user("engineer"), sheet="Crystals",
                                                 template="Crystal check", name="ts", ai_mode="llm",
                                                 prelabeler=FakePrelabeler())
    s = result.summary
    assert (s.total, s.generated, s.pre_approved, s.unlabeled, s.ai_failures) == (12, 12, 1, 11, 1)
    failed = review.find_pair(store, training_sheet="ts", item_ref="INS-0005")
    assert failed.answer is None and failed.raw_output == '{"defect_type": "banana"}' and failed.ai_error
    labeled = review.find_pair(store, training_sheet="ts", item_ref="INS-0002")
    assert labeled.pre_approved and labeled.answer == {"defect_type": "none"}
    # The stored messages carry the system prompt, the few-shot turn, the image and the sensor context.
    messages = review.find_pair(store, training_sheet="ts", item_ref="INS-0003").messages
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    parts = messages[-1]["content"]
    assert parts[0]["text"] == 'Classify "IMG_0003.png" from batch "XL-0".'
    assert parts[1]["image_url"]["url"].endswith("IMG_0003.png")
    assert "temperature_c" in parts[-1]["text"]
    # The fast path (prefix rendered once) stores exactly what a full render gives.
    item = sheets.get_item(store, "Crystals", "INS-0003")
    tmpl = templates.get_template(store, "Crystal check")
    assert messages == generate.render_item(tmpl, "INS-0003", item.metadata, item.absolute_image_path)
    with pytest.raises(ConflictError, match="already exists"):
        generate.generate_training_sheet(store, actor=site.user("engineer"), sheet="Crystals",
                                         template="Crystal check", name="ts")


def test_cancelled_generation_keeps_its_batches_and_resumes(site, monkeypatch) -> None:
    store, engineer = site.store, site.user("engineer")
    monkeypatch.setitem(generate.BATCH_SIZES, "llm", 4)
    with pytest.raises(Cancelled, match="4 of 12 pairs kept"):
        generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check",
                                         name="ts", ai_mode="llm", prelabeler=FakePrelabeler(cancel_after_calls=1))
    info = generate.get_training_sheet(store, "ts")
    assert info.status == "cancelled" and generate.summary(store, "ts").generated == 4
    with pytest.raises(ConflictError, match="--resume"):
        generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check",
                                         name="ts", ai_mode="llm")
    result, _ = generate.generate_training_sheet(store, actor=engineer, sheet=None, template=None, name="ts",
                                                 resume=True, prelabeler=FakePrelabeler())
    assert result.written == 8 and result.summary.generated == 12 and result.training_sheet.status == "complete"
    refs = [p.item_ref for p in review.list_pairs(store, training_sheet="ts", limit=None)]
    assert refs == [f"INS-{i:04d}" for i in range(12)]
    with pytest.raises(ConflictError, match="nothing to resume"):
        generate.generate_training_sheet(store, actor=engineer, sheet=None, template=None, name="ts", resume=True)


# --- review ------------------------------------------------------------------------------------------


@pytest.fixture
def generated(site):
    generate.generate_training_sheet(site.store, actor=site.user("engineer"), sheet="Crystals",
                                     template="Crystal check", name="ts", ai_mode="llm", prelabeler=FakePrelabeler())
    return site


def test_edited_answer_that_does_not_validate_writes_nothing(generated) -> None:
    store, inspector = generated.store, generated.user("inspector")
    pair = review.find_pair(store, training_sheet="ts", item_ref="INS-0003")
    before = snapshot_tables(store)
    for answer, message in [({"defect_type": "dent"}, "output schema"), ({"severity": "minor"}, "defect_type"),
                            ({"defect_type": "crack", "extra": 1}, "output schema")]:
        with pytest.raises(ValidationError, match=message):
            review.edit_and_approve(store, actor=inspector, pair_id=pair.id, answer=answer)
    failed = review.find_pair(store, training_sheet="ts", item_ref="INS-0005")
    with pytest.raises(ValidationError, match="no pre-label to approve"):
        review.approve(store, actor=inspector, pair_id=failed.id)
    with pytest.raises(ValidationError, match="reason"):
        review.reject(store, actor=inspector, pair_id=pair.id, reason=" ")
    assert snapshot_tables(store) == before
    outcome, _ = review.edit_and_approve(store, actor=inspector, pair_id=failed.id,
                                         answer={"defect_type": "inclusion", "severity": "major"})
    assert outcome.pair.source == "expert" and outcome.label.label_data == {"defect_type": "inclusion",
                                                                            "severity": "major"}
    with pytest.raises(ConflictError, match="already labeled"):
        review.approve(store, actor=inspector, pair_id=failed.id)


def test_reject_flag_and_summary(generated) -> None:
    store, inspector = generated.store, generated.user("inspector")
    pairs = review.list_pairs(store, training_sheet="ts", status="unlabeled")
    review.reject(store, actor=inspector, pair_id=pairs[0].id, reason="blurry image")
    review.flag(store, actor=inspector, pair_id=pairs[1].id, reason="needs a senior look")
    review.approve(store, actor=inspector, pair_id=pairs[2].id)
    s = generate.summary(store, "ts")
    assert (s.labeled, s.pre_approved, s.approved_in_review, s.unlabeled, s.rejected, s.flagged) == (1, 0, 1, 9, 1, 1)
    assert "├─ Pre-approved (from canonical labels): 0" in s.text() and "Needs Review: 11" in s.text()
    flagged = review.list_pairs(store, training_sheet="ts", status="flagged")
    assert flagged[0].review_reason == "needs a senior look" and flagged[0].reviewed_by == "inspector"


def test_bulk_preview_then_approve_and_reject(generated) -> None:
    store, inspector = generated.store, generated.user("inspector")
    preview = review.preview_bulk(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8)
    # confidences are 0.1 × (number % 10): INS-0008, INS-0009 (0.8, 0.9); INS-0005 failed (no confidence).
    assert preview.count == 2 and preview.sample == ["INS-0008", "INS-0009"]
    before = snapshot_tables(store)
    with pytest.raises(ConflictError, match="preview again"):
        review.bulk_action(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8,
                           expected_count=5)
    assert snapshot_tables(store) == before
    done, _ = review.bulk_action(store, actor=inspector, training_sheet="ts", action="approve", threshold=0.8,
                                 expected_count=2)
    assert (done.done, done.labels_created) == (2, 2)
    label = labels.get_label(store, sheet="Crystals", item_ref="INS-0009", label_type="classification")
    pair = review.find_pair(store, training_sheet="ts", item_ref="INS-0009")
    assert label.label_data == {"defect_type": "crack"}
    assert pair.status == "labeled" and pair.canonical_label_id == label.id and pair.canonical_label_version == 1
    rejected, _ = review.bulk_action(store, actor=inspector, training_sheet="ts", action="reject", threshold=0.25)
    assert rejected.done == 5  # INS-0000/01/02/10/11: confidences 0.0, 0.1, 0.2, 0.0, 0.1
    s = generate.summary(store, "ts")
    assert s.rejected == rejected.done and s.approved_in_review == 2


def test_claims_block_other_experts_until_they_expire(generated) -> None:
    store = generated.store
    first, second = generated.user("inspector"), generated.user("inspector2")
    claim, _ = review.claim_items(store, actor=first, sheet="Crystals", label_type="classification", count=3)
    assert claim.claimed == ["INS-0000", "INS-0001", "INS-0002"]
    other, _ = review.claim_items(store, actor=second, sheet="Crystals", label_type="classification", count=2)
    assert other.claimed == ["INS-0003", "INS-0004"]  # the next free ones
    refused, _ = review.claim_items(store, actor=second, sheet="Crystals", label_type="classification",
                                    item_refs=["INS-0001"])
    assert refused.claimed == [] and refused.refused == {"INS-0001": "inspector"}
    before = snapshot_tables(store)
    with pytest.raises(ConflictError, match="claimed by inspector"):
        review.label_item(store, actor=second, sheet="Crystals", item_ref="INS-0001", label_type="classification",
                          label_data={"defect_type": "crack"})
    pair = review.find_pair(store, training_sheet="ts", item_ref="INS-0001")
    with pytest.raises(ConflictError, match="claimed by inspector"):
        review.approve(store, actor=second, pair_id=pair.id)
    assert snapshot_tables(store) == before
    page = review.item_statuses(store, sheet="Crystals", label_type="classification", status="unlabeled")
    assert {i.item_ref: i.claimed_by for i in page.items}["INS-0001"] == "inspector"
    # The claim expires: then the other expert may take it.
    with store.session() as s:
        s.execute(sa.update(LabelClaim).where(LabelClaim.claimed_by == "inspector")
                  .values(expires_at=dt.datetime(2000, 1, 1)))
    taken, _ = review.claim_items(store, actor=second, sheet="Crystals", label_type="classification",
                                  item_refs=["INS-0001"])
    assert taken.claimed == ["INS-0001"]
    review.label_item(store, actor=second, sheet="Crystals", item_ref="INS-0001", label_type="classification",
                      label_data={"defect_type": "crack"})
    released, _ = review.release_claims(store, actor=second, sheet="Crystals", label_type="classification")
    assert released == 2  # INS-0003, INS-0004 (INS-0001 was released by labeling it)
    assert [c["item_ref"] for c in review.list_claims(store, sheet="Crystals")] == []


def test_conflicts_are_surfaced_in_review(generated) -> None:
    store = generated.store
    first, second = generated.user("inspector"), generated.user("inspector2")
    review.label_item(store, actor=first, sheet="Crystals", item_ref="INS-0007", label_type="classification",
                      label_data={"defect_type": "inclusion"})
    result, _ = review.label_item(store, actor=second, sheet="Crystals", item_ref="INS-0007",
                                  label_type="classification", label_data={"defect_type": "crack"})
    assert result.outcome == "conflict"
    page = review.item_statuses(store, sheet="Crystals", label_type="classification", status="conflicting")
    assert [i.item_ref for i in page.items] == ["INS-0007"] and page.counts["conflicting"] == 1
    conflicting = review.list_pairs(store, training_sheet="ts", conflicting=True)
    assert [p.item_ref for p in conflicting] == ["INS-0007"] and conflicting[0].label_conflict
    # Approving the pair's different AI answer as a third view also becomes a conflict, not an overwrite.
    outcome, _ = review.approve(store, actor=generated.user("engineer"), pair_id=conflicting[0].id)
    # The pair no longer shows "unlabeled": it is flagged with the conflict, and the outcome
    # carries the item's current canonical label beside the AI answer.
    assert outcome.label_outcome == "conflict" and outcome.pair.status == "flagged"
    assert outcome.pair.current_label_data == {"defect_type": "inclusion"}
    assert labels.get_label(store, sheet="Crystals", item_ref="INS-0007",
                            label_type="classification").label_data == {"defect_type": "inclusion"}
    # A new generation carries the current version but holds it for review (flagged): a
    # disputed label does not pass the quality gate into training until it is resolved.
    generate.generate_training_sheet(store, actor=generated.user("engineer"), sheet="Crystals",
                                     template="Crystal check", name="ts2")
    pair = review.find_pair(store, training_sheet="ts2", item_ref="INS-0007")
    assert pair.status == "flagged" and not pair.pre_approved and pair.label_conflict
    assert "conflict" in pair.review_reason and pair.answer == {"defect_type": "inclusion"}
