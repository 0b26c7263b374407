"""Held-out accuracy of the local classifier on real image sets and on the demo, old vs new features.

Run: ``.venv/bin/python benchmarks/bench_classifier.py [--quick] [--data DIR]`` →
``benchmarks/results/classifier_accuracy.json``. The image sets (`benchmarks/real_images.py`) are
written under ``--data`` (default: a temporary folder), never into the project.

For each set, in the same run: the trainer as `vital train` runs it (features chosen by
cross-validation, calibrated head, one ONNX file), then that file through onnxruntime as
`vital predict` runs it on the held-out files; and the previous generation — the 23 local-contrast
features with the same standardised logistic regression (C=3) — on the same split.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_report
from real_images import SETS, ImageSet

from vital_desktop.inference.classifier import OnnxClassifier
from vital_desktop.inference.train_classifier import DEFAULT_SPEC, extract_features, train_image_classifier


def git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def old_features(image_set: ImageSet) -> dict:
    """The previous trainer's representation: local-contrast features, grayscale 128x128, LR(C=3)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    started = time.perf_counter()
    paths = [str(image_set.folder / n) for n, _ in image_set.train]
    held = [str(image_set.folder / n) for n, _ in image_set.held_out]
    x_train, _ = extract_features(paths, DEFAULT_SPEC, ["blobs"])
    x_held, _ = extract_features(held, DEFAULT_SPEC, ["blobs"])
    model = Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(C=3.0, max_iter=3000))])
    model.fit(x_train, [c for _, c in image_set.train])
    predicted = model.predict(x_held)
    accuracy = float(np.mean([p == c for p, (_, c) in zip(predicted, image_set.held_out, strict=False)]))
    return {"held_out_accuracy": round(accuracy, 4), "train_s": round(time.perf_counter() - started, 2)}


def new_features(image_set: ImageSet, out: Path) -> dict:
    paths = [image_set.folder / n for n, _ in image_set.train]
    started = time.perf_counter()
    trained = train_image_classifier(paths, [c for _, c in image_set.train], seed=0, name=image_set.name)
    train_s = time.perf_counter() - started
    model_path = trained.save(out / f"{image_set.name}.onnx")
    classifier = OnnxClassifier(model_path, threads=2)
    started = time.perf_counter()
    results = classifier.predict_paths([image_set.folder / n for n, _ in image_set.held_out])
    predict_s = time.perf_counter() - started
    errors = [r.error for r in results if r.error]
    correct = [r.predicted_class == c for r, (_, c) in zip(results, image_set.held_out, strict=False)]
    confidence = np.array([r.confidence or 0.0 for r in results])
    from vital_desktop.inference import calibration

    classes = trained.classes
    probabilities = np.array([[r.probabilities.get(c, 0.0) for c in classes] for r in results])
    target = np.array([classes.index(c) for _, c in image_set.held_out])
    card = trained.card
    return {
        "held_out_accuracy": round(float(np.mean(correct)), 4),
        "held_out_images": len(results), "unreadable": len(errors),
        "held_out_reliability": calibration.reliability(probabilities, target),
        "approve_at_0.95": {"share": round(float((confidence >= 0.95).mean()), 4),
                            "accuracy": round(float(np.mean([c for c, p in zip(correct, confidence, strict=False) if p >= 0.95]))
                                              if (confidence >= 0.95).any() else 0.0, 4)},
        "train_s": round(train_s, 2), "predict_images_per_s": round(len(results) / predict_s, 1),
        "model_card": {
            "classes": card["classes"], "input": card["input"], "estimator": card["estimator"],
            "features": card["features"], "model_selection": {
                "folds": card["model_selection"]["folds"], "chosen": card["model_selection"]["chosen"],
                "candidates": card["model_selection"]["candidates"]},
            "calibration": {k: v for k, v in card["calibration"].items() if k != "out_of_fold_after"}
            | {"out_of_fold_after_ece": card["calibration"]["out_of_fold_after"]["ece"]},
            "metrics": {k: card["metrics"][k] for k in ("accuracy", "per_class", "ece", "held_out_images")},
            "training": card["training"],
        },
    }


def demo_set(root: Path, n_images: int) -> ImageSet:
    from vital_desktop.demo import generate_demo_files

    files = generate_demo_files(root / "demo", seed=7, n_images=n_images)
    refs = sorted(files.labels)
    rows = [(str(Path(files.image_paths[r]).relative_to(files.images_dir)), files.labels[r]) for r in refs]
    cut = int(0.7 * len(rows))
    return ImageSet("demo", "synthetic crystal defects, grayscale 256x256 PNG", files.images_dir, rows[:cut], rows[cut:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer images per set")
    parser.add_argument("--data", type=Path, default=None, help="where to write the image sets (default: temporary)")
    parser.add_argument("--sets", default="digits,textures,scenes,demo")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="vital-real-images-"))
    out = Path(tempfile.mkdtemp(prefix="vital-bench-models-"))
    report: dict = {"git_commit": git_commit(), "load_average_start": os.getloadavg(), "data": str(data), "sets": {}}
    for name in args.sets.split(","):
        if name == "demo":
            image_set = demo_set(data, 300 if args.quick else 500)
        else:
            kwargs = {"per_class": 120} if args.quick and name != "digits" else {}
            image_set = SETS[name](data, **kwargs)
        entry = {"kind": image_set.kind, "train_images": len(image_set.train), "held_out_images": len(image_set.held_out),
                 "classes": sorted({c for _, c in image_set.train})}
        entry["new"] = new_features(image_set, out)
        entry["old"] = old_features(image_set)
        entry["ratio_new_over_old_accuracy"] = round(entry["new"]["held_out_accuracy"]
                                                     / max(1e-9, entry["old"]["held_out_accuracy"]), 3)
        report["sets"][name] = entry
        print(f"{name}: new {entry['new']['held_out_accuracy']:.3f} old {entry['old']['held_out_accuracy']:.3f} "
              f"train {entry['new']['train_s']} s", flush=True)
    report["load_average_end"] = os.getloadavg()
    write_report("classifier_accuracy", report)


if __name__ == "__main__":
    main()
