"""A GGUF arriving in a signed model bundle: the registration header check and card, then use.

The bundled file is a copy of SmolLM2 declaring another chat template (`gguf_tools`), so the
prompt a template naming it formats can only carry that template's markers if the declared
template is the one used.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import bundled_gguf_or_skip
from tests.inference.gguf_tools import rewrite_metadata
from vital_desktop.bundles import canonical
from vital_desktop.bundles.simulator import Payload
from vital_desktop.store.models import ModelRow

#: Only this template emits "<|hub-user|>"; SmolLM2's own template is ChatML (<|im_start|>).
HUB_TEMPLATE = ("{% for message in messages %}<|hub-{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
                "{% endfor %}{% if add_generation_prompt %}<|hub-assistant|>\n{% endif %}")


def _gguf_payloads(path: Path, name: str, version: int = 1) -> list[Payload]:
    card = {"name": name, "version": version, "kind": "gguf", "description": "SmolLM2 weights, hub chat template.",
            "intended_use": "Testing hub-sent language models.", "limitations": "Small model.", "metrics": {},
            "chat_template_sha256": "0" * 64}  # a card's claim; the file's own header wins
    return [Payload("model", "gguf_model", f"{name}-v{version}.gguf", path.read_bytes(), {"card": "card"}),
            Payload("card", "model_card", f"{name}-v{version}.card.json", canonical.dumps(card))]


@pytest.mark.llm
def test_a_bundled_gguf_gets_its_header_card_and_templates_naming_it_use_its_chat_template(bundle_site,
                                                                                          tmp_path: Path) -> None:
    from vital_desktop.services import llm_answer, templates

    hub = bundle_site.hub
    file = rewrite_metadata(bundled_gguf_or_skip(), tmp_path / "hub.gguf",
                            set_strings={"tokenizer.chat_template": HUB_TEMPLATE})
    result = bundle_site.import_(hub.build("models", _gguf_payloads(file, "hub-llm")).path)
    assert result.outcome == "accepted" and result.summary["models_added"] == ["hub-llm v1"]
    with bundle_site.store.read() as s:
        model = s.scalar(sa.select(ModelRow).where(ModelRow.name == "hub-llm"))
    assert (model.kind, model.origin) == ("gguf", "hub")
    assert model.card["chat_template_sha256"] == hashlib.sha256(HUB_TEMPLATE.encode()).hexdigest()
    assert model.card["architecture"] == "llama" and model.card["context_length"] > 0
    assert model.card["description"] == "SmolLM2 weights, hub chat template."  # the hub's own words kept
    assert Path(model.path).parent == bundle_site.store.models_dir

    # A hub template naming the model (model_ref.gguf) formats its prompts with the file's template.
    bundle_site.import_(hub.build("templates", hub.template_payload(model_ref={"gguf": "hub-llm"})).path)
    template = templates.get_template(bundle_site.store, "Crystal Defect Triage")
    assert template.model_ref["gguf"] == "hub-llm"
    runner = llm_answer.TemplateRunner(bundle_site.store, template, evidence=None)
    prompt = runner.llm.format_prompt([{"role": "system", "content": "Answer in JSON."},
                                       {"role": "user", "content": "Is it ok?"}])[1].prompt
    assert "<|hub-user|>\nIs it ok?</s>" in prompt and "<|im_start|>" not in prompt
    assert runner.llm.model_path == Path(model.path)


def test_a_bundled_gguf_declaring_no_chat_template_is_refused(bundle_site, tmp_path: Path) -> None:
    file = rewrite_metadata(bundled_gguf_or_skip(), tmp_path / "base.gguf", drop=("tokenizer.chat_template",))
    refusal = bundle_site.refused(bundle_site.hub.build("models", _gguf_payloads(file, "base-llm")).path, "content")
    assert "declares no chat template" in refusal.message and "'model'" in refusal.message
    assert list(bundle_site.store.models_dir.glob("hub-*.gguf")) == []
