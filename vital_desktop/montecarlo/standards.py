"""Standard figures of merit computed with the engine (the definitions labs quote).

Relative efficiency of a germanium detector (IEEE Std 325): the full-energy-peak efficiency at
1332.5 keV for a point source on the axis 25 cm from the end cap, divided by 1.2e-3, the
measured value for a 3"x3" NaI(Tl) at the same geometry.
"""

from __future__ import annotations

from vital_desktop.montecarlo.config import Detector, Line, Options, SimulationConfig, Source, validate
from vital_desktop.montecarlo.engine import Estimate, simulate

NAI_3X3_REFERENCE = 1.2e-3
RELATIVE_EFFICIENCY_ENERGY_KEV = 1332.492
RELATIVE_EFFICIENCY_DISTANCE_CM = 25.0


def relative_efficiency(detector: Detector, *, histories: float = 400_000, seed: int = 1,
                        workers: int = 1) -> Estimate:
    """The detector's relative efficiency by the standard definition, with its statistical sigma."""
    config = SimulationConfig(detector=detector,
                              source=Source(kind="point", distance_cm=RELATIVE_EFFICIENCY_DISTANCE_CM),
                              lines=(Line(RELATIVE_EFFICIENCY_ENERGY_KEV, 1.0),), options=Options(medium="air"))
    validate(config)
    fep = simulate(config, histories=histories, seed=seed, workers=workers).lines[0].peak_efficiency
    return Estimate(fep.value / NAI_3X3_REFERENCE, fep.sigma / NAI_3X3_REFERENCE)
