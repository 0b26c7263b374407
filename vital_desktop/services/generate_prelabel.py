"""Pre-labelers: who proposes an answer for an item without a canonical label (a registry).

`PRELABELERS` maps an AI mode to a factory, so the generation logic never imports llama.cpp or
onnxruntime unless a mode needs them, and tests can pass a fake. A pre-labeler answers a batch of
items (results in order) and may advance `progress` by one per item it answers (slow ones do, so
the bar moves per item); the generation loop sets the bar to the batch's end afterwards either way.

The language-model pre-labeler goes through `llm_answer.TemplateRunner`: an image template gets
the classifier's evidence (and a no-evidence image template is refused when the pre-labeler is
built, before anything is written), every enumerated field gets a confidence from the model's
token probabilities (calibrated when the template version is), and the pair's confidence is the
lowest of them — so bulk approval by confidence works for language-model pairs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vital_desktop.core.errors import ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.inference import prompts
from vital_desktop.services import templates
from vital_desktop.store.db import Store

@dataclass(frozen=True)
class PrelabelRequest:
    """One item a pre-labeler must answer: its data, its image file, and the rendered prompt."""

    item_ref: str
    data: dict
    image_path: str | None  # absolute path of the image, if the sheet has images


@dataclass(frozen=True)
class Prelabel:
    """A proposed answer (None when there is none) with where it came from and what went wrong."""

    answer: dict | None
    confidence: float | None
    source: str
    raw_output: str | None = None
    error: str | None = None
    classifier: prompts.ClassifierSummary | None = None
    field_confidence: dict[str, float] | None = None  # per enumerated field (language-model answers)


class Prelabeler(Protocol):
    """Proposes answers for a batch of items (results in the same order)."""

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]: ...


PrelabelerFactory = Callable[[Store, templates.TemplateInfo], Prelabeler]


class NoPrelabeler:
    """AI off: items without a canonical label wait for an expert with no proposal."""

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]:
        return [Prelabel(None, None, "none") for _ in requests]


def _answer_confidence(answer: Any) -> float | None:
    value = answer.get("confidence") if isinstance(answer, dict) else None
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class ClassifierPrelabeler:
    """The template's (or the site's active) ONNX classifier fills the label type's class field."""

    def __init__(self, store: Store, template: templates.TemplateInfo) -> None:
        from vital_desktop.services import labels, predict, registry

        self.template = template
        class_field = labels.get_label_type(store, template.label_type).class_field
        if not class_field:
            raise ValidationError(f"label type {template.label_type!r} has no class field, so a classifier cannot "
                                  "pre-label it; use --ai llm or none")
        self.class_field: str = class_field
        self.model = predict.resolve_model(store, registry.KIND_ONNX, template.model_ref.get("classifier"))
        self.classifier = predict.classifier_for(self.model, predict.inference_threads(store))
        self.with_confidence = "confidence" in template.output_schema.get("properties", {})

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]:
        out: list[Prelabel | None] = [None] * len(requests)
        with_image = [i for i, r in enumerate(requests) if r.image_path]
        for i, request in enumerate(requests):
            if not request.image_path:
                out[i] = Prelabel(None, None, "classifier", error="the item has no image to classify")
        results = self.classifier.predict_paths([str(requests[i].image_path) for i in with_image], batch_size=64)
        for i, result in zip(with_image, results, strict=False):
            if result.error is not None or result.predicted_class is None:
                out[i] = Prelabel(None, None, "classifier", error=result.error or "no prediction")
                continue
            answer: dict[str, Any] = {self.class_field: result.predicted_class}
            if self.with_confidence:
                answer["confidence"] = round(float(result.confidence or 0.0), 4)
            summary = prompts.ClassifierSummary(self.model.name, self.model.version, result.predicted_class,
                                                float(result.confidence or 0.0), result.probabilities)
            problem = templates.first_error(self.template.output_schema, answer)
            if problem:
                out[i] = Prelabel(None, result.confidence, "classifier", raw_output=json.dumps(answer),
                                  error=f"the classifier's answer does not match the output schema {problem}",
                                  classifier=summary)
            else:
                out[i] = Prelabel(answer, result.confidence, "classifier", classifier=summary,
                                  field_confidence={self.class_field: round(float(result.confidence or 0.0), 6)})
        return [p for p in out if p is not None]


class LlmPrelabeler:
    """The template's GGUF model answers each item under the output schema's grammar, with confidences.

    With ``with_classifier`` (AI mode ``both``) a classifier is required: it gives the class field
    (its calibrated probability is that field's confidence) and the model answers the other fields
    conditioned on it; the classifier's own answer is kept for review when the model's fails the schema.
    """

    def __init__(self, store: Store, template: templates.TemplateInfo, *, with_classifier: bool = False) -> None:
        from vital_desktop.services import llm_answer, predict, registry

        self.template = template
        # AI mode "both": the classifier gives the class, the model the rest (conditioned on it).
        self.runner = llm_answer.TemplateRunner(store, template, class_from_evidence=with_classifier)
        self.class_field: str | None = None
        if with_classifier:
            if self.runner.evidence is None:  # names the missing model like --ai classifier does
                self.runner.evidence = _required_evidence(store, template, predict, registry)
            from vital_desktop.services import labels

            self.class_field = labels.get_label_type(store, template.label_type).class_field
        self.source = "llm+classifier" if with_classifier else "llm"

    def prelabel(self, requests: Sequence[PrelabelRequest], progress: Progress) -> list[Prelabel]:
        summaries = self.runner.evidence_for([r.image_path for r in requests])
        out = []
        for request, summary in zip(requests, summaries, strict=True):
            progress.check()
            answer = self.runner.answer(request.item_ref, request.data, request.image_path, classifier=summary,
                                        cancel=progress)
            if answer.schema_valid:
                confidence = answer.confidence
                if confidence is None:
                    confidence = _answer_confidence(answer.data)
                out.append(Prelabel(answer.data, confidence, self.source, raw_output=answer.raw_text,
                                    classifier=summary, field_confidence=answer.field_confidence or None))
            elif self.class_field and summary is not None and self._fallback(summary) is not None:
                # The model failed; the classifier's answer is still worth reviewing. Keep both.
                out.append(Prelabel(self._fallback(summary), summary.confidence, "classifier",
                                    raw_output=answer.raw_text, error=f"llm: {answer.error}", classifier=summary,
                                    field_confidence={self.class_field: round(summary.confidence, 6)}))
            else:
                out.append(Prelabel(None, None, self.source, raw_output=answer.raw_text, error=answer.error,
                                    classifier=summary))
            progress.advance(1)
        return out

    def _fallback(self, summary: prompts.ClassifierSummary) -> dict | None:
        answer = {str(self.class_field): summary.predicted_class}
        return None if templates.first_error(self.template.output_schema, answer) else answer


def _required_evidence(store: Store, template: templates.TemplateInfo, predict: Any, registry: Any) -> Any:
    from vital_desktop.services import llm_evidence

    model = predict.resolve_model(store, registry.KIND_ONNX, template.model_ref.get("classifier"))
    return llm_evidence.ImageEvidence(model.ref, (model.name, model.version),
                                      predict.classifier_for(model, predict.inference_threads(store)))


#: ai_mode → factory. The generation code looks modes up here; it never branches on them.
PRELABELERS: dict[str, PrelabelerFactory] = {
    "none": lambda store, template: NoPrelabeler(),
    "classifier": ClassifierPrelabeler,
    "llm": LlmPrelabeler,
    "both": lambda store, template: LlmPrelabeler(store, template, with_classifier=True),
}
