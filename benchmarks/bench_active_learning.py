"""Learning curves (uncertainty vs diversity vs random order), suspect-label precision/recall,
calibration before/after, and occlusion heat-map time — on the demo and on a real image set.

Run: ``.venv/bin/python benchmarks/bench_active_learning.py [--quick] [--data DIR]`` →
``benchmarks/results/active_learning.json`` and ``active_learning.png``.

Learning curves use the product's own pieces: features from the ONNX feature graph, the
selection of `inference.assist.select_next` (what `vital label next` runs), and the trainer's
standardised logistic-regression head; each round labels a batch of 20 and scores accuracy on
a fixed held-out set. Each curve is the median over seeds. Suspects: 5 % of the labels are
flipped at random; the out-of-fold search of `vital label suspects` flags items; precision and
recall are against the flipped set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_report
from bench_classifier import demo_set, git_commit
from real_images import SETS, ImageSet

from vital_desktop.inference import assist, calibration
from vital_desktop.inference import train_classifier as trainer
from vital_desktop.inference.classifier import OnnxClassifier, load_image

BATCH = 20


def features_of(image_set: ImageSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str], object]:
    rows = image_set.train + image_set.held_out
    paths = [image_set.folder / n for n, _ in rows]
    spec = trainer.choose_spec(paths)
    features, _ = trainer.extract_features(paths, spec, trainer.ALL_BLOCKS)
    classes = sorted({c for _, c in rows})
    target = np.array([classes.index(c) for _, c in rows])
    n = len(image_set.train)
    return features[:n], target[:n], features[n:], target[n:], classes, spec


def learning_curve(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, strategy: str, seed: int,
                   rounds: int, n_classes: int) -> list[dict]:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(len(y), BATCH, replace=False))
    curve = []
    with threadpool_limits(1):
        for _ in range(rounds):
            model = trainer._pipeline(0.2).fit(x[labelled], y[labelled]) if len(set(y[labelled])) > 1 else None
            accuracy = float((model.predict(x_test) == y_test).mean()) if model is not None else 0.0
            curve.append({"labels": len(labelled), "accuracy": round(accuracy, 4)})
            pool = np.setdiff1d(np.arange(len(y)), labelled)
            if model is None:
                probabilities = np.full((len(pool), n_classes), 1.0 / n_classes)
            else:
                probabilities = np.zeros((len(pool), n_classes))
                probabilities[:, model.classes_] = model.predict_proba(x[pool])
            picks = assist.select_next(probabilities if strategy != "random" else None, x[pool], strategy=strategy,
                                       count=BATCH, seed=seed + len(labelled), labelled_embedding=x[labelled])
            labelled += [int(pool[i]) for i, _ in picks]
    return curve


def suspects(x: np.ndarray, y: np.ndarray, n_classes: int, spec, seed: int) -> dict:
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(y), max(1, round(0.05 * len(y))), replace=False)
    noisy = y.copy()
    noisy[flipped] = (noisy[flipped] + rng.integers(1, n_classes, len(flipped))) % n_classes
    started = time.perf_counter()
    k = trainer.check_folds(noisy, [str(i) for i in range(n_classes)], None)
    with threadpool_limits(1):
        choice, _ = trainer.search_heads(x, noisy, spec, k, seed, n_classes)
        logits = trainer.out_of_fold_logits(x, noisy, choice, spec, k, seed + 1, n_classes)
    probabilities = calibration.softmax(logits, calibration.fit_temperature(logits, noisy))
    found = {s.index for s in assist.find_suspects(probabilities, noisy)}
    truth = {int(i) for i in flipped}
    hits = len(found & truth)
    return {"labels": len(y), "flipped": len(truth), "flagged": len(found), "correctly_flagged": hits,
            "precision": round(hits / max(1, len(found)), 4), "recall": round(hits / len(truth), 4),
            "seconds": round(time.perf_counter() - started, 2), "representation": list(choice.blocks)}


def heat_map_time(image_set: ImageSet, work: Path, repeats: int) -> dict:
    paths = [image_set.folder / n for n, _ in image_set.train]
    model = trainer.train_image_classifier(paths, [c for _, c in image_set.train], seed=0)
    path = model.save(work / f"{image_set.name}-heat.onnx")
    classifier = OnnxClassifier(path, threads=2)
    tensors = [load_image(p, classifier.info.preprocess)[0] for p in paths[:repeats]]
    assist.occlusion_map(classifier.run, tensors[0], grid=8)  # warm-up
    times = []
    for tensor in tensors:
        started = time.perf_counter()
        assist.occlusion_map(classifier.run, tensor, grid=8)
        times.append((time.perf_counter() - started) * 1000)
    single = []
    for tensor in tensors:
        started = time.perf_counter()
        classifier.run(tensor[None])
        single.append((time.perf_counter() - started) * 1000)
    return {"grid": "8x8 (65 images in one batch)", "images": len(times),
            "median_ms": round(statistics.median(times), 2), "single_prediction_median_ms": round(statistics.median(single), 2),
            "ratio_heat_map_over_prediction": round(statistics.median(times) / statistics.median(single), 1),
            "calibration": {"temperature": model.card["calibration"]["temperature"],
                            "held_out_ece_before": model.card["calibration"]["held_out_before"]["ece"],
                            "held_out_ece_after": model.card["calibration"]["held_out_after"]["ece"],
                            "out_of_fold_ece_after": model.card["calibration"]["out_of_fold_after"]["ece"],
                            "reliability_after": model.card["calibration"]["held_out_after"]["curve"]}}


def plot(report: dict, out: Path) -> None:
    """Learning curves as a PNG, drawn with Pillow (one panel per image set)."""
    from PIL import Image, ImageDraw

    colours = {"uncertainty": (200, 40, 40), "diversity": (40, 120, 200), "random": (90, 90, 90)}
    sets = report["sets"]
    width, height, margin = 460, 340, 50
    image = Image.new("RGB", (width * len(sets), height), "white")
    draw = ImageDraw.Draw(image)
    for panel, (name, entry) in enumerate(sets.items()):
        left = panel * width
        curves = entry["learning_curves"]
        xs = [p["labels"] for c in curves.values() for p in c]
        ys = [p["accuracy"] for c in curves.values() for p in c]
        x0, x1 = min(xs), max(xs)
        y0, y1 = max(0.0, min(ys) - 0.05), min(1.0, max(ys) + 0.02)

        def at(x: float, y: float, left: int = left, x0: float = x0, x1: float = x1, y0: float = y0,
               y1: float = y1) -> tuple[float, float]:
            return (left + margin + (x - x0) / max(1e-9, x1 - x0) * (width - 1.5 * margin),
                    height - margin - (y - y0) / max(1e-9, y1 - y0) * (height - 1.7 * margin))

        draw.rectangle([at(x0, y0)[0], at(x0, y1)[1], at(x1, y0)[0], at(x1, y0)[1]], outline=(180, 180, 180))
        draw.text((left + margin, 8), f"{name}: held-out accuracy vs labelled images", fill="black")
        for tick in np.linspace(y0, y1, 5):
            draw.text((left + 5, at(x0, tick)[1] - 6), f"{tick:.2f}", fill="black")
        for tick in np.linspace(x0, x1, 5):
            draw.text((at(tick, y0)[0] - 10, height - margin + 6), f"{tick:.0f}", fill="black")
        for row, (strategy, curve) in enumerate(curves.items()):
            points = [at(p["labels"], p["accuracy"]) for p in curve]
            draw.line(points, fill=colours.get(strategy, (0, 0, 0)), width=2)
            draw.text((left + width - 150, height - margin - 20 - 14 * row), strategy, fill=colours.get(strategy))
    image.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--sets", default="demo,digits")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="vital-real-images-"))
    work = Path(tempfile.mkdtemp(prefix="vital-bench-al-"))
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    rounds = 8 if args.quick else 12
    report: dict = {"git_commit": git_commit(), "load_average_start": os.getloadavg(), "batch": BATCH,
                    "seeds": seeds, "sets": {}}
    for name in args.sets.split(","):
        image_set = demo_set(data, 500) if name == "demo" else SETS[name](data)
        x, y, x_test, y_test, classes, spec = features_of(image_set)
        curves = {}
        for strategy in ("uncertainty", "diversity", "random"):
            runs = [learning_curve(x, y, x_test, y_test, strategy, seed, rounds, len(classes)) for seed in seeds]
            curves[strategy] = [{"labels": runs[0][i]["labels"],
                                 "accuracy": round(statistics.median(r[i]["accuracy"] for r in runs), 4)}
                                for i in range(rounds)]
        entry = {"kind": image_set.kind, "pool": len(y), "test": len(y_test), "learning_curves": curves}
        entry["labels_to_reach_95pct_of_final_random"] = {}
        target = 0.95 * curves["random"][-1]["accuracy"]
        for strategy, curve in curves.items():
            reached = next((p["labels"] for p in curve if p["accuracy"] >= target), None)
            entry["labels_to_reach_95pct_of_final_random"][strategy] = reached
        entry["suspects_5pct_flipped"] = [suspects(x, y, len(classes), spec, seed) for seed in seeds[:3]]
        entry["heat_map"] = heat_map_time(image_set, work, 5 if args.quick else 10)
        report["sets"][name] = entry
        print(name, {s: c[-1] for s, c in curves.items()}, entry["suspects_5pct_flipped"][0], flush=True)
    report["load_average_end"] = os.getloadavg()
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    plot(report, out / "active_learning.png")
    report["plot"] = "benchmarks/results/active_learning.png"
    write_report("active_learning", report)


if __name__ == "__main__":
    main()
