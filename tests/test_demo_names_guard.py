"""Contract 1: product code names no demo class or field (the demo's taxonomy is its seed data).

Demo names may appear only in vital_desktop/demo, vital_desktop/resources/demo and tests.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "vital_desktop"
DEMO_NAMES = ("inclusion", "crack", "delamination", "surface_contamination", "defect_type", "discoloration")
PATTERN = re.compile("|".join(DEMO_NAMES), re.IGNORECASE)


def product_sources() -> list[Path]:
    """Every product Python module outside the demo package."""
    return [p for p in sorted(ROOT.rglob("*.py")) if "demo" not in p.relative_to(ROOT).parts[:1]]


def test_product_code_names_no_demo_class_or_field() -> None:
    offenders = []
    for path in product_sources():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if PATTERN.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_the_guard_sees_the_product_modules() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in product_sources()}
    assert {"bundles/samples.py", "services/site.py", "services/label_write.py"} <= names
    assert not any(n.startswith("demo/") for n in names)


def test_product_code_names_no_demo_column_or_sheet() -> None:
    """The demo's metadata columns, sheet names and model name appear only in the demo builder and demo/."""
    from vital_desktop.demo.images import INSPECTION_COLUMNS, TELEMETRY_COLUMNS
    from vital_desktop.services import demo_site

    generic = {"image_path", "timestamp"}  # what any site's sheets may call their columns
    names = sorted(set(INSPECTION_COLUMNS + TELEMETRY_COLUMNS) - generic)
    names += [demo_site.DEMO_SHEET, demo_site.DEMO_TELEMETRY_SHEET, demo_site.DEMO_HISTORY_SHEET,
              demo_site.DEMO_MODEL_NAME]  # the demo's classifier: TRAIN names a model after its source
    pattern = re.compile("|".join(re.escape(n) for n in names), re.IGNORECASE)
    offenders = []
    for path in product_sources():
        if path.relative_to(ROOT).as_posix() == "services/demo_site.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if pattern.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert "detector_serial" in names and offenders == []
