"""A straightforward vectorised NumPy implementation of the same physics (the benchmark's baseline).

It reads the same `Problem` arrays as the numba kernel and follows the same rules (free path in
mean free paths, cylinder tree, photoelectric + K X-ray, Klein-Nishina Compton, pair production
with two 511 keV photons, coherent scattering, local electron deposition, the same cone
emission), but processes all live photons of a batch together, one step at a time, with NumPy
arrays and `numpy.random.Generator`. The random streams differ from the kernel's, so results
agree statistically (a test checks this), not bit for bit. It exists to answer "how much does
numba buy over idiomatic NumPy?" and as an independent cross-check of the kernel.
"""

from __future__ import annotations

import numpy as np

from vital_desktop.montecarlo.config import SimulationConfig, validate
from vital_desktop.montecarlo.geometry import Problem, build_problem
from vital_desktop.montecarlo.kernel_physics import ELECTRON_MASS_MEV, FEP_TOLERANCE_MEV, HC_MEV_ANGSTROM, NUDGE_CM
from vital_desktop.montecarlo.materials import D_LN_E, GRID_POINTS, LN_E_MIN

INF = 1.0e300


def _exit_distance(x, y, z, ux, uy, uz, r2, zlo, zhi):
    with np.errstate(divide="ignore", invalid="ignore"):
        tz = np.where(uz > 0, (zhi - z) / uz, np.where(uz < 0, (zlo - z) / uz, INF))
        a = ux * ux + uy * uy
        b = x * ux + y * uy
        c = x * x + y * y - r2
        sq = np.sqrt(np.maximum(b * b - a * c, 0.0))
        den = b + sq
        tr = np.where(b >= 0, np.where(den > 0, -c / den, 0.0), (-b + sq) / a)
        tr = np.where(a > 0, tr, INF)
    return np.maximum(np.minimum(tz, tr), 0.0)


def _entry_distance(x, y, z, ux, uy, uz, r2, zlo, zhi):
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (zlo - z) / uz
        t2 = (zhi - z) / uz
        flat = uz == 0
        in_slab = (z >= zlo) & (z <= zhi)
        tz0 = np.where(flat, np.where(in_slab, -INF, INF), np.minimum(t1, t2))
        tz1 = np.where(flat, np.where(in_slab, INF, -INF), np.maximum(t1, t2))
        a = ux * ux + uy * uy
        b = x * ux + y * uy
        c = x * x + y * y - r2
        disc = b * b - a * c
        sq = np.sqrt(np.maximum(disc, 0.0))
        q = np.where(b >= 0, -(b + sq), -(b - sq))
        r1 = q / a
        r2_ = c / q
        tr0 = np.where(a > 0, np.minimum(r1, r2_), np.where(c <= 0, -INF, INF))
        tr1 = np.where(a > 0, np.maximum(r1, r2_), np.where(c <= 0, INF, -INF))
        miss = (a > 0) & ((disc <= 0) | (q == 0))
        t0 = np.maximum(tz0, tr0)
        t1_ = np.minimum(tz1, tr1)
        out = np.where((t1_ <= t0) | (t1_ <= 0) | miss, INF, np.maximum(t0, 0.0))
    return out


def _azimuth(rng, n):
    cphi = np.empty(n)
    sphi = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        a = 2.0 * rng.random(todo.size) - 1.0
        b = 2.0 * rng.random(todo.size) - 1.0
        r2 = a * a + b * b
        ok = (r2 > 0) & (r2 <= 1)
        cphi[todo[ok]] = (a[ok] ** 2 - b[ok] ** 2) / r2[ok]
        sphi[todo[ok]] = 2 * a[ok] * b[ok] / r2[ok]
        todo = todo[~ok]
    return cphi, sphi


def _rotate(rng, ux, uy, uz, cost):
    sint = np.sqrt(np.maximum(0.0, 1.0 - cost * cost))
    cphi, sphi = _azimuth(rng, ux.size)
    polar = np.abs(uz) > 0.99999999
    tmp = np.sqrt(np.maximum(1.0 - uz * uz, 1e-300))
    nx = np.where(polar, sint * cphi, ux * cost + sint * (ux * uz * cphi - uy * sphi) / tmp)
    ny = np.where(polar, sint * sphi, uy * cost + sint * (uy * uz * cphi + ux * sphi) / tmp)
    nz = np.where(polar, np.where(uz > 0, cost, -cost), uz * cost - tmp * sint * cphi)
    norm = 1.0 / np.sqrt(nx * nx + ny * ny + nz * nz)
    return nx * norm, ny * norm, nz * norm


def _isotropic(rng, n):
    cost = 2.0 * rng.random(n) - 1.0
    sint = np.sqrt(np.maximum(0.0, 1.0 - cost * cost))
    cphi, sphi = _azimuth(rng, n)
    return sint * cphi, sint * sphi, cost


def _klein_nishina(rng, energy):
    k = energy / ELECTRON_MASS_MEV
    eps0 = 1.0 / (1.0 + 2.0 * k)
    eps0sq = eps0 * eps0
    alpha1 = -np.log(eps0)
    alpha2 = alpha1 + 0.5 * (1.0 - eps0sq)
    eps_out = np.empty(energy.size)
    cos_out = np.empty(energy.size)
    todo = np.arange(energy.size)
    while todo.size:
        n = todo.size
        first = alpha1[todo] > alpha2[todo] * rng.random(n)
        r2 = rng.random(n)
        eps = np.where(first, np.exp(-alpha1[todo] * r2), np.sqrt(eps0sq[todo] + (1 - eps0sq[todo]) * r2))
        onecost = (1.0 - eps) / (eps * k[todo])
        sint2 = onecost * (2.0 - onecost)
        accept = 1.0 - eps * sint2 / (1.0 + eps * eps) >= rng.random(n)
        eps_out[todo[accept]] = eps[accept]
        cos_out[todo[accept]] = 1.0 - onecost[accept]
        todo = todo[~accept]
    return eps_out, cos_out


def _coherent_cos(rng, energy, b):
    lam = HC_MEV_ANGSTROM / energy
    tmax = 16.0 * np.pi**2 / lam**2
    area = 1.0 - (1.0 + b * tmax) ** -3.0
    out = np.empty(energy.size)
    todo = np.arange(energy.size)
    while todo.size:
        n = todo.size
        t = ((1.0 - rng.random(n) * area[todo]) ** (-1.0 / 3.0) - 1.0) / b[todo]
        cost = np.maximum(1.0 - 2.0 * t / tmax[todo], -1.0)
        ok = 2.0 * rng.random(n) < 1.0 + cost * cost
        out[todo[ok]] = cost[ok]
        todo = todo[~ok]
    return out


def _interp(table, kk, f):
    return table[..., kk] + f * (table[..., kk + 1] - table[..., kk])


def _emit(p: Problem, rng, n):
    sp = p.source_params
    if p.source_kind == 0:
        x = np.full(n, sp[0])
        y = np.zeros(n)
        z = np.full(n, sp[1])
    else:
        x, y, z = np.empty(n), np.empty(n), np.empty(n)
        todo = np.arange(n)
        while todo.size:  # uniform in the disk or volume, rejecting a volume's hole (Marinelli well)
            k = todo.size
            rr = sp[2] * np.sqrt(rng.random(k))
            cphi, sphi = _azimuth(rng, k)
            x[todo], y[todo] = sp[0] + rr * cphi, rr * sphi
            z[todo] = np.full(k, sp[1]) if p.source_kind == 1 else sp[3] + (sp[4] - sp[3]) * rng.random(k)
            xs, ys, zs = x[todo], y[todo], z[todo]
            in_hole = (sp[5] > 0) & (zs >= sp[6]) & (zs <= sp[7]) & (xs * xs + ys * ys < sp[5])
            todo = todo[in_hole]
    w = np.ones(n)
    vr_on, p_out, det_r, det_zlo, sph_z, sph_r = p.cone_params
    if vr_on < 0.5:
        ux, uy, uz = _isotropic(rng, n)
        return x, y, z, ux, uy, uz, w
    rho = np.sqrt(x * x + y * y)
    front = z < det_zlo
    with np.errstate(divide="ignore", invalid="ignore"):
        tan = (rho + det_r) / (det_zlo - z)
        dz = sph_z - z
        dist = np.sqrt(x * x + y * y + dz * dz)
        cos_sphere = np.sqrt(np.maximum(1.0 - (sph_r / dist) ** 2, 0.0))
        cosmax = np.where(front, 1.0 / np.sqrt(1.0 + tan * tan), np.where(dist > sph_r, cos_sphere, -2.0))
        ax = np.where(front, 0.0, -x / dist)
        ay = np.where(front, 0.0, -y / dist)
        az = np.where(front, 1.0, dz / dist)
    cone = cosmax > -1.0
    inside = (1.0 - cosmax) * 0.5
    in_cone = rng.random(n) >= p_out
    r = rng.random(n)
    cost = np.where(in_cone, 1.0 - r * (1.0 - cosmax), -1.0 + r * (1.0 + cosmax))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(cone, np.where(in_cone, inside / (1.0 - p_out), (1.0 - inside) / p_out), 1.0)
    ux, uy, uz = _rotate(rng, ax, ay, az, cost)
    iso = _isotropic(rng, n)
    ux = np.where(cone, ux, iso[0])
    uy = np.where(cone, uy, iso[1])
    uz = np.where(cone, uz, iso[2])
    return x, y, z, ux, uy, uz, w


def simulate_reference(config: SimulationConfig, *, histories: int, seed: int, line: int = 0,
                       batch: int = 200_000) -> dict:
    """Full-energy-peak and total efficiency of one line, vectorised over photons (batches of `batch`)."""
    validate(config)
    p = build_problem(config)
    rng = np.random.default_rng(seed)
    e0 = float(p.energies_mev[line])
    sums = {"total": 0.0, "peak": 0.0, "total2": 0.0, "peak2": 0.0}
    done = 0
    while done < histories:
        n = min(batch, histories - done)
        tot, pk = _batch(p, rng, e0, n)
        sums["total"] += tot
        sums["peak"] += pk
        done += n
    return {"total_efficiency": sums["total"] / histories, "peak_efficiency": sums["peak"] / histories}


def _batch(p: Problem, rng, e0: float, n: int) -> tuple[float, float]:
    x, y, z, ux, uy, uz, w = _emit(p, rng, n)
    e = np.full(n, e0)
    reg = np.full(n, p.source_region, dtype=np.int64)
    hist = np.arange(n)
    tau = -np.log(1.0 - rng.random(n))
    e_crystal = np.zeros(n)
    k_on = p.k_on
    while hist.size:
        # nearest boundary
        dmin = _exit_distance(x - p.cyl_cx[reg], y, z, ux, uy, uz, p.cyl_r2[reg], p.cyl_zlo[reg], p.cyl_zhi[reg])
        target = p.cyl_parent[reg].copy()
        for c in range(int(p.cyl_nchildren.max())):
            ch = p.cyl_children[reg, c]
            has = ch >= 0
            chs = np.where(has, ch, 0)
            d = _entry_distance(x - p.cyl_cx[chs], y, z, ux, uy, uz, p.cyl_r2[chs], p.cyl_zlo[chs], p.cyl_zhi[chs])
            closer = has & (d < dmin)
            dmin = np.where(closer, d, dmin)
            target = np.where(closer, ch, target)
        m = p.cyl_mat[reg]
        u = (np.log(e) - LN_E_MIN) / D_LN_E
        kk = np.clip(u.astype(np.int64), 0, GRID_POINTS - 2)
        f = u - kk
        ms = np.where(m >= 0, m, 0)
        mut = np.where(m >= 0, p.mu[ms, 0, kk] + f * (p.mu[ms, 0, kk + 1] - p.mu[ms, 0, kk]), 0.0)
        with np.errstate(divide="ignore"):
            dist = np.where(m >= 0, tau / np.where(mut > 0, mut, 1.0), INF)
        cross = dist >= dmin
        step = np.where(cross, dmin + NUDGE_CM, dist)
        x = x + step * ux
        y = y + step * uy
        z = z + step * uz
        tau = np.where(cross, tau - mut * dmin, tau)
        leaving = cross & (target == p.cyl_parent[reg])
        reg = np.where(cross, target, reg)
        while True:  # a child that sticks out of its parent (Marinelli well): climb to a container
            rs_ = np.where(reg >= 0, reg, 0)
            xr = x - p.cyl_cx[rs_]
            outside = ((z < p.cyl_zlo[rs_]) | (z > p.cyl_zhi[rs_]) | (xr * xr + y * y > p.cyl_r2[rs_]))
            climb = leaving & (reg >= 0) & outside
            if not climb.any():
                break
            reg = np.where(climb, p.cyl_parent[rs_], reg)
        alive = ~(cross & (reg < 0))
        act = ~cross
        # interactions
        idx = np.flatnonzero(act)
        new_parts = []
        if idx.size:
            mi, ki, fi, ei, ri = ms[idx], kk[idx], f[idx], e[idx], reg[idx]
            r = rng.random(idx.size) * mut[idx]
            mpe = p.mu[mi, 1, ki] + fi * (p.mu[mi, 1, ki + 1] - p.mu[mi, 1, ki])
            mco = p.mu[mi, 2, ki] + fi * (p.mu[mi, 2, ki + 1] - p.mu[mi, 2, ki])
            mpp = p.mu[mi, 3, ki] + fi * (p.mu[mi, 3, ki + 1] - p.mu[mi, 3, ki])
            photo = r < mpe
            compton = ~photo & (r < mpe + mco)
            pair = ~photo & ~compton & (r < mpe + mco + mpp) & (ei > 2 * ELECTRON_MASS_MEV)
            coherent = ~photo & ~compton & ~pair & (p.coherent_b[mi] > 0) & (p.mu[mi, 4, ki] > 0)
            deposit = np.zeros(idx.size)
            # photoelectric (+ K X-ray)
            dep_photo = ei.copy()
            if k_on:
                p0 = np.where(ei > p.k_edge[mi, 0],
                              p.k_prob[mi, 0, ki] + fi * (p.k_prob[mi, 0, ki + 1] - p.k_prob[mi, 0, ki]), 0.0)
                p1 = np.where(ei > p.k_edge[mi, 1],
                              p.k_prob[mi, 1, ki] + fi * (p.k_prob[mi, 1, ki + 1] - p.k_prob[mi, 1, ki]), 0.0)
                rk = rng.random(idx.size)
                slot = np.where(rk < p0, 0, np.where(rk < p0 + p1, 1, -1))
                emit = photo & (slot >= 0)
                s_ = np.where(slot >= 0, slot, 0)
                ex = np.where(rng.random(idx.size) < p.k_beta_share[mi, s_], p.k_beta[mi, s_], p.k_alpha[mi, s_])
                emit &= ex >= p.cutoff_mev
                dep_photo = np.where(emit, ei - ex, ei)
                j = np.flatnonzero(emit)
                if j.size:
                    vx, vy, vz = _isotropic(rng, j.size)
                    new_parts.append((x[idx[j]], y[idx[j]], z[idx[j]], vx, vy, vz, ex[j], ri[j], hist[idx[j]]))
            deposit += np.where(photo, dep_photo, 0.0)
            # Compton
            j = np.flatnonzero(compton)
            if j.size:
                eps, cost = _klein_nishina(rng, ei[j])
                e_new = eps * ei[j]
                low = e_new < p.cutoff_mev
                deposit[j] += np.where(low, ei[j], ei[j] - e_new)
                g = idx[j]
                e[g] = np.where(low, 0.0, e_new)
                nx, ny, nz = _rotate(rng, ux[g], uy[g], uz[g], cost)
                ux[g], uy[g], uz[g] = nx, ny, nz
                alive[g[low]] = False
            # pair
            j = np.flatnonzero(pair)
            if j.size:
                deposit[j] += ei[j] - 2 * ELECTRON_MASS_MEV
                vx, vy, vz = _isotropic(rng, j.size)
                g = idx[j]
                for sign in (1.0, -1.0):
                    new_parts.append((x[g], y[g], z[g], sign * vx, sign * vy, sign * vz,
                                      np.full(j.size, ELECTRON_MASS_MEV), ri[j], hist[g]))
            # coherent
            j = np.flatnonzero(coherent)
            if j.size:
                cost = _coherent_cos(rng, ei[j], p.coherent_b[mi[j]])
                g = idx[j]
                nx, ny, nz = _rotate(rng, ux[g], uy[g], uz[g], cost)
                ux[g], uy[g], uz[g] = nx, ny, nz
            alive[idx[photo | pair]] = False
            in_crystal = ri == 0
            np.add.at(e_crystal, hist[idx[in_crystal]], deposit[in_crystal])
            tau[idx] = -np.log(1.0 - rng.random(idx.size))
        keep = np.flatnonzero(alive)
        arrays = [x[keep], y[keep], z[keep], ux[keep], uy[keep], uz[keep], e[keep], reg[keep], hist[keep]]
        for part in new_parts:
            for a_i, add in enumerate(part):
                arrays[a_i] = np.concatenate([arrays[a_i], add])
        n_new = sum(part[0].size for part in new_parts)
        x, y, z, ux, uy, uz, e, reg, hist = arrays
        reg = reg.astype(np.int64)
        hist = hist.astype(np.int64)
        tau = np.concatenate([tau[keep], -np.log(1.0 - rng.random(n_new))]) if n_new else tau[keep]
    detected = e_crystal > 0
    peak = e_crystal >= e0 - FEP_TOLERANCE_MEV
    return float(w[detected].sum()), float(w[peak].sum())
