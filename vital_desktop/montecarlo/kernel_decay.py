"""Whole-decay emission: one decay event sampled from the scheme's flat tables (see `decay.py`).

One history of the whole-decay kernel (`kernel.kernel_for(whole_decay=True, ...)`) is one decay:
all its photons (cascade gammas, X-rays, the back-to-back annihilation pair of a beta+ branch)
start from one source point and are tracked in the same history by the same flight loop as the
per-line kernel's photons, so their crystal deposits add up and sum peaks and summing-out losses
come out of the simulation. This module holds the decay sampler the kernel inlines.

Emission with variance reduction (exact, weights per history; the kernel does it). All photons of
a decay start at the same point, so they share the cone that contains the detector; a single
photon lies in it with probability p, a back-to-back pair (whose two halves cannot both be in a
cone narrower than a hemisphere) with probability 2p. The decay is sampled in two strata: with
probability 1 - q "at least one unit in the cone" (the first unit in the cone chosen with its
exact conditional probability, the units after it analog; weight (1 - P_none) / (1 - q)), with
probability q "no unit in the cone" (weight P_none / q). q is the run's outside fraction: 0 when
nothing outside the detector can scatter a photon back, and then photons outside the cone are
not transported at all. Where the cone is wider than a hemisphere the decay is emitted analog.
"""

from __future__ import annotations

from numba import njit

from vital_desktop.montecarlo.kernel_physics import ELECTRON_MASS_MEV, _step

#: Most photons (emission units) one decay can emit: further photons of a decay are not emitted.
MAX_UNITS = 24


@njit(inline="always")
def _sample_decay(rs, br_cum, br_level, br_pair, br_kx, br_dau, lv_first, lv_n, lv_dau, tr_cum, tr_to, tr_e, tr_pg,
                  tr_pkx, dau_xa, dau_xb, dau_xshare, cutoff, u_e, u_pair, u_gamma):
    """Fill the emission units of one decay (energy, is-pair); returns (count, total energy, state)."""
    n = 0
    e_sum = 0.0
    r, rs = _step(rs)
    b = 0
    while b < br_cum.size - 1 and r >= br_cum[b]:
        b += 1
    if br_pair[b] > 0.5:
        u_e[n] = ELECTRON_MASS_MEV
        u_pair[n] = True
        u_gamma[n] = False
        e_sum += 2.0 * ELECTRON_MASS_MEV
        n += 1
    if br_kx[b] > 0.0:
        r, rs = _step(rs)
        if r < br_kx[b]:
            d = br_dau[b]
            r, rs = _step(rs)
            ex = dau_xb[d] if r < dau_xshare[d] else dau_xa[d]
            if ex >= cutoff and n < MAX_UNITS:
                u_e[n] = ex
                u_pair[n] = False
                u_gamma[n] = False
                e_sum += ex
                n += 1
    lv = br_level[b]
    while lv_n[lv] > 0:
        first = lv_first[lv]
        last = first + lv_n[lv] - 1
        r, rs = _step(rs)
        t = first
        while t < last and r >= tr_cum[t]:
            t += 1
        r, rs = _step(rs)
        ex = 0.0
        gamma = False
        if r < tr_pg[t]:
            ex = tr_e[t]
            gamma = True
        elif r < tr_pg[t] + tr_pkx[t]:
            d = lv_dau[lv]
            r, rs = _step(rs)
            ex = dau_xb[d] if r < dau_xshare[d] else dau_xa[d]
        if ex >= cutoff and n < MAX_UNITS:
            u_e[n] = ex
            u_pair[n] = False
            u_gamma[n] = gamma
            e_sum += ex
            n += 1
        elif gamma and n > 0:
            u_gamma[n - 1] = False  # the next gamma does not follow this one directly
        lv = tr_to[t]
    return n, e_sum, rs
