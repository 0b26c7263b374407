"""Whole-decay runs: true-coincidence summing from the decay scheme, beside single-photon efficiencies.

`simulate_whole_decays(config, histories=N, seed=s)` runs N decays with every photon of a decay
in one history (`kernel.kernel_for(whole_decay=True, ...)`) and, with the same N and seed, the usual
one-photon-per-history run over the scheme's gamma lines (`engine.simulate`). Per gamma line it
reports the single-photon peak and total efficiencies, the apparent peak area per decay A (what
a spectrum shows, summing-out and summing-in included) and the true-coincidence-summing
correction factor C = I eps_peak / A (C > 1: the peak lost counts to summing; multiply a
measured peak area by C, or divide I eps_peak by it, to compare with the single-photon
efficiency). Sum peaks (two or more photons of one decay fully absorbed) are reported with their
areas per decay. Like `engine.simulate`, the result is a pure function of (config, seed,
histories), independent of the number of workers.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from vital_desktop.core.progress import Progress
from vital_desktop.montecarlo.config import Line, SimulationConfig, validate, validate_histories, validate_seed
from vital_desktop.montecarlo.decay import ELECTRON_MASS_KEV, PEAK_WINDOW_KEV, DecayScheme, decay_scheme
from vital_desktop.montecarlo.engine import (
    ENGINE_VERSION,
    Estimate,
    SimulationResult,
    Spectrum,
    chunk_state,
    plan_chunks,
    ratio_estimate,
    simulate,
)
from vital_desktop.montecarlo.geometry import Problem, build_problem
from vital_desktop.montecarlo.kernel import kernel_for
from vital_desktop.montecarlo.spectrum import broaden

#: Gamma lines weaker than this (per decay) get no single-photon companion run or TCS factor.
MIN_LINE_INTENSITY = 1.0e-3
#: The decay chunks use seeds offset from the companion run's, so the two runs are independent.
DECAY_SEED_SPAWN = 1_000_003
#: The per-line inputs and tallies the whole-decay kernel does not use.
_NO_ENERGIES = np.zeros(1)
_NO_INTERACTIONS = np.zeros(1)


@dataclass(frozen=True)
class PeakResult:
    """One peak of a whole-decay run: a gamma line (with its TCS factor) or a sum peak."""

    energy_kev: float
    kind: str  # "gamma", "annihilation" or "sum"
    intensity: float  # evaluated emission intensity per decay (0 for a sum peak)
    apparent_area_per_decay: Estimate
    peak_efficiency: Estimate | None = None  # single photon
    total_efficiency: Estimate | None = None  # single photon
    tcs_factor: Estimate | None = None

    def to_dict(self) -> dict:
        out = {"energy_kev": self.energy_kev, "kind": self.kind, "intensity": self.intensity,
               "apparent_area_per_decay": self.apparent_area_per_decay.to_dict()}
        for name in ("peak_efficiency", "total_efficiency", "tcs_factor"):
            value = getattr(self, name)
            out[name] = value.to_dict() if value is not None else None
        return out


@dataclass(frozen=True)
class WholeDecayResult:
    config: SimulationConfig
    seed: int
    histories: int
    batches: int
    workers: int
    per_line: SimulationResult
    peaks: list[PeakResult]
    counts_per_decay: Estimate  # probability that a decay gives a pulse (gross-count calibration factor)
    spectrum: Spectrum
    duration_s: float
    energy_balance_max_mev: float
    interactions: int
    engine_version: str = ENGINE_VERSION
    notes: list[str] = field(default_factory=list)
    angular_correlation: bool = False

    @property
    def histories_per_s(self) -> float:
        return self.histories / self.duration_s if self.duration_s > 0 else math.inf

    def peak(self, energy_kev: float) -> PeakResult:
        return min(self.peaks, key=lambda p: abs(p.energy_kev - energy_kev))

    def summary(self) -> dict:
        out = self.per_line.summary()
        out["mode"] = "whole_decay"
        out["calibration_factor_total_cps_per_bq"] = self.counts_per_decay.value
        out["calibration_factor_total_cps_per_bq_sigma"] = self.counts_per_decay.sigma
        for p in self.peaks:
            tag = f"{p.energy_kev:g}keV"
            out[f"apparent_peak_per_decay_{tag}"] = p.apparent_area_per_decay.value
            if p.tcs_factor is not None:
                out[f"tcs_factor_{tag}"] = p.tcs_factor.value
                out[f"tcs_factor_{tag}_sigma"] = p.tcs_factor.sigma
        return out

    def to_dict(self, *, include_spectrum: bool = False) -> dict:
        data = self.per_line.to_dict(include_spectrum=False)
        data.update({
            "mode": "whole_decay",
            "seed": self.seed,
            "histories": self.histories,
            "duration_s": self.duration_s,
            "histories_per_s": self.histories_per_s,
            "total_cps_per_bq": self.counts_per_decay.to_dict(),
            "single_photon_total_cps_per_bq": self.per_line.total_cps_per_bq.to_dict(),
            "whole_decay": {
                "decays": self.histories,
                "batches": self.batches,
                "energy_balance_max_mev": self.energy_balance_max_mev,
                "interactions": self.interactions,
                "peak_window_kev": PEAK_WINDOW_KEV,
                "angular_correlation": self.angular_correlation,
                "peaks": [p.to_dict() for p in self.peaks],
            },
            "summary": self.summary(),
            "notes": list(self.notes),
        })
        if include_spectrum:
            data["spectrum"] = asdict(self.spectrum)
        return data


def companion_lines(scheme: DecayScheme, cutoff_kev: float) -> tuple[Line, ...]:
    """The scheme's gamma lines (and the annihilation line) run one photon per history."""
    lines = [Line(g.energy_kev, g.intensity) for g in scheme.gamma_lines
             if g.intensity >= MIN_LINE_INTENSITY and g.energy_kev > cutoff_kev]
    if scheme.annihilation is not None:
        lines.append(Line(ELECTRON_MASS_KEV, scheme.annihilation.intensity))
    return tuple(sorted(lines, key=lambda line: -line.probability))


def _peak_table(scheme: DecayScheme, lines: tuple[Line, ...]) -> tuple[np.ndarray, list[tuple[float, str, float]]]:
    entries = [(line.energy_kev, "annihilation" if line.energy_kev == ELECTRON_MASS_KEV else "gamma",
                line.probability) for line in lines]
    for e in scheme.sum_peaks_kev:
        if all(abs(e - x[0]) > 2 * PEAK_WINDOW_KEV for x in entries):
            entries.append((e, "sum", 0.0))
    return np.array([x[0] / 1000.0 for x in entries]), entries


def correlation_of(config: SimulationConfig, scheme: DecayScheme) -> tuple[float, float]:
    """(A22, A44) when the run asks for angular correlation and the decay data give it, else zeros."""
    if config.options.angular_correlation and scheme.angular_correlation is not None:
        return scheme.angular_correlation
    return 0.0, 0.0


def _run_chunk(problem: Problem, scheme: DecayScheme, peak_e: np.ndarray, seed: int, index: int,
               size: int, correlation: tuple[float, float] = (0.0, 0.0),
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    t = scheme.tables
    a22, a44 = correlation
    sums = np.zeros(3)
    peak = np.zeros(peak_e.size)
    hist = np.zeros((1, problem.spectrum_bins))
    diag = np.zeros(3)
    decay_data = (t.br_cum, t.br_level, t.br_pair, t.br_kx, t.br_dau, t.lv_first, t.lv_n, t.lv_dau, t.tr_cum, t.tr_to,
                  t.tr_e, t.tr_pg, t.tr_pkx, t.dau_xa, t.dau_xb, t.dau_xshare, peak_e, PEAK_WINDOW_KEV / 1000.0,
                  float(a22), float(a44))
    kernel = kernel_for(whole_decay=True, general=problem.general_geometry)
    kernel(chunk_state(seed, DECAY_SEED_SPAWN + index), np.array([size], dtype=np.int64), _NO_ENERGIES, decay_data,
           *problem.kernel_args(), sums, peak, _NO_INTERACTIONS, hist, diag)
    return sums, peak, hist[0], diag


def simulate_whole_decays(
    config: SimulationConfig,
    *,
    histories: float,
    seed: int,
    workers: int = 1,
    progress: Progress | None = None,
) -> WholeDecayResult:
    """`histories` whole decays of `config.nuclide` plus the single-photon companion run; see the module."""
    validate(config)
    if not config.nuclide:
        raise_no_nuclide()
    scheme = decay_scheme(config.nuclide)
    lines = companion_lines(scheme, config.options.cutoff_kev)
    line_config = replace(config, lines=lines)
    validate(line_config)
    n_hist = validate_histories(histories, len(lines))
    seed = validate_seed(seed)
    workers = max(1, int(workers))
    progress = progress or Progress()
    t0 = time.perf_counter()
    # the spectrum reaches the highest sum peak
    top = max([line.energy_kev for line in lines] + list(scheme.sum_peaks_kev))
    opts = config.options
    if opts.spectrum_max_kev is None:
        line_config = replace(line_config, options=replace(opts, spectrum_max_kev=1.05 * top))
    per_line = simulate(line_config, histories=n_hist, seed=seed, workers=workers,
                        progress=_SubProgress(progress, 0, 2 * n_hist))  # type: ignore[arg-type]  # duck-typed
    problem = build_problem(line_config)
    correlation = correlation_of(config, scheme)
    if correlation != (0.0, 0.0):
        # correlated directions are emitted analog: the cone strata assume independent photons
        problem.cone_params = problem.cone_params.copy()
        problem.cone_params[0] = 0.0
    peak_e, entries = _peak_table(scheme, lines)
    sizes = plan_chunks(n_hist, 1)
    results: dict[int, tuple] = {}
    sub = _SubProgress(progress, n_hist, 2 * n_hist)

    def job(i: int) -> tuple:
        return _run_chunk(problem, scheme, peak_e, seed, i, sizes[i], correlation)

    if workers == 1:
        for i in range(len(sizes)):
            sub.check()
            results[i] = job(i)
            sub.advance(sizes[i])
    else:
        with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vital-mc-decay") as pool:
            in_flight: dict[cf.Future, int] = {}
            nxt = 0
            try:
                while nxt < len(sizes) or in_flight:
                    while nxt < len(sizes) and len(in_flight) < workers:
                        sub.check()
                        in_flight[pool.submit(job, nxt)] = nxt
                        nxt += 1
                    done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                    for future in done:
                        i = in_flight.pop(future)
                        results[i] = future.result()
                        sub.advance(sizes[i])
            except BaseException:
                cf.wait(in_flight)
                raise
    duration = time.perf_counter() - t0
    progress.finish("done")
    return _finish(line_config, scheme, per_line, entries, [results[i] for i in range(len(sizes))], sizes,
                   seed=seed, histories=n_hist, workers=workers, duration=duration)


def raise_no_nuclide() -> None:
    from vital_desktop.core.errors import ValidationError

    raise ValidationError("whole-decay mode needs a nuclide with a decay scheme")


class _SubProgress:
    """A window [offset, offset + n) of a parent progress (two runs share one bar)."""

    def __init__(self, parent: Progress, offset: int, total: int) -> None:
        self.parent = parent
        self.offset = offset
        self.total = total
        self.done = 0

    def start(self, total: int, message: str = "") -> None:
        if self.offset == 0:
            self.parent.start(self.total, message)

    def advance(self, n: int = 1, message: str | None = None) -> None:
        self.done += n
        self.parent.advance(n, message)

    def set(self, done: int, message: str | None = None) -> None:
        self.parent.set(self.offset + done, message)

    def finish(self, message: str | None = None) -> None:
        pass

    def check(self) -> None:
        self.parent.check()

    @property
    def cancelled(self) -> bool:
        return self.parent.cancelled


def _finish(config: SimulationConfig, scheme: DecayScheme, per_line: SimulationResult, entries: list,
            chunks: list[tuple], sizes: list[int], *, seed: int, histories: int, workers: int,
            duration: float) -> WholeDecayResult:
    n = np.array(sizes, dtype=np.float64)
    counted = np.array([c[0][1] for c in chunks])
    peaks_b = np.array([c[1] for c in chunks])  # (batches, peaks)
    hist_b = np.array([c[2] for c in chunks])
    balance = max(float(c[3][0]) for c in chunks)
    stopped = sum(float(c[3][1]) for c in chunks)
    interactions = int(sum(float(c[3][2]) for c in chunks))
    by_energy = {round(line.energy_kev, 4): line for line in per_line.lines}
    peaks: list[PeakResult] = []
    for j, (energy, kind, intensity) in enumerate(entries):
        area = ratio_estimate(peaks_b[:, j], n)
        single = by_energy.get(round(energy, 4))
        tcs = None
        if single is not None and area.value > 0:
            expected = intensity * single.peak_efficiency.value
            value = expected / area.value
            rel = math.hypot(single.peak_efficiency.relative, area.relative)
            tcs = Estimate(value, value * rel)
        peaks.append(PeakResult(
            energy_kev=energy, kind=kind, intensity=intensity, apparent_area_per_decay=area,
            peak_efficiency=single.peak_efficiency if single else None,
            total_efficiency=single.total_efficiency if single else None, tcs_factor=tcs))
    b = n.size
    n_total = n.sum()
    r = hist_b.sum(axis=0) / n_total
    var = (b / (b - 1)) * ((hist_b - r[None, :] * n[:, None]) ** 2).sum(axis=0) / n_total**2
    top_kev = per_line.config.options.spectrum_max_kev or 1.05 * max(line.energy_kev for line in config.lines)
    edges = np.linspace(0.0, top_kev / 1000.0, config.options.spectrum_bins + 1)
    res = config.detector.resolution
    broadened = broaden(r, edges, res.a_mev, res.b_sqrt_mev, res.c_per_mev)
    correlated = correlation_of(config, scheme) != (0.0, 0.0)
    if correlated:
        a22, a44 = correlation_of(config, scheme)
        ac_note = f"gamma-gamma angular correlation on (A22 {a22:g}, A44 {a44:g}; analog emission)"
    elif config.options.angular_correlation:
        ac_note = "angular correlation asked for, but the decay data give none for this nuclide: not modelled"
    else:
        ac_note = "angular correlation off"
    notes = [f"whole decays of {scheme.nuclide} from {scheme.evaluation}; {ac_note}", *per_line.notes]
    if stopped:
        notes.append(f"{int(stopped)} photon(s) of whole decays hit the step limit and were counted as escaped")
    return WholeDecayResult(
        config=config, seed=seed, histories=histories, batches=b, workers=workers, per_line=per_line,
        peaks=peaks, counts_per_decay=ratio_estimate(counted, n),
        spectrum=Spectrum(edges_kev=(edges * 1000.0).tolist(), raw=r.tolist(), raw_sigma=np.sqrt(var).tolist(),
                          broadened=broadened.tolist()),
        duration_s=duration, energy_balance_max_mev=balance, interactions=interactions, notes=notes,
        angular_correlation=correlated)


def run_simulation(config: SimulationConfig, *, histories: float, seed: int, workers: int = 1,
                   progress: Progress | None = None) -> SimulationResult | WholeDecayResult:
    """Run `config` in its mode: whole decays or one photon per history."""
    if config.mode == "whole_decay":
        return simulate_whole_decays(config, histories=histories, seed=seed, workers=workers, progress=progress)
    return simulate(config, histories=histories, seed=seed, workers=workers, progress=progress)
