"""The numba building blocks of the photon-transport kernels (`kernel.py`).

Everything here is inlined into the kernels (`inline="always"`): the xoshiro256+ random stream
threaded through local variables, the coaxial-cylinder distances, direction sampling (rotation,
isotropic, the cone that sees the detector), the Compton samplers (Kahn below 1.5 MeV,
Butcher-Messel above), the coherent-scattering angle and the source point. Constants the kernels
and the reference integrals share are defined here too.
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
def _disk_point(rs):
    """A point (p, q) uniform in the unit disk (rejection from the square) and r^2 = p^2 + q^2 > 0."""
    while True:
        p, rs = _step(rs)
        q, rs = _step(rs)
        p = 2.0 * p - 1.0
        q = 2.0 * q - 1.0
        r2 = p * p + q * q
        if 0.0 < r2 <= 1.0:
            return p, q, r2, rs


@njit(inline="always")
def _energy_cell_and_path(e, rs):
    """The cross-section grid cell kk and fraction f of energy e (log grid, clamped), and a free path
    tau in mean free paths drawn from stream rs: what a photon's flight needs whenever its energy changes."""
    u = (math.log(e) - LN_E_MIN) * INV_D_LN_E
    kk = int(u)
    if kk < 0:
        kk = 0
    elif kk > LAST_CELL:
        kk = LAST_CELL
    f = u - kk
    r, rs = _step(rs)
    tau = -math.log(1.0 - r)
    return kk, f, tau, rs


@njit(inline="always")
def _rotate(ux, uy, uz, cost, rs):
    """Turn direction u by polar angle acos(cost) and a random azimuth drawn from stream s.

    The azimuth is a point (p, q) drawn uniformly in the unit disk: cos phi = (p^2 - q^2)/r^2,
    sin phi = 2pq/r^2 (no trigonometric call); the 1/r^2 and 1/sin(theta_u) factors share one
    division, and the result is renormalised by one Newton step of 1/sqrt (exact to rounding,
    since the norm is 1 up to a few ulps).
    """
    sint = math.sqrt(max(0.0, 1.0 - cost * cost))
    p, q, r2, rs = _disk_point(rs)
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
    p, q, r2, rs = _disk_point(rs)
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
