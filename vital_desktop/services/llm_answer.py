"""One template version answering one item with the embedded language model, with confidences.

The stable entry points (evaluation, optimisation and generation all use them):

    runner = TemplateRunner(store, template_info)            # resolve model, evidence, calibration once
    answer = runner.answer(item_ref, data, image_path)        # -> Answer
    answer = answer_item(store, template="NAME@1.2.0", sheet="S", item_ref="X")   # one-off convenience

`Answer` fields:
    data                  the parsed answer (dict) when it is valid JSON, else None
    schema_valid          True when the answer parses and validates against the output schema
    field_confidence      {field: p} for each enumerated field (enum / boolean) of the output
                          schema present in the answer: the probability of the chosen value among
                          the allowed ones, from the model's token probabilities, calibrated with
                          the template version's fitted temperature when it has one
    raw_field_confidence  the same at temperature 1 (uncalibrated)
    field_probabilities   {field: {json value text: p}} (calibrated), every alternative
    raw_logprobs          {field: [summed log-probability per alternative, in schema order]} — the
                          logits a calibration fits its temperature on
    confidence            the pair's confidence: the lowest field confidence (None if no field)
    prompt_tokens, cached_tokens, completion_tokens, seconds (scoring_seconds of it), error, raw_text,
    evidence, messages

`TemplateRunner(..., evidence=...)`: ``"auto"`` (default) gives an image template the site's
classifier evidence (`services.llm_evidence`) and refuses a no-evidence image template with a
`ValidationError`; ``None`` gives no evidence and refuses nothing (an explicit choice, e.g. an
experiment); or pass an `ImageEvidence`. `answer(..., classifier=...)` overrides the evidence of
one item (a `prompts.ClassifierSummary`, or None for none). A template variant that is not
stored (an optimiser's candidate) is passed as a `templates.TemplateInfo` built with
`dataclasses.replace`; its calibration is looked up by its id (none for a new id).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.errors import NotFoundError
from vital_desktop.core.progress import CancelToken, Progress
from vital_desktop.inference import llm_confidence, prompts
from vital_desktop.inference.llm import LocalLlm
from vital_desktop.services import llm_evidence, templates
from vital_desktop.services.sheets import find_sheet
from vital_desktop.store.db import Store
from vital_desktop.store.models import LlmCalibration, SheetItem

AUTO = "auto"
#: A self-reported number the model writes is not its confidence; it is never scored.
SELF_REPORTED = ("confidence",)


@dataclass(frozen=True)
class Answer:
    """One language-model answer with its per-field confidences and what it cost (see the module docstring)."""

    data: dict[str, Any] | None
    schema_valid: bool
    field_confidence: dict[str, float]
    raw_field_confidence: dict[str, float]
    field_probabilities: dict[str, dict[str, float]]
    raw_logprobs: dict[str, list[float]]
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    seconds: float
    error: str | None = None
    raw_text: str = ""
    evidence: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    calibrated: bool = False
    scoring_seconds: float = 0.0  # of `seconds`, the per-field confidence (token-probability scoring)

    @property
    def confidence(self) -> float | None:
        """The pair's confidence: its least confident enumerated field (None when it has none)."""
        return min(self.field_confidence.values()) if self.field_confidence else None

    def to_dict(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k != "messages"}, "confidence": self.confidence}


def calibration_temperatures(store: Store, template_id: str) -> dict[str, float]:
    """Field → fitted temperature of a template version (empty when it was never calibrated)."""
    with store.read() as s:
        rows = s.execute(sa.select(LlmCalibration.field, LlmCalibration.temperature)
                         .where(LlmCalibration.template_id == template_id)).all()
    return {str(f): float(t) for f, t in rows}


def scored_fields(template: templates.TemplateInfo) -> dict[str, list[Any]]:
    """The output schema's enumerated fields that get a confidence."""
    return {k: v for k, v in llm_confidence.enumerated_fields(template.output_schema).items() if k not in SELF_REPORTED}


class TemplateRunner:
    """Answers items of one template version; everything per template is resolved once."""

    def __init__(self, store: Store, template: templates.TemplateInfo, *, llm: LocalLlm | None = None,
                 evidence: Any = AUTO, calibrated: bool = True, columns: list[str] | None = None,
                 class_from_evidence: bool = False) -> None:
        from vital_desktop.services import generate_render, labels, predict

        self.template = template
        if llm is None:
            ref = template.model_ref.get("gguf")
            llm, _ = predict.llm_for(store, None if ref in (None, "", "default") else ref)
        self.llm = llm
        if evidence == AUTO:
            evidence = llm_evidence.image_evidence(store, template) if llm_evidence.is_image_template(template) else None
            llm_evidence.check_has_evidence(store, template, evidence, columns)
        self.evidence: llm_evidence.ImageEvidence | None = evidence
        self.temperatures = calibration_temperatures(store, template.id) if calibrated else {}
        self.fields = scored_fields(template)
        # With class_from_evidence the classifier gives the class (its calibrated probability is the
        # field's confidence) and the model answers the rest, conditioned on it; the model's own
        # choice of class is not asked for (a small text model reading "<class> 0.9997" may still
        # answer from its few-shot examples).
        self.class_field: str | None = None
        if class_from_evidence:
            name = labels.get_label_type(store, template.label_type).class_field
            if name and name in self.fields:
                self.class_field = name
                self.fields = {k: v for k, v in self.fields.items() if k != name}
        self.max_tokens = int(template.model_ref.get("max_tokens", 128))
        self.temperature = float(template.model_ref.get("temperature", 0.0))
        self.prompt_template = generate_render.prompt_template(template)
        self.context_fields = generate_render.context_fields(template)

    def evidence_for(self, image_paths: list[str | None]) -> list[prompts.ClassifierSummary | None]:
        """The classifier evidence of several items at once (None each when the runner has no evidence)."""
        if self.evidence is None:
            return [None] * len(image_paths)
        return self.evidence.for_paths(image_paths)

    def answer(self, item_ref: str, data: dict[str, Any], image_path: str | None = None, *,
               classifier: Any = AUTO, cancel: CancelToken | Progress | None = None) -> Answer:
        """Render, generate under the output schema's grammar, score the enumerated fields."""
        started = time.perf_counter()
        summary = self.evidence_for([image_path])[0] if classifier == AUTO else classifier
        rendered = prompts.render_messages(self.prompt_template, prompts.PromptItem(item_ref, data, image_path),
                                           classifier=summary, context_fields=self.context_fields)
        schema, given = self._schema_for(summary)
        result = self.llm.generate_structured(
            rendered.text_messages, schema, max_tokens=self.max_tokens,
            temperature=self.temperature, cancel=cancel, template_name=self.template.ref, item_ref=item_ref)
        # Scored on the final attempt's text (the answer kept); nothing to score when it is not JSON.
        scoring_started = time.perf_counter()
        scores = (self.llm.score_fields(rendered.text_messages, result.text, self.fields)
                  if result.parsed is not None else {})
        scoring_seconds = time.perf_counter() - scoring_started
        calibrated = {name: s.confidence(self.temperatures.get(name, 1.0)) for name, s in scores.items()}
        raw = {k: s.confidence() for k, s in scores.items()}
        probabilities = {k: s.probabilities(self.temperatures.get(k, 1.0)) for k, s in scores.items()}
        if given is not None and result.parsed is not None:  # the classifier's field: its own probability
            calibrated[given[0]] = raw[given[0]] = given[1][json.dumps(given[2])]
            probabilities[given[0]] = given[1]
        return Answer(
            data=result.parsed if isinstance(result.parsed, dict) else None,
            schema_valid=bool(result.valid),
            field_confidence={k: round(v, 6) for k, v in calibrated.items()},
            raw_field_confidence={k: round(v, 6) for k, v in raw.items()},
            field_probabilities={k: {a: round(p, 6) for a, p in v.items()} for k, v in probabilities.items()},
            raw_logprobs={k: list(s.logits) for k, s in scores.items()},
            prompt_tokens=result.prompt_tokens, cached_tokens=result.cached_tokens,
            completion_tokens=result.completion_tokens, seconds=time.perf_counter() - started,
            error=result.error, raw_text=" | ".join(result.raw_attempts) or result.text,
            evidence=summary.to_dict() if summary is not None else None, messages=rendered.text_messages,
            calibrated=any(name in self.temperatures for name in scores), scoring_seconds=scoring_seconds,
        )


    def _schema_for(self, summary: prompts.ClassifierSummary | None
                    ) -> tuple[dict[str, Any], tuple[str, dict[str, float], str] | None]:
        """The output schema for one item: with the class given by the classifier, its field is fixed to
        the predicted class (the grammar writes it); else the template's schema unchanged."""
        schema = self.template.output_schema
        name = self.class_field
        if name is None or summary is None:
            return schema, None
        allowed = list((schema.get("properties") or {}).get(name, {}).get("enum") or [])
        if summary.predicted_class not in allowed:
            return schema, None
        forced = {**schema, "properties": {**schema["properties"], name: {"type": "string",
                                                                           "enum": [summary.predicted_class]}}}
        total = sum(float(summary.probabilities.get(c, 0.0)) for c in allowed) or 1.0
        shares = {json.dumps(c): float(summary.probabilities.get(c, 0.0)) / total for c in allowed}
        if not summary.probabilities:
            shares[json.dumps(summary.predicted_class)] = float(summary.confidence)
        return forced, (name, shares, summary.predicted_class)


def answer_item(store: Store, *, template: str | templates.TemplateInfo, sheet: str, item_ref: str,
                llm: LocalLlm | None = None, evidence: Any = AUTO, calibrated: bool = True,
                cancel: CancelToken | Progress | None = None) -> Answer:
    """Run one template version (``NAME``, ``NAME@VERSION`` or a `TemplateInfo`) on one sheet item.

    Convenience for one item; for many, build a `TemplateRunner` once. Raises `NotFoundError`
    for an unknown sheet or item, `ValidationError` for a refused no-evidence image template or a
    prompt that does not fit the model's context, `Cancelled` when `cancel` is set.
    """
    from pathlib import Path

    info = templates.get_template(store, template) if isinstance(template, str) else template
    with store.read() as s:
        sheet_row = find_sheet(s, sheet)
        item = s.scalar(sa.select(SheetItem).where(SheetItem.sheet_id == sheet_row.id, SheetItem.item_ref == item_ref))
        if item is None:
            raise NotFoundError(f"sheet {sheet_row.name!r} has no item {item_ref!r}")
        data = dict(item.item_metadata or {})
        image = str(Path(sheet_row.image_root) / item.image_path) if (sheet_row.image_root and item.image_path) else None
        columns = list(sheet_row.columns or [])
    runner = TemplateRunner(store, info, llm=llm, evidence=evidence, calibrated=calibrated, columns=columns)
    return runner.answer(item_ref, data, image, cancel=cancel)
