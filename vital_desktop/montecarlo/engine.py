"""Run a simulation: plan chunks, run them (one thread or several), reduce, estimate uncertainties.

`simulate(config, histories=..., seed=...)` is a pure function of (configuration, seed,
histories): the chunk plan depends only on the number of histories and lines, each chunk's
random state only on (seed, chunk index), and chunk results are reduced in chunk order, so the
result is bit-identical for 1, 2 or 64 workers and on a remote worker. Each chunk is one batch of
the batch statistics; chunks are small enough (at most `CHUNK_MAX` histories, tens of
milliseconds) that progress moves and a cancel is honoured within a fraction of a second.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from vital_desktop.core.errors import Cancelled
from vital_desktop.core.progress import Progress
from vital_desktop.montecarlo.config import SimulationConfig, validate, validate_histories, validate_seed
from vital_desktop.montecarlo.geometry import Problem, build_problem
from vital_desktop.montecarlo.kernel import kernel_for
from vital_desktop.montecarlo.spectrum import broaden

#: Bumped whenever the same (configuration, seed, histories) can give different bits: 1.1 changed
#: the Compton sampler (Kahn), the geometry arithmetic and FMA contraction, so runs stored by 1.0
#: agree only statistically and `services.calibration.reproduce` refuses to promise identity.
ENGINE_VERSION = "vital-mc 1.1"
CHUNK_MAX = 100_000
MIN_BATCHES = 100


@dataclass(frozen=True)
class Estimate:
    """A Monte Carlo estimate and its one-sigma statistical uncertainty."""

    value: float
    sigma: float

    @property
    def relative(self) -> float:
        return self.sigma / abs(self.value) if self.value else math.inf

    def to_dict(self) -> dict:
        return {"value": self.value, "sigma": self.sigma, "relative": self.relative if self.value else None}


@dataclass(frozen=True)
class LineResult:
    energy_kev: float
    probability: float
    histories: int
    total_efficiency: Estimate
    peak_efficiency: Estimate
    peak_to_total: Estimate
    interaction_fraction: Estimate
    peak_cps_per_bq: Estimate


@dataclass(frozen=True)
class Spectrum:
    """Pulse-height spectrum per decay (or per emitted photon when energies are given directly)."""

    edges_kev: list[float]
    raw: list[float]
    raw_sigma: list[float]
    broadened: list[float]


@dataclass(frozen=True)
class SimulationResult:
    config: SimulationConfig
    seed: int
    histories: int
    batches: int
    workers: int
    lines: list[LineResult]
    total_cps_per_bq: Estimate
    peak_cps_per_bq: Estimate
    spectrum: Spectrum
    duration_s: float
    energy_balance_max_mev: float
    interactions: int
    engine_version: str = ENGINE_VERSION
    notes: list[str] = field(default_factory=list)

    @property
    def histories_per_s(self) -> float:
        return self.histories / self.duration_s if self.duration_s > 0 else math.inf

    def summary(self) -> dict[str, float | str | None]:
        """A flat dict of numbers with their uncertainties (the "Calibration Insights" input)."""
        out: dict[str, float | str | None] = {
            "detector": self.config.detector.name,
            "source": self.config.source.kind,
            "distance_cm": self.config.source.distance_cm,
            "nuclide": self.config.nuclide,
            "histories": float(self.histories),
            "seed": float(self.seed),
            "calibration_factor_total_cps_per_bq": self.total_cps_per_bq.value,
            "calibration_factor_total_cps_per_bq_sigma": self.total_cps_per_bq.sigma,
            "calibration_factor_peak_cps_per_bq": self.peak_cps_per_bq.value,
            "calibration_factor_peak_cps_per_bq_sigma": self.peak_cps_per_bq.sigma,
        }
        for line in self.lines:
            tag = f"{line.energy_kev:g}keV"
            for name in ("total_efficiency", "peak_efficiency", "peak_to_total", "peak_cps_per_bq"):
                est: Estimate = getattr(line, name)
                out[f"{name}_{tag}"] = est.value
                out[f"{name}_{tag}_sigma"] = est.sigma
        return out

    def to_dict(self, *, include_spectrum: bool = False) -> dict:
        data = {
            "engine_version": self.engine_version,
            "seed": self.seed,
            "histories": self.histories,
            "batches": self.batches,
            "workers": self.workers,
            "duration_s": self.duration_s,
            "histories_per_s": self.histories_per_s,
            "energy_balance_max_mev": self.energy_balance_max_mev,
            "interactions": self.interactions,
            "total_cps_per_bq": self.total_cps_per_bq.to_dict(),
            "peak_cps_per_bq": self.peak_cps_per_bq.to_dict(),
            "lines": [
                {
                    "energy_kev": line.energy_kev,
                    "probability": line.probability,
                    "histories": line.histories,
                    **{
                        name: getattr(line, name).to_dict()
                        for name in ("total_efficiency", "peak_efficiency", "peak_to_total",
                                     "interaction_fraction", "peak_cps_per_bq")
                    },
                }
                for line in self.lines
            ],
            "summary": self.summary(),
            "notes": list(self.notes),
        }
        if include_spectrum:
            data["spectrum"] = asdict(self.spectrum)
        return data


def plan_chunks(histories: int, n_lines: int) -> list[int]:
    """Chunk sizes: a function of (histories, lines) only, never of the number of workers."""
    n_chunks = max(MIN_BATCHES, math.ceil(histories / CHUNK_MAX))
    n_chunks = max(2, min(n_chunks, histories // (10 * max(n_lines, 1))))
    base, extra = divmod(histories, n_chunks)
    return [base + (1 if i < extra else 0) for i in range(n_chunks)]


def chunk_state(seed: int, index: int) -> np.ndarray:
    """The 256-bit xoshiro state of one chunk, from SeedSequence(seed, spawn_key=(index,))."""
    state = np.random.SeedSequence(entropy=seed, spawn_key=(index,)).generate_state(4, dtype=np.uint64)
    if not state.any():  # the all-zero state is the one xoshiro cannot leave
        state[0] = 1
    return state


@dataclass
class ChunkResult:
    n: np.ndarray
    total: np.ndarray
    peak: np.ndarray
    interacted: np.ndarray
    hist: np.ndarray
    diag: np.ndarray


def run_one_chunk(problem: Problem, seed: int, index: int, size: int) -> ChunkResult:
    """Run chunk `index` of a run (callable from any thread; the kernel releases the GIL)."""
    n_lines = problem.energies_mev.size
    base, extra = divmod(size, n_lines)
    n = np.array([base + (1 if j < extra else 0) for j in range(n_lines)], dtype=np.int64)
    total = np.zeros(n_lines)
    peak = np.zeros(n_lines)
    interacted = np.zeros(n_lines)
    hist = np.zeros((n_lines, problem.spectrum_bins))
    diag = np.zeros(3)
    kernel = kernel_for(whole_decay=False, general=problem.general_geometry)
    kernel(chunk_state(seed, index), n, problem.energies_mev, (), *problem.kernel_args(),
           total, peak, interacted, hist, diag)
    return ChunkResult(n, total, peak, interacted, hist, diag)


class _Reducer:
    """Adds chunk results strictly in chunk order (floating-point sums then do not depend on timing)."""

    def __init__(self, n_chunks: int, n_lines: int, n_bins: int) -> None:
        self.n = np.zeros((n_chunks, n_lines))
        self.total = np.zeros((n_chunks, n_lines))
        self.peak = np.zeros((n_chunks, n_lines))
        self.interacted = np.zeros((n_chunks, n_lines))
        self.hist_sum = np.zeros((n_lines, n_bins))
        self.hist_sq = np.zeros((n_lines, n_bins))
        self.hist_n = np.zeros((n_lines, n_bins))
        self.balance = 0.0
        self.stopped = 0.0
        self.interactions = 0.0
        self._pending: dict[int, ChunkResult] = {}
        self._next = 0

    def add(self, index: int, result: ChunkResult) -> None:
        self._pending[index] = result
        while self._next in self._pending:
            r = self._pending.pop(self._next)
            i = self._next
            self.n[i], self.total[i], self.peak[i], self.interacted[i] = r.n, r.total, r.peak, r.interacted
            self.hist_sum += r.hist
            self.hist_sq += r.hist * r.hist
            self.hist_n += r.hist * r.n[:, None]
            self.balance = max(self.balance, float(r.diag[0]))
            self.stopped += float(r.diag[1])
            self.interactions += float(r.diag[2])
            self._next += 1


def ratio_estimate(numerator: np.ndarray, denominator: np.ndarray) -> Estimate:
    """Ratio of sums over batches with the batch (ratio-estimator) variance.

    R = sum(y)/sum(x); var(R) = B/(B-1) * sum((y_b - R x_b)^2) / sum(x)^2.
    """
    y = np.asarray(numerator, dtype=np.float64)
    x = np.asarray(denominator, dtype=np.float64)
    sx = x.sum()
    if sx <= 0:
        return Estimate(0.0, math.inf)
    r = y.sum() / sx
    b = y.size
    var = b / (b - 1) * float(((y - r * x) ** 2).sum()) / sx**2 if b > 1 else math.inf
    return Estimate(float(r), math.sqrt(var))


def _combine(weights: np.ndarray, estimates: list[Estimate]) -> Estimate:
    # lines are simulated with separate histories, so their estimates are independent
    value = float(sum(w * e.value for w, e in zip(weights, estimates, strict=False)))
    sigma = math.sqrt(sum((w * e.sigma) ** 2 for w, e in zip(weights, estimates, strict=False)))
    return Estimate(value, sigma)


def _finish(config: SimulationConfig, problem: Problem, red: _Reducer, *, seed: int, histories: int,
            workers: int, duration: float) -> SimulationResult:
    probabilities = problem.probabilities
    lines: list[LineResult] = []
    for j, line in enumerate(config.lines):
        n = red.n[:, j]
        total = ratio_estimate(red.total[:, j], n)
        peak = ratio_estimate(red.peak[:, j], n)
        lines.append(LineResult(
            energy_kev=line.energy_kev,
            probability=line.probability,
            histories=int(n.sum()),
            total_efficiency=total,
            peak_efficiency=peak,
            peak_to_total=ratio_estimate(red.peak[:, j], red.total[:, j]),
            interaction_fraction=ratio_estimate(red.interacted[:, j], n),
            peak_cps_per_bq=Estimate(line.probability * peak.value, line.probability * peak.sigma),
        ))
    total_cf = _combine(probabilities, [x.total_efficiency for x in lines])
    peak_cf = _combine(probabilities, [x.peak_efficiency for x in lines])

    # spectrum per decay: sum_j p_j H_j / N_j, with the ratio-estimator variance per bin
    n_total = red.n.sum(axis=0)
    n_sq = (red.n**2).sum(axis=0)
    b = red.n.shape[0]
    raw = np.zeros(problem.spectrum_bins)
    var = np.zeros(problem.spectrum_bins)
    for j in range(len(lines)):
        r = red.hist_sum[j] / n_total[j]
        ss = red.hist_sq[j] - 2.0 * r * red.hist_n[j] + r * r * n_sq[j]
        raw += probabilities[j] * r
        var += probabilities[j] ** 2 * (b / (b - 1)) * np.maximum(ss, 0.0) / n_total[j] ** 2
    edges = np.linspace(0.0, problem.spectrum_max_mev, problem.spectrum_bins + 1)
    res = config.detector.resolution
    broadened = broaden(raw, edges, res.a_mev, res.b_sqrt_mev, res.c_per_mev)
    notes = []
    if red.stopped:
        notes.append(f"{int(red.stopped)} photon(s) hit the step limit and were counted as escaped")
    return SimulationResult(
        config=config,
        seed=seed,
        histories=histories,
        batches=b,
        workers=workers,
        lines=lines,
        total_cps_per_bq=total_cf,
        peak_cps_per_bq=peak_cf,
        spectrum=Spectrum(
            edges_kev=(edges * 1000.0).tolist(), raw=raw.tolist(), raw_sigma=np.sqrt(var).tolist(),
            broadened=broadened.tolist(),
        ),
        duration_s=duration,
        energy_balance_max_mev=red.balance,
        interactions=int(red.interactions),
        notes=notes,
    )


def simulate(
    config: SimulationConfig,
    *,
    histories: float,
    seed: int,
    workers: int = 1,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run `histories` photon histories of `config` with `seed`; the result does not depend on `workers`.

    Raises `ValidationError` before any work for bad input and `Cancelled` (within one chunk per
    worker, tens of milliseconds) when the progress token is cancelled.
    """
    validate(config)
    n_hist = validate_histories(histories, len(config.lines))
    seed = validate_seed(seed)
    workers = max(1, int(workers))
    progress = progress or Progress()
    problem = build_problem(config)
    sizes = plan_chunks(n_hist, len(config.lines))
    reducer = _Reducer(len(sizes), len(config.lines), problem.spectrum_bins)
    progress.start(n_hist, f"{config.detector.name}: {len(sizes)} chunks")
    t0 = time.perf_counter()
    if workers == 1:
        for index, size in enumerate(sizes):
            progress.check()
            reducer.add(index, run_one_chunk(problem, seed, index, size))
            progress.advance(size)
    else:
        _run_threads(problem, seed, sizes, workers, reducer, progress)
    duration = time.perf_counter() - t0
    progress.finish("done")
    return _finish(config, problem, reducer, seed=seed, histories=n_hist, workers=workers, duration=duration)


def _run_threads(problem: Problem, seed: int, sizes: list[int], workers: int, reducer: _Reducer,
                 progress: Progress) -> None:
    # At most `workers` chunks in flight, so a cancel waits for one chunk per worker at most.
    with cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vital-mc") as pool:
        in_flight: dict[cf.Future, int] = {}
        next_index = 0
        try:
            while next_index < len(sizes) or in_flight:
                while next_index < len(sizes) and len(in_flight) < workers:
                    progress.check()
                    future = pool.submit(run_one_chunk, problem, seed, next_index, sizes[next_index])
                    in_flight[future] = next_index
                    next_index += 1
                done, _ = cf.wait(in_flight, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    index = in_flight.pop(future)
                    reducer.add(index, future.result())
                    progress.advance(sizes[index])
                progress.check()
        except Cancelled:
            cf.wait(in_flight)
            raise


def warm_up() -> float:
    """Compile (or load from the on-disk cache) the kernels; returns the seconds it took."""
    from vital_desktop.montecarlo.config import Detector, Line, Options, Source

    t0 = time.perf_counter()
    config = SimulationConfig(
        detector=Detector(name="warm-up", material="nai", radius_cm=1.0, height_cm=1.0),
        source=Source(kind="point", distance_cm=1.0),
        lines=(Line(100.0, 1.0),),
        options=Options(spectrum_bins=16),
    )
    simulate(config, histories=40, seed=0)
    return time.perf_counter() - t0
