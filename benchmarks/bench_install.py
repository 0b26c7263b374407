"""Install numbers (issue 17): set-up from the wheelhouse into a fresh virtual environment with the
network off, and the no-op second run that every `scripts/test.sh` starts with.

    .venv/bin/python benchmarks/bench_install.py [--wheelhouse wheelhouse] [--repeats 1]

Copies the source tree (without .git and .venv) to a temporary folder and runs `scripts/setup.sh`
there with `VITAL_WHEELHOUSE` set, inside a new network namespace (`unshare -n`, as root) so
that nothing can be fetched. Writes benchmarks/results/install.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_report

ROOT = Path(__file__).resolve().parents[1]


def _copy_source(dest: Path) -> None:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", ".venv", "wheelhouse", "__pycache__",
                                                              "build", "dist", ".vital-demo", "results"))


def _timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / "wheelhouse")
    parser.add_argument("--repeats", type=int, default=1, help="fresh installs to time (each ~1-3 min)")
    args = parser.parse_args()
    house = args.wheelhouse.resolve()
    if not (house / "requirements.txt").is_file():
        raise SystemExit(f"no wheelhouse at {house}: run scripts/wheelhouse.sh first")
    isolate = ["unshare", "-n"] if os.geteuid() == 0 and shutil.which("unshare") else []
    env = {**os.environ, "VITAL_WHEELHOUSE": str(house), "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": os.devnull}
    fresh, again = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "vital-desktop"
            _copy_source(src)
            fresh.append(_timed([*isolate, "./scripts/setup.sh"], src, env))
            for _ in range(5):
                again.append(_timed([*isolate, "./scripts/setup.sh"], src, env))
    size = sum(f.stat().st_size for f in house.glob("*.whl"))
    write_report("install", {
        "network": "none (unshare -n)" if isolate else "not isolated (not root)",
        "wheelhouse_bytes": size, "wheelhouse_files": len(list(house.glob("*.whl"))),
        "fresh_setup_from_wheelhouse_s": {"runs": fresh, "median": statistics.median(fresh)},
        "second_run_setup_s": {"runs": again, "median": statistics.median(again)},
        "note": "fresh = new venv + every locked wheel hash-checked + editable project; the machine is shared",
    })


if __name__ == "__main__":
    main()
