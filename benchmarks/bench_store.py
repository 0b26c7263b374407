"""Foundation numbers (issue 2): bulk label import at 1M, save latency and composite-key lookups
with 1M labels present, and a 10,000-item sheet import (hashing every image).

    .venv/bin/python benchmarks/bench_store.py [--labels 1000000] [--items 10000]

Writes benchmarks/results/store.json. Times are medians/percentiles of repeated calls measured
in this one run; the machine is shared, so read them as orders of magnitude, not assertions.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import Timer, percentiles, write_report
from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.services import labels, sheets
from vital_desktop.store import open_store

CLASSES = ["inclusion", "crack", "delamination", "surface_contamination", "none"]
SEVERITIES = ["none", "minor", "major", "critical"]


def make_images(folder: Path, n: int) -> Path:
    from PIL import Image

    folder.mkdir(parents=True)
    rng = random.Random(1)
    rows = []
    for i in range(n):
        name = f"img_{i:06d}.png"
        Image.new("L", (64, 64), color=rng.randrange(256)).save(folder / name)
        rows.append((f"ITEM-{i:06d}", name, round(rng.uniform(18, 30), 2)))
    meta = folder.parent / "images.csv"
    with open(meta, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "image_path", "temperature_c"])
        writer.writerows(rows)
    return meta


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vital-bench-store-"))
    store = open_store(work / "home")
    report: dict = {"labels": args.labels, "items": args.items}

    # 1. Sheet import of N items with images (SHA-256 of every file, in a thread pool).
    meta = make_images(work / "images", args.items)
    with Timer() as t:
        sheets.import_sheet(store, actor=SYSTEM_USER, name="images", metadata_path=meta, key_column="item_id",
                            image_root=work / "images", image_column="image_path")
    report["sheet_import_with_images"] = {"items": args.items, "seconds": t.seconds,
                                          "items_per_s": args.items / t.seconds}

    # 2. A sheet of 1M items (metadata only) to hold 1M labels.
    big = work / "big.csv"
    rng = random.Random(7)
    with open(big, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "detector_serial", "temperature_c"])
        for i in range(args.labels):
            writer.writerow([f"B-{i:07d}", f"SN-{i % 997:04d}", round(rng.uniform(18, 30), 2)])
    with Timer() as t:
        sheets.import_sheet(store, actor=SYSTEM_USER, name="big", metadata_path=big, key_column="item_id")
    report["sheet_import_metadata_only"] = {"items": args.labels, "seconds": t.seconds,
                                            "items_per_s": args.labels / t.seconds}

    # 3. Bulk import of 1M canonical labels from CSV, in one transaction.
    label_file = work / "labels.csv"
    with open(label_file, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data", "prohibited_uses", "usage_reason"])
        for i in range(args.labels):
            data = {"defect_type": CLASSES[i % 5], "severity": SEVERITIES[i % 4]}
            limited = i % 10 == 0
            writer.writerow(["big", f"B-{i:07d}", "classification", json.dumps(data),
                             "training" if limited else "", "serial number visible" if limited else ""])
    with Timer() as t:
        outcome, _ = labels.import_labels(store, actor=SYSTEM_USER, path=label_file)
    report["bulk_label_import"] = {"labels": outcome.created, "seconds": t.seconds,
                                   "labels_per_s": outcome.created / t.seconds}

    # 4. Save latency (a new version of an existing label) and point lookups, 1M labels present.
    refs = [f"B-{rng.randrange(args.labels):07d}" for _ in range(args.samples)]
    saves, lookups = [], []
    for i, ref in enumerate(refs):
        start = time.perf_counter()
        labels.set_label(store, actor=SYSTEM_USER, sheet="big", item_ref=ref, label_type="classification",
                         label_data={"defect_type": CLASSES[(i + 1) % 5], "severity": "major"}, reason="bench")
        saves.append(time.perf_counter() - start)
        start = time.perf_counter()
        got = labels.get_label(store, sheet="big", item_ref=ref, label_type="classification")
        lookups.append(time.perf_counter() - start)
        assert got is not None
    report["label_save_latency_with_1M"] = percentiles(saves)
    report["composite_key_lookup_with_1M"] = percentiles(lookups)
    store.close()
    report["store_file_mb"] = (work / "home" / "site.duckdb").stat().st_size / 1e6
    write_report("store", report)


if __name__ == "__main__":
    main()
