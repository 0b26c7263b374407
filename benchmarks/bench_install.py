"""Install numbers (issue 17): set-up from the wheelhouse into a fresh virtual environment with the
network off, the no-op second run that every `scripts/test.sh` starts with, and how long
`scripts/test.sh` takes to reach its first test result (set-up, ruff, mypy, collection) on the
first run in a new tree (no mypy cache) and on later runs (mypy's cache in `.mypy_cache/`).

    .venv/bin/python benchmarks/bench_install.py [--wheelhouse wheelhouse] [--repeats 1]
    .venv/bin/python benchmarks/bench_install.py --payload installer/dist/vital [--baseline OLD_FOLDER]
        (the frozen payload: folder size, the biggest parts, the archive; -> install_payload.json)

Copies the source tree (without .git and .venv) to a temporary folder and runs `scripts/setup.sh`
there with `VITAL_WHEELHOUSE` set, inside a new network namespace (`unshare -n`, as root) so
that nothing can be fetched. Writes benchmarks/results/install.json.
"""

from __future__ import annotations

import argparse
import os
import re
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
    # No caches either: the first run in the copy must be a first run (mypy's cache is what it builds).
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(".git", ".venv", "wheelhouse", "__pycache__",
                                                              ".mypy_cache", ".ruff_cache", "build", "dist",
                                                              ".vital-demo", "results"))


def _timed(cmd: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


_RESULT_LINE = re.compile(r"^[.FEsxX]+\s*(\[\s*\d+%\])?\s*$")


def _to_first_test(src: Path, env: dict, isolate: list[str]) -> float:
    """Seconds from starting `scripts/test.sh tests/test_lock.py` to its first test result line."""
    start = time.perf_counter()
    first = None
    with subprocess.Popen([*isolate, "./scripts/test.sh", "tests/test_lock.py"], cwd=src, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if first is None and _RESULT_LINE.match(line):
                first = time.perf_counter() - start
        if proc.wait() != 0:
            raise SystemExit("scripts/test.sh failed in the copy")
    if first is None:
        raise SystemExit("scripts/test.sh printed no test result")
    return first


def _folder_bytes(folder: Path) -> int:
    return sum(p.lstat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _parts(folder: Path, top: int = 15) -> dict[str, int]:
    inside = folder / "_internal"
    sizes = {p.name: (_folder_bytes(p) if p.is_dir() else p.lstat().st_size) for p in inside.iterdir()
             if not p.is_symlink()} if inside.is_dir() else {}
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:top])


def payload_report(folder: Path, baseline: Path | None, slim_report: Path | None, archive: Path | None) -> None:
    """Sizes of a built frozen folder (and a baseline build, when given) in bytes."""
    report: dict[str, object] = {"folder": str(folder), "folder_bytes": _folder_bytes(folder),
                                 "files": sum(1 for p in folder.rglob("*") if p.is_file()),
                                 "biggest_parts": _parts(folder)}
    if baseline is not None:
        report["baseline_folder"] = str(baseline)
        base_bytes = _folder_bytes(baseline)
        report["baseline_bytes"] = base_bytes
        report["ratio"] = round(_folder_bytes(folder) / base_bytes, 3)
        report["baseline_biggest_parts"] = _parts(baseline)
    if slim_report is not None and slim_report.is_file():
        import json

        slim = json.loads(slim_report.read_text())
        report["slim"] = {k: v for k, v in slim.items() if k.endswith("_bytes")}
    if archive is not None and archive.is_file():
        report["archive"] = archive.name
        report["archive_bytes"] = archive.stat().st_size
    write_report("install_payload", report)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--payload", type=Path, default=None, help="measure this frozen folder instead")
    parser.add_argument("--baseline", type=Path, default=None, help="(with --payload) an older build to compare")
    parser.add_argument("--slim-report", type=Path, default=None, help="(with --payload) installer/slim.py's JSON")
    parser.add_argument("--archive", type=Path, default=None, help="(with --payload) the release archive")
    parser.add_argument("--wheelhouse", type=Path, default=ROOT / "wheelhouse")
    parser.add_argument("--repeats", type=int, default=1, help="fresh installs to time (each ~1-3 min)")
    args = parser.parse_args()
    if args.payload is not None:
        payload_report(args.payload.resolve(), args.baseline, args.slim_report, args.archive)
        return
    house = args.wheelhouse.resolve()
    if not (house / "requirements.txt").is_file():
        raise SystemExit(f"no wheelhouse at {house}: run scripts/wheelhouse.sh first")
    isolate = ["unshare", "-n"] if os.geteuid() == 0 and shutil.which("unshare") else []
    env = {**os.environ, "VITAL_WHEELHOUSE": str(house), "PIP_NO_CACHE_DIR": "1", "PIP_CONFIG_FILE": os.devnull}
    fresh: list[float] = []
    again: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "vital-desktop"
            _copy_source(src)
            fresh.append(_timed([*isolate, "./scripts/setup.sh"], src, env))
            for _ in range(5):
                again.append(_timed([*isolate, "./scripts/setup.sh"], src, env))
            test_env = {**env, "QT_QPA_PLATFORM": "offscreen"}
            cold.append(_to_first_test(src, test_env, isolate))
            for _ in range(5):
                warm.append(_to_first_test(src, test_env, isolate))
    size = sum(f.stat().st_size for f in house.glob("*.whl"))
    write_report("install", {
        "network": "none (unshare -n)" if isolate else "not isolated (not root)",
        "wheelhouse_bytes": size, "wheelhouse_files": len(list(house.glob("*.whl"))),
        "fresh_setup_from_wheelhouse_s": {"runs": fresh, "median": statistics.median(fresh)},
        "second_run_setup_s": {"runs": again, "median": statistics.median(again)},
        "test_sh_to_first_test_first_run_s": {"runs": cold, "median": statistics.median(cold),
                                              "note": "set-up (no-op), ruff, mypy with no cache, collection"},
        "test_sh_to_first_test_later_runs_s": {"runs": warm, "median": statistics.median(warm),
                                               "note": "the same with mypy's cache from the run before"},
        "whole_suite": "not run by this script (about 6.5 min on 2 idle cores; the lead runs it on main)",
        "note": "fresh = new venv + every locked wheel hash-checked + editable project; the machine is shared",
    })


if __name__ == "__main__":
    main()
