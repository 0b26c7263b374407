"""DEPLOY, language models: how fast each registered GGUF reads a prompt and writes an answer here.

A model's speed depends on this machine (cores, load, instruction set), so it is measured here,
not taken from the hub's card: a fixed 128-token prompt is evaluated from an empty cache
(prompt tokens/s), then 32 tokens are generated greedily one by one (generation tokens/s). It is
measured on first use (the first evaluation with the model) or on demand (`vital model measure`),
and kept per model and thread count in `model_speeds` with the load average at the time, so a
number taken on a busy machine says so.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import ValidationError
from vital_desktop.core.ids import iso, utcnow
from vital_desktop.core.users import User
from vital_desktop.services import registry
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import ModelSpeed

PROMPT_TOKENS = 128
GENERATED_TOKENS = 32
_FILLER = ("Equipment review. Each reading of every unit in the fleet is taken every day, checked against "
           "its limits and compared with the unit's own history before anyone decides what to do. ")


@dataclass(frozen=True)
class SpeedInfo:
    model_id: str
    model_name: str
    threads: int
    prompt_tokens: int
    prompt_tokens_per_s: float
    generated_tokens: int
    generation_tokens_per_s: float
    load_seconds: float | None
    load_average: float | None
    measured_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        load = f", load {self.load_average:.1f}" if self.load_average is not None else ""
        return (f"prompt {self.prompt_tokens_per_s:.0f} tok/s, generation {self.generation_tokens_per_s:.0f} tok/s "
                f"({self.threads} thread{'s' if self.threads != 1 else ''}{load}, {self.measured_at or '?'})")


def _info(row: ModelSpeed) -> SpeedInfo:
    return SpeedInfo(row.model_id, row.model_name, int(row.threads), int(row.prompt_tokens),
                     float(row.prompt_tokens_per_s), int(row.generated_tokens), float(row.generation_tokens_per_s),
                     row.load_seconds, row.load_average, iso(row.measured_at))


def measure(llm: Any, *, prompt_tokens: int = PROMPT_TOKENS, generated_tokens: int = GENERATED_TOKENS) -> dict:
    """Time `llm` (an `inference.llm.LocalLlm`): prompt evaluation from an empty cache, then
    greedy generation token by token. The model's cache is emptied again afterwards."""
    started = time.perf_counter()
    was_loaded = llm.loaded
    llama = llm.load()
    load_seconds = None if was_loaded else time.perf_counter() - started
    tokens: list[int] = []
    text = _FILLER
    while len(tokens) < prompt_tokens:
        tokens = llama.tokenize(text.encode("utf-8"), add_bos=True)
        text += _FILLER
    tokens = tokens[:prompt_tokens]
    lock = getattr(llm, "_generate_lock", None)
    if lock is None:
        raise ValidationError("this language model cannot be measured")
    with lock:
        llama.reset()
        t0 = time.perf_counter()
        llama.eval(tokens)
        t1 = time.perf_counter()
        for _ in range(generated_tokens):
            token = llama.sample(temp=0.0, top_k=1)
            llama.eval([token])
        t2 = time.perf_counter()
        llama.reset()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"threads": int(llm.threads), "prompt_tokens": len(tokens),
            "prompt_tokens_per_s": len(tokens) / max(t1 - t0, 1e-9), "generated_tokens": generated_tokens,
            "generation_tokens_per_s": generated_tokens / max(t2 - t1, 1e-9), "load_seconds": load_seconds,
            "load_average": load}


def record(store: Store, model: registry.ModelInfo, sample: dict) -> SpeedInfo:
    """Keep `sample` as the model's speed at its thread count (replacing an older measurement)."""
    with store.session() as s:
        s.execute(sa.delete(ModelSpeed).where(ModelSpeed.model_id == model.id,
                                              ModelSpeed.threads == int(sample["threads"])))
        row = ModelSpeed(model_id=model.id, model_name=model.ref, measured_at=utcnow(), **sample)
        s.add(row)
        s.flush()
        return _info(row)


def measure_model(store: Store, *, actor: User, ref: str | None = None) -> tuple[SpeedInfo, Changes]:
    """Measure a registered GGUF model (`ref`, default the active one) on this machine and keep the result."""
    from vital_desktop.services import predict

    require(actor, "register_model")
    llm, model = predict.llm_for(store, ref)
    if model is None:
        raise ValidationError("no language model is registered: register one (vital model register --kind gguf) "
                              "or initialise the site, which registers the bundled one")
    info = record(store, model, measure(llm))
    with store.session() as s:
        audit.record(s, actor, "model.measure", model.ref, info.to_dict())
    return info, Changes(models=True)


def ensure_measured(store: Store, model: registry.ModelInfo | None, llm: Any) -> SpeedInfo | None:
    """On a model's first use here: measure it unless it was measured at this thread count."""
    if model is None or llm is None:
        return None
    with store.read() as s:
        row = s.scalar(sa.select(ModelSpeed).where(ModelSpeed.model_id == model.id,
                                                   ModelSpeed.threads == int(llm.threads)))
        if row is not None:
            return _info(row)
    return record(store, model, measure(llm))


def speeds(store: Store) -> dict[str, list[SpeedInfo]]:
    """Every measurement, by model id (fewest threads first)."""
    out: dict[str, list[SpeedInfo]] = {}
    with store.read() as s:
        for row in s.scalars(sa.select(ModelSpeed).order_by(ModelSpeed.model_id, ModelSpeed.threads)):
            out.setdefault(row.model_id, []).append(_info(row))
    return out
