"""The demo's compliance documents: generated radiation-safety inspection reports with known fields.

`generate_demo_documents` writes a few reports (Markdown, plain text, and PDFs written by
`demo.pdf`) into the demo folder and returns the true value of every field, which the demo
keeps as canonical labels of the ``compliance_document`` label type (DEMO ONLY: a site's own
label types and documents are its data). Deterministic for a seed; no downloads.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vital_desktop.demo.pdf import write_pdf

DOCUMENT_LABEL_TYPE = "compliance_document"
DOCUMENT_SHEET = "Compliance Documents - Radiation Safety"
NUCLIDES = ("Cs-137", "Co-60", "Am-241", "Ir-192", "Sr-90")
#: (file suffix, how many) — the order the reports are written in
LAYOUT = (("md", 3), ("txt", 3), ("pdf", 2))
_FACILITIES = ("Northfield Nuclear Medicine Unit", "Harbor Industrial Radiography", "Lakeside University Physics Lab",
               "Ridgeway Well Logging Depot", "St. Anne Hospital Oncology", "Westgate Gauging Services",
               "Pinecrest Calibration Laboratory", "Eastport Port Security Scanning")
_INSPECTORS = ("A. Moreau", "K. Tanaka", "R. Okafor", "L. Fischer")
_FINDINGS_MINOR = ("Source inventory log not countersigned for March.",
                   "Warning sign at the storage room door partly covered.",
                   "Survey meter calibration certificate expires within 30 days.",
                   "Two dosimeter badges returned late to the dosimetry service.")
_FINDINGS_MAJOR = ("Dose rate at the storage room boundary above the 2.5 uSv/h public limit.",
                   "Sealed source leak test overdue by more than six months.",
                   "Source container found unlocked and unattended.")


@dataclass(frozen=True)
class DemoDocuments:
    folder: Path
    #: item ref (file name) -> the true label data
    labels: dict[str, dict[str, Any]]


def _report(rng: random.Random, number: int) -> tuple[dict[str, Any], list[str], str]:
    facility = _FACILITIES[number % len(_FACILITIES)]
    license_number = f"RSL-{rng.randint(2019, 2025)}-{rng.randint(100, 9999):04d}"
    date = f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    nuclide = rng.choice(NUCLIDES)
    status = ("compliant", "action_required", "non_compliant")[number % 3]
    findings: list[str] = []
    if status == "compliant":
        dose = round(rng.uniform(0.1, 1.5), 2)
    elif status == "action_required":
        dose = round(rng.uniform(0.5, 2.2), 2)
        findings = rng.sample(_FINDINGS_MINOR, k=rng.randint(1, 2))
    else:
        dose = round(rng.uniform(3.0, 12.0), 2)
        findings = [_FINDINGS_MAJOR[0], *rng.sample(_FINDINGS_MAJOR[1:], k=1), *rng.sample(_FINDINGS_MINOR, k=1)]
    outcome = {"compliant": "COMPLIANT - no findings", "action_required": "ACTION REQUIRED - corrective actions "
               "within 30 days", "non_compliant": "NON-COMPLIANT - use of the sources suspended"}[status]
    lines = [
        f"Facility: {facility}",
        f"Licence number: {license_number}",
        f"Inspection date: {date}",
        f"Inspector: {rng.choice(_INSPECTORS)}",
        f"Sealed source nuclide: {nuclide}",
        f"Activity: {rng.randint(1, 400)} GBq",
        f"Maximum dose rate measured at the boundary: {dose} uSv/h",
        "",
        "Scope: storage, use and transport of sealed radioactive sources under the site licence; "
        "survey of the controlled and supervised areas; review of the source inventory and leak tests.",
        "",
        "Findings:",
        *([f"  {i + 1}. {f}" for i, f in enumerate(findings)] or ["  None."]),
        "",
        f"Outcome: {outcome}",
    ]
    label = {"status": status, "license_number": license_number, "inspection_date": date, "nuclide": nuclide,
             "max_dose_rate_usv_h": dose, "facility": facility}
    return label, lines, f"Radiation Safety Compliance Inspection Report No. {number + 1:03d}"


def generate_demo_documents(out_dir: Path, *, seed: int = 7) -> DemoDocuments:
    """Write the demo's reports under `out_dir` and return their true fields (idempotent for a seed)."""
    rng = random.Random(seed * 7919 + 13)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels: dict[str, dict[str, Any]] = {}
    number = 0
    for suffix, count in LAYOUT:
        for _ in range(count):
            label, lines, title = _report(rng, number)
            name = f"inspection-report-{number + 1:03d}.{suffix}"
            path = out_dir / name
            if suffix == "pdf":
                write_pdf(path, lines, title=title)
            elif suffix == "md":
                body = [f"# {title}", ""] + [f"- {line}" if ": " in line and not line.startswith(" ") else line
                                             for line in lines]
                path.write_text("\n".join(body) + "\n", encoding="utf-8")
            else:
                path.write_text("\n".join([title.upper(), "=" * len(title), "", *lines]) + "\n", encoding="utf-8")
            labels[name] = label
            number += 1
    return DemoDocuments(out_dir, labels)
