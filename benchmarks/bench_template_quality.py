"""Template quality on the demo sheets: per-field accuracy and calibration error before and after
offline prompt optimisation, with the embedded language model (SmolLM2-135M on this machine).

Builds a fresh demo site in a temporary folder and, on each demo sheet:

1. ``evaluate``: the library template's published version on the first N evaluation-allowed
   canonical labels (the "before" number a user sees in GENERATE);
2. ``optimise``: the search (few-shot selections × instruction variants) on a selection split,
   with the baseline and the proposal both scored on a held-out split (reported as is).

The demo's telemetry sheet ships without canonical labels; its own ground-truth column
``failure_within_30d`` (never shown to the model) is turned into maintenance labels for the
run: ``replace`` with failure risk 0.8 when the detector failed within 30 days, else ``none``
with 0.05, written through the one label write path, for a stratified sample (every failed
reading, up to half of the 40, and evenly spaced healthy ones; the sheet has 19 failures in 720).
The defect sheet uses its 150 demo labels.

Usage: ``python -m benchmarks.bench_template_quality [--items 12] [--split 6] [--candidates 4]
[--budget 300]`` → ``benchmarks/results/template_quality.json``.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import write_report

TELEMETRY_LABELS = 40


def _failed(row: dict) -> bool:
    return str(row["failure_within_30d"]).strip().lower() in ("1", "true", "yes")


def _label_telemetry(store: Any, actor: Any, sheet: str, path: Path, n: int) -> int:
    from vital_desktop.services import labels

    with open(path, encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    failed_rows = [r for r in rows if _failed(r)]
    healthy = [r for r in rows if not _failed(r)]
    # Stratified: every failure (the sheet has few) and evenly spaced healthy readings up to n,
    # interleaved so any prefix (``--items``, the splits) holds both.
    fail_part = failed_rows[: n // 2]
    step = max(1, len(healthy) // max(1, n - len(fail_part)))
    healthy_part = healthy[::step][: n - len(fail_part)]
    chosen = [r for pair in zip(healthy_part, fail_part, strict=False) for r in pair]
    chosen += healthy_part[len(fail_part):] + fail_part[len(healthy_part):]
    for row in chosen:
        failed = _failed(row)
        data = {"action": "replace" if failed else "none", "failure_risk": 0.8 if failed else 0.05}
        labels.set_label(store, actor=actor, sheet=sheet, item_ref=row["reading_id"], label_type="maintenance",
                         label_data=data, notes="benchmark: from failure_within_30d")
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=12, help="labelled items scored by evaluate")
    parser.add_argument("--split", type=int, default=6, help="items in each optimisation split")
    parser.add_argument("--candidates", type=int, default=4, help="candidates besides the baseline")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per optimisation")
    args = parser.parse_args()

    from vital_desktop.services import accounts, demo_site, llm_speed, site, template_eval, template_optimise

    report: dict[str, Any] = {"settings": vars(args), "sheets": {}}
    with tempfile.TemporaryDirectory(prefix="vital-bench-tq-") as tmp:
        home = Path(tmp) / "home"
        started = time.perf_counter()
        site.init_site(home, demo=True)
        report["demo_build_seconds"] = round(time.perf_counter() - started, 1)
        from vital_desktop.store import open_store

        store = open_store(home)
        try:
            engineer = accounts.get_user(store, "engineer")
            inspector = accounts.get_user(store, "inspector")
            labelled = _label_telemetry(store, inspector, demo_site.DEMO_TELEMETRY_SHEET,
                                        home / "demo-data" / "detector_telemetry.csv", TELEMETRY_LABELS)
            report["telemetry_labels_written"] = labelled
            cases = [(demo_site.DEMO_TELEMETRY_SHEET, "Predictive Maintenance"),
                     (demo_site.DEMO_SHEET, "Defect Classification - Visual Inspection")]
            for sheet, template in cases:
                entry: dict[str, Any] = {"template": template}
                evaluation, _ = template_eval.evaluate_template(store, actor=engineer, template=template, sheet=sheet,
                                                                limit=args.items)
                entry["evaluate"] = evaluation.score | {"mode": evaluation.details.get("mode"),
                                                        "model": evaluation.model}
                print(evaluation.text(), flush=True)
                result, _ = template_optimise.optimise_template(
                    store, actor=engineer, template=template, sheet=sheet, budget_seconds=args.budget,
                    split_items=args.split, max_candidates=args.candidates)
                print(result.text(), flush=True)
                entry["optimise"] = {k: v for k, v in result.to_dict().items() if k not in ("diff",)}
                report["sheets"][sheet] = entry
                report["model_speed"] = {k: [v.to_dict() for v in vs] for k, vs in llm_speed.speeds(store).items()}
                write_report("template_quality", report)  # after each sheet, so a long run keeps what it has
        finally:
            store.close()
    write_report("template_quality", report)


if __name__ == "__main__":
    main()
