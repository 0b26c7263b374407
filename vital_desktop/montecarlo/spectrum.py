"""Gaussian energy broadening of a pulse-height histogram (the detector's resolution)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_SQRT2 = math.sqrt(2.0)
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


@njit(cache=True)
def _broaden(counts, edges, a, b, c):
    n = counts.size
    out = np.zeros(n)
    for i in range(n):
        v = counts[i]
        if v == 0.0:
            continue
        e = 0.5 * (edges[i] + edges[i + 1])
        arg = e + c * e * e
        fwhm = a + b * math.sqrt(max(0.0, arg))
        sigma = fwhm * _FWHM_TO_SIGMA
        width = edges[i + 1] - edges[i]
        if sigma < 0.05 * width:
            out[i] += v
            continue
        lo = int((e - 6.0 * sigma - edges[0]) / width)
        hi = int((e + 6.0 * sigma - edges[0]) / width) + 1
        lo = max(lo, 0)
        hi = min(hi, n)
        # the part beyond the histogram's ends is lost, as counts beyond a real ADC's range are
        for j in range(lo, hi):
            p = 0.5 * (math.erf((edges[j + 1] - e) / (_SQRT2 * sigma)) - math.erf((edges[j] - e) / (_SQRT2 * sigma)))
            out[j] += v * p
    return out


def broaden(counts: np.ndarray, edges_mev: np.ndarray, a_mev: float, b_sqrt_mev: float, c_per_mev: float) -> np.ndarray:
    """Spread each bin's counts over a Gaussian of FWHM a + b*sqrt(E + c*E^2) (MeV), bin-integrated.

    Zero-width resolution returns the histogram unchanged; counts stay conserved except for the
    tail that would fall outside the histogram.
    """
    return _broaden(np.ascontiguousarray(counts, dtype=np.float64), np.ascontiguousarray(edges_mev, dtype=np.float64),
                    float(a_mev), float(b_sqrt_mev), float(c_per_mev))
