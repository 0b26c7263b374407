"""Monte Carlo photon transport for detector calibration (numba; no store, no Qt).

Public entry points: `make_config` / `config_from_dict` to describe a run, `run_simulation` to run it
(whole decays or one photon per history, by the configuration's mode; `simulate` is the latter),
`run_sweep` (in `sweep`) for parameter grids on local processes or a Dask cluster.
"""

from vital_desktop.montecarlo.config import (
    Absorber,
    Backing,
    Detector,
    Layer,
    Line,
    Options,
    Resolution,
    Shield,
    SimulationConfig,
    Source,
    config_from_dict,
    detector_preset,
    detector_presets,
    make_config,
    nuclide_library,
    nuclide_lines,
    source_preset,
    source_presets,
    validate,
)
from vital_desktop.montecarlo.engine import ENGINE_VERSION, Estimate, SimulationResult, simulate, warm_up
from vital_desktop.montecarlo.whole_decay import WholeDecayResult, run_simulation, simulate_whole_decays

__all__ = [
    "ENGINE_VERSION",
    "Absorber",
    "Backing",
    "Detector",
    "Estimate",
    "Layer",
    "Line",
    "Options",
    "Resolution",
    "Shield",
    "SimulationConfig",
    "SimulationResult",
    "Source",
    "WholeDecayResult",
    "config_from_dict",
    "detector_preset",
    "detector_presets",
    "make_config",
    "nuclide_library",
    "nuclide_lines",
    "run_simulation",
    "simulate",
    "simulate_whole_decays",
    "source_preset",
    "source_presets",
    "validate",
    "warm_up",
]
