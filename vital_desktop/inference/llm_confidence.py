"""Per-field confidence of a constrained JSON answer, from the model's own token probabilities.

For every enumerated field (``enum``, ``const`` lists or ``boolean``) of the answer's top-level
object, the model's state is rebuilt at the point where the field's value starts (prompt +
the generated text up to that point; llama.cpp keeps the shared prefix in its KV cache), and the
log-probability of *each* allowed value's tokens is summed. Those sums are the field's logits:
``softmax(logits / T)`` is the probability of each alternative, and the chosen value's share is
the field's confidence. T is 1 until calibration (`services/llm_calibration`) fits it on
evaluation-allowed canonical labels, exactly like the classifier's temperature.

Scoring uses the raw model distribution (not the grammar-masked one): the grammar only allows the
listed values at that point anyway, and normalising over the alternatives is what masking would
do. Each alternative is one batched decode, so a field with
k values costs k small batched decodes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_WHITESPACE = " \t\n\r"


@dataclass(frozen=True)
class FieldScore:
    """The alternatives of one enumerated field with their summed token log-probabilities."""

    field: str
    chosen: Any
    alternatives: tuple[Any, ...]
    logits: tuple[float, ...]  # summed log-probabilities of each alternative's tokens

    def probabilities(self, temperature: float = 1.0) -> dict[str, float]:
        """JSON text of each alternative → its probability under softmax(logits / temperature)."""
        z = np.asarray(self.logits, dtype=np.float64) / max(1e-6, float(temperature))
        z = z - z.max()
        e = np.exp(z)
        p = e / e.sum()
        return {json.dumps(a): float(v) for a, v in zip(self.alternatives, p, strict=True)}

    def confidence(self, temperature: float = 1.0) -> float:
        """Probability of the chosen value among the alternatives."""
        return self.probabilities(temperature)[json.dumps(self.chosen)]

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "chosen": self.chosen, "alternatives": list(self.alternatives),
                "logits": [round(v, 4) for v in self.logits]}


def enumerated_fields(schema: dict[str, Any]) -> dict[str, list[Any]]:
    """Top-level properties whose value is one of a closed list: name → the allowed values."""
    out: dict[str, list[Any]] = {}
    for name, spec in (schema.get("properties") or {}).items():
        if not isinstance(spec, dict):
            continue
        if isinstance(spec.get("enum"), list) and len(spec["enum"]) >= 2:
            out[name] = list(spec["enum"])
        elif spec.get("type") == "boolean":
            out[name] = [True, False]
    return out


def value_offsets(text: str) -> dict[str, tuple[int, Any]]:
    """Top-level keys of a JSON object text → (offset where the value's text starts, the value)."""
    decoder = json.JSONDecoder()
    out: dict[str, tuple[int, Any]] = {}
    i = 0
    n = len(text)

    def skip(j: int) -> int:
        while j < n and text[j] in _WHITESPACE:
            j += 1
        return j

    i = skip(i)
    if i >= n or text[i] != "{":
        return out
    i = skip(i + 1)
    while i < n and text[i] == '"':
        try:
            key, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        i = skip(i)
        if i >= n or text[i] != ":":
            break
        i = skip(i + 1)
        start = i
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError:
            break
        out[key] = (start, value)
        i = skip(i)
        if i < n and text[i] == ",":
            i = skip(i + 1)
        else:
            break
    return out


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    m = float(z.max())
    return z - (m + math.log(float(np.exp(z - m).sum())))


class _Scorer:
    """Scores token sequences on a loaded `llama_cpp.Llama`, reusing its KV cache by prefix.

    Each alternative is one llama.cpp decode of (the uncached end of the prefix + the
    alternative's tokens) with logits for every position, so a field costs one decode per
    allowed value, whatever the values' token lengths.
    """

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.n_vocab = int(llama.n_vocab())

    def _decode(self, tokens: Sequence[int], n_past: int) -> np.ndarray:
        """Decode `tokens` after the first `n_past` cached ones; the logits of every position."""
        llama = self.llama
        llama._ctx.kv_cache_seq_rm(-1, n_past, -1)
        llama._batch.set_batch(batch=list(tokens), n_past=n_past, logits_all=True)
        llama._ctx.decode(llama._batch)
        llama.input_ids[n_past:n_past + len(tokens)] = tokens
        llama.n_tokens = n_past + len(tokens)
        llama._requires_eval = True  # the next completion must not sample from these logits
        rows = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(len(tokens) * self.n_vocab,))
        return np.array(rows, dtype=np.float64).reshape(len(tokens), self.n_vocab)

    def _next_logprobs(self, context: Sequence[int]) -> np.ndarray:
        """Log-probabilities of the token after `context` (only its uncached end is decoded)."""
        common = 0
        for a, b in zip(self.llama._input_ids, context, strict=False):
            if a != b:
                break
            common += 1
        n_past = max(0, min(common, len(context) - 1))
        return _log_softmax(self._decode(list(context[n_past:]), n_past)[-1])

    def constrained_logprobs(self, prefix: Sequence[int], sequences: Sequence[Sequence[int]]) -> list[float]:
        """Log-probability of each token sequence continuing `prefix` when only these sequences are allowed.

        This is what the grammar does: at a point where several allowed sequences branch, the
        model's distribution is renormalised over the branches' next tokens; where only one
        continues, the grammar forces it (probability 1). One decode per branching point — for
        values with distinct first tokens, one decode per field.
        """
        totals = [0.0] * len(sequences)

        def walk(depth: int, members: list[int], context: tuple[int, ...]) -> None:
            ended = [m for m in members if len(sequences[m]) <= depth]
            going = [m for m in members if len(sequences[m]) > depth]
            branches: dict[int, list[int]] = {}
            for m in going:
                branches.setdefault(int(sequences[m][depth]), []).append(m)
            if len(branches) + (1 if ended else 0) <= 1:
                if branches:
                    token, group = next(iter(branches.items()))
                    walk(depth + 1, group, (*context, token))
                return
            if ended:  # a complete value that is a prefix of another: it needs the next token's view
                raise ValueError("an alternative's tokens are a prefix of another's")
            logprobs = self._next_logprobs(list(prefix) + list(context))
            chosen = np.array([logprobs[t] for t in branches])
            chosen = chosen - (chosen.max() + math.log(float(np.exp(chosen - chosen.max()).sum())))
            for (token, group), share in zip(branches.items(), chosen, strict=True):
                for m in group:
                    totals[m] += float(share)
                walk(depth + 1, group, (*context, token))

        walk(0, list(range(len(sequences))), ())
        return totals


def score_fields(llama: Any, prompt_tokens: Sequence[int], answer_text: str,
                 fields: dict[str, list[Any]]) -> dict[str, FieldScore]:
    """Score every enumerated field present in `answer_text` (see the module docstring).

    `llama` is a loaded `llama_cpp.Llama`; the caller holds the model's generation lock.
    Values are compared as the JSON text the grammar emits (``json.dumps``), and each
    alternative is scored as its JSON text followed by the character that followed the chosen
    value (``,`` or ``}``), so a value that is a prefix of another (``"low"``/``"lowest"``) is
    not favoured.
    """
    offsets = value_offsets(answer_text)
    scorer = _Scorer(llama)
    scores: dict[str, FieldScore] = {}
    for name, allowed in fields.items():
        if name not in offsets:
            continue
        start, chosen = offsets[name]
        if not any(json.dumps(chosen) == json.dumps(a) for a in allowed):
            continue
        head = answer_text[:start]
        chosen_text = json.dumps(chosen)
        end = start + len(chosen_text) if answer_text[start:start + len(chosen_text)] == chosen_text else start
        follow = answer_text[end:end + 1] if end > start else ""
        prefix = list(prompt_tokens) + (llama.tokenize(head.encode("utf-8"), add_bos=False, special=False)
                                        if head else [])
        sequences = [llama.tokenize((json.dumps(a) + follow).encode("utf-8"), add_bos=False, special=False)
                     for a in allowed]
        try:
            logits = scorer.constrained_logprobs(prefix, sequences)
        except ValueError:
            continue
        scores[name] = FieldScore(name, chosen, tuple(allowed), tuple(logits))
    return scores
