"""Smoke-test a frozen build: `vital init --demo`, `vital sheet list --json`, and the desktop
window opening (offscreen) on that site. Prints timings; exits non-zero on any failure.

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
    start = time.perf_counter()
    subprocess.run([str(folder / "vital"), "init", "--demo"], env=env, check=True, timeout=600)
    init_s = time.perf_counter() - start
    out = subprocess.run([str(folder / "vital"), "--json", "sheet", "list"], env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    sheets = [s["name"] for s in json.loads(out)["sheets"]]
    assert "Defect Detection - Scintillator Crystals" in sheets, sheets
    start = time.perf_counter()
    subprocess.run([str(folder / "vital-desktop"), "--quit-after-show"], env=env, check=True, timeout=300)
    window_s = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    print(json.dumps({"ok": True, "init_demo_s": round(init_s, 1), "window_s": round(window_s, 2),
                      "bundle_mb": round(size_mb)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
