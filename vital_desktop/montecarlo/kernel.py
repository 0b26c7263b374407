"""The numba photon-transport kernels: one call runs one chunk of histories.

One flight loop serves both kinds of history: one photon per history (per line) and one decay
per history (all the photons of a decay in one history, `kernel_decay.py`). The kernel is built
by `kernel_for(whole_decay=..., general=...)` from a closure over those two Python booleans;
numba freezes closure constants, so the branches of the other mode and, in the coaxial variant,
the off-axis and open-parent (Marinelli well) geometry are removed when it compiles: the usual
coaxial case carries none of their cost. Each of the four variants is compiled on first use and
cached on disk (`cache=True`; numba keys the cache by the closure's constants).

Pure function of its inputs: the random stream is a xoshiro256+ generator whose 256-bit state
is passed in (derived from the run seed and the chunk index), so a chunk gives the same bits on
any thread, process or machine, and the coaxial and the general variant give the same bits on a
case both can run. `nogil=True` lets several chunks run on threads in parallel.

Physics per step (see docs/montecarlo.md for every approximation): sample a free path from the
total coefficient; if the next boundary is nearer, cross it; else interact:
photoelectric (optional K X-ray), Compton (Klein-Nishina, free electron; Kahn's rejection
below 1.5 MeV, Butcher-Messel above), pair (two 511 keV
photons back to back), coherent (optional; Thomson x approximate form factor). Electrons and
positrons deposit their kinetic energy on the spot.
"""

from __future__ import annotations

import math
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from vital_desktop.montecarlo.kernel_decay import MAX_UNITS, _sample_decay
from vital_desktop.montecarlo.kernel_physics import (
    ELECTRON_MASS_MEV,
    FASTMATH,
    FEP_TOLERANCE_MEV,
    INF,
    KAHN_MAX_MEV,
    MAX_STEPS,
    NUDGE_CM,
    STACK_SIZE,
    _coherent_cos,
    _cone,
    _direction_terms,
    _energy_cell_and_path,
    _entry_distance,
    _exit_distance,
    _inside,
    _isotropic,
    _kahn,
    _klein_nishina,
    _rotate,
    _source_point,
    _step,
)


def _source_stamp() -> int:
    # numba's disk cache sees edits of this file only; the kernels also inline code and freeze
    # constants from these modules, so their text is one of the closure's constants (an edit there
    # recompiles instead of loading a stale kernel). A frozen app without sources gets 0.
    here = Path(__file__).parent
    try:
        return zlib.crc32(b"".join((here / name).read_bytes()
                                   for name in ("kernel_physics.py", "kernel_decay.py", "materials.py")))
    except OSError:
        return 0


_SOURCE_STAMP = _source_stamp()
_LOCK = threading.Lock()
_KERNELS: dict[tuple[bool, bool], Callable[..., Any]] = {}


def kernel_for(*, whole_decay: bool, general: bool) -> Callable[..., Any]:
    """The kernel for one mode (per line or whole decays) and geometry class (coaxial or general).

    The general variant runs every geometry; the coaxial one (`general=False`) only problems whose
    `Problem.general_geometry` is False (no off-axis cylinder, no open parent), with bit-identical
    results there. Arguments, in order:
    state (4 x uint64, advanced in place), counts (histories per line; whole decays: [decays]),
    energies (MeV per line; unused for whole decays), decay_data (whole decays: the scheme's flat
    tables, peak energies, peak window and the angular-correlation coefficients; per line: ()),
    the problem's cylinder, cross-section, source and cone arrays, cutoff, k_on, spectrum_max, and
    the tallies out_total, out_peak, out_interacted, out_hist (lines x bins; whole decays 1 x bins),
    out_diag (see the kernel's docstring).
    """
    key = (bool(whole_decay), bool(general))
    with _LOCK:
        kernel = _KERNELS.get(key)
        if kernel is None:
            kernel = _KERNELS[key] = _build(*key, _SOURCE_STAMP)
    return kernel


def _build(whole_decay: bool, general: bool, source_stamp: int) -> Callable[..., Any]:
    @njit(cache=True, nogil=True, fastmath=FASTMATH)
    def run_kernel(
        state, counts, energies, decay_data,
        cyl_r2, cyl_zlo, cyl_zhi, cyl_mat, cyl_parent, cyl_children, cyl_nchildren, cyl_cx, cyl_open,
        mu, k_edge, k_prob, k_alpha, k_beta, k_beta_share, coherent_b,
        source_kind, source_params, source_region, cone_params,
        cutoff, k_on, spectrum_max,
        out_total, out_peak, out_interacted, out_hist, out_diag,
    ):
        """Run sum(counts) histories (photons, or decays); add weighted tallies into the out_* arrays.

        Per line: out_total / out_peak / out_interacted[line] are the weighted histories with a
        crystal deposit / a full-energy deposit / an interaction in the crystal. Whole decays:
        out_total = [decays, weighted decays with a crystal deposit, their squared weights];
        out_peak[i]: weighted decays whose crystal deposit lies within the peak window of peak
        energy i. out_diag: [largest |E_crystal + E_elsewhere + E_escaped - E0| of any history
        (MeV), photons stopped by the step limit, interaction steps].
        """
        if source_stamp == -1:  # never (a CRC is unsigned): keeps the stamp in the cache key
            return
        n_bins = out_hist.shape[1]
        bin_scale = n_bins / spectrum_max
        st_x = np.empty(STACK_SIZE)
        st_y = np.empty(STACK_SIZE)
        st_z = np.empty(STACK_SIZE)
        st_ux = np.empty(STACK_SIZE)
        st_uy = np.empty(STACK_SIZE)
        st_uz = np.empty(STACK_SIZE)
        st_e = np.empty(STACK_SIZE)
        st_reg = np.empty(STACK_SIZE, dtype=np.int64)
        vr_on = cone_params[0] > 0.5
        p_out = cone_params[1]  # the share of histories (decays: of decays) drawn outside the cone
        det_r = cone_params[2]
        det_zlo = cone_params[3]
        sph_z = cone_params[4]
        sph_r = cone_params[5]
        px0 = source_params[0]
        pz0 = source_params[1]
        src_radius = source_params[2]
        src_zlo = source_params[3]
        src_zhi = source_params[4]
        hole_r2 = source_params[5]
        hole_zlo = source_params[6]
        hole_zhi = source_params[7]
        # a point source has one cone for all its histories
        point_cone = _cone(px0, 0.0, pz0, det_r, det_zlo, sph_z, sph_r)
        if whole_decay:
            (br_cum, br_level, br_pair, br_kx, br_dau, lv_first, lv_n, lv_dau, tr_cum, tr_to, tr_e, tr_pg, tr_pkx,
             dau_xa, dau_xb, dau_xshare, peak_e, peak_window, ac_a22, ac_a44) = decay_data
            n_peaks = peak_e.size
            u_e = np.empty(MAX_UNITS)
            u_pair = np.empty(MAX_UNITS, dtype=np.bool_)
            u_in = np.empty(MAX_UNITS, dtype=np.bool_)
            u_gamma = np.empty(MAX_UNITS, dtype=np.bool_)
            # gamma-gamma angular correlation (analog emission only; whole_decay.py switches the cone off)
            correlated = ac_a22 != 0.0 or ac_a44 != 0.0
            w_max = 1.0 + abs(ac_a22) + abs(ac_a44)
            transport_outside = p_out > 0.0
        steps = 0
        rs = (state[0], state[1], state[2], state[3])
        for line in range(counts.size):
            e0 = 0.0 if whole_decay else energies[line]
            for _h in range(counts[line]):
                w = 1.0
                n_stack = 0
                e_crystal = 0.0
                e_other = 0.0
                e_escaped = 0.0
                interacted = False
                if whole_decay:
                    n_units, e0, rs = _sample_decay(rs, br_cum, br_level, br_pair, br_kx, br_dau, lv_first, lv_n,
                                                    lv_dau, tr_cum, tr_to, tr_e, tr_pg, tr_pkx, dau_xa, dau_xb,
                                                    dau_xshare, cutoff, u_e, u_pair, u_gamma)
                    out_total[0] += 1.0
                    if n_units == 0:
                        continue
                    x, y, z, rs = _source_point(rs, source_kind, px0, pz0, src_radius, src_zlo, src_zhi, hole_r2,
                                                hole_zlo, hole_zhi)
                    # --- which units go into the cone (stratified, exact weights); analog when not possible
                    analog = True
                    cosmax, ax, ay, az = point_cone
                    if vr_on:
                        if source_kind != 0:
                            cosmax, ax, ay, az = _cone(x, y, z, det_r, det_zlo, sph_z, sph_r)
                        p_cone = (1.0 - cosmax) * 0.5
                        if cosmax > 0.0:
                            analog = False
                            p_none = 1.0
                            for i in range(n_units):
                                p_none *= 1.0 - (2.0 * p_cone if u_pair[i] else p_cone)
                            r, rs = _step(rs)
                            if r < p_out:
                                w = p_none / p_out
                                for i in range(n_units):
                                    u_in[i] = False
                            else:
                                w = (1.0 - p_none) / (1.0 - p_out)
                                # the first unit in the cone, with its conditional probability
                                r, rs = _step(rs)
                                target = r * (1.0 - p_none)
                                acc = 0.0
                                before = 1.0
                                first = n_units - 1
                                for i in range(n_units):
                                    pi = 2.0 * p_cone if u_pair[i] else p_cone
                                    acc += before * pi
                                    if target < acc:
                                        first = i
                                        break
                                    before *= 1.0 - pi
                                for i in range(n_units):
                                    if i < first:
                                        u_in[i] = False
                                    elif i == first:
                                        u_in[i] = True
                                    else:
                                        pi = 2.0 * p_cone if u_pair[i] else p_cone
                                        r, rs = _step(rs)
                                        u_in[i] = r < pi
                    # --- directions: push every photon of the decay onto the stack
                    gx = 0.0
                    gy = 0.0
                    gz = 1.0
                    for i in range(n_units):
                        if analog:
                            if correlated and i > 0 and u_gamma[i] and u_gamma[i - 1]:
                                # this gamma follows the previous one directly: its angle to it follows
                                # W = 1 + a22 P2 + a44 P4 (rejection under w_max), azimuth uniform
                                while True:
                                    r, rs = _step(rs)
                                    c = 2.0 * r - 1.0
                                    c2 = c * c
                                    w_c = (1.0 + ac_a22 * (1.5 * c2 - 0.5)
                                           + ac_a44 * ((35.0 * c2 - 30.0) * c2 + 3.0) * 0.125)
                                    r, rs = _step(rs)
                                    if r * w_max <= w_c:
                                        break
                                vx, vy, vz, rs = _rotate(gx, gy, gz, c, rs)
                            else:
                                vx, vy, vz, rs = _isotropic(rs)
                            if u_gamma[i]:
                                gx = vx
                                gy = vy
                                gz = vz
                        else:
                            if not (u_in[i] or transport_outside):
                                continue
                            r, rs = _step(rs)
                            if u_in[i]:
                                cost = 1.0 - r * (1.0 - cosmax)
                            elif u_pair[i]:
                                cost = -cosmax + 2.0 * r * cosmax
                            else:
                                cost = -1.0 + r * (1.0 + cosmax)
                            # for a pair in the cone this is the half in the cone; the other leaves back to back
                            vx, vy, vz, rs = _rotate(ax, ay, az, cost, rs)
                        n_copies = 2 if u_pair[i] else 1
                        for c in range(n_copies):
                            if n_stack < STACK_SIZE:
                                sign = 1.0 if c == 0 else -1.0
                                st_x[n_stack] = x
                                st_y[n_stack] = y
                                st_z[n_stack] = z
                                st_ux[n_stack] = sign * vx
                                st_uy[n_stack] = sign * vy
                                st_uz[n_stack] = sign * vz
                                st_e[n_stack] = u_e[i]
                                st_reg[n_stack] = source_region
                                n_stack += 1
                    # photons not transported (outside the cone, nothing to scatter from) escape
                    e_tracked = 0.0
                    for i in range(n_stack):
                        e_tracked += st_e[i]
                    e_escaped += e0 - e_tracked
                    flying = n_stack > 0
                    if flying:  # the first photon off the stack starts the flight loop
                        n_stack -= 1
                        x = st_x[n_stack]
                        y = st_y[n_stack]
                        z = st_z[n_stack]
                        ux = st_ux[n_stack]
                        uy = st_uy[n_stack]
                        uz = st_uz[n_stack]
                        e = st_e[n_stack]
                        reg = st_reg[n_stack]
                    else:
                        ux = 0.0
                        uy = 0.0
                        uz = 1.0
                        e = e0
                        reg = source_region
                else:
                    x, y, z, rs = _source_point(rs, source_kind, px0, pz0, src_radius, src_zlo, src_zhi, hole_r2,
                                                hole_zlo, hole_zhi)
                    # --- direction: into the cone that sees the detector, weighted by its solid angle
                    if vr_on:
                        if source_kind == 0:
                            cosmax, ax, ay, az = point_cone
                        else:
                            cosmax, ax, ay, az = _cone(x, y, z, det_r, det_zlo, sph_z, sph_r)
                        if cosmax > -1.0:
                            inside = (1.0 - cosmax) * 0.5
                            r, rs = _step(rs)
                            r2, rs = _step(rs)
                            if r >= p_out:
                                cost = 1.0 - r2 * (1.0 - cosmax)
                                w = inside / (1.0 - p_out)
                            else:
                                cost = -1.0 + r2 * (1.0 + cosmax)
                                w = (1.0 - inside) / p_out
                            ux, uy, uz, rs = _rotate(ax, ay, az, cost, rs)
                        else:
                            ux, uy, uz, rs = _isotropic(rs)
                    else:
                        ux, uy, uz, rs = _isotropic(rs)
                    # the primary starts at once; secondaries (K X-rays, annihilation photons) wait on
                    # the stack and are popped when the current photon ends
                    e = e0
                    reg = source_region
                    flying = True

                # --- the flight loop: the current photon, then each photon popped off the stack
                while flying:
                    n_steps = 0
                    da, inv_a, inv_uz = _direction_terms(ux, uy, uz)
                    # energy-dependent lookups are redone only when the energy changes, and the free
                    # path is drawn in mean free paths once per flight (memoryless, so crossing a
                    # boundary just spends part of it): no log or random number per crossing
                    kk, f, tau, rs = _energy_cell_and_path(e, rs)
                    while True:
                        n_steps += 1
                        if n_steps > MAX_STEPS:
                            out_diag[1] += 1.0
                            e_escaped += e
                            break
                        # --- where does the flight end: at the interaction point s = tau/mu, at a
                        # child's surface (entry), or at the own cylinder's surface (exit)?
                        # A child lies inside its convex parent, so a ray that hits a child stays
                        # inside the parent up to that point; and when no child is hit, the
                        # interaction point is before the exit iff it lies inside the own cylinder
                        # (one quadratic, no square root). So the exit distance is computed only for
                        # flights that really leave. Both tests are written in mean free paths
                        # (multiplied through by mu), so tau / mu is divided out only on interaction.
                        # Coordinates are relative to the own cylinder's axis (off the axis only for
                        # an off-axis volume source and its container: the general variant only).
                        cxr = 0.0
                        xr = x
                        if general:
                            cxr = cyl_cx[reg]
                            xr = x - cxr
                        rho2 = xr * xr + y * y
                        bb = xr * ux + y * uy
                        m = cyl_mat[reg]
                        mut = 0.0
                        if m >= 0:
                            mut = mu[m, 0, kk] + f * (mu[m, 0, kk + 1] - mu[m, 0, kk])
                        dmin = INF
                        target = -1
                        for c in range(cyl_nchildren[reg]):
                            ch = cyl_children[reg, c]
                            shift = cyl_cx[ch] - cxr if general else 0.0
                            if shift == 0.0:
                                d = _entry_distance(rho2, bb, da, z, uz, inv_uz, cyl_r2[ch], cyl_zlo[ch], cyl_zhi[ch])
                            else:
                                xc = xr - shift
                                d = _entry_distance(xc * xc + y * y, xc * ux + y * uy, da, z, uz, inv_uz, cyl_r2[ch],
                                                    cyl_zlo[ch], cyl_zhi[ch])
                            if d < dmin:
                                dmin = d
                                target = ch
                        if target >= 0:
                            if general and cyl_open[reg] != 0:
                                # a child sticks out of this cylinder (a Marinelli well): the ray may leave first
                                d_exit = _exit_distance(rho2, bb, da, inv_a, z, uz, inv_uz, cyl_r2[reg],
                                                        cyl_zlo[reg], cyl_zhi[reg])
                                if d_exit < dmin:
                                    dmin = d_exit
                                    target = cyl_parent[reg]
                            crossing = tau >= mut * dmin
                        else:
                            crossing = True
                            if mut > 0.0:
                                # interaction point x + (tau/mu) u inside the own cylinder, times mu
                                z_hit = z * mut + tau * uz
                                if (cyl_zlo[reg] * mut <= z_hit <= cyl_zhi[reg] * mut
                                        and tau * (da * tau + 2.0 * bb * mut) + (rho2 - cyl_r2[reg]) * mut * mut <= 0.0):
                                    crossing = False
                            if crossing:
                                dmin = _exit_distance(rho2, bb, da, inv_a, z, uz, inv_uz, cyl_r2[reg], cyl_zlo[reg],
                                                      cyl_zhi[reg])
                                target = cyl_parent[reg]
                        if crossing:
                            tau -= mut * dmin
                            step = dmin + NUDGE_CM
                            x += step * ux
                            y += step * uy
                            z += step * uz
                            exiting = target == cyl_parent[reg]
                            reg = target
                            # surfaces shared by nested cylinders (a layer with zero side or back
                            # thickness) are crossed at once instead of by zero-length steps;
                            # leaving a child that sticks out of its parent (a Marinelli well) climbs
                            # to the first cylinder that contains the point
                            if exiting:
                                while reg >= 0 and not _inside(x - cyl_cx[reg] if general else x, y, z, cyl_r2[reg],
                                                               cyl_zlo[reg], cyl_zhi[reg]):
                                    reg = cyl_parent[reg]
                            else:
                                while cyl_nchildren[reg] == 1:
                                    ch = cyl_children[reg, 0]
                                    if not _inside(x - cyl_cx[ch] if general else x, y, z, cyl_r2[ch], cyl_zlo[ch],
                                                   cyl_zhi[ch]):
                                        break
                                    reg = ch
                            if reg < 0:
                                e_escaped += e
                                break
                            continue
                        dist = tau / mut
                        x += dist * ux
                        y += dist * uy
                        z += dist * uz
                        steps += 1
                        if not whole_decay and reg == 0:
                            interacted = True
                        r, rs = _step(rs)
                        r *= mut
                        mpe = mu[m, 1, kk] + f * (mu[m, 1, kk + 1] - mu[m, 1, kk])
                        if r < mpe:
                            # photoelectric absorption, optionally followed by a K X-ray
                            deposit = e
                            if k_on and e > k_edge[m, 0]:
                                p0 = k_prob[m, 0, kk] + f * (k_prob[m, 0, kk + 1] - k_prob[m, 0, kk])
                                p1 = 0.0
                                if e > k_edge[m, 1]:
                                    p1 = k_prob[m, 1, kk] + f * (k_prob[m, 1, kk + 1] - k_prob[m, 1, kk])
                                rk, rs = _step(rs)
                                slot = -1
                                if rk < p0:
                                    slot = 0
                                elif rk < p0 + p1:
                                    slot = 1
                                if slot >= 0:
                                    r2, rs = _step(rs)
                                    ex = k_beta[m, slot] if r2 < k_beta_share[m, slot] else k_alpha[m, slot]
                                    if ex >= cutoff and n_stack < STACK_SIZE:
                                        deposit = e - ex
                                        vx, vy, vz, rs = _isotropic(rs)
                                        st_x[n_stack] = x
                                        st_y[n_stack] = y
                                        st_z[n_stack] = z
                                        st_ux[n_stack] = vx
                                        st_uy[n_stack] = vy
                                        st_uz[n_stack] = vz
                                        st_e[n_stack] = ex
                                        st_reg[n_stack] = reg
                                        n_stack += 1
                            if reg == 0:
                                e_crystal += deposit
                            else:
                                e_other += deposit
                            break
                        r -= mpe
                        mco = mu[m, 2, kk] + f * (mu[m, 2, kk + 1] - mu[m, 2, kk])
                        if r < mco:
                            if e < KAHN_MAX_MEV:
                                eps, cost, rs = _kahn(rs, e)
                            else:
                                eps, cost, rs = _klein_nishina(rs, e)
                            e_new = eps * e
                            lost = e - e_new
                            if e_new < cutoff:
                                lost = e
                            if reg == 0:
                                e_crystal += lost
                            else:
                                e_other += lost
                            if e_new < cutoff:
                                break
                            e = e_new
                            ux, uy, uz, rs = _rotate(ux, uy, uz, cost, rs)
                            da, inv_a, inv_uz = _direction_terms(ux, uy, uz)
                            kk, f, tau, rs = _energy_cell_and_path(e, rs)
                            continue
                        r -= mco
                        mpp = mu[m, 3, kk] + f * (mu[m, 3, kk + 1] - mu[m, 3, kk])
                        if r < mpp and e > 2.0 * ELECTRON_MASS_MEV:
                            kinetic = e - 2.0 * ELECTRON_MASS_MEV
                            vx, vy, vz, rs = _isotropic(rs)
                            for sign in (1.0, -1.0):
                                if n_stack < STACK_SIZE:
                                    st_x[n_stack] = x
                                    st_y[n_stack] = y
                                    st_z[n_stack] = z
                                    st_ux[n_stack] = sign * vx
                                    st_uy[n_stack] = sign * vy
                                    st_uz[n_stack] = sign * vz
                                    st_e[n_stack] = ELECTRON_MASS_MEV
                                    st_reg[n_stack] = reg
                                    n_stack += 1
                                else:
                                    kinetic += ELECTRON_MASS_MEV
                            if reg == 0:
                                e_crystal += kinetic
                            else:
                                e_other += kinetic
                            break
                        # coherent scattering: new direction, same energy
                        if coherent_b[m] > 0.0 and mu[m, 4, kk] > 0.0:
                            cost, rs = _coherent_cos(rs, e, coherent_b[m])
                            ux, uy, uz, rs = _rotate(ux, uy, uz, cost, rs)
                            da, inv_a, inv_uz = _direction_terms(ux, uy, uz)
                        r, rs = _step(rs)
                        tau = -math.log(1.0 - r)
                    if n_stack == 0:
                        break
                    n_stack -= 1
                    x = st_x[n_stack]
                    y = st_y[n_stack]
                    z = st_z[n_stack]
                    ux = st_ux[n_stack]
                    uy = st_uy[n_stack]
                    uz = st_uz[n_stack]
                    e = st_e[n_stack]
                    reg = st_reg[n_stack]
                # --- tallies of this history
                if whole_decay:
                    if e_crystal > 0.0:
                        out_total[1] += w
                        out_total[2] += w * w
                        b = int(e_crystal * bin_scale)
                        if b < n_bins:
                            out_hist[0, b] += w
                        for i in range(n_peaks):
                            if abs(e_crystal - peak_e[i]) <= peak_window:
                                out_peak[i] += w
                                break
                else:
                    if e_crystal > 0.0:
                        out_total[line] += w
                        b = int(e_crystal * bin_scale)
                        if b < n_bins:
                            out_hist[line, b] += w
                        if e_crystal >= e0 - FEP_TOLERANCE_MEV:
                            out_peak[line] += w
                    if interacted:
                        out_interacted[line] += w
                balance = abs(e_crystal + e_other + e_escaped - e0)
                out_diag[0] = max(out_diag[0], balance)
        out_diag[2] += steps
        state[0], state[1], state[2], state[3] = rs

    return run_kernel
