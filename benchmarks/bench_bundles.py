"""Bundle numbers: verify + import of a 100 MB model and 100,000 canonical labels, hashing
throughput against `sha256sum` on the same file in the same run, and export of 100,000 labels.

    .venv/bin/python benchmarks/bench_bundles.py [--model-mb 100] [--labels 100000]

The model and the labels travel on their own channels (models, labels), so "a bundle holding
a 100 MB model and 100,000 labels" is measured as the two bundles an administrator carries
together; both are reported and summed. Writes benchmarks/results/bundles.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import Timer, write_report


def _hash_python(path: Path) -> float:
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return time.perf_counter() - start


def _hash_sha256sum(path: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["sha256sum", str(path)], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-mb", type=int, default=100)
    parser.add_argument("--labels", type=int, default=100_000)
    args = parser.parse_args()

    from vital_desktop.bundles import samples
    from vital_desktop.bundles.simulator import HubSimulator
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts, exchange, sheets
    from vital_desktop.store import audit, open_store
    from vital_desktop.store.models import Setting

    work = Path(tempfile.mkdtemp(prefix="bench-bundles-"))
    try:
        now = int(time.time())
        store = open_store(work / "home")
        accounts.add_user(store, actor=SYSTEM_USER, username="admin", password="admin-pass-1", role="admin")
        admin = accounts.get_user(store, "admin")
        metadata = work / "items.csv"
        with open(metadata, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["inspection_id", "batch"])
            writer.writerows([f"INS-{i:07d}", i % 17] for i in range(args.labels))
        with Timer() as sheet_timer:
            sheets.import_sheet(store, actor=admin, name="Bench", metadata_path=metadata, key_column="inspection_id")
        with store.session() as s:
            s.add(Setting(key="site_id", value="bench-site"))
            audit.record(s, SYSTEM_USER, "bench.site", "bench-site")
        exchange.ensure_site_identity(store, "bench-site")
        hub = HubSimulator(work / "stick", site_id="bench-site", now=now)
        exchange.install_root_of_trust(store, hub.root_file(1), now=now)

        with Timer() as build_model_timer:
            model_bytes = samples.tiny_classifier_onnx(padding_bytes=args.model_mb * 1024 * 1024)
            model_bundle = hub.build("models", hub.model_payloads(onnx_bytes=model_bytes), name="model.vbundle")
        defect = ["inclusion", "crack", "delamination", "surface_contamination", "none"]
        rows = [{"sheet_name": "Bench", "item_ref": f"INS-{i:07d}", "label_data": {"defect_type": defect[i % 5]}}
                for i in range(args.labels)]
        with Timer() as build_labels_timer:
            labels_bundle = hub.build("labels", hub.labels_payload(rows), name="labels.vbundle")
        model_size = model_bundle.path.stat().st_size
        labels_size = labels_bundle.path.stat().st_size

        python_hash = [_hash_python(model_bundle.path) for _ in range(3)]
        sha256sum = [_hash_sha256sum(model_bundle.path) for _ in range(3)]

        with Timer() as verify_model:
            report = exchange.verify_bundle(store, model_bundle.path, now=now)
        assert report["outcome"] == "ok", report
        with Timer() as import_model:
            exchange.import_bundle(store, actor=admin, path=model_bundle.path, now=now)
        with Timer() as verify_labels:
            report = exchange.verify_bundle(store, labels_bundle.path, now=now)
        assert report["outcome"] == "ok", report
        with Timer() as import_labels:
            result = exchange.import_bundle(store, actor=admin, path=labels_bundle.path, now=now)
        assert result.summary.get("created") == args.labels, result.summary

        with Timer() as export_timer:
            exported = exchange.export_bundle(store, actor=admin, to_dir=work / "stick-out", now=now + 60)
        assert exported.rows["canonical_labels"] == args.labels, exported.rows
        store.close()

        mb = model_size / 1e6
        python_median = statistics.median(python_hash)
        sha256sum_median = statistics.median(sha256sum)
        write_report("bundles", {
            "parameters": {"model_mb": args.model_mb, "labels": args.labels},
            "sizes_bytes": {"model_bundle": model_size, "labels_bundle": labels_size, "export": exported.size},
            "seconds": {
                "setup_sheet_import_items": round(sheet_timer.seconds, 3),
                "build_model_bundle": round(build_model_timer.seconds, 3),
                "build_labels_bundle": round(build_labels_timer.seconds, 3),
                "verify_model_bundle": round(verify_model.seconds, 3),
                "import_model_bundle": round(import_model.seconds, 3),
                "verify_labels_bundle": round(verify_labels.seconds, 3),
                "import_labels_bundle": round(import_labels.seconds, 3),
                "verify_plus_import_both": round(verify_model.seconds + import_model.seconds
                                                 + verify_labels.seconds + import_labels.seconds, 3),
                "import_both": round(import_model.seconds + import_labels.seconds, 3),
                "export_labels": round(export_timer.seconds, 3),
            },
            "hashing_model_bundle": {
                "python_hashlib_median_s": round(python_median, 4),
                "sha256sum_median_s": round(sha256sum_median, 4),
                "python_hashlib_mb_per_s": round(mb / python_median, 1),
                "sha256sum_mb_per_s": round(mb / sha256sum_median, 1),
                "python_over_sha256sum_speed_ratio": round(sha256sum_median / python_median, 3),
                "import_model_effective_mb_per_s": round(mb / import_model.seconds, 1),
                "samples": {"python_s": [round(x, 4) for x in python_hash], "sha256sum_s": [round(x, 4) for x in sha256sum]},
            },
            "notes": ("import = bounded copy into staging (hashed) + signature/policy + extract (hashed) + content "
                      "checks (onnx.checker, Parquet schema) + one transaction; the model file is copied once more "
                      "into models/. verify does all but the transaction."),
        })
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
