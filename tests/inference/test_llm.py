"""The embedded llama.cpp runtime with the real SmolLM2 GGUF (marked `llm`)."""

from __future__ import annotations

import pytest

from vital_desktop.core.errors import Cancelled, ValidationError
from vital_desktop.core.progress import CancelToken
from vital_desktop.inference.llm import default_gguf_path, get_llm

pytestmark = pytest.mark.llm

MESSAGES = [
    {"role": "system", "content": "You classify scintillator crystal defects. Answer in JSON."},
    {"role": "user", "content": "The image classifier says crack (0.91). Temperature 31.2 C. Classify this item."},
]


def test_the_default_model_comes_from_the_installed_package():
    path = default_gguf_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert get_llm(path, n_ctx=1024, threads=1) is get_llm(path, n_ctx=1024, threads=1)


def test_structured_generation_validates_and_is_deterministic(llm, defect_schema):
    first = llm.generate_structured(MESSAGES, defect_schema, max_tokens=60, seed=3)
    second = llm.generate_structured(MESSAGES, defect_schema, max_tokens=60, seed=3)
    assert first.valid is True and first.error is None
    assert first.parsed["defect_type"] in defect_schema["properties"]["defect_type"]["enum"]
    assert first.text == second.text
    assert first.prompt_tokens > 20 and 0 < first.completion_tokens <= 60
    assert first.latency_ms > 0


def test_an_answer_that_fails_twice_is_returned_as_a_failure_with_its_raw_text(llm, defect_schema):
    result = llm.generate_structured(MESSAGES, defect_schema, max_tokens=4)
    assert result.valid is False and result.parsed is None
    assert result.attempts == 2 and len(result.raw_attempts) == 2
    assert all(raw.startswith("{") for raw in result.raw_attempts)
    assert "token limit" in result.error


def test_a_prompt_that_cannot_fit_names_the_template_and_item(llm):
    messages = [{"role": "user", "content": "crystal " * 1200}]
    with pytest.raises(ValidationError, match=r"template 'defect-v1' for item 'INS-00077'.*context of 1024"):
        llm.generate(messages, max_tokens=16, template_name="defect-v1", item_ref="INS-00077")


def test_cancel_stops_generation_within_a_token(llm):
    token = CancelToken()
    pieces = []

    def on_token(piece):
        pieces.append(piece)
        if len(pieces) == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        llm.generate(MESSAGES, max_tokens=200, cancel=token, on_token=on_token)
    assert len(pieces) == 3
    # The model is still usable after a cancelled generation.
    assert llm.generate(MESSAGES, max_tokens=5).completion_tokens > 0
