"""The one label write path in bulk and for single saves, against its floor, in one run.

    .venv/bin/python benchmarks/bench_label_write.py [--labels 1000000] [--repeats 3] [--saves 300]

1. Bulk import: `labels.import_labels` of a CSV of N canonical labels (read, validated, with
   history, one transaction) versus the FLOOR: the same final rows, already in Arrow, inserted
   into the same two tables (canonical_labels, canonical_label_history) with one
   ``INSERT … SELECT`` each. Every trial starts from a fresh copy of the same store (a sheet of
   N items, no labels); floor and import trials are interleaved; medians and their ratio.
2. Single label save latency (a new version of an existing label through `labels.set_label`)
   with N labels present, p50/p95/p99.

Writes benchmarks/results/label_write.json with the date, git commit and load average.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa

from benchmarks._common import percentiles, write_report
from vital_desktop.core.ids import new_ids, utcnow
from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.services import labels, sheets
from vital_desktop.store import open_store
from vital_desktop.store.bulk import raw_connection

CLASSES = ["inclusion", "crack", "delamination", "surface_contamination", "none"]
SEVERITIES = ["none", "minor", "major", "critical"]
USES = ["training", "validation", "few_shot", "evaluation", "testing"]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_template(work: Path, n: int) -> tuple[Path, Path]:
    """A store with a sheet of n items (metadata only) and the CSV of n labels to import."""
    items = work / "items.csv"
    with open(items, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["item_id", "detector_serial"])
        for i in range(n):
            writer.writerow([f"B-{i:07d}", f"SN-{i % 997:04d}"])
    home = work / "template"
    store = open_store(home)
    sheets.import_sheet(store, actor=SYSTEM_USER, name="big", metadata_path=items, key_column="item_id")
    store.close()
    label_file = work / "labels.csv"
    with open(label_file, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sheet", "item_ref", "label_type", "label_data", "prohibited_uses", "usage_reason"])
        for i in range(n):
            limited = i % 10 == 0
            writer.writerow(["big", f"B-{i:07d}", "classification",
                             json.dumps({"defect_type": CLASSES[i % 5], "severity": SEVERITIES[i % 4]}),
                             "training" if limited else "", "serial number visible" if limited else ""])
    return home, label_file


def floor_tables(n: int, sheet_id: str) -> tuple[pa.Table, pa.Table]:
    """The final rows of the import (ids, canonical JSON, constraints), built outside the timing."""
    now = utcnow()
    ids = new_ids(2 * n)
    data = [json.dumps({"defect_type": CLASSES[i % 5], "severity": SEVERITIES[i % 4]}, sort_keys=True,
                       separators=(",", ":")) for i in range(n)]
    limited = [i % 10 == 0 for i in range(n)]
    allowed = [json.dumps([u for u in USES if u != "training"]) if x else json.dumps(USES) for x in limited]
    prohibited = [json.dumps(["training"]) if x else "[]" for x in limited]
    reason = ["serial number visible" if x else "" for x in limited]
    common = {
        "sheet_id": [sheet_id] * n, "item_ref": [f"B-{i:07d}" for i in range(n)],
        "label_type": ["classification"] * n, "label_data": data, "version": [1] * n, "allowed_uses": allowed,
        "prohibited_uses": prohibited, "usage_reason": reason, "data_classification": ["[]"] * n,
        "confidence": pa.nulls(n, pa.string()), "notes": [""] * n, "origin": ["site"] * n,
    }
    label_table = pa.table({"id": ids[:n], **common, "review_state": ["ok"] * n, "created_by": ["system"] * n,
                            "created_at": [now] * n, "updated_by": ["system"] * n, "updated_at": [now] * n})
    history = pa.table({"id": ids[n:], "label_id": ids[:n], **common, "action": ["create"] * n, "reason": [""] * n,
                        "changed_by": ["system"] * n, "changed_at": [now] * n})
    return label_table, history


def json_select(table: pa.Table) -> str:
    casts = {"label_data", "allowed_uses", "prohibited_uses", "data_classification"}
    return ", ".join(f"{c}::JSON" if c in casts else c for c in table.column_names)


def run_floor(home: Path, tables: tuple[pa.Table, pa.Table]) -> float:
    store = open_store(home)
    try:
        start = time.perf_counter()
        with store.session() as s:
            raw = raw_connection(s)
            for name, table in zip(("canonical_labels", "canonical_label_history"), tables, strict=True):
                raw.register("_floor", table)
                raw.execute(f"INSERT INTO {name} ({', '.join(table.column_names)}) SELECT {json_select(table)} "
                            "FROM _floor")
                raw.unregister("_floor")
        return time.perf_counter() - start
    finally:
        store.close()


def run_import(home: Path, label_file: Path, n: int) -> float:
    store = open_store(home)
    try:
        start = time.perf_counter()
        outcome, _ = labels.import_labels(store, actor=SYSTEM_USER, path=label_file)
        seconds = time.perf_counter() - start
        assert outcome.created == n, outcome
        return seconds
    finally:
        store.close()


def fresh_copy(template: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--saves", type=int, default=300)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vital-bench-label-write-"))
    load_before = os.getloadavg()
    template, label_file = build_template(work, args.labels)
    store = open_store(template)
    with store.read() as s:
        sheet_id = labels.sheet_row(s, "big").id
    store.close()
    tables = floor_tables(args.labels, sheet_id)

    floor_s, import_s = [], []
    for trial in range(args.repeats):
        order = ("floor", "import") if trial % 2 == 0 else ("import", "floor")
        for kind in order:
            home = fresh_copy(template, work / "trial")
            if kind == "floor":
                floor_s.append(run_floor(home, tables))
            else:
                import_s.append(run_import(home, label_file, args.labels))
            print(f"trial {trial} {kind}: {(floor_s if kind == 'floor' else import_s)[-1]:.2f} s", flush=True)

    # Single saves with N labels present (the last import trial's store).
    home = fresh_copy(template, work / "trial")
    run_import(home, label_file, args.labels)
    store = open_store(home)
    rng = random.Random(11)
    saves = []
    for i in range(args.saves):
        ref = f"B-{rng.randrange(args.labels):07d}"
        start = time.perf_counter()
        result, _ = labels.set_label(store, actor=SYSTEM_USER, sheet="big", item_ref=ref, label_type="classification",
                                     label_data={"defect_type": CLASSES[(i + 1) % 5], "severity": "major"},
                                     reason="bench")
        saves.append(time.perf_counter() - start)
        assert result.outcome in ("updated", "unchanged"), result.outcome
    store.close()

    floor_median, import_median = statistics.median(floor_s), statistics.median(import_s)
    report = {
        "date": time.strftime("%Y-%m-%d"), "git_commit": git_commit(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "labels": args.labels, "repeats": args.repeats,
        "note": (f"{args.repeats} interleaved trials of each (fewer than 5 at 1M labels: each trial is a fresh "
                 "store copy and a full import); medians"),
        "bulk_import": {"floor_seconds": floor_s, "import_seconds": import_s, "floor_median_s": floor_median,
                        "import_median_s": import_median, "ratio_to_floor": import_median / floor_median,
                        "import_labels_per_s": args.labels / import_median, "target_ratio": 1.5},
        "single_save_with_labels_present": {**percentiles(saves), "target_p99_ms": 70},
    }
    write_report("label_write", report)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
