"""Efficiency curves: a log-log polynomial fitted to efficiencies at several energies.

ln eps(E) = sum_k a_k x^k with x = ln(E / 1 MeV), fitted by weighted least squares with weights
1/sigma_ln^2 (sigma_ln = sigma_eps / eps, the Monte Carlo statistical uncertainties). The
covariance is (A^T W A)^-1, scaled by the reduced chi-square when that exceeds 1 (the points
scatter more than their uncertainties say, so the curve shape is the larger error). The order is
the user's, or chosen by leave-one-out cross-validation (the order whose fit to all other points
predicts each left-out point best, in units of its sigma). Interpolation gives the efficiency
with its uncertainty from the covariance; extrapolation beyond the fitted energies is refused.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass

import numpy as np

from vital_desktop.core.errors import ValidationError

REFERENCE_ENERGY_KEV = 1000.0
MAX_ORDER = 6


@dataclass(frozen=True)
class EfficiencyCurve:
    order: int
    coefficients: list[float]
    covariance: list[list[float]]
    energies_kev: list[float]
    efficiencies: list[float]
    sigmas: list[float]
    fitted: list[float]
    residuals: list[float]  # (eps - fit) / sigma
    chi2: float
    dof: int
    order_choice: str  # "user" or "cross-validation"
    cv_scores: dict[int, float]

    def _design(self, energies_kev: np.ndarray) -> np.ndarray:
        x = np.log(np.asarray(energies_kev, dtype=float) / REFERENCE_ENERGY_KEV)
        return np.vander(x, self.order + 1, increasing=True)

    def evaluate(self, energies_kev) -> tuple[np.ndarray, np.ndarray]:
        """(efficiency, 1-sigma) at each energy; refuses energies outside the fitted range."""
        e = np.atleast_1d(np.asarray(energies_kev, dtype=float))
        lo, hi = min(self.energies_kev), max(self.energies_kev)
        bad = e[(e < lo * (1 - 1e-9)) | (e > hi * (1 + 1e-9)) | ~np.isfinite(e)]
        if bad.size:
            raise ValidationError(f"energy {bad[0]:g} keV is outside the fitted range {lo:g}-{hi:g} keV "
                                  "(the curve does not extrapolate)")
        a = self._design(e)
        coef = np.asarray(self.coefficients)
        cov = np.asarray(self.covariance)
        ln = a @ coef
        var = np.einsum("ij,jk,ik->i", a, cov, a)
        eps = np.exp(ln)
        return eps, eps * np.sqrt(np.maximum(var, 0.0))

    def to_dict(self) -> dict:
        return {
            "model": "ln(eps) = sum_k a_k ln(E / 1000 keV)^k", "order": self.order, "order_choice": self.order_choice,
            "coefficients": self.coefficients, "covariance": self.covariance, "chi2": self.chi2, "dof": self.dof,
            "cv_scores": {str(k): v for k, v in self.cv_scores.items()},
            "points": [{"energy_kev": e, "efficiency": y, "sigma": s, "fitted": f, "residual": r}
                       for e, y, s, f, r in zip(self.energies_kev, self.efficiencies, self.sigmas, self.fitted,
                                                self.residuals, strict=False)],
        }

    def to_csv(self, grid_points: int = 50) -> str:
        """Points with fit and residual, then the curve with its band on a log grid (one CSV)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["kind", "energy_kev", "efficiency", "sigma", "fitted", "residual_sigmas"])
        for e, y, s, f, r in zip(self.energies_kev, self.efficiencies, self.sigmas, self.fitted, self.residuals, strict=False):
            writer.writerow(["point", f"{e:.6g}", f"{y:.8g}", f"{s:.4g}", f"{f:.8g}", f"{r:.4f}"])
        grid = np.geomspace(min(self.energies_kev), max(self.energies_kev), grid_points)
        eps, sig = self.evaluate(grid)
        for e, y, s in zip(grid, eps, sig, strict=False):
            writer.writerow(["curve", f"{e:.6g}", f"{y:.8g}", f"{s:.4g}", "", ""])
        return out.getvalue()


def curve_from_dict(data: dict) -> EfficiencyCurve:
    points = data["points"]
    return EfficiencyCurve(
        order=int(data["order"]), coefficients=list(data["coefficients"]), covariance=list(data["covariance"]),
        energies_kev=[p["energy_kev"] for p in points], efficiencies=[p["efficiency"] for p in points],
        sigmas=[p["sigma"] for p in points], fitted=[p["fitted"] for p in points],
        residuals=[p["residual"] for p in points], chi2=float(data["chi2"]), dof=int(data["dof"]),
        order_choice=str(data.get("order_choice", "user")),
        cv_scores={int(k): float(v) for k, v in data.get("cv_scores", {}).items()})


def _solve(x: np.ndarray, y: np.ndarray, w: np.ndarray, order: int) -> tuple[np.ndarray, np.ndarray]:
    a = np.vander(x, order + 1, increasing=True)
    normal = a.T @ (w[:, None] * a)
    cov = np.linalg.inv(normal)
    return cov @ (a.T @ (w * y)), cov


def _cv_score(x: np.ndarray, y: np.ndarray, w: np.ndarray, order: int) -> float:
    score = 0.0
    for i in range(x.size):
        keep = np.arange(x.size) != i
        coef, _ = _solve(x[keep], y[keep], w[keep], order)
        pred = np.polyval(coef[::-1], x[i])
        score += (y[i] - pred) ** 2 * w[i]
    return score / x.size


def fit_efficiency_curve(energies_kev, efficiencies, sigmas, *, order: int | None = None) -> EfficiencyCurve:
    """Fit the log-log polynomial; `order=None` picks it by leave-one-out cross-validation."""
    e = np.asarray(energies_kev, dtype=float)
    y_lin = np.asarray(efficiencies, dtype=float)
    s = np.asarray(sigmas, dtype=float)
    if not (e.size == y_lin.size == s.size):
        raise ValidationError("energies, efficiencies and uncertainties must have the same length")
    if e.size < 3:
        raise ValidationError("an efficiency curve needs at least 3 energies")
    for name, values in (("energy", e), ("efficiency", y_lin), ("uncertainty", s)):
        if not np.all(np.isfinite(values)) or np.any(values <= 0):
            raise ValidationError(f"every {name} must be a positive finite number")
    if np.unique(e).size != e.size:
        raise ValidationError("energies must be distinct")
    idx = np.argsort(e)
    e, y_lin, s = e[idx], y_lin[idx], s[idx]
    x = np.log(e / REFERENCE_ENERGY_KEV)
    y = np.log(y_lin)
    w = (y_lin / s) ** 2
    top = min(MAX_ORDER, e.size - 2)
    cv: dict[int, float] = {}
    if order is None:
        if e.size < 4:
            raise ValidationError("choosing the order by cross-validation needs at least 4 energies")
        cv = {k: _cv_score(x, y, w, k) for k in range(1, min(top, e.size - 2) + 1)}
        order = min(cv, key=lambda k: cv[k])
        choice = "cross-validation"
    else:
        if not isinstance(order, int) or order < 1 or order > min(MAX_ORDER, e.size - 1):
            raise ValidationError(f"order must be a whole number from 1 to {min(MAX_ORDER, e.size - 1)} "
                                  f"for {e.size} energies, got {order!r}")
        choice = "user"
    coef, cov = _solve(x, y, w, order)
    fit_ln = np.polyval(coef[::-1], x)
    chi2 = float(((y - fit_ln) ** 2 * w).sum())
    dof = int(e.size - order - 1)
    if dof > 0 and chi2 / dof > 1.0:
        cov = cov * (chi2 / dof)
    fitted = np.exp(fit_ln)
    return EfficiencyCurve(
        order=order, coefficients=coef.tolist(), covariance=cov.tolist(), energies_kev=e.tolist(),
        efficiencies=y_lin.tolist(), sigmas=s.tolist(), fitted=fitted.tolist(),
        residuals=((y_lin - fitted) / s).tolist(), chi2=chi2, dof=dof, order_choice=choice, cv_scores=cv)


def log_energies(low_kev: float, high_kev: float, count: int) -> list[float]:
    """`count` energies spaced evenly in ln E (the usual sweep for a curve)."""
    if not (math.isfinite(low_kev) and math.isfinite(high_kev)) or low_kev <= 0 or high_kev <= low_kev:
        raise ValidationError("the energy range must be two positive numbers, low < high")
    if count < 3:
        raise ValidationError("a curve needs at least 3 energies")
    return [float(x) for x in np.geomspace(low_kev, high_kev, int(count))]
