"""MONITOR on a big prediction log, and local retraining on the demo sheet.

Inserts 1,000,000 predictions (Arrow bulk path) for one classifier whose card holds a training
baseline, with 1,000 expertly labelled items among them, then times each monitoring query
(`monitor_report` measures every query it runs) and the gap analysis, over several repeats
(medians quoted). Then builds the demo site and times `training.train_classifier` on its
sheet (130 gated labels of 256x256 images).

    .venv/bin/python benchmarks/bench_monitor.py [--rows 1000000] [--repeats 5]

Writes benchmarks/results/monitor.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vital_desktop.core.ids import new_id  # noqa: E402
from vital_desktop.core.users import SYSTEM_USER  # noqa: E402
from vital_desktop.inference.classifier import ImageStats  # noqa: E402
from vital_desktop.services import accounts, demo_site, feedback, monitor, site, training  # noqa: E402
from vital_desktop.store import open_store  # noqa: E402
from vital_desktop.store.bulk import insert_arrow  # noqa: E402
from vital_desktop.store.models import ModelRow  # noqa: E402

CLASSES = ["none", "inclusion", "crack", "delamination", "surface_contamination"]


def build_log(store, rows: int, seed: int = 1) -> tuple[str, float]:
    rng = np.random.default_rng(seed)
    stats = [ImageStats(float(m), float(s), 256, 256)
             for m, s in zip(rng.normal(130, 8, 400), rng.normal(7, 1, 400), strict=True)]
    baseline = training.baseline_statistics(stats, list(rng.choice(CLASSES, 400)))
    model_id, sheet_id = new_id(), new_id()
    with store.session() as s:
        s.add(ModelRow(id=model_id, name="bench-classifier", version=1, kind="onnx_classifier", path="/bench.onnx",
                       file_sha256="0" * 64, size_bytes=1, classes=CLASSES, created_by="bench",
                       card={"baseline": baseline, "metrics": {"accuracy": 0.93},
                             "training": {"class_counts": {c: 80 for c in CLASSES}}}))
    started = time.perf_counter()
    n_items = 1000
    labels = pa.table({
        "id": [new_id() for _ in range(n_items)], "sheet_id": [sheet_id] * n_items,
        "item_ref": [f"INS-{i:05d}" for i in range(n_items)], "label_type": ["classification"] * n_items,
        "label_data": [json.dumps({"defect_type": CLASSES[i % 5]}) for i in range(n_items)],
        "version": [1] * n_items, "allowed_uses": ["[]"] * n_items, "prohibited_uses": ["[]"] * n_items,
        "data_classification": ["[]"] * n_items, "created_by": ["bench"] * n_items,
        "usage_reason": [""] * n_items, "notes": [""] * n_items, "review_state": ["ok"] * n_items,
        "origin": ["site"] * n_items,
        "updated_by": ["bench"] * n_items,
        "created_at": [dt.datetime(2024, 1, 1)] * n_items, "updated_at": [dt.datetime(2024, 1, 1)] * n_items,
    })
    chunk = 250_000
    start_time = np.datetime64("2024-03-01T00:00:00")
    with store.session() as s:
        insert_arrow(s, "canonical_labels", labels, casts={c: "JSON" for c in
                                                           ("label_data", "allowed_uses", "prohibited_uses",
                                                            "data_classification")})
        for offset in range(0, rows, chunk):
            n = min(chunk, rows - offset)
            index = np.arange(offset, offset + n)
            # Drift on purpose in the last 10 % of the log: brighter images at a new resolution.
            late = index >= int(rows * 0.9)
            table = pa.table({
                "id": [new_id() for _ in range(n)], "model_id": [model_id] * n, "model_name": ["bench-classifier"] * n,
                "model_version": np.ones(n, dtype=np.int32), "kind": ["onnx_classifier"] * n,
                "sheet_id": [sheet_id] * n, "item_ref": [f"INS-{i % 5000:05d}" for i in index],
                "image_path": pa.nulls(n, pa.string()), "output": ["{}"] * n,
                "predicted_class": [CLASSES[i] for i in rng.integers(0, 5, n)],
                "confidence": rng.uniform(0.3, 1.0, n), "latency_ms": rng.gamma(2.0, 4.0, n),
                "image_mean": rng.normal(130, 8, n) + np.where(late, 20.0, 0.0), "image_std": rng.normal(7, 1, n),
                "image_width": np.where(late, 512, 256).astype(np.int32),
                "image_height": np.where(late, 512, 256).astype(np.int32),
                "created_by": ["bench"] * n,
                "created_at": pa.array(start_time + (index * 2).astype("timedelta64[s]"), pa.timestamp("us")),
            })
            insert_arrow(s, "predictions", table, casts={"output": "JSON"})
    return model_id, time.perf_counter() - started


def time_training(repeats: int) -> dict:
    home = Path(tempfile.mkdtemp()) / "demo"
    started = time.perf_counter()
    site.init_site(home, demo=True)
    build_s = time.perf_counter() - started
    store = open_store(home)
    try:
        engineer = accounts.get_user(store, "engineer")
        times, results = [], []
        for index in range(repeats):
            started = time.perf_counter()
            result, _ = training.train_classifier(store, actor=engineer, name="bench-train", sheet=demo_site.DEMO_SHEET,
                                                  seed=42 + index)
            times.append(time.perf_counter() - started)
            results.append(result)
        return {
            "demo_build_s": round(build_s, 2),
            "images": results[0].images,
            "train_and_register_s": [round(t, 3) for t in times],
            "median_s": round(statistics.median(times), 3),
            "held_out_accuracy": [r.held_out_accuracy for r in results],
        }
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--train-repeats", type=int, default=3)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp()) / "bench"
    store = open_store(home)
    accounts.add_user(store, actor=SYSTEM_USER, username="bench", password="bench-pass-1", role="engineer")
    model_id, insert_s = build_log(store, args.rows)
    per_query: dict[str, list[float]] = {}
    totals, gaps = [], []
    report = None
    for _ in range(args.repeats):
        started = time.perf_counter()
        report = monitor.monitor_report(store, model=model_id)
        totals.append((time.perf_counter() - started) * 1000.0)
        for name, ms in report.query_ms.items():
            per_query.setdefault(name, []).append(ms)
        started = time.perf_counter()
        feedback.gap_analysis(store, model=model_id)
        gaps.append((time.perf_counter() - started) * 1000.0)
    assert report is not None
    windowed = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        monitor.monitor_report(store, model=model_id, since="2024-03-22")
        windowed.append((time.perf_counter() - started) * 1000.0)
    store.close()

    result = {
        "benchmark": "monitor",
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": __import__("os").cpu_count()},
        "predictions": args.rows,
        "labelled_items": 1000,
        "insert_predictions_and_labels_s": round(insert_s, 2),
        "insert_rows_per_s": round(args.rows / insert_s),
        "repeats": args.repeats,
        "query_ms_median": {k: round(statistics.median(v), 2) for k, v in per_query.items()},
        "query_ms_all": {k: [round(x, 2) for x in v] for k, v in per_query.items()},
        "monitor_report_total_ms_median": round(statistics.median(totals), 2),
        "monitor_report_window_since_ms_median": round(statistics.median(windowed), 2),
        "gap_analysis_ms_median": round(statistics.median(gaps), 2),
        "alerts_found": [a.message for a in report.alerts],
        "accuracy_overall": report.accuracy["overall"],
        "training": time_training(args.train_repeats),
    }
    out = ROOT / "benchmarks" / "results" / "monitor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "query_ms_all"}, indent=2))


if __name__ == "__main__":
    main()
