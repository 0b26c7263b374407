"""Calibration of the classifier's confidence on a large held-out set: ECE before and after.

Run: ``.venv/bin/python benchmarks/bench_calibration.py [--data DIR]`` →
``benchmarks/results/calibration.json``.

A model card's held-out ECE rests on the few images held out of training (100 on the demo),
where ten-bin ECE is noisy (a perfectly calibrated model scores ~0.03-0.05 on 100 items). Here
the trainer learns from 500 demo images (the demo site's size) and is scored on 1,500 others it
never saw, through the exported ONNX file; "before" undoes the temperature baked into the file
(softmax(T · log p)), "after" is the file's own probabilities.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_report
from bench_classifier import git_commit

from vital_desktop.inference import calibration
from vital_desktop.inference.classifier import OnnxClassifier
from vital_desktop.inference.train_classifier import train_image_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--train", type=int, default=500)
    parser.add_argument("--held-out", type=int, default=1500)
    args = parser.parse_args()
    from vital_desktop.demo import generate_demo_files

    data = args.data or Path(tempfile.mkdtemp(prefix="vital-bench-calibration-"))
    files = generate_demo_files(data / f"demo-{args.train + args.held_out}", seed=11, n_images=args.train + args.held_out)
    refs = sorted(files.labels)
    train, held = refs[: args.train], refs[args.train :]
    model = train_image_classifier([files.image_paths[r] for r in train], [files.labels[r] for r in train], files.classes,
                                   seed=0)
    path = model.save(Path(tempfile.mkdtemp()) / "calibration.onnx")
    results = OnnxClassifier(path).predict_paths([files.image_paths[r] for r in held], batch_size=64)
    classes = model.classes
    after = np.array([[r.probabilities[c] for c in classes] for r in results], dtype=np.float64)
    target = np.array([classes.index(files.labels[r]) for r in held])
    before = calibration.softmax(model.temperature * np.log(np.clip(after, 1e-12, 1.0)))
    report = {
        "git_commit": git_commit(), "load_average": os.getloadavg(), "train_images": len(train),
        "held_out_images": len(held), "temperature": round(model.temperature, 4),
        "held_out_accuracy": round(float((after.argmax(1) == target).mean()), 4),
        "ece_before": calibration.reliability(before, target)["ece"],
        "ece_after": calibration.reliability(after, target)["ece"],
        "nll_before": round(calibration.negative_log_likelihood(before, target), 4),
        "nll_after": round(calibration.negative_log_likelihood(after, target), 4),
        "reliability_after": calibration.reliability(after, target)["curve"],
        "card_held_out_ece_after": model.card["calibration"]["held_out_after"]["ece"],
        "card_held_out_images": model.card["calibration"]["held_out_after"]["items"],
        "approve_at_0.95": {"share": round(float((after.max(1) >= 0.95).mean()), 4),
                            "accuracy": round(float((after.argmax(1) == target)[after.max(1) >= 0.95].mean()), 4)},
    }
    write_report("calibration", report)


if __name__ == "__main__":
    main()
