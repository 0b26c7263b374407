"""Characterization: fit unknown detector-model parameters to measured peak efficiencies.

The parameters (`PARAMETERS`, a registry: front dead-layer thickness, crystal-to-end-cap
distance, crystal length) are varied over a grid; every grid point is one sweep task (the same
pure `sweep.run_task`, so it runs on local processes or a Dask cluster), simulating the measured
energies in the measurement geometry. For each point chi2 = sum ((eps_meas - eps_MC) / sigma)^2
with sigma^2 = sigma_meas^2 + sigma_MC^2, recorded for the provenance; the best fit and its
covariance come from the surrogate; the goodness of fit is chi2_min against n_energies - n_parameters
degrees of freedom (p-value from the chi-square distribution). The fit itself is made on a
smooth surrogate of the grid (see `fit_grid`), so it lands between grid points.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from vital_desktop.core.errors import ValidationError
from vital_desktop.montecarlo.config import Detector, Line, Options, SimulationConfig, Source, validate


def _layer_index(detector: Detector, names: tuple[str, ...], what: str) -> int:
    for i, layer in enumerate(detector.housing):
        if layer.name.lower() in names or (not layer.name and layer.material in names):
            return i
    raise ValidationError(f"{what}: detector {detector.name!r} has no housing layer named {' or '.join(names)}")


def _set_dead_layer(detector: Detector, value: float) -> Detector:
    i = _layer_index(detector, ("dead layer",), "dead_layer_cm")
    housing = list(detector.housing)
    housing[i] = replace(housing[i], front_cm=value)
    return replace(detector, housing=tuple(housing))


def _set_gap(detector: Detector, value: float) -> Detector:
    i = _layer_index(detector, ("vacuum gap", "end-cap gap", "gap"), "endcap_gap_cm")
    housing = list(detector.housing)
    housing[i] = replace(housing[i], front_cm=value)
    return replace(detector, housing=tuple(housing))


def _set_length(detector: Detector, value: float) -> Detector:
    if detector.core_hole_depth_cm > 0:  # the hole keeps its distance to the front face
        return replace(detector, height_cm=value, core_hole_depth_cm=detector.core_hole_depth_cm + value
                       - detector.height_cm)
    return replace(detector, height_cm=value)


#: name -> (how to set it on a detector, unit, what it is)
PARAMETERS: dict[str, tuple[Callable[[Detector, float], Detector], str, str]] = {
    "dead_layer_cm": (_set_dead_layer, "cm", "front dead-layer thickness"),
    "endcap_gap_cm": (_set_gap, "cm", "crystal-to-end-cap distance (front vacuum gap)"),
    "crystal_length_cm": (_set_length, "cm", "crystal length (the core hole keeps its distance to the front)"),
}


@dataclass(frozen=True)
class Measurement:
    energy_kev: float
    efficiency: float
    sigma: float


@dataclass(frozen=True)
class FitResult:
    parameters: list[str]
    best: dict[str, float]
    sigma: dict[str, float]
    covariance: list[list[float]]
    chi2_min: float
    dof: int
    p_value: float
    grid: list[dict]  # every grid point with its chi2
    detector: Detector
    at_grid_edge: list[str]

    def to_dict(self) -> dict:
        return {"parameters": self.parameters, "best": self.best, "sigma": self.sigma,
                "covariance": self.covariance, "chi2_min": self.chi2_min, "dof": self.dof, "p_value": self.p_value,
                "at_grid_edge": self.at_grid_edge, "grid": self.grid}


def read_measurements(text: str) -> list[Measurement]:
    """CSV with columns energy_kev, efficiency and sigma (or relative_sigma); refuses bad rows by line."""
    reader = csv.DictReader(io.StringIO(text))
    fields = {f.strip().lower() for f in (reader.fieldnames or [])}
    if not {"energy_kev", "efficiency"} <= fields or not ({"sigma", "relative_sigma"} & fields):
        raise ValidationError("measured efficiencies CSV needs columns energy_kev, efficiency and sigma "
                              "(or relative_sigma)")
    out = []
    for n, row in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        try:
            e, y = float(row["energy_kev"]), float(row["efficiency"])
            s = float(row["sigma"]) if row.get("sigma") else float(row["relative_sigma"]) * y
        except (ValueError, KeyError):
            raise ValidationError(f"measured efficiencies CSV line {n}: energy_kev, efficiency and sigma must be "
                                  "numbers") from None
        if not all(math.isfinite(v) and v > 0 for v in (e, y, s)):
            raise ValidationError(f"measured efficiencies CSV line {n}: values must be positive and finite")
        out.append(Measurement(e, y, s))
    if len(out) < 2:
        raise ValidationError("give at least two measured efficiencies")
    return out


def parse_grid(spec: str) -> tuple[str, list[float]]:
    """'name=low:high:points' -> (name, values); the name must be a known parameter."""
    try:
        name, rng = spec.split("=", 1)
        low, high, points = rng.split(":")
        low_v, high_v, n = float(low), float(high), int(points)
    except ValueError:
        raise ValidationError(f"a fit parameter is NAME=LOW:HIGH:POINTS, got {spec!r}") from None
    name = name.strip()
    if name not in PARAMETERS:
        raise ValidationError(f"unknown fit parameter {name!r}; choose {', '.join(PARAMETERS)}")
    if not (math.isfinite(low_v) and math.isfinite(high_v)) or low_v < 0 or high_v <= low_v or n < 3:
        raise ValidationError(f"{name}: the grid needs 0 <= LOW < HIGH and at least 3 points")
    return name, [float(x) for x in np.linspace(low_v, high_v, n)]


def grid_configs(detector: Detector, source: Source, measurements: list[Measurement],
                 grids: dict[str, list[float]], options: Options | None = None) -> tuple[list[dict], list[SimulationConfig]]:
    """Every grid point as a validated configuration (bad points are refused before any work)."""
    if not grids:
        raise ValidationError("give at least one parameter to fit")
    names = list(grids)
    if len(measurements) <= len(names):
        raise ValidationError(f"{len(names)} parameter(s) need more than {len(names)} measured efficiencies")
    lines = tuple(Line(m.energy_kev, 1.0) for m in measurements)
    points, configs = [], []
    for values in itertools.product(*(grids[n] for n in names)):
        det = detector
        for name, value in zip(names, values, strict=True):
            det = PARAMETERS[name][0](det, value)
        config = SimulationConfig(detector=det, source=source, lines=lines, options=options or Options())
        try:
            validate(config)
        except ValidationError as exc:
            raise ValidationError(f"grid point {dict(zip(names, values, strict=True))}: {exc.message}") from None
        points.append(dict(zip(names, values, strict=True)))
        configs.append(config)
    return points, configs


def _quadratic_terms(z: np.ndarray) -> np.ndarray:
    """1, z_i, z_i^2, z_i z_j columns of a full quadratic in the scaled parameters."""
    k = z.shape[1]
    cols = [np.ones(z.shape[0])] + [z[:, i] for i in range(k)] + [z[:, i] ** 2 for i in range(k)]
    cols += [z[:, i] * z[:, j] for i, j in itertools.combinations(range(k), 2)]
    return np.column_stack(cols)


def fit_grid(detector: Detector, names: list[str], points: list[dict], outputs: list[dict],
             measurements: list[Measurement]) -> FitResult:
    """Best fit from the sweep outputs.

    Per energy, ln eps_MC is fitted over the grid by a full quadratic in the parameters (weights
    from the Monte Carlo uncertainties; ln eps is nearly linear in a dead layer, smooth in the
    distances); chi2(theta) = sum ((eps_meas - eps(theta)) / sigma)^2, sigma^2 = sigma_meas^2 +
    sigma_MC^2, is minimised on that surrogate within the grid (bounded least squares); the
    covariance is (J^T J)^-1 of the residuals at the minimum.
    """
    from scipy.optimize import least_squares
    from scipy.stats import chi2 as chi2_dist

    meas = np.array([m.efficiency for m in measurements])
    meas_s = np.array([m.sigma for m in measurements])
    eps = np.array([[x["peak_efficiency"]["value"] for x in out["result"]["lines"]] for out in outputs])
    eps_s = np.array([[x["peak_efficiency"]["sigma"] for x in out["result"]["lines"]] for out in outputs])
    if np.any(eps <= 0):
        raise ValidationError("a grid point gave no full-energy-peak counts at some energy: use more histories")
    x = np.array([[p[n] for n in names] for p in points])
    k = len(names)
    lo, hi = x.min(axis=0), x.max(axis=0)
    span = hi - lo
    z = (x - lo) / span
    design = _quadratic_terms(z)
    coefs = []
    for i in range(meas.size):
        w = eps[:, i] / eps_s[:, i]  # 1 / sigma of ln eps
        coef, *_ = np.linalg.lstsq(design * w[:, None], np.log(eps[:, i]) * w, rcond=None)
        coefs.append(coef)
    coefs_a = np.array(coefs)  # (energies, terms)
    mc_rel = np.median(eps_s / eps, axis=0)

    def model(zz: np.ndarray) -> np.ndarray:
        return np.exp(coefs_a @ _quadratic_terms(zz[None, :])[0])

    def residuals(zz: np.ndarray) -> np.ndarray:
        m = model(zz)
        return (meas - m) / np.sqrt(meas_s**2 + (mc_rel * m) ** 2)

    chi2_grid = [float((((meas - eps[j]) ** 2) / (meas_s**2 + eps_s[j] ** 2)).sum()) for j in range(len(points))]
    start = z[int(np.argmin(chi2_grid))]
    sol = least_squares(residuals, start, bounds=(np.zeros(k), np.ones(k)), x_scale=np.ones(k))
    jac = sol.jac
    try:
        cov_z = np.linalg.inv(jac.T @ jac)
    except np.linalg.LinAlgError:
        raise ValidationError("the measured efficiencies do not constrain these parameters (singular fit): "
                              "add energies or fit fewer parameters") from None
    edge = [n for i, n in enumerate(names) if sol.x[i] <= 1e-6 or sol.x[i] >= 1 - 1e-6]
    best = lo + sol.x * span
    cov = cov_z * np.outer(span, span)
    fitted = detector
    for name, value in zip(names, best, strict=True):
        fitted = PARAMETERS[name][0](fitted, float(value))
    chi2_min = float((sol.fun**2).sum())
    dof = len(measurements) - k
    return FitResult(
        parameters=names, best={n: float(v) for n, v in zip(names, best, strict=True)},
        sigma={n: float(math.sqrt(max(cov[i, i], 0.0))) for i, n in enumerate(names)},
        covariance=cov.tolist(), chi2_min=chi2_min, dof=dof,
        p_value=float(chi2_dist.sf(chi2_min, dof)) if dof > 0 else float("nan"),
        grid=[{**p, "chi2": v} for p, v in zip(points, chi2_grid, strict=True)], detector=fitted,
        at_grid_edge=edge)


def measurement_csv(measurements: list[Measurement]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["energy_kev", "efficiency", "sigma"])
    for m in measurements:
        writer.writerow([f"{m.energy_kev:g}", f"{m.efficiency:.8g}", f"{m.sigma:.4g}"])
    return out.getvalue()


__all__ = ["PARAMETERS", "FitResult", "Measurement", "fit_grid", "grid_configs", "measurement_csv",
           "parse_grid", "read_measurements"]
