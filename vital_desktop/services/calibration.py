"""CALIBRATION: Monte Carlo calibration runs, stored so each one can be reproduced and exported.

A run is (configuration, seed, histories) plus what came out: the results with their
uncertainties, the spectrum, the engine version and the time it took. The engine is a pure
function of the first three, so `config` + `seed` + `histories` in `mc_runs` reproduce the
numbers bit for bit with the same engine version. Bad input is refused before any work; a
cancelled run writes nothing; every stored run has its audit row in the same transaction.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import sqlalchemy as sa

from vital_desktop.core.changes import Changes
from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.core.ids import iso
from vital_desktop.core.progress import Progress
from vital_desktop.core.users import User
from vital_desktop.montecarlo import SimulationConfig, config_from_dict, run_simulation, validate
from vital_desktop.montecarlo import sweep as mc_sweep
from vital_desktop.montecarlo.characterize import FitResult, Measurement, fit_grid, grid_configs
from vital_desktop.montecarlo.config import (
    Backing,
    Detector,
    Line,
    Options,
    Source,
    detector_preset,
    validate_histories,
    validate_seed,
)
from vital_desktop.montecarlo.curves import EfficiencyCurve, curve_from_dict, fit_efficiency_curve
from vital_desktop.montecarlo.engine import ENGINE_VERSION, simulate
from vital_desktop.services.accounts import require
from vital_desktop.store import audit
from vital_desktop.store.db import Store
from vital_desktop.store.models import McDetectorPreset, McRun, McSourcePreset


@dataclass(frozen=True)
class RunInfo:
    """One stored run, as lists and overviews show it."""

    id: str
    name: str
    status: str
    detector: str
    source: str
    distance_cm: float
    nuclide: str | None
    energies_kev: list[float]
    seed: int
    histories: int
    engine_version: str
    duration_s: float | None
    created_by: str
    created_at: str | None
    summary: dict[str, Any]
    mode: str = "per_line"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RunDetail:
    info: RunInfo
    config: dict
    results: dict
    spectrum: dict | None

    def to_dict(self, *, include_spectrum: bool = False) -> dict:
        out = {**self.info.to_dict(), "config": self.config, "results": self.results}
        if include_spectrum:
            out["spectrum"] = self.spectrum
        return out


def _info(row: McRun) -> RunInfo:
    config = row.config or {}
    source = config.get("source", {})
    return RunInfo(
        id=row.id,
        name=row.name,
        status=row.status,
        detector=config.get("detector", {}).get("name", ""),
        source=source.get("kind", ""),
        distance_cm=float(source.get("distance_cm", 0.0)),
        nuclide=config.get("nuclide"),
        energies_kev=[float(x["energy_kev"]) for x in config.get("lines", [])],
        seed=int(row.seed),
        histories=int(row.histories),
        engine_version=row.engine_version,
        duration_s=row.duration_s,
        created_by=row.created_by,
        created_at=iso(row.created_at),
        summary=(row.results or {}).get("summary", {}),
        mode=config.get("mode", "per_line"),
    )


def _store_result(session, actor: User, result, *, name: str, extra_audit: dict | None = None,
                  extra_results: dict | None = None) -> McRun:
    row = McRun(
        name=name,
        status="complete",
        config=result.config.to_dict(),
        seed=result.seed,
        histories=result.histories,
        results={**result.to_dict(include_spectrum=False), **(extra_results or {})},
        spectrum=asdict(result.spectrum),
        engine_version=result.engine_version,
        duration_s=result.duration_s,
        created_by=actor.username,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "mc.run", row.id, {
        "name": name, "detector": result.config.detector.name, "nuclide": result.config.nuclide,
        "seed": result.seed, "histories": result.histories, "engine_version": result.engine_version,
        **(extra_audit or {}),
    })
    return row


def run_calibration(
    store: Store,
    *,
    actor: User,
    config: SimulationConfig,
    histories: float,
    seed: int,
    name: str = "",
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[RunInfo, Changes]:
    """Simulate `config` and store the run. Refuses bad input before starting; a cancel writes nothing."""
    require(actor, "run_calibration")
    validate(config)
    n_hist = validate_histories(histories, len(config.lines))
    seed = validate_seed(seed)
    result = run_simulation(config, histories=n_hist, seed=seed, workers=workers or os.cpu_count() or 1,
                            progress=progress)
    with store.session() as s:
        row = _store_result(s, actor, result, name=name or _default_name(config))
        info = _info(row)
    return info, Changes(mc_runs=True)


def run_sweep(
    store: Store,
    *,
    actor: User,
    configs: list[SimulationConfig],
    histories: float,
    seed: int,
    name: str = "",
    scheduler: str | None = None,
    processes: int = 2,
    progress: Progress | None = None,
) -> tuple[list[RunInfo], Changes]:
    """Run a parameter sweep (local processes, or Dask at `scheduler`) and store every point as a run."""
    require(actor, "run_calibration")
    if not configs:
        raise ValidationError("the sweep is empty")
    seed = validate_seed(seed)
    outputs = mc_sweep.run_sweep(configs, seed=seed, histories=histories, scheduler=scheduler,
                                 processes=processes, progress=progress)
    infos = []
    label = name or f"sweep of {len(configs)}"
    with store.session() as s:
        for i, out in enumerate(outputs):
            config = config_from_dict(out["config"])
            r = out["result"]
            row = McRun(
                name=f"{label} #{i + 1}",
                status="complete",
                config=out["config"],
                seed=seed,
                histories=int(r["histories"]),
                results=r,
                spectrum={},
                engine_version=r["engine_version"],
                duration_s=r["duration_s"],
                created_by=actor.username,
            )
            s.add(row)
            s.flush()
            audit.record(s, actor, "mc.run", row.id, {
                "name": row.name, "detector": config.detector.name, "nuclide": config.nuclide, "seed": seed,
                "histories": row.histories, "engine_version": row.engine_version,
                "sweep": label, "scheduler": scheduler or "local",
            })
            infos.append(_info(row))
    return infos, Changes(mc_runs=True)


def run_efficiency_curve(
    store: Store,
    *,
    actor: User,
    config: SimulationConfig,
    histories: float,
    seed: int,
    order: int | None = None,
    name: str = "",
    workers: int | None = None,
    progress: Progress | None = None,
) -> tuple[RunInfo, EfficiencyCurve, Changes]:
    """Simulate `config`'s energies (one photon per history) and fit the full-energy-peak curve.

    The run is stored like any other, with the fitted curve (coefficients, covariance, residuals)
    and the total-efficiency curve beside the per-line results. The fit is checked before the
    run is stored, so a curve that cannot be fitted stores nothing.
    """
    require(actor, "run_calibration")
    if config.mode != "per_line":
        raise ValidationError("an efficiency curve is fitted to single-photon efficiencies: use energies, not a "
                              "whole-decay nuclide")
    validate(config)
    if len(config.lines) < 3:
        raise ValidationError("an efficiency curve needs at least 3 energies")
    if order is not None and (order < 1 or order > min(6, len(config.lines) - 1)):
        raise ValidationError(f"order must be from 1 to {min(6, len(config.lines) - 1)} for {len(config.lines)} "
                              f"energies, got {order}")
    n_hist = validate_histories(histories, len(config.lines))
    seed = validate_seed(seed)
    result = simulate(config, histories=n_hist, seed=seed, workers=workers or os.cpu_count() or 1, progress=progress)
    energies = [line.energy_kev for line in result.lines]
    peak = fit_efficiency_curve(energies, [x.peak_efficiency.value for x in result.lines],
                                [x.peak_efficiency.sigma for x in result.lines], order=order)
    total = fit_efficiency_curve(energies, [x.total_efficiency.value for x in result.lines],
                                 [x.total_efficiency.sigma for x in result.lines], order=peak.order)
    with store.session() as s:
        row = _store_result(s, actor, result, name=name or f"curve {_default_name(config)}",
                            extra_audit={"curve_order": peak.order, "curve_order_choice": peak.order_choice},
                            extra_results={"curve": peak.to_dict(), "total_curve": total.to_dict()})
        info = _info(row)
    return info, peak, Changes(mc_runs=True)


def stored_curve(detail: RunDetail, kind: str = "peak") -> EfficiencyCurve:
    """The fitted curve of a stored curve run ("peak" or "total")."""
    data = detail.results.get("curve" if kind == "peak" else "total_curve")
    if not data:
        raise NotFoundError(f"run {detail.info.id[:8]} has no fitted efficiency curve")
    return curve_from_dict(data)


def site_presets(store: Store) -> dict[str, dict]:
    """Detector presets fitted at this site: name -> {detector, provenance, created_by, created_at}."""
    with store.read() as s:
        rows = s.scalars(sa.select(McDetectorPreset).order_by(McDetectorPreset.name)).all()
        return {r.name: {"detector": r.detector, "provenance": r.provenance, "created_by": r.created_by,
                         "created_at": iso(r.created_at)} for r in rows}


def resolve_detector(store: Store, name: str) -> Detector:
    """A shipped preset, or else a preset fitted at this site."""
    from vital_desktop.montecarlo.config import detector_from_dict, detector_presets

    if name in detector_presets():
        return detector_preset(name)
    site = site_presets(store)
    if name in site:
        return detector_from_dict(site[name]["detector"])
    known = sorted(detector_presets()) + sorted(site)
    raise NotFoundError(f"unknown detector preset {name!r}; presets: {', '.join(known)}")


def site_source_presets(store: Store) -> dict[str, dict]:
    """Source containers defined at this site: name -> {source, provenance, created_by, created_at}."""
    with store.read() as s:
        rows = s.scalars(sa.select(McSourcePreset).order_by(McSourcePreset.name)).all()
        return {r.name: {"source": r.source, "provenance": r.provenance, "created_by": r.created_by,
                         "created_at": iso(r.created_at)} for r in rows}


def resolve_source(store: Store, name: str, **overrides: Any) -> Source:
    """A shipped source preset, or else one defined at this site, with any field overridden."""
    from vital_desktop.montecarlo.config import source_preset, source_presets

    if name in source_presets():
        return source_preset(name, **overrides)
    site = site_source_presets(store)
    if name not in site:
        known = sorted(source_presets()) + sorted(site)
        raise NotFoundError(f"unknown source preset {name!r}; presets: {', '.join(known)}")
    fields = dict(site[name]["source"])
    backing = fields.pop("backing", None)
    fields.update({k: v for k, v in overrides.items() if v is not None})
    if backing and "backing" not in overrides:
        fields["backing"] = Backing(**backing)
    try:
        return Source(**fields)
    except TypeError as exc:
        raise ValidationError(f"site source preset {name!r} is not a valid source: {exc}") from None


def save_source_preset(store: Store, *, actor: User, name: str, source: Source, note: str = "") -> Changes:
    """Store a source container under `name` for this site (validated first; nothing written if bad)."""
    from vital_desktop.montecarlo.config import source_presets

    require(actor, "run_calibration")
    name = name.strip()
    if not name:
        raise ValidationError("a source preset needs a name")
    if name in source_presets():
        raise ValidationError(f"source preset name {name!r} is a shipped preset; choose another name")
    if name in site_source_presets(store):
        raise ValidationError(f"a site source preset named {name!r} exists already; choose another name")
    # the source's own geometry is checked against the smallest detector (a Marinelli well must
    # still fit the detector it is used with: that is checked again with every run)
    probe = Detector(name="probe", material="nai", radius_cm=0.01, height_cm=0.01)
    validate(SimulationConfig(detector=probe, source=source, lines=(Line(661.657),)))
    provenance = {"note": note, "engine_version": ENGINE_VERSION,
                  "contents_volume_cm3": source.contents_volume_cm3}
    with store.session() as s:
        row = McSourcePreset(name=name, source=asdict(source), provenance=provenance, created_by=actor.username)
        s.add(row)
        s.flush()
        audit.record(s, actor, "mc.source_preset", row.id, {"name": name, "kind": source.kind})
    return Changes(mc_runs=True)


def characterize_detector(
    store: Store,
    *,
    actor: User,
    detector: Detector,
    source: Source,
    measurements: list[Measurement],
    grids: dict[str, list[float]],
    histories: float,
    seed: int,
    options: Options | None = None,
    save_as: str = "",
    scheduler: str | None = None,
    processes: int = 2,
    progress: Progress | None = None,
) -> tuple[FitResult, Changes]:
    """Fit detector parameters to measured peak efficiencies by Monte Carlo over a grid.

    Every grid point is validated before any work; the sweep runs on local processes or Dask.
    With `save_as`, the fitted detector is stored as a site preset with its provenance (the
    measurements, the grid with chi2 at every point, the fit, seed, histories, engine version).
    """
    from vital_desktop.montecarlo.config import detector_presets

    require(actor, "run_calibration")
    seed = validate_seed(seed)
    name = save_as.strip()
    if name:
        if name in detector_presets():
            raise ValidationError(f"preset name {name!r} is a shipped preset; choose another name")
        if name in site_presets(store):
            raise ValidationError(f"a site preset named {name!r} exists already; choose another name")
    points, configs = grid_configs(detector, source, measurements, grids, options)
    validate_histories(histories, len(measurements))
    outputs = mc_sweep.run_sweep(configs, seed=seed, histories=histories, scheduler=scheduler, processes=processes,
                                 progress=progress)
    fit = fit_grid(detector, list(grids), points, outputs, measurements)
    if not name:
        return fit, Changes()
    fitted = replace(fit.detector, name=name, relative_efficiency=None)
    provenance = {
        "method": "Monte Carlo grid fit of peak efficiencies (chi2, quadratic surface)",
        "base_detector": asdict(detector), "source": asdict(source),
        "measurements": [asdict(m) for m in measurements], "fit": fit.to_dict(), "seed": seed,
        "histories": int(float(histories)), "engine_version": ENGINE_VERSION, "scheduler": scheduler or "local",
    }
    with store.session() as s:
        row = McDetectorPreset(name=name, detector=asdict(fitted), provenance=provenance, created_by=actor.username)
        s.add(row)
        s.flush()
        audit.record(s, actor, "mc.preset", row.id, {"name": name, "best": fit.best, "sigma": fit.sigma,
                                                     "chi2_min": fit.chi2_min, "dof": fit.dof})
    return replace(fit, detector=fitted), Changes(mc_runs=True)


def _default_name(config: SimulationConfig) -> str:
    what = config.nuclide or "+".join(f"{line.energy_kev:g}keV" for line in config.lines)
    return f"{config.detector.name} {config.source.kind} {config.source.distance_cm:g} cm {what}"


def list_runs(store: Store, *, limit: int = 100) -> list[RunInfo]:
    with store.read() as s:
        rows = s.scalars(sa.select(McRun).order_by(McRun.created_at.desc()).limit(limit)).all()
        return [_info(r) for r in rows]


def get_run(store: Store, run_id: str) -> RunDetail:
    """A run by id (or by a unique id prefix of at least 6 characters)."""
    with store.read() as s:
        row = s.get(McRun, run_id)
        if row is None and len(run_id) >= 6:
            matches = s.scalars(sa.select(McRun).where(McRun.id.like(f"{run_id}%"))).all()
            if len(matches) == 1:
                row = matches[0]
        if row is None:
            raise NotFoundError(f"no Monte Carlo run with id {run_id!r}")
        return RunDetail(info=_info(row), config=row.config, results=row.results, spectrum=row.spectrum or None)


def reproduce(store: Store, run_id: str, *, workers: int = 1, progress: Progress | None = None) -> bool:
    """Re-run a stored run from its configuration and seed; True if the results are identical."""
    detail = get_run(store, run_id)
    if detail.info.engine_version != ENGINE_VERSION:
        raise ValidationError(
            f"run {run_id} was made by {detail.info.engine_version}; this is {ENGINE_VERSION}, "
            "so bit-identical reproduction is not promised")
    result = run_simulation(config_from_dict(detail.config), histories=detail.info.histories, seed=detail.info.seed,
                            workers=workers, progress=progress)
    fresh = result.to_dict()
    return all(fresh.get(key) == detail.results.get(key) for key in ("lines", "whole_decay"))


def insight_input(detail: RunDetail, *, energy_kev: float | None = None, measured_efficiency: float | None = None,
                  **bench: Any) -> dict:
    """A calibration-insight template's input for one line of a run: the simulated values, the
    measured efficiency, and any other bench values (a serial number...) under the names given."""
    lines = detail.results["lines"]
    if energy_kev is None:
        line = max(lines, key=lambda x: x["probability"])
    else:
        line = min(lines, key=lambda x: abs(x["energy_kev"] - energy_kev))
    return {
        "detector_material": detail.config["detector"]["material"],
        "nuclide": detail.info.nuclide or f"{line['energy_kev']:g} keV",
        "energy_kev": line["energy_kev"],
        "simulated_efficiency": line["peak_efficiency"]["value"],
        "simulated_uncertainty": line["peak_efficiency"]["sigma"],
        "histories": detail.info.histories,
        "measured_efficiency": measured_efficiency,
        **bench,
    }
