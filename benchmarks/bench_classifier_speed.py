"""Classifier speed: train time at 500 and 5,000 images; predict images/s single and batched; whether
batched prediction overlaps decoding and inference; Arrow vs ORM logging of predictions.

Run: ``.venv/bin/python benchmarks/bench_classifier_speed.py [--quick] [--data DIR]`` →
``benchmarks/results/classifier_speed.json``.

Overlap: in the same run and interleaved, (a) decoding the files alone (the same thread pool),
(b) onnxruntime alone on the already-decoded batches, (c) `OnnxClassifier.predict_paths`
(both). Medians of >= 5 repeats; the ratio is (c) / max((a), (b)) — 1.0 means the slower stage
hides the other completely, a sum of both would be (a + b) / max(a, b).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_report
from bench_classifier import git_commit

from vital_desktop.inference.classifier import OnnxClassifier, decode_chunks, load_image
from vital_desktop.inference.train_classifier import train_image_classifier


def demo(data: Path, n: int):
    from vital_desktop.demo import generate_demo_files

    files = generate_demo_files(data / f"demo-{n}", seed=7, n_images=n)
    refs = sorted(files.labels)
    return [files.image_paths[r] for r in refs], [files.labels[r] for r in refs], files.classes


def train_times(data: Path, sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        paths, labels, classes = demo(data, n)
        started = time.perf_counter()
        model = train_image_classifier(paths, labels, classes, seed=0)
        seconds = time.perf_counter() - started
        out[str(n)] = {"seconds": round(seconds, 2), "held_out_accuracy": model.card["metrics"]["accuracy"],
                       "chosen": model.card["model_selection"]["chosen"], "images_per_s": round(n / seconds, 1)}
        print("train", n, out[str(n)], flush=True)
    return out


def predict_speed(data: Path, work: Path, repeats: int, batch_size: int = 64) -> dict:
    paths, labels, classes = demo(data, 500)
    model = train_image_classifier(paths, labels, classes, seed=0)
    path = model.save(work / "speed.onnx")
    classifier = OnnxClassifier(path, threads=2)
    spec = classifier.info.preprocess
    classifier.run(load_image(paths[0], spec)[0][None])
    batches = [chunk.batch for chunk in decode_chunks(paths, spec, chunk_size=batch_size, workers=2)]
    decode_s, infer_s, both_s = [], [], []
    for _ in range(repeats):
        started = time.perf_counter()
        for _chunk in decode_chunks(paths, spec, chunk_size=batch_size, workers=2):
            pass
        decode_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        for batch in batches:
            classifier.run(batch)
        infer_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        classifier.predict_paths(paths, batch_size=batch_size)
        both_s.append(time.perf_counter() - started)
    single = []
    for image_path in paths[:200]:
        started = time.perf_counter()
        tensor, _ = load_image(image_path, spec)
        classifier.run(tensor[None])
        single.append(time.perf_counter() - started)
    d, i, b = (statistics.median(v) for v in (decode_s, infer_s, both_s))
    return {
        "images": len(paths), "batch_size": batch_size, "repeats": repeats,
        "decode_only_s_median": round(d, 3), "onnxruntime_only_s_median": round(i, 3),
        "batched_predict_s_median": round(b, 3),
        "ratio_batched_over_slower_stage": round(b / max(d, i), 3),
        "ratio_if_sequential": round((d + i) / max(d, i), 3),
        "batched_images_per_s": round(len(paths) / b, 1),
        "single_image_per_s": round(1 / statistics.median(single), 1),
        "single_image_ms_p50": round(statistics.median(single) * 1000, 2),
    }


def logging_speed(work: Path, rows: int, repeats: int) -> dict:
    """Logging `rows` predictions: one Arrow insert (what predict does) vs the ORM (what it did)."""
    from vital_desktop.core.ids import new_ids
    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.inference.classifier import ClassifierResult, ImageStats
    from vital_desktop.services import predict
    from vital_desktop.services.registry import ModelInfo
    from vital_desktop.store import open_store
    from vital_desktop.store.models import Prediction

    store = open_store(work / "log-home")
    info = ModelInfo("m", "m", 1, "onnx_classifier", "x", "h", 1, ["a", "b"], {}, "site", "active", "t", None)
    results = [ClassifierResult(f"/img/{k}.png", "a", 0.9, {"a": 0.9, "b": 0.1}, 1.0, ImageStats(100.0, 10.0, 64, 64))
               for k in range(rows)]
    targets = [predict._Target(r.path, "sheet", f"item-{k}") for k, r in enumerate(results)]
    arrow_s, orm_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        with store.session() as s:
            predict.log_classifier_batch(s, predict._columns(info, targets, results, SYSTEM_USER, new_ids(rows)))
        arrow_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        with store.session() as s:
            s.add_all([Prediction(model_id=info.id, model_name=info.name, model_version=1, kind=info.kind,
                                  sheet_id=t.sheet_id, item_ref=t.item_ref, image_path=t.image_path,
                                  output={"probabilities": r.probabilities}, predicted_class=r.predicted_class,
                                  confidence=r.confidence, latency_ms=r.latency_ms, image_mean=100.0, image_std=10.0,
                                  image_width=64, image_height=64, created_by="system")
                       for t, r in zip(targets, results, strict=False)])
        orm_s.append(time.perf_counter() - started)
    store.close()
    a, o = statistics.median(arrow_s), statistics.median(orm_s)
    return {"rows": rows, "repeats": repeats, "arrow_s_median": round(a, 4), "orm_s_median": round(o, 4),
            "speed_up": round(o / a, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="vital-bench-speed-"))
    work = Path(tempfile.mkdtemp(prefix="vital-bench-speed-work-"))
    report = {"git_commit": git_commit(), "load_average_start": os.getloadavg(), "cpus": os.cpu_count()}
    report["predict"] = predict_speed(data, work, 5)
    report["logging"] = logging_speed(work, 500 if args.quick else 2000, 5)
    report["train"] = train_times(data, [500] if args.quick else [500, 5000])
    report["load_average_end"] = os.getloadavg()
    write_report("classifier_speed", report)


if __name__ == "__main__":
    main()
