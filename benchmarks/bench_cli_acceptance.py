"""Acceptance on real image sets through the `vital` command line, exactly as a site would do it.

Run: ``.venv/bin/python benchmarks/bench_cli_acceptance.py [--sets digits,textures,scenes] [--data DIR]``
→ ``benchmarks/results/cli_acceptance.json`` (one model-card-format report per set).

For each set (`benchmarks/real_images.py`: scikit-learn's handwritten digits — shape, 8-bit
grayscale 8x8 PNG; scikit-image photographs cut into texture crops — 16-bit grayscale TIFF of
48-128 px; colour photograph crops — RGB JPEG/BMP of 56-160 px with random aspect ratios), in a
fresh site folder under /tmp (never in the project):

1. ``vital init --admin admin``
2. ``vital label types create <set>-class --classes ...`` (the site's own label type)
3. ``vital sheet import <set>-train --images DIR --class-type <set>-class`` (folder-per-class:
   the training crops, labelled by their folder)
4. ``vital train --sheet <set>-train --name <set>-model --label-type <set>-class --activate``
5. ``vital sheet import <set>-held-out --images DIR`` (the held-out crops, unlabelled) and
   ``vital predict --sheet <set>-held-out``; the predictions are scored against the truth kept
   outside the site.

Target: >= 0.95 held-out accuracy on each set. The report is what it is.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import git_commit, write_report
from real_images import ImageSet, digits, scenes, textures

SETS = {"digits": digits, "textures": textures, "scenes": scenes}
PASSWORD = "acceptance-password-1"


def vital(home: Path, *args: str) -> dict[str, Any]:
    env = {**os.environ, "VITAL_HOME": str(home), "VITAL_USER": "admin", "VITAL_PASSWORD": PASSWORD,
           "NEW_USER_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "vital_desktop.cli", "--json", *args], capture_output=True,
                          text=True, env=env, cwd=str(home.parent))
    if done.returncode != 0:
        raise RuntimeError(f"vital {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return dict(json.loads(done.stdout)) if done.stdout.strip() else {}


def arrange(image_set: ImageSet, into: Path) -> tuple[Path, Path, dict[str, str]]:
    """Training crops as DIR/<class>/<file>; held-out crops flat; the held-out truth by file name."""
    train, held = into / "train", into / "held-out"
    for name, cls in image_set.train:
        (train / cls).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image_set.folder / name, train / cls / name)
    held.mkdir(parents=True, exist_ok=True)
    for name, _ in image_set.held_out:
        shutil.copyfile(image_set.folder / name, held / name)
    return train, held, dict(image_set.held_out)


def run_set(name: str, data: Path, work: Path) -> dict[str, Any]:
    image_set = SETS[name](data)
    train_dir, held_dir, truth = arrange(image_set, work / name / "files")
    home = work / name / "site"
    classes = sorted({cls for _, cls in image_set.train})
    label_type = f"{name}-class"
    timings: dict[str, float] = {}

    def step(label: str, *args: str) -> dict[str, Any]:
        started = time.perf_counter()
        out = vital(home, *args)
        timings[label] = round(time.perf_counter() - started, 2)
        return out

    step("init", "init", "--admin", "admin")
    step("label_type", "label", "types", "create", label_type, "--classes", ",".join(classes))
    step("import_train", "sheet", "import", f"{name}-train", "--images", str(train_dir), "--class-type", label_type)
    step("train", "train", "--sheet", f"{name}-train", "--name", f"{name}-model", "--label-type",
                   label_type, "--activate")
    step("import_held_out", "sheet", "import", f"{name}-held-out", "--images", str(held_dir))
    predicted = step("predict", "predict", "--sheet", f"{name}-held-out")
    card = step("model_show", "model", "show", f"{name}-model").get("model", {}).get("card", {})
    rows = predicted.get("predictions") or predicted.get("results") or []
    correct: Counter[str] = Counter()
    total: Counter[str] = Counter()
    errors = 0
    for row in rows:
        file_name = Path(str(row.get("image_path"))).name
        cls = truth.get(file_name)
        if cls is None:
            continue
        total[cls] += 1
        if row.get("error"):
            errors += 1
        elif row.get("predicted_class") == cls:
            correct[cls] += 1
    n = sum(total.values())
    accuracy = round(sum(correct.values()) / n, 4) if n else None
    return {
        "kind": image_set.kind, "classes": classes, "train_images": len(image_set.train),
        "held_out_images": len(image_set.held_out), "scored": n, "unreadable": errors,
        "held_out_accuracy": accuracy, "meets_0.95": bool(accuracy is not None and accuracy >= 0.95),
        "per_class_recall": {c: round(correct[c] / total[c], 4) for c in sorted(total)},
        "cli_seconds": timings,
        # the card without its monitoring baseline (thousands of input-statistics bins)
        "model_card": {k: v for k, v in card.items() if k != "baseline"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sets", default="digits,textures,scenes")
    parser.add_argument("--data", type=Path, default=None, help="where the real image sets are written")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="vital-acceptance-data-"))
    work = Path(tempfile.mkdtemp(prefix="vital-acceptance-"))
    report: dict[str, Any] = {"git_commit": git_commit(), "load_average_start": os.getloadavg(), "sets": {}}
    for name in [s for s in args.sets.split(",") if s]:
        try:
            report["sets"][name] = run_set(name, data, work)
        except RuntimeError as exc:  # a failed step is reported, not hidden
            report["sets"][name] = {"error": str(exc)}
        print(name, {k: v for k, v in report["sets"][name].items() if k not in ("model_card", "train_output")},
              flush=True)
    report["load_average_end"] = os.getloadavg()
    write_report("cli_acceptance", report)


if __name__ == "__main__":
    main()
