"""The numba photon-transport kernel: one call runs one chunk of histories.

Pure function of its inputs: the random stream is a xoshiro256+ generator whose 256-bit state
is passed in (derived from the run seed and the chunk index), so a chunk gives the same bits on
any thread, process or machine. `nogil=True` lets several chunks run on threads in parallel;
`cache=True` keeps the compiled code on disk between runs.

Physics per step (see docs/montecarlo.md for every approximation): sample a free path from the
total coefficient; if the next boundary is nearer, cross it; else interact:
photoelectric (optional K X-ray), Compton (Klein-Nishina, free electron; Kahn's rejection
below 1.5 MeV, Butcher-Messel above), pair (two 511 keV
photons back to back), coherent (optional; Thomson x approximate form factor). Electrons and
positrons deposit their kinetic energy on the spot.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from vital_desktop.montecarlo.materials import D_LN_E, GRID_POINTS, LN_E_MIN

ELECTRON_MASS_MEV = 0.51099895
INV_ELECTRON_MASS = 1.0 / ELECTRON_MASS_MEV
INV_D_LN_E = 1.0 / D_LN_E
LAST_CELL = GRID_POINTS - 2
NUDGE_CM = 1.0e-9
STACK_SIZE = 64
MAX_STEPS = 100_000
INF = 1.0e300
TWO_PI = 2.0 * math.pi
HC_MEV_ANGSTROM = 0.0123984198
FEP_TOLERANCE_MEV = 1.0e-9
#: Compton sampling: Kahn's method below this energy, Butcher-Messel above (both exact).
KAHN_MAX_MEV = 1.5


@njit(inline="always")
def _rotl(x, k):
    return (x << np.uint64(k)) | (x >> np.uint64(64 - k))


@njit(inline="always")
def _step(rs):
    """xoshiro256+ on a state held in a tuple: (float64 in [0, 1) from the top 53 bits, next state).

    The kernel threads the state through its local variables, so it stays in registers instead
    of making a memory round trip through the state array on every draw.
    """
    s0, s1, s2, s3 = rs
    result = s0 + s3
    t = s1 << np.uint64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return float(result >> np.uint64(11)) * (1.0 / 9007199254740992.0), (s0, s1, s2, s3)


@njit(inline="always")
def rand(s):
    """xoshiro256+ -> float64 in [0, 1); the state array s (4 x uint64) advances in place."""
    value, rs = _step((s[0], s[1], s[2], s[3]))
    s[0], s[1], s[2], s[3] = rs
    return value


@njit(inline="always")
def _direction_terms(ux, uy, uz):
    """Per-direction constants of the distance computations: a = ux^2 + uy^2, 1/a, 1/uz."""
    a = ux * ux + uy * uy
    inv_a = 1.0 / a if a > 0.0 else 0.0
    inv_uz = 1.0 / uz if uz != 0.0 else 0.0
    return a, inv_a, inv_uz


@njit(inline="always")
def _exit_distance(rho2, b, a, inv_a, z, uz, inv_uz, r2, zlo, zhi):
    """Distance to leave a coaxial cylinder from inside. rho2 = x^2 + y^2, b = x ux + y uy.

    The ray leaves through the face its z direction points at unless it reaches the side first;
    when the point where it reaches the face plane is still within the radius (one quadratic
    evaluated there), that face is the exit and no square root is needed.
    """
    if uz > 0.0:
        tz = (zhi - z) * inv_uz
    elif uz < 0.0:
        tz = (zlo - z) * inv_uz
    else:
        tz = INF
    if a == 0.0:
        return max(0.0, tz)
    c = rho2 - r2
    if tz < INF and tz * (a * tz + 2.0 * b) + c <= 0.0:
        return max(0.0, tz)
    # far root (sqrt(disc) - b) / a with the precomputed 1/a: for an outward ray (b > 0) right at
    # the surface this loses relative precision, but the absolute error stays ~1e-16 rho / |u_perp|,
    # far below the 1e-9 cm nudge, and it keeps a division off the critical path
    sq = math.sqrt(max(b * b - a * c, 0.0))
    tr = (sq - b) * inv_a
    return max(0.0, min(tr, tz))


@njit(inline="always")
def _entry_distance(rho2, b, a, z, uz, inv_uz, r2, zlo, zhi):
    """Distance to enter a coaxial cylinder from outside (INF if the ray misses it).

    Early outs before any square root: moving away from the slab; reaching the face plane
    within the radius (the usual way into the front of a detector); inside the radius but off it
    at the face plane; outside the radius and not moving towards the axis. Only a ray that can
    come in through the side solves the quadratic (stable root c / (sqrt(disc) - b)).
    """
    if uz > 0.0:
        tz0 = (zlo - z) * inv_uz
        tz1 = (zhi - z) * inv_uz
    elif uz < 0.0:
        tz0 = (zhi - z) * inv_uz
        tz1 = (zlo - z) * inv_uz
    else:
        if z < zlo or z > zhi:
            return INF
        tz0 = -INF
        tz1 = INF
    if tz1 <= 0.0:
        return INF
    c = rho2 - r2
    if tz0 > 0.0:
        if tz0 * (a * tz0 + 2.0 * b) + c <= 0.0:
            return tz0
        if c <= 0.0:
            return INF
    elif c <= 0.0:
        return 0.0
    if b >= 0.0:
        return INF
    disc = b * b - a * c
    if disc <= 0.0:
        return INF
    tr0 = c / (math.sqrt(disc) - b)
    if tz0 < tr0 < tz1:
        return tr0
    return INF


@njit(inline="always")
def _inside(x, y, z, r2, zlo, zhi):
    return zlo <= z <= zhi and x * x + y * y <= r2


@njit(inline="always")
def _rotate(ux, uy, uz, cost, rs):
    """Turn direction u by polar angle acos(cost) and a random azimuth drawn from stream s.

    The azimuth is a point (p, q) drawn uniformly in the unit disk: cos phi = (p^2 - q^2)/r^2,
    sin phi = 2pq/r^2 (no trigonometric call); the 1/r^2 and 1/sin(theta_u) factors share one
    division, and the result is renormalised by one Newton step of 1/sqrt (exact to rounding,
    since the norm is 1 up to a few ulps).
    """
    sint = math.sqrt(max(0.0, 1.0 - cost * cost))
    while True:
        p, rs = _step(rs)
        q, rs = _step(rs)
        p = 2.0 * p - 1.0
        q = 2.0 * q - 1.0
        r2 = p * p + q * q
        if 0.0 < r2 <= 1.0:
            break
    pp = p * p - q * q
    pq = 2.0 * p * q
    if abs(uz) > 0.99999999:
        g = sint / r2
        nx = g * pp
        ny = g * pq
        nz = cost if uz > 0.0 else -cost
    else:
        tmp2 = 1.0 - uz * uz
        g = sint / (r2 * math.sqrt(tmp2))
        c = pp * g
        sn = pq * g
        nx = ux * cost + ux * uz * c - uy * sn
        ny = uy * cost + uy * uz * c + ux * sn
        nz = uz * cost - tmp2 * c
    k = 1.5 - 0.5 * (nx * nx + ny * ny + nz * nz)
    return nx * k, ny * k, nz * k, rs


@njit(inline="always")
def _isotropic(rs):
    cost, rs = _step(rs)
    cost = 2.0 * cost - 1.0
    sint = math.sqrt(max(0.0, 1.0 - cost * cost))
    while True:
        p, rs = _step(rs)
        q, rs = _step(rs)
        p = 2.0 * p - 1.0
        q = 2.0 * q - 1.0
        r2 = p * p + q * q
        if 0.0 < r2 <= 1.0:
            break
    g = sint / r2
    return g * (p * p - q * q), g * (2.0 * p * q), cost, rs


@njit(inline="always")
def _klein_nishina(rs, energy):
    """Sample the scattered energy fraction and cos(theta) (Butcher-Messel, as in Geant4); used
    above `KAHN_MAX_MEV`, where its acceptance is better than Kahn's."""
    k = energy * INV_ELECTRON_MASS
    eps0 = 1.0 / (1.0 + 2.0 * k)
    eps0sq = eps0 * eps0
    alpha1 = -math.log(eps0)
    alpha2 = alpha1 + 0.5 * (1.0 - eps0sq)
    while True:
        r, rs = _step(rs)
        r2, rs = _step(rs)
        if alpha1 > alpha2 * r:
            eps = math.exp(-alpha1 * r2)
            epssq = eps * eps
        else:
            epssq = eps0sq + (1.0 - eps0sq) * r2
            eps = math.sqrt(epssq)
        onecost = (1.0 - eps) / (eps * k)
        sint2 = onecost * (2.0 - onecost)
        greject = 1.0 - eps * sint2 / (1.0 + epssq)
        r, rs = _step(rs)
        if greject >= r:
            return eps, 1.0 - onecost, rs


@njit(inline="always")
def _kahn(rs, energy):
    """Sample the scattered energy fraction and cos(theta) by Kahn's exact rejection (as MCNP
    below 1.5 MeV): only rational operations, no log/exp/sqrt, so it is shorter on the critical
    path than Butcher-Messel at the energies of most scatters. x = E/E' is drawn from one of two
    proposals (probabilities (1+2k)/(9+2k) and 8/(9+2k)) and accepted with 4(1/x - 1/x^2) or
    (cos^2 + 1/x)/2; the accepted pairs follow Klein-Nishina exactly.
    """
    k = energy * INV_ELECTRON_MASS
    g = 1.0 + 2.0 * k
    # branch 1 with probability g / (g + 8); x = E/E' and 1 - cos = (x - 1)/k written so that a
    # trial costs one division: branch 1 x = 1 + 2k r2 gives cos = 1 - 2 r2; branch 2
    # x = g / den (den = 1 + 2k r2) gives cos = 1 - 2 (1 - r2) / den and 1/x = den / g
    while True:
        r1, rs = _step(rs)
        r2, rs = _step(rs)
        r3, rs = _step(rs)
        if r1 * (g + 8.0) <= g:
            ix = 1.0 / (1.0 + 2.0 * k * r2)
            if r3 <= 4.0 * ix * (1.0 - ix):
                return ix, 1.0 - 2.0 * r2, rs
        else:
            den = 1.0 + 2.0 * k * r2
            cost = 1.0 - 2.0 * (1.0 - r2) / den
            if 2.0 * r3 * g <= g * cost * cost + den:
                return den / g, cost, rs


@njit(inline="always")
def _coherent_cos(rs, energy, b):
    """cos(theta) from Thomson x F^2 with F = 1/(1 + b q^2)^2 (hydrogen-like, Thomas-Fermi length)."""
    lam = HC_MEV_ANGSTROM / energy
    tmax = 16.0 * math.pi * math.pi / (lam * lam)
    area = 1.0 - (1.0 + b * tmax) ** -3.0
    while True:
        r, rs = _step(rs)
        r2, rs = _step(rs)
        t = ((1.0 - r * area) ** (-1.0 / 3.0) - 1.0) / b
        cost = 1.0 - 2.0 * t / tmax
        cost = max(cost, -1.0)
        if 2.0 * r2 < 1.0 + cost * cost:
            return cost, rs


@njit(inline="always")
def _cone(x, y, z, det_r, det_zlo, sph_z, sph_r):
    """(cos theta_max, axis) of the cone from (x, y, z) that contains the whole detector.

    In front of the detector: the axial cone through the far side of the front rim; elsewhere the
    cone around the detector's bounding sphere; cos theta_max = -2 when the point is inside that
    sphere (emit isotropically).
    """
    if z < det_zlo:
        tan = (math.sqrt(x * x + y * y) + det_r) / (det_zlo - z)
        return 1.0 / math.sqrt(1.0 + tan * tan), 0.0, 0.0, 1.0
    dz = sph_z - z
    dist = math.sqrt(x * x + y * y + dz * dz)
    if dist > sph_r:
        return math.sqrt(1.0 - (sph_r / dist) ** 2), -x / dist, -y / dist, dz / dist
    return -2.0, 0.0, 0.0, 1.0


@njit(inline="always")
def _source_point(rs, source_kind, px0, pz0, src_radius, src_zlo, src_zhi, hole_r2, hole_zlo, hole_zhi):
    """A uniform emission point: the point itself, a point of the disk, or of the volume cylinder
    outside its hole cylinder (a Marinelli beaker's well; rejection, hole_r2 = 0 means none)."""
    if source_kind == 0:
        return px0, 0.0, pz0, rs
    while True:
        r, rs = _step(rs)
        rr = src_radius * math.sqrt(r)
        r, rs = _step(rs)
        ph = TWO_PI * r
        x = px0 + rr * math.cos(ph)
        y = rr * math.sin(ph)
        if source_kind == 1:
            return x, y, pz0, rs
        r, rs = _step(rs)
        z = src_zlo + (src_zhi - src_zlo) * r
        if hole_r2 <= 0.0 or not (hole_zlo <= z <= hole_zhi and x * x + y * y < hole_r2):
            return x, y, z, rs


#: Only FMA contraction (a*b + c in one rounding) is allowed: no reassociation, no assumption
#: that NaN/inf cannot occur; results change in the last bits only (the tests cover it).
FASTMATH = {"contract"}


#: Only FMA contraction (a*b + c in one rounding) is allowed: no reassociation, no assumption
#: that NaN/inf cannot occur; results change in the last bits only (the tests cover it).
FASTMATH = {"contract"}


@njit(cache=True, nogil=True, fastmath=FASTMATH)
def run_chunk(
    state, n_per_line, energies,
    cyl_r2, cyl_zlo, cyl_zhi, cyl_mat, cyl_parent, cyl_children, cyl_nchildren, cyl_cx, cyl_open,
    mu, k_edge, k_prob, k_alpha, k_beta, k_beta_share, coherent_b,
    source_kind, source_params, source_region, cone_params,
    cutoff, k_on, spectrum_max,
    out_total, out_peak, out_interacted, out_hist, out_diag,
):
    """Run sum(n_per_line) histories; add weighted tallies into the out_* arrays.

    out_diag: [largest |E_crystal + E_elsewhere + E_escaped - E0| of any history (MeV),
    photons stopped by the step limit, interaction steps].
    """
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
    p_out = cone_params[1]
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
    off_axis = False
    any_open = False
    for i in range(cyl_cx.size):
        off_axis = off_axis or cyl_cx[i] != 0.0
        any_open = any_open or cyl_open[i] != 0
    steps = 0
    rs = (state[0], state[1], state[2], state[3])
    for line in range(energies.size):
        e0 = energies[line]
        for _h in range(n_per_line[line]):
            x, y, z, rs = _source_point(rs, source_kind, px0, pz0, src_radius, src_zlo, src_zhi, hole_r2, hole_zlo,
                                        hole_zhi)
            # --- direction: into the cone that sees the detector, weighted by its solid angle
            w = 1.0
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
            n_stack = 0
            e = e0
            reg = source_region
            e_crystal = 0.0
            e_other = 0.0
            e_escaped = 0.0
            interacted = False
            while True:
                n_steps = 0
                da, inv_a, inv_uz = _direction_terms(ux, uy, uz)
                # energy-dependent lookups are redone only when the energy changes, and the free
                # path is drawn in mean free paths once per flight (memoryless, so crossing a
                # boundary just spends part of it): no log or random number per crossing
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
                    # --- where does the flight end: at the interaction point s = tau/mu, at a
                    # child's surface (entry), or at the own cylinder's surface (exit)?
                    # A child lies inside its convex parent, so a ray that hits a child stays
                    # inside the parent up to that point; and when no child is hit, the
                    # interaction point is before the exit iff it lies inside the own cylinder
                    # (one quadratic, no square root). So the exit distance is computed only for
                    # flights that really leave. Both tests are written in mean free paths
                    # (multiplied through by mu), so tau / mu is divided out only on interaction.
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
                            # a child sticks out of this cylinder (a Marinelli well): the ray may leave first
                            d_exit = _exit_distance(rho2, bb, da, inv_a, z, uz, inv_uz, cyl_r2[reg], cyl_zlo[reg],
                                                    cyl_zhi[reg])
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
                        # thickness) are crossed at once instead of by zero-length steps
                        # leaving a child that sticks out of its parent (a Marinelli well) climbs
                        # to the first cylinder that contains the point
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
                    if reg == 0:
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
