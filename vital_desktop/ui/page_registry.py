"""Which page each stage shows: the real page when its services exist, else a placeholder.

Pages are imported here, lazily, so start-up imports only the first page (and a stage whose
service module is not installed yet still opens, saying what is coming).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page, PlaceholderPage

PLACEHOLDERS: dict[str, tuple[str, str, str]] = {
    "generate": ("GENERATE", ("The template library (system and user prompts, schemas, few-shot examples, versions) "
                 "and the Generate Training Sheet dialog."), "`vital template` and `vital generate` on the command line."),
    "label": ("LABEL", "Training sheet review (Mode A): approve, edit, reject or flag AI answers.",
              "The Canonical Labeling Tool (top right) labels source items directly."),
    "train": ("TRAIN", ("Export summary with the dual quality gates, train/validation split and local training "
              "of the ONNX classifier, with lineage to the training sheet and canonical label versions."),
              "`vital export-training` and `vital train`."),
    "deploy": ("DEPLOY", "The model registry and deployments: which model serves predictions on this laptop.",
               "`vital deploy`."),
    "monitor": ("MONITOR", "Accuracy over time, drift, latency and alerts computed from the prediction log.",
                "`vital monitor`."),
    "improve": ("IMPROVE", "Feedback from inspectors, gap analysis per class, and 'Add to training sheet'.",
                "`vital feedback`."),
}


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _placeholder(context: AppContext, stage: str) -> Callable[[], Page]:
    title, coming, meanwhile = PLACEHOLDERS[stage]
    return lambda: PlaceholderPage(context, stage, title, coming, meanwhile)


def factories(context: AppContext) -> dict[str, Callable[[], Page]]:
    def data() -> Page:
        from vital_desktop.ui.data_page import DataPage

        return DataPage(context)

    def canonical() -> Page:
        from vital_desktop.ui.labeling_tool import CanonicalLabelingTool

        return CanonicalLabelingTool(context)

    def generate() -> Page:
        from vital_desktop.ui.generate_page import GeneratePage

        return GeneratePage(context)

    def label() -> Page:
        from vital_desktop.ui.label_page import LabelPage

        return LabelPage(context)

    result: dict[str, Callable[[], Page]] = {stage: _placeholder(context, stage) for stage in PLACEHOLDERS}
    result.update(_lifecycle_factories(context))
    result["data"] = data
    result["canonical"] = canonical
    if _has("vital_desktop.services.generate") and _has("vital_desktop.services.templates") and \
            _has("vital_desktop.ui.generate_page"):
        result["generate"] = generate
    if _has("vital_desktop.services.review") and _has("vital_desktop.ui.label_page"):
        result["label"] = label
    return result


#: stage -> (module, class) of the lifecycle pages (TRAIN … IMPROVE, Calibration, Bundles)
LIFECYCLE_PAGES: dict[str, tuple[str, str]] = {
    "train": ("vital_desktop.ui.train_page", "TrainPage"),
    "deploy": ("vital_desktop.ui.deploy_page", "DeployPage"),
    "monitor": ("vital_desktop.ui.monitor_page", "MonitorPage"),
    "improve": ("vital_desktop.ui.improve_page", "ImprovePage"),
    "calibration": ("vital_desktop.ui.calibration_page", "CalibrationPage"),
    "bundles": ("vital_desktop.ui.bundles_page", "BundlesPage"),
}


def _lifecycle_factories(context: AppContext) -> dict[str, Callable[[], Page]]:
    """The lifecycle pages that exist; Bundles only for administrators (others get a page saying so)."""
    from vital_desktop.core.users import Role

    out: dict[str, Callable[[], Page]] = {}
    for stage, (module, cls) in LIFECYCLE_PAGES.items():
        if not _has(module):
            continue
        if stage == "bundles" and context.user.role != Role.ADMIN:
            out[stage] = lambda: PlaceholderPage(
                context, "bundles", "BUNDLES", "Importing and exporting signed bundles is for administrators.",
                "Ask your site administrator, or sign in as an administrator.")
            continue

        def factory(module: str = module, cls: str = cls) -> Page:
            return getattr(importlib.import_module(module), cls)(context)

        out[stage] = factory
    return out
