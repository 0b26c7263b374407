"""Which page each stage shows: stage -> (module, class, permission needed to see it).

Pages are imported lazily, so start-up imports only the first page. A page that needs a
permission (Bundles, Users: administrators) is not offered at all to other users: no button,
no "coming soon" placeholder, and the shell says why if a shortcut asks for it. To add a page,
add a row here (and, for a header button, a row in `shell.TOOL_PAGES`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from vital_desktop.ui.context import AppContext
from vital_desktop.ui.pages import Page
from vital_desktop.ui.permissions import permitted


@dataclass(frozen=True)
class PageSpec:
    module: str
    cls: str
    #: a permission the user needs to see the page at all (None: everyone)
    permission: str | None = None
    #: why the page is not offered, when the user lacks `permission`
    hidden_reason: str = ""


PAGES: dict[str, PageSpec] = {
    "data": PageSpec("vital_desktop.ui.data_page", "DataPage"),
    "canonical": PageSpec("vital_desktop.ui.labeling_tool", "CanonicalLabelingTool"),
    "generate": PageSpec("vital_desktop.ui.generate_page", "GeneratePage"),
    "label": PageSpec("vital_desktop.ui.label_page", "LabelPage"),
    "train": PageSpec("vital_desktop.ui.train_page", "TrainPage"),
    "deploy": PageSpec("vital_desktop.ui.deploy_page", "DeployPage"),
    "monitor": PageSpec("vital_desktop.ui.monitor_page", "MonitorPage"),
    "improve": PageSpec("vital_desktop.ui.improve_page", "ImprovePage"),
    "calibration": PageSpec("vital_desktop.ui.calibration_page", "CalibrationPage"),
    "bundles": PageSpec("vital_desktop.ui.bundles_page", "BundlesPage", "import_bundle",
                        "Importing and exporting signed bundles is for administrators."),
    "taxonomy": PageSpec("vital_desktop.ui.taxonomy_page", "TaxonomyPage", "edit_taxonomy",
                         "Changing the site's label types is for engineers and administrators."),
    "users": PageSpec("vital_desktop.ui.users_page", "UsersPage", "manage_users",
                      "Managing user accounts is for administrators."),
}


def visible(context: AppContext, stage: str) -> bool:
    """Whether the signed-in user is offered the page of `stage`."""
    spec = PAGES.get(stage)
    return spec is not None and (spec.permission is None or permitted(context.user, spec.permission))


def hidden_reason(stage: str) -> str:
    spec = PAGES.get(stage)
    return spec.hidden_reason if spec is not None else f"There is no page {stage!r}."


def factories(context: AppContext) -> dict[str, Callable[[], Page]]:
    """stage -> a function building its page, for the pages this user is offered."""
    out: dict[str, Callable[[], Page]] = {}
    for stage, spec in PAGES.items():
        if not visible(context, stage):
            continue

        def factory(spec: PageSpec = spec) -> Page:
            return getattr(importlib.import_module(spec.module), spec.cls)(context)

        out[stage] = factory
    return out
