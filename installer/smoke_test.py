"""Smoke-test a frozen build on a new demo site: `vital init --demo`, `vital sheet list`, a label
save, training and activating a classifier, prediction, a Monte Carlo run, `vital self-check`, a
bundle verify, and the desktop window opening (offscreen). Prints timings; exits non-zero on any failure.

    python installer/smoke_test.py dist/vital
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    folder = Path(sys.argv[1]).resolve()
    home = Path(tempfile.mkdtemp(prefix="vital-frozen-"))
    env = {**os.environ, "VITAL_HOME": str(home), "QT_QPA_PLATFORM": "offscreen",
           "VITAL_USER": "engineer", "VITAL_PASSWORD": "vital-engineer"}
    if "VITAL_DEFAULT_GGUF" not in env:
        # The app folder holds no language model (it ships beside the archive, installed once in
        # APP_ROOT/models/): use the one of the build's own environment, as an installed copy would.
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from vital_desktop.inference.llm import default_gguf_path

        env["VITAL_DEFAULT_GGUF"] = str(default_gguf_path())
    start = time.perf_counter()
    subprocess.run([str(folder / "vital"), "init", "--demo"], env=env, check=True, timeout=600)
    init_s = time.perf_counter() - start
    out = subprocess.run([str(folder / "vital"), "--json", "sheet", "list"], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    sheets = [s["name"] for s in json.loads(out)["sheets"]]
    sheet = "Defect Detection - Scintillator Crystals"
    assert sheet in sheets, sheets
    timings = {}

    def vital(*args: str, timeout: int = 600) -> dict:
        begin = time.perf_counter()
        done = subprocess.run([str(folder / "vital"), "--json", *args], env=env, check=True, capture_output=True,
                              text=True, timeout=timeout)
        timings[args[0] if args[0] not in ("label", "mc", "bundle") else f"{args[0]}_{args[1]}"] = round(
            time.perf_counter() - begin, 2)
        return json.loads(done.stdout)

    items = vital("review", "items", "--sheet", sheet, "--type", "classification", "--filter", "unlabeled",
                  "--limit", "1")["items"]
    label = vital("label", "set", "--sheet", sheet, "--item", items[0]["item_ref"], "--type", "classification",
                  "--data", json.dumps({"defect_type": "crack", "severity": "minor"}))
    assert label["outcome"] == "created", label
    trained = vital("train", "--sheet", sheet, "--name", "frozen-smoke", "--activate")
    assert trained, trained
    predicted = vital("predict", "--sheet", sheet)
    assert predicted, predicted
    run = vital("mc", "run", "--detector", "nai-3x3", "--source", "point", "--distance-cm", "10", "--nuclide",
                "Cs-137", "--histories", "2e5", "--seed", "1")
    assert run, run
    checked = vital("self-check")  # what the launcher runs on a new version after an app update
    assert checked["ok"], checked
    bundle = Path(__file__).resolve().parents[1] / "bundles" / "demo" / "01-model-update.vbundle"
    if bundle.is_file():
        env["VITAL_USER"], env["VITAL_PASSWORD"] = "admin", "vital-admin"
        begin = time.perf_counter()
        subprocess.run([str(folder / "vital"), "bundle", "verify", str(bundle)], env=env, check=True,
                       capture_output=True, timeout=300)
        timings["bundle_verify"] = round(time.perf_counter() - begin, 2)
    start = time.perf_counter()
    subprocess.run([str(folder / "vital-desktop"), "--quit-after-show"], env=env, check=True, timeout=300)
    window_s = time.perf_counter() - start
    size_mb = sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6
    print(json.dumps({"ok": True, "init_demo_s": round(init_s, 1), "window_s": round(window_s, 2),
                      "commands_s": timings, "bundle_mb": round(size_mb)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
