"""Monte Carlo engine benchmark -> benchmarks/results/montecarlo.json.

Measures, side by side in one run (medians of repeats):
- histories/s per core and ns/history: 3"x3" NaI preset (MgO reflector, Al can, glass window,
  air) with a Cs-137 point source at 10 cm, full physics, cone variance reduction;
- the same with 2 worker threads (scaling 1 -> 2 cores);
- time to reach +-0.1 % (1 sigma) on the full-energy-peak efficiency, predicted from the
  measured uncertainty and checked by running that many histories;
- numba compile time on the first call (empty cache) and with the on-disk cache (fresh processes);
- the same run with the vectorised NumPy implementation in `montecarlo/reference.py` (ratio);
- cost floor probes: a perfect absorber (emission + tracking skeleton only) and a bare crystal
  in vacuum without coherent scattering and K X-rays.

The machine is shared: the load average before and after is recorded with the numbers.

Run: .venv/bin/python benchmarks/bench_montecarlo.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vital_desktop.montecarlo import Detector, Options, Source, make_config, simulate
from vital_desktop.montecarlo.config import detector_preset
from vital_desktop.montecarlo.reference import simulate_reference

COMPILE_SNIPPET = (
    "import time; t=time.perf_counter(); from vital_desktop.montecarlo import warm_up; "
    "import_s=time.perf_counter()-t; w=warm_up(); print(import_s, w)"
)


def _config(detector=None, options: Options | None = None):
    return make_config(detector=detector or "nai-3x3", source=Source(kind="point", distance_cm=10.0),
                       nuclide="Cs-137", options=options or Options())


def _rate(config, histories: int, workers: int, repeats: int) -> dict:
    rates = []
    cpu_rates = []
    relatives = []
    result = None
    for i in range(repeats):
        cpu0 = time.process_time()
        result = simulate(config, histories=histories, seed=100 + i, workers=workers)
        cpu_rates.append(histories / (time.process_time() - cpu0))
        rates.append(result.histories_per_s)
        relatives.append(result.lines[0].peak_efficiency.relative)
    assert result is not None
    rate = statistics.median(rates)
    cpu_rate = statistics.median(cpu_rates)
    return {
        "histories": histories, "workers": workers, "repeats": repeats,
        "histories_per_s_median": rate, "histories_per_s_all": rates,
        "ns_per_history_median": 1e9 / rate,
        # CPU time is less sensitive than wall time to other jobs on the shared cores
        "histories_per_cpu_s_median": cpu_rate,
        "cpu_ns_per_history_median": 1e9 / cpu_rate,
        "interactions_per_history": result.interactions / result.histories,
        "peak_efficiency": result.lines[0].peak_efficiency.to_dict(),
        "peak_relative_sigma_mean_of_repeats": statistics.fmean(relatives),
        "total_efficiency": result.lines[0].total_efficiency.to_dict(),
    }


def _compile_times() -> dict:
    env = dict(os.environ)
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env["NUMBA_CACHE_DIR"] = cache
        for label in ("first_call_empty_cache", "second_process_with_cache"):
            proc = subprocess.run([sys.executable, "-c", COMPILE_SNIPPET], env=env, cwd=ROOT, capture_output=True,
                                  text=True, check=True)
            import_s, warm_s = (float(x) for x in proc.stdout.split())
            out[label] = {"import_s": import_s, "compile_or_load_and_tiny_run_s": warm_s}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer histories and repeats")
    args = parser.parse_args()
    histories = 1_000_000 if args.quick else 3_000_000
    repeats = 3 if args.quick else 5
    load_before = os.getloadavg()

    config = _config()
    simulate(config, histories=1000, seed=0)  # compile / load cache outside the timings

    one = _rate(config, histories, 1, repeats)
    two = _rate(config, histories, 2, repeats)

    # time to +-0.1 % on the FEP efficiency: sigma scales as 1/sqrt(N)
    rel = one["peak_relative_sigma_mean_of_repeats"]  # averaged: one batch estimate of sigma is itself noisy
    needed = int(histories * (rel / 0.001) ** 2) + 1
    t0 = time.perf_counter()
    check = simulate(config, histories=needed, seed=7, workers=2)
    to_target = {
        "target_relative_sigma": 0.001,
        "histories_needed": needed,
        "predicted_s_1_core": needed / one["histories_per_s_median"],
        "predicted_s_2_cores": needed / two["histories_per_s_median"],
        "measured_s_2_cores": time.perf_counter() - t0,
        "measured_relative_sigma": check.lines[0].peak_efficiency.relative,
        "peak_efficiency": check.lines[0].peak_efficiency.to_dict(),
    }

    # NumPy reference, same configuration and number of histories, side by side
    ref_hist = 200_000 if args.quick else 400_000
    numba_times, numpy_times = [], []
    for i in range(3):
        t0 = time.perf_counter()
        simulate(config, histories=ref_hist, seed=200 + i)
        numba_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = simulate_reference(config, histories=ref_hist, seed=200 + i)
        numpy_times.append(time.perf_counter() - t0)
    numpy_cmp = {
        "histories": ref_hist,
        "numba_s_median": statistics.median(numba_times),
        "numpy_s_median": statistics.median(numpy_times),
        "speedup_numba_over_numpy": statistics.median(numpy_times) / statistics.median(numba_times),
        "numpy_peak_efficiency": ref["peak_efficiency"],
    }

    # floor probes
    black = Detector(name="black", material="black", radius_cm=3.81, height_cm=7.62)
    bare = replace(detector_preset("nai-3x3"), housing=())
    probes = {
        "perfect_absorber_vacuum": _rate(_config(black, Options(medium="vacuum")), histories, 1, 3),
        "bare_nai_vacuum_no_coherent_no_k": _rate(
            _config(bare, Options(medium="vacuum", coherent=False, k_xray_escape=False)), histories, 1, 3),
        "nai_3x3_analog_no_variance_reduction": _rate(_config(None, Options(variance_reduction=False)), histories, 1, 3),
    }

    compile_times = _compile_times()
    report = {
        "benchmark": "montecarlo",
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": load_before, "load_average_after": os.getloadavg(),
                    "note": "2 shared cores; other engineers' jobs ran at the same time"},
        "case": "3x3 NaI preset (MgO reflector, Al can, glass window), air, Cs-137 point source at 10 cm, "
                "coherent + K X-rays on, cone variance reduction",
        "one_core": one,
        "two_cores": two,
        "scaling_2_over_1": two["histories_per_s_median"] / one["histories_per_s_median"],
        "cpu_efficiency_2_workers": two["histories_per_cpu_s_median"] / one["histories_per_cpu_s_median"],
        "target_histories_per_s_per_core": 5_000_000,
        "time_to_0p1_percent_on_fep": to_target,
        "numpy_reference": numpy_cmp,
        "floor_probes": probes,
        "numba_compile": compile_times,
    }
    out = ROOT / "benchmarks" / "results" / "montecarlo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps({k: report[k] for k in ("scaling_2_over_1",)}, indent=2))
    print(f"1 core: {one['histories_per_s_median'] / 1e6:.2f} M/s wall, "
          f"{one['histories_per_cpu_s_median'] / 1e6:.2f} M/CPU-s ({one['cpu_ns_per_history_median']:.0f} ns/history); "
          f"2 cores: {two['histories_per_s_median'] / 1e6:.2f} M/s; to 0.1 %: {to_target['measured_s_2_cores']:.2f} s; "
          f"numba/numpy: {numpy_cmp['speedup_numba_over_numpy']:.1f}x; compile: {compile_times}")


if __name__ == "__main__":
    main()
