"""Any GGUF the hub sends: its own chat template, a model per template, its speed measured here.

The only GGUF available offline is SmolLM2's; "another model" is the same weights declaring a
different chat template in its metadata (rewritten by `gguf_tools`), registered under another name.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from tests.conftest import bundled_gguf_or_skip, snapshot_tables
from tests.inference.gguf_tools import rewrite_metadata
from vital_desktop.core.errors import ValidationError
from vital_desktop.inference.gguf_meta import read_header

#: A Zephyr-style template: visibly different markers from SmolLM2's ChatML.
OTHER_TEMPLATE = ("{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}</s>\n"
                  "{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}")


def test_header_is_read_without_loading_and_names_the_chat_template() -> None:
    header = read_header(bundled_gguf_or_skip())
    assert header.chat_template and "<|im_start|>" in header.chat_template
    card = header.card()
    assert card["chat_template"] is True and card["architecture"] == "llama" and card["context_length"] > 0


def test_hostile_or_cut_headers_are_refused_by_name(tmp_path: Path) -> None:
    huge = tmp_path / "huge.gguf"
    huge.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1 << 40))
    with pytest.raises(ValidationError, match="huge.gguf declares a .*-byte text"):
        read_header(huge)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\x01")
    with pytest.raises(ValidationError, match="cut short"):
        read_header(cut)


def test_a_gguf_without_chat_template_is_refused_at_registration(small_site, tmp_path: Path) -> None:
    from vital_desktop.services import registry

    base = rewrite_metadata(bundled_gguf_or_skip(), tmp_path / "base.gguf", drop=("tokenizer.chat_template",))
    before = snapshot_tables(small_site.store)
    with pytest.raises(ValidationError, match="declares no chat template"):
        registry.register_model(small_site.store, actor=small_site.user("engineer"), path=base, kind="gguf",
                                name="base-model")
    assert snapshot_tables(small_site.store) == before


@pytest.mark.llm
@pytest.mark.slow
def test_each_model_speaks_its_own_chat_template_and_templates_pick_their_model(small_site, tmp_path: Path,
                                                                                monkeypatch, capsys) -> None:
    from vital_desktop.cli import main
    from vital_desktop.services import llm_speed, predict, registry

    store, engineer = small_site.store, small_site.user("engineer")
    default = registry.ensure_default_llm(store, actor=engineer)
    other_file = rewrite_metadata(bundled_gguf_or_skip(), tmp_path / "other.gguf",
                                  set_strings={"tokenizer.chat_template": OTHER_TEMPLATE})
    other, _ = registry.register_model(store, actor=engineer, path=other_file, kind="gguf", name="other-model")
    assert other.card["chat_template"] and other.card["chat_template_sha256"] != default.card.get("chat_template_sha256")
    messages = [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": "Is it ok?"}]
    mine, _ = predict.llm_for(store, "other-model")  # what a template with model_ref.gguf = other-model gets
    theirs, _ = predict.llm_for(store, None)  # the default: the active (bundled) model
    mine_text = mine.format_prompt(messages)[1].prompt
    assert "<|user|>\nIs it ok?</s>" in mine_text and "<|im_start|>" not in mine_text
    assert "<|im_start|>user\nIs it ok?<|im_end|>" in theirs.format_prompt(messages)[1].prompt
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}},
              "additionalProperties": False}
    answer = mine.generate_structured(messages, schema, max_tokens=16)
    assert answer.valid and isinstance(answer.parsed["ok"], bool)  # the grammar holds under any template

    # Its speed on this machine, measured on demand and shown by `vital model list`.
    speed, _ = llm_speed.measure_model(store, actor=engineer, ref="other-model")
    assert speed.prompt_tokens == llm_speed.PROMPT_TOKENS and speed.prompt_tokens_per_s > 0
    assert speed.generation_tokens_per_s > 0
    store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", "engineer-pass-1")
    assert main(["--home", str(small_site.home), "--json", "model", "list", "--kind", "gguf"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr()[0])["models"]}
    assert listed["other-model"]["speed"][0]["generation_tokens_per_s"] == pytest.approx(
        speed.generation_tokens_per_s)
    assert "speed" not in listed[default.name]  # not measured yet: shown as such, never invented
    assert main(["--home", str(small_site.home), "model", "list", "--kind", "gguf"]) == 0
    assert "not measured yet" in capsys.readouterr()[0]
    from vital_desktop.store import open_store

    small_site.store = open_store(small_site.home)
