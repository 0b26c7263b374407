"""Generation and review at scale → benchmarks/results/generate.json.

1. A training sheet of N items (default 100,000) of which half have canonical labels, AI off:
   seconds end to end (service call: planning, canonical join, rendering, Arrow batches) and items/s.
   Repeated `--repeats` times; the median is reported.
2. The same with the demo's ONNX classifier pre-labeling the unlabeled half, on
   `--classifier-items` items (default 5,000: on 2 shared cores the classifier runs at ~100
   images/s, so 50,000 classifications would take ~10 minutes); items/s is comparable.
3. Bulk approve of 10,000 pre-labels (preview, then one transaction that writes 10,000
   canonical labels and updates 10,000 pairs). The proposals are written into an AI-off
   training sheet by SQL (answer + confidence) so that setup does not take minutes of
   classification; the approve path does not depend on where a proposal came from.

The sheet is built from the demo site: the rows cycle over the 500 demo images (image files are
shared between rows, which changes nothing for generation). Setup time is not measured.

    python benchmarks/bench_generate.py [--items 100000] [--repeats 3] [--skip-classifier]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vital_desktop.services import accounts, generate, labels, review, sheets, site
from vital_desktop.store import open_store

TEMPLATE = "Defect Classification - Visual Inspection"
COLUMNS = ["inspection_id", "image_path", "detector_serial", "crystal_batch_id", "temperature_c", "humidity_percent",
           "inspector_id", "inspection_timestamp"]


def _write_sheet_csv(path: Path, demo_rows: list[dict], n: int) -> list[str]:
    refs = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for i in range(n):
            row = dict(demo_rows[i % len(demo_rows)])
            row["inspection_id"] = f"B-{i:07d}"
            refs.append(row["inspection_id"])
            writer.writerow({k: row[k] for k in COLUMNS})
    return refs


def _write_labels_csv(path: Path, sheet: str, refs: list[str]) -> None:
    kinds = ["inclusion", "crack", "delamination", "surface_contamination", "none"]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data"])
        for i, ref in enumerate(refs):
            kind = kinds[i % len(kinds)]
            writer.writerow([sheet, ref, "classification",
                             json.dumps({"defect_type": kind, "severity": "none" if kind == "none" else "minor"})])


def _timed_generation(store, actor, sheet: str, name: str, ai_mode: str) -> tuple[float, generate.GenerationResult]:
    started = time.perf_counter()
    result, _ = generate.generate_training_sheet(store, actor=actor, sheet=sheet, template=TEMPLATE, name=name,
                                                 ai_mode=ai_mode)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--bulk", type=int, default=10_000)
    parser.add_argument("--classifier-items", type=int, default=5_000)
    parser.add_argument("--skip-classifier", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "generate.json")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="vital-bench-generate-"))
    t0 = time.perf_counter()
    site.init_site(work / "home", demo=True)
    store = open_store(work / "home")
    engineer = accounts.get_user(store, "engineer")
    inspector = accounts.get_user(store, "inspector")
    demo_sheet = sheets.get_sheet(store, site.DEMO_SHEET)
    with open(demo_sheet.metadata_path, newline="", encoding="utf-8") as handle:
        demo_rows = list(csv.DictReader(handle))

    big_csv = work / "bench_records.csv"
    refs = _write_sheet_csv(big_csv, demo_rows, args.items)
    sheets.import_sheet(store, actor=engineer, name="Bench", metadata_path=big_csv, key_column="inspection_id",
                        image_root=demo_sheet.image_root, image_column="image_path")
    labels_csv = work / "bench_labels.csv"
    _write_labels_csv(labels_csv, "Bench", refs[::2])
    labels.import_labels(store, actor=inspector, path=labels_csv)
    setup_s = time.perf_counter() - t0
    print(f"setup {setup_s:.1f} s ({args.items} items, {len(refs[::2])} canonical labels)", flush=True)

    report: dict = {
        "benchmark": "generate",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_at_start": list(os.getloadavg())},
        "items": args.items, "canonical_labels": len(refs[::2]), "setup_seconds": round(setup_s, 1),
    }

    # 1. AI off
    runs = []
    for repeat in range(args.repeats):
        seconds, result = _timed_generation(store, engineer, "Bench", f"bench none {repeat}", "none")
        assert result.summary.pre_approved == len(refs[::2]) and result.summary.generated == args.items
        runs.append(seconds)
        print(f"AI off run {repeat + 1}: {seconds:.2f} s ({args.items / seconds:,.0f} items/s)", flush=True)
    median = statistics.median(runs)
    report["ai_off"] = {"runs_seconds": [round(r, 3) for r in runs], "median_seconds": round(median, 3),
                        "items_per_second": round(args.items / median)}

    # 2. classifier on (the unlabeled half is classified), on a smaller sheet of the same shape
    if args.skip_classifier:
        report["classifier_on"] = {"skipped": True}
    else:
        n = args.classifier_items
        small_csv = work / "classifier_records.csv"
        small_refs = _write_sheet_csv(small_csv, demo_rows, n)
        sheets.import_sheet(store, actor=engineer, name="BenchC", metadata_path=small_csv, key_column="inspection_id",
                            image_root=demo_sheet.image_root, image_column="image_path")
        _write_labels_csv(work / "classifier_labels.csv", "BenchC", small_refs[::2])
        labels.import_labels(store, actor=inspector, path=work / "classifier_labels.csv")
        off_s, _ = _timed_generation(store, engineer, "BenchC", "benchC none", "none")
        seconds, result = _timed_generation(store, engineer, "BenchC", "benchC classifier", "classifier")
        assert result.summary.pre_approved == len(small_refs[::2])
        report["classifier_on"] = {
            "items": n, "classified_items": n - len(small_refs[::2]),
            "seconds": round(seconds, 3), "items_per_second": round(n / seconds),
            "classified_per_second": round((n - len(small_refs[::2])) / seconds),
            "ai_off_seconds_same_sheet": round(off_s, 3), "ratio_to_ai_off": round(seconds / off_s, 2),
        }
        print(f"classifier on ({n} items): {seconds:.2f} s vs AI off {off_s:.2f} s", flush=True)

    # 3. bulk approve of `--bulk` pre-labels
    bulk_csv = work / "bulk_records.csv"
    _write_sheet_csv(bulk_csv, demo_rows, args.bulk)
    sheets.import_sheet(store, actor=engineer, name="Bulk", metadata_path=bulk_csv, key_column="inspection_id",
                        image_root=demo_sheet.image_root, image_column="image_path")
    generate.generate_training_sheet(store, actor=engineer, sheet="Bulk", template=TEMPLATE, name="bulk")
    info = generate.get_training_sheet(store, "bulk")
    with store.session() as s:
        s.connection().exec_driver_sql(
            "UPDATE qa_pairs SET source = 'classifier', confidence = 0.5 + (position % 50) / 100.0, "
            "answer = CAST('{\"defect_type\": \"crack\", \"severity\": \"minor\", \"confidence\": 0.9}' AS JSON) "
            f"WHERE training_sheet_id = '{info.id}'")
    started = time.perf_counter()
    preview = review.preview_bulk(store, actor=inspector, training_sheet="bulk", action="approve", threshold=0.0)
    preview_s = time.perf_counter() - started
    started = time.perf_counter()
    result, _ = review.bulk_action(store, actor=inspector, training_sheet="bulk", action="approve", threshold=0.0,
                                   expected_count=preview.count)
    approve_s = time.perf_counter() - started
    assert result.done == preview.count == args.bulk and result.labels_created == args.bulk
    report["bulk_approve"] = {"pairs": result.done, "preview_seconds": round(preview_s, 3),
                              "approve_seconds": round(approve_s, 3),
                              "pairs_per_second": round(result.done / approve_s)}
    print(f"bulk approve {result.done}: preview {preview_s:.2f} s, approve {approve_s:.2f} s", flush=True)
    report["load_average_at_end"] = list(os.getloadavg())
    store.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
