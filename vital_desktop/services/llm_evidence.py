"""What a text-only language model can read about an image item, and when it has nothing to read.

The embedded models read text, not pixels. For a template whose input is an image, the evidence
is what the site's image classifier says — its calibrated class probabilities (the classifier
is temperature-scaled at training, so these are the probabilities bulk approval trusts) and,
where the classifier can be probed, an occlusion summary (which part of the image carries the
predicted class: `inference.assist.occlusion_map`) — besides the item's sensor context. The model
is then asked what the classifier cannot give (severity, root cause, notes, an action).

A template that asks a text-only model to *classify an image* (its output schema has the label
type's class field) with no evidence — no classifier to run, and no metadata columns the template
declares as evidence (``model_ref.evidence_fields``) — is refused before anything is written,
with a message saying why and what to do. Text and telemetry templates need no evidence: there
the model is the pre-labeler and reads the item's fields itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.inference import prompts
from vital_desktop.services import templates
from vital_desktop.store.db import Store

#: Occlusion grid of the evidence summary (grid*grid + 1 images per item through onnxruntime).
OCCLUSION_GRID = 4
_ROWS = ("top", "middle", "bottom")
_COLUMNS = ("left", "centre", "right")


def is_image_template(template: templates.TemplateInfo) -> bool:
    """True when the template's input is an image (it names ``image_path`` in its input or prompt)."""
    return "image_path" in (template.input_schema.get("properties") or {}) or "image_path" in template.placeholders


def evidence_fields(template: templates.TemplateInfo) -> list[str]:
    """Metadata columns the template's author declares as evidence for the answer (``model_ref.evidence_fields``)."""
    value = template.model_ref.get("evidence_fields") or []
    return [str(v) for v in value] if isinstance(value, list) else []


def occlusion_summary(drop: np.ndarray, predicted_class: str) -> str:
    """One sentence: where in the image the predicted class's evidence lies, and how concentrated it is."""
    grid = np.asarray(drop, dtype=np.float64)
    positive = np.clip(grid, 0.0, None)
    total = float(positive.sum())
    if total <= 1e-6:
        return (f"Occlusion check: hiding any part of the image barely changes the {prompts.literal(predicted_class)} "
                "probability (the evidence is spread over the whole image).")
    n = grid.shape[0]
    i, j = np.unravel_index(int(np.argmax(positive)), positive.shape)
    row = _ROWS[min(2, int(i * 3 // n))]
    column = _COLUMNS[min(2, int(j * 3 // n))]
    share = float(positive.max()) / total
    return (f"Occlusion check: the evidence for {prompts.literal(predicted_class)} is strongest in the {row} {column} "
            f"of the image ({share:.0%} of it in one of {n * n} cells; hiding that cell lowers the probability "
            f"by {float(positive.max()):.2f}).")


@dataclass
class ImageEvidence:
    """The site's classifier as evidence for one template: probabilities and occlusion per image."""

    model_ref: str
    summary_model: tuple[str, int | str]
    classifier: Any  # inference.classifier.OnnxClassifier
    occlusion: bool = True

    def for_paths(self, paths: Sequence[str | None]) -> list[prompts.ClassifierSummary | None]:
        """One summary per path (None where there is no image or it cannot be read), in order."""
        from vital_desktop.inference import assist
        from vital_desktop.inference.classifier import load_image

        wanted = [i for i, p in enumerate(paths) if p]
        out: list[prompts.ClassifierSummary | None] = [None] * len(paths)
        if not wanted:
            return out
        results = self.classifier.predict_paths([paths[i] for i in wanted], batch_size=64, progress=None)
        classes = list(self.classifier.classes)
        for i, result in zip(wanted, results, strict=True):
            if result.error is not None or result.predicted_class is None:
                continue
            occlusion = None
            if self.occlusion:
                try:
                    tensor, _ = load_image(Path(str(paths[i])), self.classifier.info.preprocess)
                    drop, _, _ = assist.occlusion_map(self.classifier.run, tensor,
                                                      class_index=classes.index(result.predicted_class),
                                                      grid=OCCLUSION_GRID)
                    occlusion = occlusion_summary(drop, result.predicted_class)
                except (ValidationError, OSError, ValueError):
                    occlusion = None  # the probabilities stand on their own
            out[i] = prompts.ClassifierSummary(self.summary_model[0], self.summary_model[1], result.predicted_class,
                                               float(result.confidence or 0.0), dict(result.probabilities),
                                               occlusion=occlusion)
        return out


def image_evidence(store: Store, template: templates.TemplateInfo, *, occlusion: bool = True) -> ImageEvidence | None:
    """The template's classifier (``model_ref.classifier``) or the site's active one; None if there is none."""
    from vital_desktop.services import predict, registry

    ref = template.model_ref.get("classifier")
    try:
        model = predict.resolve_model(store, registry.KIND_ONNX, ref or None)
    except NotFoundError:
        if not ref:
            return None
        try:  # the template names a classifier this site does not have: fall back to the active one
            model = predict.resolve_model(store, registry.KIND_ONNX, None)
        except NotFoundError:
            return None
    classifier = predict.classifier_for(model, predict.inference_threads(store))
    return ImageEvidence(model.ref, (model.name, model.version), classifier, occlusion)


def check_has_evidence(store: Store, template: templates.TemplateInfo, evidence: ImageEvidence | None,
                       columns: Sequence[str] | None = None) -> None:
    """Refuse an image template whose text-only model would classify the image with nothing to go on.

    Raises `ValidationError` saying why and what to do; returns quietly for text templates, for
    image templates that do not ask for the class, or when there is evidence.
    """
    from vital_desktop.services import labels

    if not is_image_template(template) or evidence is not None:
        return
    class_field = labels.get_label_type(store, template.label_type).class_field
    asked = class_field is not None and class_field in (template.output_schema.get("properties") or {})
    if not asked:
        return
    declared = [f for f in evidence_fields(template) if columns is None or f in columns]
    if declared:
        return
    raise ValidationError(
        f"template {template.ref} asks the language model to classify an image ({class_field!r}), but the model "
        "reads text only and there is no evidence to give it: this site has no active image classifier and the "
        "template declares no metadata evidence (model_ref.evidence_fields). Its answers would be guesses. "
        "Train and activate a classifier (vital train, vital model activate), use --ai classifier, or declare "
        "the metadata columns that carry the answer in the template's model_ref.evidence_fields.",
        details={"template": template.ref, "class_field": class_field},
    )


def refusal_reason(store: Store, template: templates.TemplateInfo, columns: Sequence[str] | None = None) -> str | None:
    """Why the language model would be refused for this template here (None: it would not be)."""
    try:
        evidence = image_evidence(store, template) if is_image_template(template) else None
        check_has_evidence(store, template, evidence, columns)
    except ValidationError as exc:
        return exc.message
    return None
