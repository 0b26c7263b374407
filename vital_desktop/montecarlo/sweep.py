"""Parameter sweeps: energies x distances x detectors as independent tasks.

Each task is `run_task(config_dict, seed, histories)`: a top-level, picklable, pure function of
JSON-able input returning JSON-able output. That one function is what runs everywhere: on local
processes (default), on a Dask distributed cluster (`scheduler="tcp://host:port"`), and on the
hub's Spark workers (`rdd.map(lambda t: run_task(*t))`, see docs/montecarlo.md). Every task
uses the sweep's seed (common random numbers: the curves across a sweep are smoother than with
independent seeds, and any single point can be reproduced alone with `vital mc run`).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import multiprocessing
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from vital_desktop.core.errors import Cancelled, ValidationError
from vital_desktop.core.progress import Progress
from vital_desktop.montecarlo.config import (
    Line,
    SimulationConfig,
    Source,
    config_from_dict,
    detector_preset,
    nuclide_lines,
    validate,
    validate_histories,
    validate_seed,
)


def run_task(config: dict, seed: int, histories: int) -> dict:
    """One sweep point: rebuild the configuration, simulate on one core, return plain data."""
    from vital_desktop.montecarlo.whole_decay import run_simulation

    result = run_simulation(config_from_dict(config), histories=histories, seed=seed, workers=1)
    return {"config": config, "result": result.to_dict(include_spectrum=False)}


def grid(
    *,
    detectors: Iterable[str],
    distances_cm: Iterable[float],
    energies_kev: Iterable[float] | None = None,
    nuclides: Iterable[str] | None = None,
    source: Source | None = None,
    options: Any = None,
) -> list[SimulationConfig]:
    """The cartesian product detector x distance x (energy or nuclide), each one validated."""
    from vital_desktop.montecarlo.config import Options

    base_source = source or Source(kind="point")
    emissions: list[tuple[str | None, tuple[Line, ...]]] = []
    for e in energies_kev or ():
        emissions.append((None, (Line(float(e), 1.0),)))
    for n in nuclides or ():
        emissions.append((n, nuclide_lines(n)))
    if not emissions:
        raise ValidationError("a sweep needs energies or nuclides")
    configs = []
    for det_name, distance, (nuclide, lines) in itertools.product(list(detectors), list(distances_cm), emissions):
        config = SimulationConfig(
            detector=detector_preset(det_name),
            source=replace(base_source, distance_cm=float(distance)),
            lines=lines,
            nuclide=nuclide,
            options=options or Options(),
        )
        validate(config)
        configs.append(config)
    if not configs:
        raise ValidationError("the sweep is empty: give at least one detector and one distance")
    return configs


def run_sweep(
    configs: list[SimulationConfig],
    *,
    seed: int,
    histories: float,
    scheduler: str | None = None,
    processes: int = 2,
    progress: Progress | None = None,
    connect_timeout_s: float = 10.0,
) -> list[dict]:
    """Run every configuration as its own task; results come back in the order of `configs`.

    Local processes use the "spawn" start method (safe inside a GUI process with threads).
    With `scheduler`, tasks go to that Dask distributed scheduler; the cluster must have this
    package installed. Cancelling stops queued tasks; running ones finish and are discarded.
    """
    seed = validate_seed(seed)
    n_hist = max(validate_histories(histories, len(c.lines)) for c in configs) if configs else 0
    for c in configs:
        validate(c)
        validate_histories(n_hist, len(c.lines))
    progress = progress or Progress()
    tasks = [(c.to_dict(), seed, n_hist) for c in configs]
    progress.start(len(tasks), f"sweep of {len(tasks)} tasks")
    if scheduler:
        return _run_dask(tasks, scheduler, progress, connect_timeout_s)
    return _run_local(tasks, processes, progress)


def _run_local(tasks: list[tuple], processes: int, progress: Progress) -> list[dict]:
    results: list[dict | None] = [None] * len(tasks)
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=max(1, processes), mp_context=context) as pool:
        futures = {pool.submit(run_task, *task): i for i, task in enumerate(tasks)}
        try:
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    results[futures[future]] = future.result()
                    progress.advance(1)
                progress.check()
        except Cancelled:
            for future in futures:
                future.cancel()
            raise
    progress.finish("sweep done")
    return [r for r in results if r is not None]


def _run_dask(tasks: list[tuple], scheduler: str, progress: Progress, connect_timeout_s: float) -> list[dict]:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise ValidationError("Dask distributed is not installed; install dask[distributed]") from None
    try:
        client = Client(scheduler, timeout=connect_timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ValidationError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        futures = [client.submit(run_task, *task, pure=False, key=f"vital-mc-{i}-{task[1]}") for i, task in enumerate(tasks)]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[dict | None] = [None] * len(tasks)
        pending = list(futures)
        try:
            while pending:
                still: list = []
                for future in pending:
                    if future.done():
                        results[index[future.key]] = future.result()
                        progress.advance(1)
                    else:
                        still.append(future)
                pending = still
                progress.check()
                if pending:
                    time.sleep(0.05)
        except Cancelled:
            client.cancel(list(pending))
            raise
    finally:
        client.close()
    progress.finish("sweep done")
    return [r for r in results if r is not None]
