"""Classifier speed, this tree against a baseline commit, interleaved in the same run.

Run: ``.venv/bin/python benchmarks/bench_classifier_speed.py [--quick] [--baseline COMMIT]
[--sections predict,train500,train5000]`` → ``benchmarks/results/classifier_speed.json`` (the
sections not run are kept from the file, each with its own date, commit and load).

The baseline tree is exported with ``git archive`` into a temporary folder; two long-lived
worker processes (this file with ``--worker``, one importing the baseline's ``vital_desktop``,
one this tree's) get the same commands in turn, so both sides see the same machine load:

- ``predict``: one repeat of (a) decoding the 500 demo files alone, with the decode pool size
  the product's batched predict uses, (b) onnxruntime alone on the already-decoded batches,
  with the thread count the product's batched predict uses, (c) ``OnnxClassifier.predict_paths``
  (both overlapped, product settings). Overlap ratio = (c) / max((a), (b)): 1.0 means the slower
  stage hides the other completely, sequential stages would give (a + b) / max(a, b). Also
  onnxruntime alone at 1 and at 2 threads (its best is what the pipeline is held against
  too), single-image latency, and decoding 200 large JPEGs (the demo images enlarged to
  1024x1024, quality 90) alone. Each of (a)-(c) also records its CPU seconds: CPU / wall is
  how many cores the machine actually gave the process, which bounds the overlap (on one
  core's worth of CPU no pipeline beats (a + b) / max(a, b)); and the pipeline's two calls
  timed apart give how long inference waited for decoding.
- ``train N``: one timed ``train_image_classifier`` on N demo images (the process is warm: its
  imports are done), with its held-out accuracy and chosen representation.

Medians of ``--repeats`` (>= 5) per side; ratios are baseline / this tree. Also: Arrow vs ORM
logging of predictions (this tree only).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


# --- the worker (runs against whichever vital_desktop is first on sys.path) ---------------------


def _demo(data: Path, n: int) -> tuple[list[Path], list[str], list[str]]:
    from vital_desktop.demo import generate_demo_files

    folder = data / f"demo-{n}"
    files = generate_demo_files(folder, seed=7, n_images=n)
    refs = sorted(files.labels)
    return [files.image_paths[r] for r in refs], [files.labels[r] for r in refs], list(files.classes)


def _large_jpegs(data: Path, paths: list[Path]) -> list[Path]:
    """The demo images enlarged to 1024x1024 and saved as JPEG (quality 90): a camera-sized file."""
    from PIL import Image

    folder = data / "jpeg-1024"
    folder.mkdir(exist_ok=True)
    out = []
    for path in paths:
        target = folder / (path.stem + ".jpg")
        if not target.exists():
            with Image.open(path) as image:
                image.convert("RGB").resize((1024, 1024), Image.Resampling.BICUBIC).save(target, quality=90)
        out.append(target)
    return out


def _pipeline_settings(classifier: Any) -> dict[str, Any]:
    """The decode pool size and onnxruntime threads the product's batched predict runs with
    (a tree without `pipeline_settings` used the session's threads for both)."""
    settings = getattr(classifier, "pipeline_settings", None)
    if settings is not None:
        return dict(settings())
    return {"decode_workers": classifier.threads, "onnxruntime_threads": classifier.threads}


class Worker:
    def __init__(self, data: Path, work: Path, batch_size: int) -> None:
        self.data, self.work, self.batch_size = data, work, batch_size
        self.model: Any = None

    def setup(self) -> dict[str, Any]:
        from vital_desktop.inference.classifier import OnnxClassifier, decode_chunks, load_image
        from vital_desktop.inference.train_classifier import train_image_classifier

        self.paths, labels, classes = _demo(self.data, 500)
        self.jpegs = _large_jpegs(self.data, self.paths[:200])
        trained = train_image_classifier(self.paths, labels, classes, seed=0)  # also warms every import
        path = trained.save(self.work / f"speed-{os.getpid()}.onnx")
        self.classifier = OnnxClassifier(path, threads=2)  # the product's default (services.predict)
        self.settings = _pipeline_settings(self.classifier)
        self.by_threads = {n: OnnxClassifier(path, threads=n) for n in (1, 2)}
        spec = self.classifier.info.preprocess
        for classifier in (self.classifier, *self.by_threads.values()):
            classifier.run(load_image(self.paths[0], spec)[0][None])
        self.batches = [c.batch for c in decode_chunks(self.paths, spec, chunk_size=self.batch_size, workers=2)]
        return {"blocks": trained.card["features"]["blocks"], "held_out_accuracy": trained.card["metrics"]["accuracy"],
                "pipeline_settings": self.settings}

    def _onnxruntime(self, classifier: Any) -> float:
        started = time.perf_counter()
        for batch in self.batches:
            classifier.run(batch)
        return time.perf_counter() - started

    def _pipeline_waits(self) -> dict[str, Any]:
        """The two calls batched predict makes, timed apart: how long inference waited for decoding
        (a tree whose chunks do not record it gives None)."""
        from vital_desktop.inference.classifier import decode_chunks

        session = getattr(self.classifier, "pipeline_session", lambda: None)()
        waited, inferring = 0.0, 0.0
        started = time.perf_counter()
        for chunk in decode_chunks(self.paths, self.classifier.info.preprocess, chunk_size=self.batch_size,
                                   workers=self.settings["decode_workers"]):
            waited += getattr(chunk, "waited_ms", float("nan")) / 1000.0
            begun = time.perf_counter()
            self.classifier.run(chunk.batch, **({"session": session} if session is not None else {}))
            inferring += time.perf_counter() - begun
        wall = time.perf_counter() - started
        return {"pipeline_wall_s": wall, "pipeline_inference_s": inferring,
                "pipeline_waited_for_decoding_s": None if waited != waited else waited}

    def predict(self) -> dict[str, Any]:
        from vital_desktop.inference.classifier import decode_chunks, load_image

        spec = self.classifier.info.preprocess
        workers = self.settings["decode_workers"]
        cpu = time.process_time()
        started = time.perf_counter()
        for _chunk in decode_chunks(self.paths, spec, chunk_size=self.batch_size, workers=workers):
            pass
        decode = time.perf_counter() - started
        decode_cpu = time.process_time() - cpu
        cpu = time.process_time()
        infer = self._onnxruntime(self.by_threads[self.settings["onnxruntime_threads"]])
        infer_cpu = time.process_time() - cpu
        cpu = time.process_time()
        started = time.perf_counter()
        self.classifier.predict_paths(self.paths, batch_size=self.batch_size)
        both = time.perf_counter() - started
        both_cpu = time.process_time() - cpu
        by_threads = {f"onnxruntime_{n}_threads_s": self._onnxruntime(c) for n, c in self.by_threads.items()}
        started = time.perf_counter()
        for _chunk in decode_chunks(self.jpegs, spec, chunk_size=self.batch_size, workers=workers):
            pass
        jpeg = time.perf_counter() - started
        single = []
        for image_path in self.paths[:50]:
            begun = time.perf_counter()
            tensor, _ = load_image(image_path, spec)
            self.classifier.run(tensor[None])
            single.append(time.perf_counter() - begun)
        return {"decode_s": decode, "onnxruntime_s": infer, "batched_s": both, **by_threads,
                "decode_cpu_s": decode_cpu, "onnxruntime_cpu_s": infer_cpu, "batched_cpu_s": both_cpu,
                **self._pipeline_waits(), "decode_jpeg_s": jpeg, "single_s": statistics.median(single)}

    def train(self, n: int) -> dict[str, Any]:
        from vital_desktop.inference.train_classifier import train_image_classifier

        paths, labels, classes = _demo(self.data, n)
        started = time.perf_counter()
        trained = train_image_classifier(paths, labels, classes, seed=0)
        return {"seconds": time.perf_counter() - started, "held_out_accuracy": trained.card["metrics"]["accuracy"],
                "chosen": trained.card["model_selection"]["chosen"]["representation"]}


def worker_main(data: Path, work: Path, batch_size: int) -> None:
    worker = Worker(data, work, batch_size)
    for line in sys.stdin:
        command = line.split()
        if not command:
            continue
        if command[0] == "quit":
            break
        if command[0] == "setup":
            result = worker.setup()
        elif command[0] == "predict":
            result = worker.predict()
        else:
            result = worker.train(int(command[1]))
        print(json.dumps(result), flush=True)


# --- the driver ----------------------------------------------------------------------------------



class Side:
    def __init__(self, name: str, tree: Path, data: Path, work: Path, batch_size: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "--data", str(data), "--work", str(work),
             "--batch-size", str(batch_size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(work))

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} worker ended during {command!r}")
        return dict(json.loads(line))

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, BrokenPipeError, json.JSONDecodeError):
            self.ask("quit")
        self.process.wait(timeout=60)


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def summarise_predict(rows: list[dict[str, Any]], images: int) -> dict[str, Any]:
    d, i, b = (_median(rows, k) for k in ("decode_s", "onnxruntime_s", "batched_s"))
    out = {
        "decode_only_s_median": round(d, 3), "onnxruntime_only_s_median": round(i, 3),
        "batched_predict_s_median": round(b, 3), "ratio_batched_over_slower_stage": round(b / max(d, i), 3),
        "ratio_if_sequential": round((d + i) / max(d, i), 3), "batched_images_per_s": round(images / b, 1),
        "onnxruntime_images_per_s": round(images / i, 1), "single_image_per_s": round(1 / _median(rows, "single_s"), 1),
    }
    threads = {k: _median(rows, k) for k in rows[0] if k.startswith("onnxruntime_") and k.endswith("_threads_s")}
    if threads:
        best = min(threads.values())
        out |= {k.replace("_s", "_s_median"): round(v, 3) for k, v in threads.items()}
        out |= {"onnxruntime_best_s_median": round(best, 3), "onnxruntime_best_images_per_s": round(images / best, 1),
                "ratio_batched_over_best_onnxruntime": round(b / best, 3)}
    if "decode_jpeg_s" in rows[0]:
        out["decode_jpeg_1024_s_median"] = round(_median(rows, "decode_jpeg_s"), 3)
    if "batched_cpu_s" in rows[0]:
        # CPU seconds per wall second: above 1 only when the machine gave this process more than one core
        for stage, wall in (("decode", "decode_s"), ("onnxruntime", "onnxruntime_s"), ("batched", "batched_s")):
            out[f"{stage}_cpu_s_median"] = round(_median(rows, f"{stage}_cpu_s"), 3)
            out[f"{stage}_cores_used_median"] = round(statistics.median(r[f"{stage}_cpu_s"] / r[wall] for r in rows), 2)
    if rows[0].get("pipeline_waited_for_decoding_s") is not None:
        out["pipeline_waited_for_decoding_s_median"] = round(_median(rows, "pipeline_waited_for_decoding_s"), 3)
        out["pipeline_inference_s_median"] = round(_median(rows, "pipeline_inference_s"), 3)
        out["pipeline_wall_s_median"] = round(_median(rows, "pipeline_wall_s"), 3)
    return out | {"samples": rows}


def logging_speed(work: Path, rows: int, repeats: int) -> dict[str, Any]:
    """Logging `rows` predictions: one Arrow insert (what predict does) vs the ORM (what it did)."""
    sys.path.insert(0, str(ROOT))
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


SECTIONS = ("predict", "train500", "train5000")


def _measured(baseline: str, load_start: tuple[float, ...], repeats: int) -> dict[str, Any]:
    from _common import git_commit

    return {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "git_commit": git_commit(),
            "baseline_commit": baseline, "repeats": repeats, "load_average_start": list(load_start),
            "load_average_end": list(os.getloadavg())}


def _previous(path: Path) -> dict[str, Any]:
    """The report already on disk; a report from before per-section dates is kept whole under
    ``previous_report`` (without its samples) rather than mixed with this run's numbers."""
    if not path.is_file():
        return {}
    old = json.loads(path.read_text())
    if "sections" in old:
        return old
    for side in ("baseline", "new"):
        old.get("predict", {}).get(side, {}).pop("samples", None)
    return {"previous_report": old}


def run_predict(sides: dict[str, Side], repeats: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, side in sides.items():
            samples[name].append(side.ask("predict"))
    out: dict[str, Any] = {name: summarise_predict(rows, 500) for name, rows in samples.items()}
    for key, name in (("onnxruntime_only_s_median", "onnxruntime"), ("batched_predict_s_median", "batched"),
                      ("decode_only_s_median", "decode"), ("decode_jpeg_1024_s_median", "decode_jpeg_1024")):
        if key in out["baseline"] and key in out["new"]:
            out[f"ratio_{name}_baseline_over_new"] = round(out["baseline"][key] / out["new"][key], 2)
    print(json.dumps({k: v for k, v in out.items() if not isinstance(v, dict)}), flush=True)
    return out


def run_train(sides: dict[str, Side], n: int, repeats: int) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, side in sides.items():
            runs[name].append(side.ask(f"train {n}"))
            print(name, n, runs[name][-1], flush=True)
    entry: dict[str, Any] = {
        name: {"seconds_median": round(_median(rows, "seconds"), 2),
               "held_out_accuracy": rows[0]["held_out_accuracy"], "chosen": rows[0]["chosen"],
               "seconds": [round(r["seconds"], 2) for r in rows]}
        for name, rows in runs.items()}
    entry["ratio_baseline_over_new"] = round(entry["baseline"]["seconds_median"] / entry["new"]["seconds_median"], 2)
    return entry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="sections predict and train500 only, fewer logging rows")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--baseline", default="f18d6a0", help="commit to compare against (default: before this work)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--large-repeats", type=int, default=5, help="repeats of the 5,000-image train")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="vital-bench-speed-"))
    work = args.work or Path(tempfile.mkdtemp(prefix="vital-bench-speed-work-"))
    if args.worker:
        worker_main(data, work, args.batch_size)
        return

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _common import RESULTS, export_tree, write_report

    wanted = [s for s in SECTIONS if s in args.sections.split(",") and not (args.quick and s == "train5000")]
    report = _previous(RESULTS / "classifier_speed.json")
    report.pop("benchmark", None)
    report.pop("machine", None)
    report |= {"sections": report.get("sections", {}), "cpus": os.cpu_count(), "batch_size": args.batch_size}
    baseline_tree = export_tree(args.baseline, work)
    sides = {"baseline": Side("baseline", baseline_tree, data, work, args.batch_size),
             "new": Side("new", ROOT, data, work, args.batch_size)}
    try:
        load_start = os.getloadavg()
        report["sections"]["setup"] = {name: side.ask("setup") for name, side in sides.items()}
        for section in wanted:
            load_start = os.getloadavg()
            if section == "predict":
                entry = run_predict(sides, args.repeats)
                repeats = args.repeats
            else:
                n = int(section.removeprefix("train"))
                repeats = args.large_repeats if n > 500 else args.repeats
                entry = run_train(sides, n, repeats)
            report["sections"][section] = entry | {"measured": _measured(args.baseline, load_start, repeats)}
    finally:
        for side in sides.values():
            side.close()
    report["sections"]["logging"] = logging_speed(work, 500 if args.quick else 2000, 5)
    write_report("classifier_speed", report)


if __name__ == "__main__":
    main()
