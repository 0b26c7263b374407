"""The numba whole-decay kernel: every photon of one decay is tracked in the same history.

One history is one decay: a decay event is sampled from the scheme's flat tables (see
`decay.py`), all its photons (cascade gammas, X-rays, the back-to-back annihilation pair of a
beta+ branch) start from one source point, and their crystal deposits add up, so sum peaks and
summing-out losses come out of the simulation. The photon transport is the one of `kernel.py`
(same helpers, same physics, same cylinder tree); only emission and tallies differ. The flight
loop is written out in both kernels on purpose: moving it into one shared numba function
made the per-line 3"x3" NaI Cs-137 case 3.1x slower as a plain call (array arguments are
reference-counted per photon) and 1.7x slower inlined by numba (numba 0.68, this machine, with
benchmarks/bench_montecarlo_kernel_ab.py), so a change to the flight loop must be made in both.

Emission with variance reduction (exact, weights per history). All photons of a decay start at
the same point, so they share the cone that contains the detector; a single photon lies in it
with probability p, a back-to-back pair (whose two halves cannot both be in a cone narrower
than a hemisphere) with probability 2p. The decay is sampled in two strata: with probability
1 - q "at least one unit in the cone" (the first unit in the cone chosen with its exact
conditional probability, the units after it analog; weight (1 - P_none) / (1 - q)), with
probability q "no unit in the cone" (weight P_none / q). q is the run's outside fraction: 0 when
nothing outside the detector can scatter a photon back, and then photons outside the cone are
not transported at all. Where the cone is wider than a hemisphere the decay is emitted analog.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vital_desktop.montecarlo.kernel import (
    ELECTRON_MASS_MEV,
    FASTMATH,
    INF,
    INV_D_LN_E,
    KAHN_MAX_MEV,
    LAST_CELL,
    MAX_STEPS,
    NUDGE_CM,
    STACK_SIZE,
    _coherent_cos,
    _cone,
    _direction_terms,
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
from vital_desktop.montecarlo.materials import LN_E_MIN

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


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def run_decay_chunk(
    state, n_decays,
    br_cum, br_level, br_pair, br_kx, br_dau, lv_first, lv_n, lv_dau, tr_cum, tr_to, tr_e, tr_pg, tr_pkx,
    dau_xa, dau_xb, dau_xshare, peak_e, peak_window, ac_a22, ac_a44,
    cyl_r2, cyl_zlo, cyl_zhi, cyl_mat, cyl_parent, cyl_children, cyl_nchildren, cyl_cx, cyl_open,
    mu, k_edge, k_prob, k_alpha, k_beta, k_beta_share, coherent_b,
    source_kind, source_params, source_region, cone_params,
    cutoff, k_on, spectrum_max,
    out_sums, out_peak, out_hist, out_diag,
):
    """Run `n_decays` decays; add weighted tallies into the out_* arrays.

    out_sums: [decays, decays with a crystal deposit (weighted), squared weights of those];
    out_peak[i]: weighted decays whose crystal deposit lies within peak_window of peak_e[i];
    out_diag: [largest energy-balance error (MeV), photons stopped by the step limit, interactions].
    """
    n_bins = out_hist.shape[0]
    bin_scale = n_bins / spectrum_max
    n_peaks = peak_e.size
    st_x = np.empty(STACK_SIZE)
    st_y = np.empty(STACK_SIZE)
    st_z = np.empty(STACK_SIZE)
    st_ux = np.empty(STACK_SIZE)
    st_uy = np.empty(STACK_SIZE)
    st_uz = np.empty(STACK_SIZE)
    st_e = np.empty(STACK_SIZE)
    st_reg = np.empty(STACK_SIZE, dtype=np.int64)
    u_e = np.empty(MAX_UNITS)
    u_pair = np.empty(MAX_UNITS, dtype=np.bool_)
    u_in = np.empty(MAX_UNITS, dtype=np.bool_)
    u_gamma = np.empty(MAX_UNITS, dtype=np.bool_)
    # gamma-gamma angular correlation (analog emission only; whole_decay.py switches the cone off)
    correlated = ac_a22 != 0.0 or ac_a44 != 0.0
    w_max = 1.0 + abs(ac_a22) + abs(ac_a44)
    vr_on = cone_params[0] > 0.5
    q_none = cone_params[1]
    transport_outside = q_none > 0.0
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
    point_cone = _cone(px0, 0.0, pz0, det_r, det_zlo, sph_z, sph_r)
    off_axis = False
    any_open = False
    for i in range(cyl_cx.size):
        off_axis = off_axis or cyl_cx[i] != 0.0
        any_open = any_open or cyl_open[i] != 0
    steps = 0
    rs = (state[0], state[1], state[2], state[3])
    for _h in range(n_decays):
        n_units, e0, rs = _sample_decay(rs, br_cum, br_level, br_pair, br_kx, br_dau, lv_first, lv_n, lv_dau, tr_cum,
                                        tr_to, tr_e, tr_pg, tr_pkx, dau_xa, dau_xb, dau_xshare, cutoff, u_e, u_pair,
                                        u_gamma)
        out_sums[0] += 1.0
        if n_units == 0:
            continue
        x, y, z, rs = _source_point(rs, source_kind, px0, pz0, src_radius, src_zlo, src_zhi, hole_r2, hole_zlo,
                                    hole_zhi)
        # --- which units go into the cone (stratified, exact weights); analog when not possible
        w = 1.0
        analog = True
        cosmax, ax, ay, az = point_cone
        if vr_on:
            if source_kind != 0:
                cosmax, ax, ay, az = _cone(x, y, z, det_r, det_zlo, sph_z, sph_r)
            p1 = (1.0 - cosmax) * 0.5
            if cosmax > 0.0:
                analog = False
                p_none = 1.0
                for i in range(n_units):
                    p_none *= 1.0 - (2.0 * p1 if u_pair[i] else p1)
                r, rs = _step(rs)
                if r < q_none:
                    w = p_none / q_none
                    for i in range(n_units):
                        u_in[i] = False
                else:
                    w = (1.0 - p_none) / (1.0 - q_none)
                    # the first unit in the cone, with its conditional probability
                    r, rs = _step(rs)
                    target = r * (1.0 - p_none)
                    acc = 0.0
                    before = 1.0
                    first = n_units - 1
                    for i in range(n_units):
                        pi = 2.0 * p1 if u_pair[i] else p1
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
                            pi = 2.0 * p1 if u_pair[i] else p1
                            r, rs = _step(rs)
                            u_in[i] = r < pi
        # --- directions: push every photon of the decay onto the stack
        n_stack = 0
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
                        w_c = 1.0 + ac_a22 * (1.5 * c2 - 0.5) + ac_a44 * ((35.0 * c2 - 30.0) * c2 + 3.0) * 0.125
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
                keep = True
            else:
                keep = u_in[i] or transport_outside
                if not keep:
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
        e_crystal = 0.0
        e_other = 0.0
        e_escaped = 0.0
        # photons not transported (outside the cone, nothing to scatter from) escape
        e_tracked = 0.0
        for i in range(n_stack):
            e_tracked += st_e[i]
        e_escaped += e0 - e_tracked
        while n_stack > 0:
            n_stack -= 1
            x = st_x[n_stack]
            y = st_y[n_stack]
            z = st_z[n_stack]
            ux = st_ux[n_stack]
            uy = st_uy[n_stack]
            uz = st_uz[n_stack]
            e = st_e[n_stack]
            reg = st_reg[n_stack]
            n_steps = 0
            da, inv_a, inv_uz = _direction_terms(ux, uy, uz)
            u = (math.log(e) - LN_E_MIN) * INV_D_LN_E
            kk = int(u)
            if kk < 0:
                kk = 0
            elif kk > LAST_CELL:
                kk = LAST_CELL
            f = u - kk
            r, rs = _step(rs)
            tau = -math.log(1.0 - r)
            while True:
                n_steps += 1
                if n_steps > MAX_STEPS:
                    out_diag[1] += 1.0
                    e_escaped += e
                    break
                # coordinates relative to the own cylinder's axis (off the axis only for an
                # off-axis volume source and its container; `off_axis` is fixed per chunk, so the
                # usual all-on-axis case costs one well-predicted branch per step)
                cxr = 0.0
                xr = x
                if off_axis:
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
                    shift = cyl_cx[ch] - cxr if off_axis else 0.0
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
                    if any_open and cyl_open[reg] != 0:
                        d_exit = _exit_distance(rho2, bb, da, inv_a, z, uz, inv_uz, cyl_r2[reg], cyl_zlo[reg],
                                                cyl_zhi[reg])
                        if d_exit < dmin:
                            dmin = d_exit
                            target = cyl_parent[reg]
                    crossing = tau >= mut * dmin
                else:
                    crossing = True
                    if mut > 0.0:
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
                    if exiting:
                        while reg >= 0 and not _inside(x - cyl_cx[reg] if off_axis else x, y, z, cyl_r2[reg], cyl_zlo[reg],
                                                       cyl_zhi[reg]):
                            reg = cyl_parent[reg]
                    else:
                        while cyl_nchildren[reg] == 1:
                            ch = cyl_children[reg, 0]
                            if not _inside(x - cyl_cx[ch] if off_axis else x, y, z, cyl_r2[ch], cyl_zlo[ch], cyl_zhi[ch]):
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
                r, rs = _step(rs)
                r *= mut
                mpe = mu[m, 1, kk] + f * (mu[m, 1, kk + 1] - mu[m, 1, kk])
                if r < mpe:
                    deposit = e
                    if k_on and e > k_edge[m, 0]:
                        p0 = k_prob[m, 0, kk] + f * (k_prob[m, 0, kk + 1] - k_prob[m, 0, kk])
                        pk1 = 0.0
                        if e > k_edge[m, 1]:
                            pk1 = k_prob[m, 1, kk] + f * (k_prob[m, 1, kk + 1] - k_prob[m, 1, kk])
                        rk, rs = _step(rs)
                        slot = -1
                        if rk < p0:
                            slot = 0
                        elif rk < p0 + pk1:
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
                    u = (math.log(e) - LN_E_MIN) * INV_D_LN_E
                    kk = int(u)
                    if kk < 0:
                        kk = 0
                    elif kk > LAST_CELL:
                        kk = LAST_CELL
                    f = u - kk
                    r, rs = _step(rs)
                    tau = -math.log(1.0 - r)
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
                if coherent_b[m] > 0.0 and mu[m, 4, kk] > 0.0:
                    cost, rs = _coherent_cos(rs, e, coherent_b[m])
                    ux, uy, uz, rs = _rotate(ux, uy, uz, cost, rs)
                    da, inv_a, inv_uz = _direction_terms(ux, uy, uz)
                r, rs = _step(rs)
                tau = -math.log(1.0 - r)
        # --- tallies of this decay
        if e_crystal > 0.0:
            out_sums[1] += w
            out_sums[2] += w * w
            b = int(e_crystal * bin_scale)
            if b < n_bins:
                out_hist[b] += w
            for i in range(n_peaks):
                if abs(e_crystal - peak_e[i]) <= peak_window:
                    out_peak[i] += w
                    break
        balance = abs(e_crystal + e_other + e_escaped - e0)
        out_diag[0] = max(out_diag[0], balance)
    out_diag[2] += steps
    state[0], state[1], state[2], state[3] = rs
