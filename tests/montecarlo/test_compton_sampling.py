"""Both Compton samplers of the kernel (Kahn below 1.5 MeV, Butcher-Messel above) must follow the
Klein-Nishina distribution exactly: a chi-square test of cos(theta) against the formula, and the
energy-angle relation of Compton scattering for every sample."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

from vital_desktop.montecarlo.kernel_physics import ELECTRON_MASS_MEV, _kahn, _klein_nishina

BINS = 40


@njit(cache=True)
def _sample(kind: int, energy: float, n: int, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eps = np.empty(n)
    cos = np.empty(n)
    rs = (state[0], state[1], state[2], state[3])
    for i in range(n):
        if kind == 0:
            eps[i], cos[i], rs = _kahn(rs, energy)
        else:
            eps[i], cos[i], rs = _klein_nishina(rs, energy)
    return eps, cos


def _expected_fractions(energy: float) -> np.ndarray:
    k = energy / ELECTRON_MASS_MEV
    c = np.linspace(-1.0, 1.0, 400_001)
    p = 1.0 / (1.0 + k * (1.0 - c))
    pdf = p * p * (p + 1.0 / p - (1.0 - c * c))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(c))])
    cdf /= cdf[-1]
    return np.diff(np.interp(np.linspace(-1.0, 1.0, BINS + 1), c, cdf))


@pytest.mark.parametrize("kind", [0, 1], ids=["kahn", "butcher-messel"])
@pytest.mark.parametrize("energy", [0.03, 0.3, 0.662, 1.33, 3.0])
def test_compton_samplers_follow_klein_nishina(kind: int, energy: float) -> None:
    n = 200_000
    state = np.array([0x9E3779B97F4A7C15, 12345, 678910, 42], dtype=np.uint64)
    eps, cos = _sample(kind, energy, n, state)
    k = energy / ELECTRON_MASS_MEV
    np.testing.assert_allclose(eps, 1.0 / (1.0 + k * (1.0 - cos)), rtol=1e-12)
    observed, _ = np.histogram(cos, np.linspace(-1.0, 1.0, BINS + 1))
    expected = _expected_fractions(energy) * n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    # 39 degrees of freedom: P(chi2 > 80) ~ 1e-4
    assert chi2 < 80.0, f"chi2 = {chi2:.1f} for {BINS - 1} degrees of freedom"
