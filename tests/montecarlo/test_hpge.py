"""Real HPGe geometry: core hole and dead layers against exact first-flight integrals, presets whose
stated relative efficiency is the computed one, nesting refused.

First-flight checks use the validation-only "absorber" material (pure photoabsorption, mu = its
density in 1/cm), so the interaction fraction in the active crystal is exactly the integral over
directions of exp(-optical depth before each active segment) x (1 - exp(-mu segment length)).
Bound: 4 sigma of the batch estimate (the quadrature error is far below it).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.montecarlo import Detector, Layer, Line, Options, SimulationConfig, Source, simulate, validate
from vital_desktop.montecarlo.config import detector_preset, detector_presets
from vital_desktop.montecarlo.standards import relative_efficiency

MU_ACTIVE, MU_DEAD = 0.4, 3.0
R, H, R_HOLE, D_HOLE, T_SIDE, T_FRONT = 2.0, 4.0, 0.5, 3.0, 0.1, 0.15


def _detector() -> Detector:
    return Detector(name="absorber-hpge", material="absorber", density_g_cm3=MU_ACTIVE, radius_cm=R, height_cm=H,
                    core_hole_radius_cm=R_HOLE, core_hole_depth_cm=D_HOLE,
                    housing=(Layer(material="absorber", density_g_cm3=MU_DEAD, side_cm=T_SIDE, front_cm=T_FRONT,
                                   name="dead layer"),))


def first_flight(distance: float, n: int = 40_000) -> float:
    """Share of photons from an on-axis point `distance` before the dead layer that interact first in
    the active crystal (dead layer front/side, active volume minus the core hole; no back dead layer)."""
    z0 = -T_FRONT - distance
    r_out = R + T_SIDE
    cos_max = (distance) / math.hypot(distance, r_out)
    # every ray into the detector starts through the outer front face; midpoints in cos(theta)
    cos = cos_max + (1.0 - cos_max) * (np.arange(n) + 0.5) / n
    total = 0.0
    cylinders = [  # (radius, z_low, z_high)
        (r_out, -T_FRONT, H), (R, 0.0, H), (R_HOLE, H - D_HOLE, H)]
    for c in cos:
        s = math.sqrt(max(0.0, 1.0 - c * c))
        cuts = [0.0]
        for radius, lo, hi in cylinders:
            cuts += [(lo - z0) / c, (hi - z0) / c]
            if s > 0:
                cuts.append(radius / s)
        cuts = sorted(t for t in cuts if t >= 0.0)
        tau, p = 0.0, 0.0
        for a, b in itertools.pairwise(cuts):
            if b <= a:
                continue
            m = 0.5 * (a + b)
            rho, z = m * s, z0 + m * c
            if rho < R_HOLE and H - D_HOLE < z < H:
                mu, active = 0.0, False
            elif rho < R and 0.0 < z < H:
                mu, active = MU_ACTIVE, True
            elif rho < r_out and -T_FRONT < z < H:
                mu, active = MU_DEAD, False
            else:
                mu, active = 0.0, False
            if active:
                p += math.exp(-tau) * (1.0 - math.exp(-mu * (b - a)))
            tau += mu * (b - a)
        total += p
    return 0.5 * (1.0 - cos_max) * total / n


@pytest.mark.parametrize("distance", [0.5, 5.0])
def test_dead_layers_and_core_hole_match_first_flight(distance: float) -> None:
    config = SimulationConfig(detector=_detector(), source=Source(kind="point", distance_cm=distance),
                              lines=(Line(1000.0),), options=Options(medium="vacuum", coherent=False,
                                                                    k_xray_escape=False))
    result = simulate(config, histories=300_000, seed=41, workers=2)
    estimate = result.lines[0].total_efficiency
    expected = first_flight(distance)
    assert abs(estimate.value - expected) <= 4 * estimate.sigma, (estimate, expected)
    # the hole and the dead layer matter here: without them the answer differs by many sigma
    bare = replace(_detector(), core_hole_radius_cm=0.0, core_hole_depth_cm=0.0, housing=())
    plain = simulate(replace(config, detector=bare), histories=100_000, seed=42).lines[0].total_efficiency
    assert abs(plain.value - expected) > 10 * estimate.sigma


@pytest.mark.parametrize("name", [k for k, v in detector_presets().items() if v.get("relative_efficiency")])
def test_hpge_presets_compute_their_stated_relative_efficiency(name: str) -> None:
    detector = detector_preset(name)
    computed = relative_efficiency(detector, histories=400_000, seed=3, workers=2)
    assert computed.relative < 0.006
    assert abs(computed.value / detector.relative_efficiency - 1.0) <= 0.02, (name, computed)


@pytest.mark.parametrize("change, message", [
    ({"core_hole_radius_cm": 2.5, "core_hole_depth_cm": 1.0}, "must nest"),
    ({"core_hole_radius_cm": 0.5, "core_hole_depth_cm": 4.0}, "closed-end"),
    ({"core_hole_radius_cm": 0.5}, "both its radius and its depth"),
    ({"core_hole_radius_cm": -0.1, "core_hole_depth_cm": 1.0}, "core hole radius"),
])
def test_core_hole_that_does_not_nest_is_refused(change: dict, message: str) -> None:
    config = SimulationConfig(detector=replace(_detector(), **{"core_hole_radius_cm": 0.0,
                                                               "core_hole_depth_cm": 0.0, **change}),
                              source=Source(kind="point", distance_cm=1.0), lines=(Line(662.0),))
    with pytest.raises(ValidationError, match=message):
        validate(config)


def test_source_inside_the_dead_layer_or_negative_thickness_is_refused() -> None:
    inside = SimulationConfig(detector=_detector(), source=Source(kind="point", distance_cm=-0.05),
                              lines=(Line(662.0),))
    with pytest.raises(ValidationError, match="inside the detector"):
        validate(inside)
    negative = replace(_detector(), housing=(Layer(material="ge", side_cm=-0.1, front_cm=0.1),))
    with pytest.raises(ValidationError, match="side thickness"):
        validate(replace(inside, detector=negative, source=Source(kind="point", distance_cm=1.0)))
