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
    from vital_desktop.services.demo_site import seed_demo_label_types

    seed_demo_label_types(store)  # label types are site data: the labels below are the demo's type
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


def save_floor(store, sheet_id: str, ref: str, i: int) -> float:
    """The least a save costs here: read the label by key, update it by id, append a history row."""
    data = json.dumps({"defect_type": CLASSES[i % 5], "severity": "minor"}, sort_keys=True, separators=(",", ":"))
    start = time.perf_counter()
    with store.session() as s:
        raw = raw_connection(s)
        label_id, version = raw.execute("SELECT id, version FROM canonical_labels WHERE sheet_id = ? AND item_ref = ? "
                                        "AND label_type = 'classification'", [sheet_id, ref]).fetchall()[0]
        now = utcnow()
        raw.execute("UPDATE canonical_labels SET label_data = ?::JSON, version = ?, updated_at = ? WHERE id = ?",
                    [data, version + 1, now, label_id])
        raw.execute("INSERT INTO canonical_label_history (id, label_id, sheet_id, item_ref, label_type, version, "
                    "label_data, allowed_uses, prohibited_uses, usage_reason, data_classification, notes, origin, "
                    "action, reason, changed_by, changed_at) VALUES (?, ?, ?, ?, 'classification', ?, ?::JSON, "
                    "'[]'::JSON, '[]'::JSON, '', '[]'::JSON, '', 'site', 'update', 'floor', 'system', ?)",
                    [new_ids(1)[0], label_id, sheet_id, ref, version + 1, data, now])
    return time.perf_counter() - start


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
    parser.add_argument("--quick-seed", action="store_true",
                        help="load the save store with the floor insert instead of a full import (same rows)")
    parser.add_argument("--saves-only", action="store_true", help="skip the bulk import trials")
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
    for trial in range(0 if args.saves_only else args.repeats):
        order = ("floor", "import") if trial % 2 == 0 else ("import", "floor")
        for kind in order:
            home = fresh_copy(template, work / "trial")
            if kind == "floor":
                floor_s.append(run_floor(home, tables))
            else:
                import_s.append(run_import(home, label_file, args.labels))
            print(f"trial {trial} {kind}: {(floor_s if kind == 'floor' else import_s)[-1]:.2f} s", flush=True)

    # Single saves with N labels present (a fresh copy loaded by the floor insert: same rows),
    # interleaved with the floor of a save: one transaction that reads the stored label by its
    # key, updates it by id and appends its history row, in plain SQL on the same store.
    home = fresh_copy(template, work / "trial")
    if args.quick_seed:
        run_floor(home, tables)
    else:
        run_import(home, label_file, args.labels)
    store = open_store(home)
    rng = random.Random(11)
    saves, floors = [], []
    for i in range(args.saves):
        ref = f"B-{rng.randrange(args.labels):07d}"
        start = time.perf_counter()
        result, _ = labels.set_label(store, actor=SYSTEM_USER, sheet="big", item_ref=ref, label_type="classification",
                                     label_data={"defect_type": CLASSES[(i + 1) % 5], "severity": "major"},
                                     reason="bench")
        saves.append(time.perf_counter() - start)
        assert result.outcome in ("updated", "unchanged"), result.outcome
        floors.append(save_floor(store, sheet_id, f"B-{rng.randrange(args.labels):07d}", i))
    store.close()

    floor_median = statistics.median(floor_s) if floor_s else float("nan")
    import_median = statistics.median(import_s) if import_s else float("nan")
    report = {
        "date": time.strftime("%Y-%m-%d"), "git_commit": git_commit(),
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "labels": args.labels, "repeats": args.repeats,
        "note": (f"{args.repeats} interleaved trials of each (fewer than 5 at 1M labels: each trial is a fresh "
                 "store copy and a full import); medians"),
        "bulk_import": {} if args.saves_only else {
            "floor_seconds": floor_s, "import_seconds": import_s, "floor_median_s": floor_median,
            "import_median_s": import_median, "ratio_to_floor": import_median / floor_median,
            "import_labels_per_s": args.labels / import_median, "target_ratio": 1.5},
        "single_save_with_labels_present": {**percentiles(saves), "target_p99_ms": 70,
                                            "floor": percentiles(floors),
                                            "p99_ratio_to_floor": percentiles(saves)["p99_ms"]
                                            / max(percentiles(floors)["p99_ms"], 1e-9),
                                            "floor_is": "read by key + update by id + history insert, one "
                                                        "transaction, plain SQL, interleaved save by save"},
    }
    if args.saves_only:  # the bulk numbers stay those of the last full run (they say which commit)
        previous = Path(__file__).resolve().parent / "results" / "label_write.json"
        kept = json.loads(previous.read_text()) if previous.is_file() else {}
        report["bulk_import"] = {**kept.get("bulk_import", {}), "git_commit": kept.get("git_commit")}
        report["note"] = "saves only (--saves-only); bulk_import kept from the run it names"
    report["single_save_with_labels_present"]["seeded_by"] = "floor insert" if args.quick_seed else "full import"
    write_report("label_write", report)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
