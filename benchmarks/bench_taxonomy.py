"""Taxonomy numbers: renaming a class with 100,000 labels of it present, against a floor.

    .venv/bin/python benchmarks/bench_taxonomy.py [--labels 100000] [--runs 5]

Each rename publishes the next label-type version and writes a new version of every label of
the class (the row update plus a history row) through the one write path, in one transaction.
The floor, measured interleaved in the same run, is the least such a change can cost here: the
same number of rows inserted from Arrow with one ``INSERT … SELECT`` into a copy of each of the
two label tables. While each rename runs on a worker thread, the main thread ticks every 5 ms
(as a GUI event loop would) and the longest gap between ticks is the worst stall it would see.
Writes benchmarks/results/taxonomy.json.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_report


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], check=False).stdout.strip()
    except OSError:
        return ""


def _floor(store, rows: int) -> float:
    """Insert `rows` label rows and `rows` history rows from Arrow into scratch copies of the tables."""
    import pyarrow as pa

    from vital_desktop.store.bulk import insert_arrow, raw_connection

    with store.session() as s:
        raw = raw_connection(s)
        raw.execute("CREATE TEMP TABLE floor_labels AS SELECT * FROM canonical_labels LIMIT 0")
        raw.execute("CREATE TEMP TABLE floor_history AS SELECT * FROM canonical_label_history LIMIT 0")
        table = raw.sql("SELECT * FROM canonical_labels").to_arrow_table().slice(0, rows)
        history = raw.sql("SELECT * FROM canonical_label_history").to_arrow_table().slice(0, rows)
        start = time.perf_counter()
        insert_arrow(s, "floor_labels", pa.Table.from_batches(table.to_batches()))
        insert_arrow(s, "floor_history", pa.Table.from_batches(history.to_batches()))
        seconds = time.perf_counter() - start
        raw.execute("DROP TABLE floor_labels")
        raw.execute("DROP TABLE floor_history")
    return seconds


def _rename(store, actor, old: str, new: str) -> tuple[float, float, int]:
    """(seconds, worst main-thread gap in ms, labels changed) of one rename on a worker thread."""
    from vital_desktop.services import taxonomy

    out: dict = {}

    def work() -> None:
        start = time.perf_counter()
        impact, _ = taxonomy.apply(store, actor, "parts", "rename_class", old=old, new=new)
        out["seconds"], out["changed"] = time.perf_counter() - start, impact.labels_changed

    thread = threading.Thread(target=work)
    last, worst = time.perf_counter(), 0.0
    thread.start()
    while thread.is_alive():
        time.sleep(0.005)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    thread.join()
    return out["seconds"], worst * 1000.0, out["changed"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, label_type_edits, labels, sheets
    from vital_desktop.store import open_store

    work = Path(tempfile.mkdtemp(prefix="bench-taxonomy-"))
    try:
        store = open_store(work / "home")
        accounts.add_user(store, actor=SYSTEM_USER, username="eng", password="bench-pass-1", role="engineer")
        actor = accounts.get_user(store, "eng")
        metadata = work / "parts.csv"
        with open(metadata, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["part_id", "batch"])
            writer.writerows([f"P-{i:07d}", i % 17] for i in range(args.labels))
        sheets.import_sheet(store, actor=actor, name="Parts", metadata_path=metadata, key_column="part_id")
        label_type_edits.create_label_type(store, actor, {"name": "parts", "classes": ["bolt", "nut"]})
        with store.session() as s:
            sheet_id = sheets.get_sheet(store, "Parts").id
            records = [labels.LabelRecord(sheet_id=sheet_id, item_ref=f"P-{i:07d}", label_type="parts",
                                          label_data={"class": "bolt"}) for i in range(args.labels)]
            setup = time.perf_counter()
            labels.upsert_records(s, actor, labels.prepare_records(s, records))
            setup = time.perf_counter() - setup
        floors, renames, stalls, changed = [], [], [], []
        names = ["bolt"] + [f"bolt_v{i}" for i in range(1, args.runs + 1)]
        for run in range(args.runs):
            floors.append(_floor(store, args.labels))
            seconds, stall, count = _rename(store, actor, names[run], names[run + 1])
            renames.append(seconds)
            stalls.append(stall)
            changed.append(count)
        store.close()
        median_rename, median_floor = statistics.median(renames), statistics.median(floors)
        write_report("taxonomy", {
            "git_commit": _commit(),
            "load_average": os.getloadavg(),
            "labels": args.labels,
            "runs": args.runs,
            "setup_insert_labels_s": round(setup, 3),
            "rename_class": {
                "what": f"rename a class with {args.labels} labels of it: next version published, every label "
                        "re-versioned (row update + history row) through the write path's bulk relabel "
                        "(label_write_maintenance.relabel_in_bulk)",
                "seconds": [round(x, 3) for x in renames],
                "median_s": round(median_rename, 3),
                "labels_changed": changed,
                "worst_main_thread_stall_ms": [round(x, 1) for x in stalls],
                "median_worst_stall_ms": round(statistics.median(stalls), 1),
            },
            "floor_arrow_insert": {
                "what": f"{args.labels} label rows + {args.labels} history rows inserted from Arrow "
                        "(one INSERT … SELECT each) into scratch copies, interleaved with the renames",
                "seconds": [round(x, 3) for x in floors],
                "median_s": round(median_floor, 3),
            },
            "ratio_rename_to_floor": round(median_rename / median_floor, 2) if median_floor else None,
        })
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
