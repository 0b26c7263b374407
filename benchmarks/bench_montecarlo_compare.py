"""Monte Carlo comparisons run side by side -> the "comparisons" block of benchmarks/results/montecarlo.json.

1. Speed kept: the 3"x3" NaI Cs-137 point-source case at 10 cm (per line), this tree against a
   baseline revision extracted with `git archive` into a temporary folder, in fresh processes,
   interleaved (baseline, current, baseline, ...), medians of CPU-second rates; ratio quoted.
2. Whole decays: cost per decay of Cs-137, Co-60, Ba-133 (and Eu-152 when it has a scheme) on the
   same detector, CPU time of the whole run (decays + the companion per-line run) per decay,
   beside the per-line run alone.
3. An established offline photon-transport code from PyPI (goupil, LGPL-3.0, used here only):
   the same bare 3"x3" NaI crystal in vacuum, Cs-137 point source at 10 cm, photons started on
   the front face inside the cone that sees it (the vital engine's own variance reduction gives
   exactly that cone), no coherent scattering, no fluorescence; photons per CPU-second of both,
   interleaved, and their full-energy-peak and total efficiencies. goupil's geometry is the small
   C file `goupil_cylinder.c`, compiled with the system C compiler.

Run: .venv/bin/python benchmarks/bench_montecarlo_compare.py [--baseline REV] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RATE_SNIPPET = """
import json, sys, time
from vital_desktop.montecarlo import Source, make_config, simulate
kw = {{"per_line": True}} if {per_line_kw} else {{}}
config = make_config(detector="nai-3x3", source=Source(kind="point", distance_cm=10.0), nuclide="Cs-137", **kw)
simulate(config, histories=2000, seed=0)
t = time.process_time()
r = simulate(config, histories={histories}, seed={seed}, workers=1)
cpu = time.process_time() - t
print(json.dumps({{"cpu_s": cpu, "rate": {histories} / cpu, "fep": r.lines[0].peak_efficiency.value}}))
"""


def _git(*args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, check=True).stdout


def _extract(rev: str, into: Path) -> None:
    data = _git("archive", "--format=tar", rev, "vital_desktop")
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into, filter="data")


def _rate_in(tree: Path, histories: int, seed: int, per_line_kw: bool, cache: Path) -> dict:
    # each tree compiles into its own cache folder outside the repository
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_CACHE_DIR": str(cache)}
    code = RATE_SNIPPET.format(histories=histories, seed=seed, per_line_kw=per_line_kw)
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed_kept(baseline: str, histories: int, repeats: int) -> dict:
    current_rev = _git("rev-parse", "--short", "HEAD").decode().strip()
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = Path(tmp) / "baseline"
        _extract(baseline, base_tree)
        base_cache, cur_cache = Path(tmp) / "cache-baseline", Path(tmp) / "cache-current"
        _rate_in(base_tree, 2000, 0, False, base_cache)  # compile both trees' kernels outside the timings
        _rate_in(ROOT, 2000, 0, True, cur_cache)
        base, cur = [], []
        for i in range(repeats):
            base.append(_rate_in(base_tree, histories, 100 + i, False, base_cache))
            cur.append(_rate_in(ROOT, histories, 100 + i, True, cur_cache))
    b = statistics.median(x["rate"] for x in base)
    c = statistics.median(x["rate"] for x in cur)
    return {
        "case": "3x3 NaI preset, air, Cs-137 point source at 10 cm, one photon per history (per line)",
        "baseline_revision": baseline, "current_revision": current_rev, "histories": histories,
        "repeats": repeats, "order": "interleaved baseline/current, fresh process each",
        "baseline_histories_per_cpu_s": [x["rate"] for x in base],
        "current_histories_per_cpu_s": [x["rate"] for x in cur],
        "baseline_median": b, "current_median": c, "ratio_current_over_baseline": c / b,
        "fep_baseline_first": base[0]["fep"], "fep_current_first": cur[0]["fep"],
    }


def whole_decay_costs(decays: int, repeats: int) -> dict:
    from vital_desktop.montecarlo import Source, make_config, simulate, simulate_whole_decays
    from vital_desktop.montecarlo.decay import has_scheme

    out = {}
    for nuclide in ("Cs-137", "Co-60", "Ba-133", "Eu-152"):
        if not has_scheme(nuclide):
            out[nuclide] = {"skipped": "no decay scheme in resources/decays.json"}
            continue
        config = make_config(detector="nai-3x3", source=Source(kind="point", distance_cm=10.0), nuclide=nuclide)
        simulate_whole_decays(config, histories=2000, seed=0)
        whole, per_line = [], []
        for i in range(repeats):
            t = time.process_time()
            simulate_whole_decays(config, histories=decays, seed=10 + i)
            whole.append(time.process_time() - t)
            t = time.process_time()
            simulate(config, histories=decays, seed=10 + i)  # the companion run alone
            per_line.append(time.process_time() - t)
        w, p = statistics.median(whole), statistics.median(per_line)
        out[nuclide] = {
            "decays": decays, "repeats": repeats, "lines_in_companion_run": len(config.lines),
            "whole_run_cpu_ns_per_decay": 1e9 * w / decays,
            "companion_per_line_cpu_ns_per_history": 1e9 * p / decays,
            "decay_part_cpu_ns_per_decay": 1e9 * (w - p) / decays,
        }
    return out


def _goupil_engine(tmp: Path):
    import goupil

    include = Path(goupil.__file__).parent / "interfaces"
    lib = tmp / "goupil_cylinder.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", f"-I{include}", "-o", str(lib),
                    str(ROOT / "benchmarks" / "goupil_cylinder.c"), "-lm"], check=True)
    engine = goupil.TransportEngine(goupil.ExternalGeometry(str(lib)))
    engine.settings.rayleigh = False
    engine.settings.energy_min = 1e-3
    engine.compile()
    return goupil, engine


def goupil_ratio(photons: int, repeats: int) -> dict:
    import numpy as np

    try:
        import goupil  # noqa: F401
    except ImportError:
        return {"skipped": "goupil is not installed (pip install goupil==1.3.3)"}
    from dataclasses import replace

    from vital_desktop.montecarlo import Options, Source, make_config, simulate
    from vital_desktop.montecarlo.config import detector_preset

    distance, radius, energy = 10.0, 3.81, 0.661657
    bare = replace(detector_preset("nai-3x3"), housing=())
    config = make_config(detector=bare, source=Source(kind="point", distance_cm=distance), nuclide="Cs-137",
                         per_line=True, options=Options(medium="vacuum", coherent=False, k_xray_escape=False))
    simulate(config, histories=2000, seed=0)
    cosmax = distance / np.hypot(distance, radius)
    fraction = (1.0 - cosmax) / 2.0
    with tempfile.TemporaryDirectory() as tmp:
        g, engine = _goupil_engine(Path(tmp))
        ours, theirs, g_fep, g_total, v_fep, v_total = [], [], [], [], [], []
        for i in range(repeats):
            t = time.process_time()
            r = simulate(config, histories=photons, seed=50 + i)
            ours.append(photons / (time.process_time() - t))
            v_fep.append(r.lines[0].peak_efficiency.value)
            v_total.append(r.lines[0].total_efficiency.value)
            rng = np.random.default_rng(50 + i)
            cost = 1.0 - rng.random(photons) * (1.0 - cosmax)
            phi = 2.0 * np.pi * rng.random(photons)
            sint = np.sqrt(1.0 - cost**2)
            u = np.stack([sint * np.cos(phi), sint * np.sin(phi), cost], axis=1)
            reach = distance / cost
            states = g.states(photons, energy=energy)
            states["position"] = np.stack([u[:, 0] * reach, u[:, 1] * reach, np.full(photons, 1e-9)], axis=1)
            states["direction"] = u
            t = time.process_time()
            status = engine.transport(states)  # photon generation above is not timed
            theirs.append(photons / (time.process_time() - t))
            absorbed = (status == g.TransportStatus.ABSORBED) | (status == g.TransportStatus.ENERGY_MIN)
            g_fep.append(fraction * absorbed.mean())
            g_total.append(fraction * (absorbed | (states["energy"] < energy - 1e-12)).mean())
    o, th = statistics.median(ours), statistics.median(theirs)
    return {
        "case": "bare 3x3 NaI crystal in vacuum, Cs-137 (661.657 keV) point source on axis at 10 cm, photons "
                "emitted into the cone of the front face, no coherent scattering, no fluorescence/K X-rays",
        "other_code": f"goupil {g.__version__ if hasattr(g, '__version__') else '1.3.3'} (LGPL-3.0; own element "
                      "data, Compton with scattering functions), geometry benchmarks/goupil_cylinder.c",
        "photons": photons, "repeats": repeats, "order": "interleaved vital/goupil in one process",
        "vital_photons_per_cpu_s": ours, "goupil_photons_per_cpu_s": theirs,
        "vital_median": o, "goupil_median": th, "ratio_vital_over_goupil": o / th,
        "vital_fep_efficiency_mean": statistics.fmean(v_fep), "goupil_fep_efficiency_mean": statistics.fmean(g_fep),
        "vital_total_efficiency_mean": statistics.fmean(v_total),
        "goupil_total_efficiency_mean": statistics.fmean(g_total),
        "note": "goupil's timing covers its transport call only (not the numpy photon generation)",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", default="7606380", help="revision before the whole-decay work")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    histories = 1_000_000 if args.quick else 3_000_000
    repeats = 5
    load_before = os.getloadavg()
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": _git("rev-parse", "HEAD").decode().strip(),
        "load_average_before": load_before,
        "speed_kept": speed_kept(args.baseline, histories, repeats),
        "whole_decay_cost": whole_decay_costs(200_000 if args.quick else 500_000, repeats),
        "established_code": goupil_ratio(200_000 if args.quick else 500_000, repeats),
        "load_average_after": os.getloadavg(),
    }
    path = ROOT / "benchmarks" / "results" / "montecarlo.json"
    data = json.loads(path.read_text()) if path.exists() else {"benchmark": "montecarlo"}
    data["comparisons"] = report
    path.write_text(json.dumps(data, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
