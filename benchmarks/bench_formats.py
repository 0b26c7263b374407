"""Formats, folder sheets, rescans and erasure (issue 12).

    .venv/bin/python benchmarks/bench_formats.py [--images 10000] [--rescan-items 100000]
        [--erase-labels 1000000] [--repeats 5]

Writes benchmarks/results/formats.json:

- sheet import of N images (bare folder, and metadata CSV + folder) and a no-change rescan,
  each against the floor measured in the same run, interleaved: SHA-256 of every file in a
  thread pool plus one Arrow insert of the item rows; medians of `--repeats` runs and the ratio;
- import of a COCO file with 5 annotations (box + polygon) per image for the N images, and
  export of the same labels as YOLO and COCO;
- rescan of a `--rescan-items` sheet with 1% new and 0.1% changed files;
- erasure of 1,000 items from a site holding `--erase-labels` labels.

Times are wall-clock on a shared machine (load average recorded); read them with the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa

from benchmarks._common import RESULTS, Timer, write_report
from vital_desktop.core.ids import new_ids
from vital_desktop.core.users import SYSTEM_USER
from vital_desktop.services import erasure, formats, labels, sheet_rescan, sheets
from vital_desktop.store import open_store
from vital_desktop.store.bulk import insert_arrow

BOX_CLASSES = ["inclusion", "crack", "delamination", "surface_contamination"]


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[1]).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def make_pngs(folder: Path, n: int, size: int, seed: int = 1, start: int = 0) -> list[str]:
    from PIL import Image

    rng = random.Random(seed)
    names = []
    for i in range(start, start + n):
        rel = f"d{i // 1000:03d}/img_{i:06d}.png"
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.frombytes("L", (size, size), rng.randbytes(size * size)).save(path, compress_level=1)
        names.append(rel)
    return names


def floor_once(store, folder: Path, rels: list[str]) -> float:
    """SHA-256 of every file in a thread pool, then one Arrow insert of the item rows."""
    def digest(rel: str) -> tuple[str, int]:
        with open(folder / rel, "rb") as handle:
            data = handle.read()
        return hashlib.sha256(data).hexdigest(), len(data)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        results = list(pool.map(digest, rels, chunksize=64))
    sheet_id = new_ids(1)[0]
    table = pa.table({"id": new_ids(len(rels)), "sheet_id": [sheet_id] * len(rels), "item_ref": rels,
                      "position": list(range(len(rels))), "image_path": rels,
                      "file_sha256": [h for h, _ in results], "file_size": pa.array([n for _, n in results], pa.int64()),
                      "missing": [False] * len(rels), "metadata": ["{}"] * len(rels)})
    with store.session() as s:
        insert_arrow(s, "sheet_items", table, casts={"metadata": "JSON"})
    return time.perf_counter() - t0


def site_store(home: Path):
    """A fresh store with the demo's label types (label types are site data)."""
    from vital_desktop.services.demo_site import seed_demo_label_types

    store = open_store(home)
    seed_demo_label_types(store)
    return store


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def bench_sheet_import(work: Path, n: int, repeats: int) -> dict:
    folder = work / "images"
    rels = make_pngs(folder, n, 256)
    meta = work / "meta.csv"
    meta.write_text("item_id,image_path\n" + "".join(f"I{i:06d},{r}\n" for i, r in enumerate(rels)))
    store = site_store(work / "home-import")
    runs: dict[str, list[float]] = {"floor": [], "folder_import": [], "csv_import": [], "rescan_unchanged": []}
    for k in range(repeats):  # interleaved: floor, then each measured path, in every round
        runs["floor"].append(floor_once(store, folder, rels))
        with Timer() as t:
            sheets.import_sheet(store, actor=SYSTEM_USER, name=f"folder-{k}", metadata_path=None, image_root=folder)
        runs["folder_import"].append(t.seconds)
        with Timer() as t:
            sheets.import_sheet(store, actor=SYSTEM_USER, name=f"csv-{k}", metadata_path=meta, key_column="item_id",
                                image_root=folder, image_column="image_path")
        runs["csv_import"].append(t.seconds)
        with Timer() as t:
            sheet_rescan.rescan_sheet(store, actor=SYSTEM_USER, sheet=f"folder-{k}")
        runs["rescan_unchanged"].append(t.seconds)
    store.close()
    floor = median(runs["floor"])
    return {"images": n, "image_size": "256x256 PNG (random pixels)", "repeats": repeats,
            "median_s": {k: round(median(v), 3) for k, v in runs.items()},
            "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
            "ratio_to_floor": {k: round(median(v) / floor, 3) for k, v in runs.items() if k != "floor"},
            "target": "within 1.2x of the floor"}


def bench_coco(work: Path, n: int) -> dict:
    folder = work / "coco-images"
    rels = make_pngs(folder, n, 64, seed=2)
    store = site_store(work / "home-coco")
    sheets.import_sheet(store, actor=SYSTEM_USER, name="coco", metadata_path=None, image_root=folder)
    rng = random.Random(3)
    images, annotations = [], []
    for image_id, rel in enumerate(rels, start=1):
        images.append({"id": image_id, "file_name": rel, "width": 64, "height": 64})
        for _ in range(5):
            x, y = rng.uniform(0, 40), rng.uniform(0, 40)
            w, h = rng.uniform(2, 20), rng.uniform(2, 20)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": rng.randint(1, 4),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0,
                                "segmentation": [[x, y, x + w, y, x + w / 2, y + h]]})
    coco = work / "big-coco.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": i + 1, "name": c} for i, c in enumerate(BOX_CLASSES)]}))
    with Timer() as t_import:
        summary, _ = formats.import_labels(store, actor=SYSTEM_USER, path=coco, sheet="coco", label_type="localization")
    with Timer() as t_yolo:
        formats.export_labels(store, actor=SYSTEM_USER, out=work / "out-yolo", fmt="yolo", sheet="coco",
                              label_type="localization")
    with Timer() as t_coco:
        formats.export_labels(store, actor=SYSTEM_USER, out=work / "out-coco.json", fmt="coco", sheet="coco",
                              label_type="localization")
    store.close()
    return {"images": n, "annotations": len(annotations), "labels_created": summary.created,
            "file_mb": round(coco.stat().st_size / 1e6, 1),
            "note": "each annotation carries a box and a polygon; imported into a boxes label type (the polygons "
                    "are parsed and checked too); YOLO export hard-links the images",
            "import_s": round(t_import.seconds, 3), "export_yolo_s": round(t_yolo.seconds, 3),
            "export_coco_s": round(t_coco.seconds, 3)}


def bench_rescan(work: Path, n: int) -> dict:
    folder = work / "rescan-images"
    with Timer() as t_make:
        make_pngs(folder, n, 8, seed=4)
    store = site_store(work / "home-rescan")
    with Timer() as t_import:
        sheets.import_sheet(store, actor=SYSTEM_USER, name="big", metadata_path=None, image_root=folder)
    new, changed = max(1, n // 100), max(1, n // 1000)
    make_pngs(folder, new, 8, seed=5, start=n)
    from PIL import Image

    for i in range(changed):
        rel = f"d{i // 1000:03d}/img_{i:06d}.png"
        Image.new("L", (8, 8), color=255).save(folder / rel)
    with Timer() as t_rescan:
        report, _ = sheet_rescan.rescan_sheet(store, actor=SYSTEM_USER, sheet="big")
    store.close()
    return {"items": n, "new": report.new, "changed": report.changed, "image_size": "8x8 PNG",
            "make_files_s": round(t_make.seconds, 1), "import_s": round(t_import.seconds, 3),
            "rescan_s": round(t_rescan.seconds, 3)}


def bench_erase(work: Path, n_labels: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    meta = work / "erase.csv"
    meta.write_text("item_id\n" + "".join(f"E{i:07d}\n" for i in range(n_labels)))
    store = site_store(work / "home-erase")
    sheets.import_sheet(store, actor=SYSTEM_USER, name="many", metadata_path=meta, key_column="item_id")
    sheet_id = sheets.get_sheet(store, "many").id
    with Timer() as t_seed:
        for start in range(0, n_labels, 200_000):
            with store.session() as s:
                records = [labels.LabelRecord(sheet_id=sheet_id, item_ref=f"E{i:07d}", label_type="severity",
                                              label_data={"severity": ("none", "minor", "major")[i % 3]})
                           for i in range(start, min(n_labels, start + 200_000))]
                labels.upsert_records(s, SYSTEM_USER, labels.prepare_records(s, records), action="import")
    refs = [f"E{i:07d}" for i in random.Random(6).sample(range(n_labels), 1000)]
    with Timer() as t_erase:
        report, _ = erasure.erase_items(store, actor=SYSTEM_USER, sheet="many", item_refs=refs, reason="benchmark")
    store.close()
    return {"labels": n_labels, "erased_items": report.items, "erased_labels": report.labels,
            "seed_through_write_path_s": round(t_seed.seconds, 1), "erase_s": round(t_erase.seconds, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--rescan-items", type=int, default=100_000)
    parser.add_argument("--erase-labels", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated: import,coco,rescan,erase")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    work = Path(tempfile.mkdtemp(prefix="vital-bench-formats-"))
    report: dict = {"date": time.strftime("%Y-%m-%d"), "git_commit": git_commit(),
                    "load_average_start": os.getloadavg(), "scale": vars(args)}
    previous = RESULTS / "formats.json"
    if only and previous.is_file():  # re-measuring some sections keeps the others (each names its own run)
        kept = json.loads(previous.read_text())
        report = {k: v for k, v in kept.items() if k not in ("benchmark", "machine")} | {"scale_" + "-".join(
            sorted(only)): vars(args)}
    sections = [("import", "sheet_import_vs_floor", lambda: bench_sheet_import(work / "import", args.images, args.repeats)),
                ("coco", "coco_import_and_exports", lambda: bench_coco(work / "coco", args.images)),
                ("rescan", "rescan", lambda: bench_rescan(work / "rescan", args.rescan_items)),
                ("erase", "erase", lambda: bench_erase(work / "erase", args.erase_labels))]
    try:
        for short, key, run in sections:
            if not only or short in only:
                load_before = os.getloadavg()
                report[key] = {**run(), "git_commit": git_commit(), "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                               time.gmtime()), "load_average_before": load_before, "load_average_after": os.getloadavg()}
                report["load_average_end"] = os.getloadavg()
                write_report("formats", report)  # after each section: a long run stopped early keeps what it measured
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
