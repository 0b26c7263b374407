"""Monte Carlo photon transport for detector calibration (numba; no store, no Qt).

Public entry points: `make_config` / `config_from_dict` to describe a run, `simulate` to run it,
`run_sweep` (in `sweep`) for parameter grids on local processes or a Dask cluster.
"""

from vital_desktop.montecarlo.config import (
    Backing,
    Detector,
    Layer,
    Line,
    Options,
    Resolution,
    SimulationConfig,
    Source,
    config_from_dict,
    detector_preset,
    detector_presets,
    make_config,
    nuclide_library,
    nuclide_lines,
    validate,
)
from vital_desktop.montecarlo.engine import ENGINE_VERSION, Estimate, SimulationResult, simulate, warm_up

__all__ = [
    "ENGINE_VERSION",
    "Backing",
    "Detector",
    "Estimate",
    "Layer",
    "Line",
    "Options",
    "Resolution",
    "SimulationConfig",
    "SimulationResult",
    "Source",
    "config_from_dict",
    "detector_preset",
    "detector_presets",
    "make_config",
    "nuclide_library",
    "nuclide_lines",
    "simulate",
    "validate",
    "warm_up",
]
