"""Before/after for the stall benchmark: this tree against a baseline commit, runs taking turns.

    python -m benchmarks.bench_ui_stall --baseline COMMIT [--rounds 3] [--labels 200000] [--jobs ...]
        → benchmarks/results/<--out>_compare.json

The baseline's `vital_desktop` is exported with `git archive` into a temporary folder (no
worktree); each run is a fresh process of `bench_ui_stall.py` (the same measuring code for both
sides) importing the app from one tree. Runs alternate ABBA… so both sides see the same load
drift; each run keeps its own idle baseline per job. The report has every run, the median per
side of the worst stall and the p99 gap (with the job, and idle), and the ratio baseline / this
tree (above 1: this tree stalls less).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._common import export_tree, git_commit, write_report

REPO = Path(__file__).resolve().parents[1]



def _run(script: Path, tree: Path, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    command = [sys.executable, str(script), "--labels", str(args.labels), "--jobs", args.jobs, "--startups", "0",
               "--flip", args.flip, "--tree", str(tree), "--report-to", str(out)]
    if args.switch_interval is not None:
        command += ["--switch-interval", str(args.switch_interval)]
    if args.diagnose:
        command.append("--diagnose")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(REPO)])}
    subprocess.run(command, check=True, env=env, cwd=str(REPO), stdout=subprocess.DEVNULL)
    result: dict[str, Any] = json.loads(out.read_text())
    result["load_average_after"] = list(os.getloadavg())
    return result


def _median(runs: list[dict], job: str, phase: str, key: str) -> float:
    return round(statistics.median(r["jobs"][job][phase][key] for r in runs), 1)


def compare(args: argparse.Namespace, script: Path) -> Path:
    """Run both sides `args.rounds` times each, alternating, and write one report."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        trees = {"baseline": export_tree(args.baseline, work), "this_tree": REPO}
        runs: dict[str, list[dict]] = {"baseline": [], "this_tree": []}
        for round_ in range(args.rounds):
            order = ("baseline", "this_tree") if round_ % 2 == 0 else ("this_tree", "baseline")
            for side in order:
                result = _run(script, trees[side], args, work / f"{side}-{round_}.json")
                runs[side].append(result)
                print(side, round_, json.dumps({job: {"worst_ms": r["with_job"]["worst_stall_ms"],
                                                      "idle_worst_ms": r["idle_baseline"]["worst_stall_ms"]}
                                                for job, r in result["jobs"].items()}), flush=True)
    summary: dict[str, Any] = {}
    for job in runs["this_tree"][0]["jobs"]:
        entry: dict[str, Any] = {}
        for side, side_runs in runs.items():
            entry[side] = {
                "worst_stall_ms_median": _median(side_runs, job, "with_job", "worst_stall_ms"),
                "worst_stall_ms_runs": [r["jobs"][job]["with_job"]["worst_stall_ms"] for r in side_runs],
                "p99_gap_ms_median": _median(side_runs, job, "with_job", "p99_gap_ms"),
                "idle_worst_stall_ms_median": _median(side_runs, job, "idle_baseline", "worst_stall_ms"),
                "idle_p99_gap_ms_median": _median(side_runs, job, "idle_baseline", "p99_gap_ms"),
            }
        for key in ("worst_stall_ms_median", "p99_gap_ms_median", "idle_worst_stall_ms_median"):
            entry[f"ratio_{key}_baseline_over_this"] = round(entry["baseline"][key] / max(entry["this_tree"][key], 1.0), 2)
        summary[job] = entry
    return write_report(f"{args.out}_compare", {
        "baseline_commit": args.baseline, "this_tree": git_commit(), "rounds": args.rounds, "labels": args.labels,
        "jobs_run": args.jobs, "flip": args.flip, "order": "ABBA…, a fresh process per run",
        "summary": summary, "runs": runs,
    })
