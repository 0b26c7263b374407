"""Per-line kernel speed, this tree against a baseline commit, interleaved -> benchmarks/results/.

The case the issue pins: the 3"x3" NaI preset, a Cs-137 point source at 10 cm, full physics, cone
variance reduction, one worker thread; the figure is histories per CPU-second of the process
(`time.process_time`), so other users' load on the shared machine costs less than wall time would.
The baseline is `git archive REF` unpacked in a temporary folder; each measurement is a fresh
process (after a warm-up run that compiles or loads the numba cache), alternating baseline and
this tree, repeats >= 5; the report gives the medians and their ratio.

In the same run, after each pair, a fresh process of this tree measures whole decays of Eu-152 on
the same detector and source: CPU ns per decay of the decay chunks alone (the whole-decay kernel,
as `simulate_whole_decays` runs them, without its companion per-line run), beside CPU ns per
photon of the per-line run over Eu-152's lines and of the Cs-137 case; medians and their ratios.

Run: .venv/bin/python benchmarks/bench_montecarlo_kernel_ab.py [--baseline-ref main] [--repeats 7]
         [--histories N] [--decays N] [--out NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._common import export_tree  # noqa: E402

SNIPPET = """
import sys, time
sys.path.insert(0, sys.argv[1])
from vital_desktop.montecarlo import Source, make_config, simulate
config = make_config(detector="nai-3x3", source=Source(kind="point", distance_cm=10.0), nuclide="Cs-137")
simulate(config, histories=20_000, seed=1, workers=1)  # compile or load the cache
n = int(sys.argv[2])
cpu = time.process_time()
result = simulate(config, histories=n, seed=int(sys.argv[3]), workers=1)
cpu = time.process_time() - cpu
print(n / cpu, result.lines[0].peak_efficiency.value)
"""


DECAY_SNIPPET = """
import sys, time
sys.path.insert(0, sys.argv[1])
from vital_desktop.montecarlo import Source, make_config, simulate
from vital_desktop.montecarlo.decay import decay_scheme
from vital_desktop.montecarlo.engine import plan_chunks
from vital_desktop.montecarlo.geometry import build_problem
from vital_desktop.montecarlo.whole_decay import _peak_table, _run_chunk
config = make_config(detector="nai-3x3", source=Source(kind="point", distance_cm=10.0), nuclide="Eu-152")
scheme = decay_scheme(config.nuclide)
problem = build_problem(config)
peak_e, _ = _peak_table(scheme, config.lines)
n = int(sys.argv[2])
seed = int(sys.argv[3])
for i, size in enumerate(plan_chunks(2_000, 1)):  # compile or load the cache
    _run_chunk(problem, scheme, peak_e, 0, i, size)
simulate(config, histories=2_000, seed=0)  # simulate runs the lines one photon per history
cpu = time.process_time()
for i, size in enumerate(plan_chunks(n, 1)):
    _run_chunk(problem, scheme, peak_e, seed, i, size)
decay_cpu = time.process_time() - cpu
cpu = time.process_time()
simulate(config, histories=n, seed=seed, workers=1)
line_cpu = time.process_time() - cpu
print(1e9 * decay_cpu / n, 1e9 * line_cpu / n, len(config.lines))
"""


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def _run(snippet: str, tree: Path, histories: int, seed: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", snippet, str(tree), str(histories), str(seed)], check=True,
                         capture_output=True, text=True, env=env, cwd=str(tree)).stdout.split()
    return [float(x) for x in out]


def _measure(tree: Path, histories: int, seed: int) -> tuple[float, float]:
    rate, peak = _run(SNIPPET, tree, histories, seed)
    return rate, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-ref", default="main")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--histories", type=int, default=400_000)
    parser.add_argument("--decays", type=int, default=200_000, help="Eu-152 decays per repeat (0: skip)")
    parser.add_argument("--out", default="montecarlo_kernel_ab", help="report name in benchmarks/results/")
    args = parser.parse_args()
    baseline_commit = _git("rev-parse", args.baseline_ref)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = export_tree(baseline_commit, Path(tmp))
        rates: dict[str, list[float]] = {"baseline": [], "this_tree": []}
        peaks: dict[str, list[float]] = {"baseline": [], "this_tree": []}
        eu: dict[str, list[float]] = {"decay_cpu_ns_per_decay": [], "per_line_cpu_ns_per_photon": []}
        n_lines = 0.0
        t0 = time.time()
        for i in range(args.repeats):
            for name, tree in (("baseline", base_tree), ("this_tree", ROOT)) if i % 2 == 0 else (
                    ("this_tree", ROOT), ("baseline", base_tree)):
                rate, peak = _measure(tree, args.histories, 1000 + i)
                rates[name].append(rate)
                peaks[name].append(peak)
                print(f"{name:10s} {rate:12,.0f} histories/CPU-s", flush=True)
            if args.decays:
                per_decay, per_photon, n_lines = _run(DECAY_SNIPPET, ROOT, args.decays, 2000 + i)
                eu["decay_cpu_ns_per_decay"].append(per_decay)
                eu["per_line_cpu_ns_per_photon"].append(per_photon)
                print(f"Eu-152     {per_decay:8.0f} ns/decay, per line {per_photon:6.0f} ns/photon", flush=True)
    load_after = os.getloadavg()
    med = {k: statistics.median(v) for k, v in rates.items()}
    report = {
        "benchmark": "bench_montecarlo_kernel_ab",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "baseline_ref": args.baseline_ref,
        "baseline_commit": baseline_commit,
        "case": "nai-3x3 preset, Cs-137 point at 10 cm, air, full physics, cone VR, 1 worker",
        "histories_per_run": args.histories,
        "repeats": args.repeats,
        "histories_per_cpu_s": rates,
        "median_histories_per_cpu_s": med,
        "ratio_this_tree_over_baseline": med["this_tree"] / med["baseline"],
        "peak_efficiency_medians": {k: statistics.median(v) for k, v in peaks.items()},
        "eu152_whole_decay": None if not args.decays else {
            "case": "nai-3x3 preset, Eu-152 point at 10 cm, whole decays (cone VR, stratified), 1 worker; "
                    "per line: the same source over Eu-152's companion lines",
            "decays_per_run": args.decays,
            "companion_lines": int(n_lines),
            "runs": eu,
            "median_decay_cpu_ns_per_decay": statistics.median(eu["decay_cpu_ns_per_decay"]),
            "median_per_line_cpu_ns_per_photon": statistics.median(eu["per_line_cpu_ns_per_photon"]),
            "median_cs137_per_line_cpu_ns_per_history": 1e9 / med["this_tree"],
            "decay_over_eu152_photon": statistics.median(eu["decay_cpu_ns_per_decay"])
            / statistics.median(eu["per_line_cpu_ns_per_photon"]),
            "decay_over_cs137_history": statistics.median(eu["decay_cpu_ns_per_decay"]) * med["this_tree"] / 1e9,
        },
        "load_average_before": load_before,
        "load_average_after": load_after,
        "wall_s": time.time() - t0,
    }
    out = ROOT / "benchmarks" / "results" / f"{args.out}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: report[k] for k in ("median_histories_per_cpu_s", "ratio_this_tree_over_baseline")}))


if __name__ == "__main__":
    main()
