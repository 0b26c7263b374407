"""Co-60 gamma-gamma angular correlation (optional, off by default).

W(theta) = 1 + A22 P2(cos theta) + A44 P4(cos theta), A22 = 0.1020, A44 = 0.0091, between the 1173
and 1332 keV gammas. Check: a point source on the axis of a black crystal in vacuum sees the
crystal's front face as a cone of half-angle alpha, so the 2505.7 keV sum-peak area is
proportional to the probability that both gammas fall in the cone: p^2 without correlation
(p = (1 - cos alpha)/2) and, by the addition theorem of spherical harmonics,
p^2 + (A22 I2^2 + A44 I4^2)/4 with it (I_l = integral of P_l from cos alpha to 1). The ratio of
the two sum-peak areas must be that ratio (the emission probabilities cancel). Bound: 4 sigma.
"""

from __future__ import annotations

import math

import pytest

from vital_desktop.montecarlo import Detector, Options, Source, make_config, simulate_whole_decays
from vital_desktop.montecarlo.decay import decay_scheme

VACUUM = Options(medium="vacuum", coherent=False, k_xray_escape=False, spectrum_bins=128)


def _legendre(n: int, x: float) -> float:
    p0, p1 = 1.0, x
    if n == 0:
        return p0
    for k in range(1, n):
        p0, p1 = p1, ((2 * k + 1) * x * p1 - k * p0) / (k + 1)
    return p1


def _both_in_cone(cos_alpha: float, a22: float, a44: float) -> float:
    def integral(order: int) -> float:  # integral of P_l over [cos_alpha, 1]
        return -(_legendre(order + 1, cos_alpha) - _legendre(order - 1, cos_alpha)) / (2 * order + 1)

    p = (1 - cos_alpha) / 2
    return p * p + (a22 * integral(2) ** 2 + a44 * integral(4) ** 2) / 4


def _sum_area(correlated: bool, seed: int):
    detector = Detector(name="black", material="black", radius_cm=2.0, height_cm=3.0)
    options = Options(**{**VACUUM.__dict__, "angular_correlation": correlated})
    config = make_config(detector=detector, source=Source(kind="point", distance_cm=3.0), nuclide="Co-60",
                         options=options)
    # analog emission (correlated) needs more decays for the same uncertainty as the cone-stratified run
    result = simulate_whole_decays(config, histories=4_000_000 if correlated else 1_000_000, seed=seed, workers=2)
    return result, result.peak(2505.7).apparent_area_per_decay


@pytest.mark.slow
def test_co60_angular_correlation_changes_the_sum_peak_as_the_exact_integral_says() -> None:
    a22, a44 = decay_scheme("Co-60").angular_correlation or (0.0, 0.0)
    assert (a22, a44) == (0.1020, 0.0091)
    off_result, off = _sum_area(False, 31)
    on_result, on = _sum_area(True, 32)
    assert not off_result.angular_correlation and on_result.angular_correlation
    assert "angular correlation on" in on_result.notes[0]
    cos_alpha = 3.0 / math.hypot(3.0, 2.0)
    expected = _both_in_cone(cos_alpha, a22, a44) / _both_in_cone(cos_alpha, 0.0, 0.0)  # 1.059 here
    ratio = on.value / off.value
    sigma = ratio * math.hypot(on.sigma / on.value, off.sigma / off.value)
    assert abs(ratio - expected) <= 4 * sigma, (ratio, sigma, expected)
    assert ratio - 1.0 > 5 * sigma  # the correlation is visible at this size of run
    # without correlation the area is the exact p^2 (times the emission probabilities, ~0.998)
    p = (1 - cos_alpha) / 2
    assert abs(off.value - 0.998 * p * p) <= 4 * off.sigma + 0.002 * p * p, (off, p * p)


def test_angular_correlation_is_off_by_default_and_absent_data_is_said() -> None:
    assert Options().angular_correlation is False
    config = make_config(detector=Detector(name="black", material="black", radius_cm=2.0, height_cm=3.0),
                         source=Source(kind="point", distance_cm=3.0), nuclide="Cs-137",
                         options=Options(**{**VACUUM.__dict__, "angular_correlation": True}))
    result = simulate_whole_decays(config, histories=20_000, seed=33)
    assert not result.angular_correlation and "not modelled" in result.notes[0]
