"""`vital mc run|sweep|list|show|presets`: Monte Carlo calibrations from the command line."""

from __future__ import annotations

import argparse
from dataclasses import replace

from vital_desktop.cli_commands import CliContext


def _add_geometry(p: argparse.ArgumentParser, *, sweep: bool = False) -> None:
    g = p.add_argument_group("detector (a preset, optionally with custom dimensions)")
    if not sweep:
        g.add_argument("--detector", default=None, help="preset name (see `vital mc presets`), default nai-3x3")
    g.add_argument("--crystal-material", default=None, help="nai, csi, ge, labr3, bgo, pvt (custom detector)")
    g.add_argument("--crystal-radius-cm", type=float, default=None)
    g.add_argument("--crystal-height-cm", type=float, default=None)
    g.add_argument("--no-housing", action="store_true", help="drop the preset's housing layers")
    s = p.add_argument_group("source")
    s.add_argument("--source", choices=["point", "disk", "volume", "marinelli"], default=None,
                   help="source kind (default point, or the preset's)")
    s.add_argument("--source-preset", default=None,
                   help="a shipped source container (marinelli-1l, marinelli-0.5l; see `vital mc presets`); "
                        "the options below override its fields")
    if not sweep:
        s.add_argument("--distance-cm", type=float, default=None,
                       help="from the detector's front face (end cap) to the source plane / container bottom / "
                            "Marinelli well bottom (default 10, or the preset's)")
    s.add_argument("--offset-cm", type=float, default=None,
                   help="point, disk or volume source: distance of the source (axis) off the detector axis")
    s.add_argument("--absorber", action="append", default=None, metavar="MATERIAL:THICKNESS[:RADIUS[:GAP]]",
                   help="a filter disk between source and detector (cm; GAP from the detector face; repeatable)")
    s.add_argument("--shield", default=None, metavar="MATERIAL:WALL[:INNER_RADIUS]",
                   help="a closed cylindrical shield around source and detector (cm)")
    s.add_argument("--backing", default=None, metavar="MATERIAL:THICKNESS[:RADIUS]",
                   help="a plate right behind a point or disk source (cm; radius default 10)")
    s.add_argument("--source-radius-cm", type=float, default=None,
                   help="disk radius / container or Marinelli inner radius")
    s.add_argument("--source-height-cm", type=float, default=None, help="volume fill height / Marinelli inner height")
    s.add_argument("--well-radius-cm", type=float, default=None, help="Marinelli: inner radius of the well")
    s.add_argument("--well-depth-cm", type=float, default=None, help="Marinelli: inner depth of the well")
    s.add_argument("--source-material", default=None, help="volume or Marinelli contents (default water)")
    s.add_argument("--source-density", type=float, default=None, help="contents density g/cm3 (default nominal)")
    s.add_argument("--wall-cm", type=float, default=None, help="container / beaker wall thickness")
    s.add_argument("--wall-material", default=None, help="container / beaker wall material (default pvt)")
    o = p.add_argument_group("physics and run")
    o.add_argument("--histories", default="1e6", help="number of photon histories (1e7 is fine)")
    o.add_argument("--seed", default="1", help="random seed (same seed, same result)")
    o.add_argument("--vacuum", action="store_true", help="no air between source and detector")
    o.add_argument("--no-coherent", action="store_true", help="switch off coherent (Rayleigh) scattering")
    o.add_argument("--no-k-escape", action="store_true", help="switch off K X-ray emission after photoabsorption")
    o.add_argument("--analog", action="store_true", help="no variance reduction (isotropic emission)")
    o.add_argument("--per-line", action="store_true",
                   help="one photon per history, line by line (no coincidence summing); default for a nuclide "
                        "with a decay scheme is whole decays")
    o.add_argument("--angular-correlation", action="store_true",
                   help="whole decays: gamma-gamma angular correlation where the decay data give it (Co-60); "
                        "emission is then analog")
    o.add_argument("--name", default="", help="a name for the stored run")


def register(sub: argparse._SubParsersAction) -> None:
    mc = sub.add_parser("mc", help="CALIBRATE: Monte Carlo detector efficiency and calibration factors")
    actions = mc.add_subparsers(dest="mc_command", metavar="ACTION")

    p = actions.add_parser("run", help="simulate one configuration and store the run")
    _add_geometry(p)
    e = p.add_mutually_exclusive_group()
    e.add_argument("--nuclide", default=None, help="Am-241, Ba-133, Cs-137, Co-60, Eu-152, K-40, ...")
    e.add_argument("--energy-kev", type=float, action="append", default=None, help="a gamma energy (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="threads (default: all cores); results do not depend on it")
    p.add_argument("--spectrum", action="store_true", help="include the spectrum in the JSON output")
    p.set_defaults(handler=_run)

    p = actions.add_parser("sweep", help="energies x distances x detectors as independent tasks")
    p.add_argument("--detectors", default="nai-3x3", help="comma-separated preset names")
    p.add_argument("--distances-cm", required=True, help="comma-separated distances")
    p.add_argument("--energies-kev", default=None, help="comma-separated energies")
    p.add_argument("--nuclides", default=None, help="comma-separated nuclides")
    p.add_argument("--scheduler", default=None, help="Dask scheduler tcp://HOST:PORT (default: local processes)")
    p.add_argument("--processes", type=int, default=2, help="local processes when no scheduler is given")
    _add_geometry(p, sweep=True)
    p.set_defaults(handler=_sweep)

    p = actions.add_parser("curve", help="efficiency curve: energies -> fitted log-log polynomial with covariance")
    _add_geometry(p)
    p.add_argument("--energies-kev", default=None, help="comma-separated energies (at least 3)")
    p.add_argument("--range-kev", default=None, help="LOW,HIGH: energies spaced evenly in ln E (with --points)")
    p.add_argument("--points", type=int, default=10, help="number of energies for --range-kev")
    p.add_argument("--order", default="auto", help="polynomial order, or 'auto' (leave-one-out cross-validation)")
    p.add_argument("--at", type=float, action="append", default=None, help="interpolate at this energy (repeatable)")
    p.add_argument("--csv", default=None, help="write points, fit, residuals and the curve with its band here")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(handler=_curve)

    p = actions.add_parser("characterize", help="fit dead layer / end-cap gap / crystal length to measured "
                                                "peak efficiencies (CSV) and save the fitted detector as a site preset")
    _add_geometry(p)
    p.add_argument("--measured", required=True, help="CSV: energy_kev, efficiency, sigma (or relative_sigma)")
    p.add_argument("--fit", action="append", required=True,
                   help="NAME=LOW:HIGH:POINTS (repeatable); NAME is dead_layer_cm, endcap_gap_cm or crystal_length_cm")
    p.add_argument("--save-preset", default="", help="store the fitted detector under this preset name")
    p.add_argument("--scheduler", default=None, help="Dask scheduler tcp://HOST:PORT (default: local processes)")
    p.add_argument("--processes", type=int, default=2, help="local processes when no scheduler is given")
    p.set_defaults(handler=_characterize)

    p = actions.add_parser("list", help="stored runs, newest first")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(handler=_list)

    p = actions.add_parser("show", help="one stored run with its configuration and results")
    p.add_argument("run_id", help="run id (or a unique prefix of 6+ characters)")
    p.add_argument("--spectrum", action="store_true", help="include the spectrum in the JSON output")
    p.set_defaults(handler=_show)

    p = actions.add_parser("save-source", help="store a source container (a lab's own beaker) as a site preset")
    p.add_argument("preset_name", help="name to use with --source-preset")
    p.add_argument("--note", default="", help="where the dimensions come from (drawing, measurement)")
    _add_geometry(p)
    p.set_defaults(handler=_save_source)

    p = actions.add_parser("presets", help="detector and source presets and the nuclide library")
    p.set_defaults(handler=_presets)


def _options(args):
    from vital_desktop.montecarlo import Options

    return Options(medium="vacuum" if args.vacuum else "air", coherent=not args.no_coherent,
                   k_xray_escape=not args.no_k_escape, variance_reduction=not args.analog,
                   angular_correlation=bool(getattr(args, "angular_correlation", False)))


def _detector(args, name: str | None, store=None):
    from vital_desktop.montecarlo import Detector, detector_preset

    def lookup(preset: str) -> Detector:
        if store is None:
            return detector_preset(preset)
        from vital_desktop.services import calibration

        return calibration.resolve_detector(store, preset)  # site presets too

    if name is None and args.crystal_material and args.crystal_radius_cm is not None and args.crystal_height_cm is not None:
        det = Detector(name="custom", material=args.crystal_material, radius_cm=args.crystal_radius_cm,
                       height_cm=args.crystal_height_cm)
    else:
        det = lookup(name or "nai-3x3")
    changes = {}
    if args.crystal_material:
        changes["material"] = args.crystal_material
    if args.crystal_radius_cm is not None:
        changes["radius_cm"] = args.crystal_radius_cm
    if args.crystal_height_cm is not None:
        changes["height_cm"] = args.crystal_height_cm
    if args.no_housing:
        changes["housing"] = ()
    if changes and det.name != "custom":
        changes["name"] = f"{det.name} (custom)"
    return replace(det, **changes) if changes else det


def _source(args, distance: float | None, store=None):
    """The source from --source-preset (shipped, or this site's when a store is given) and/or the
    source options (an option overrides the preset)."""
    from vital_desktop.core.errors import ValidationError
    from vital_desktop.montecarlo import Backing, Source, source_preset

    given = {"kind": args.source, "distance_cm": distance, "offset_cm": args.offset_cm,
             "radius_cm": args.source_radius_cm, "height_cm": args.source_height_cm,
             "well_radius_cm": args.well_radius_cm, "well_depth_cm": args.well_depth_cm,
             "material": args.source_material, "density_g_cm3": args.source_density, "wall_cm": args.wall_cm,
             "wall_material": args.wall_material}
    if getattr(args, "backing", None):
        parts = args.backing.split(":")
        try:
            sizes = [float(x) for x in parts[1:]]
        except ValueError:
            raise ValidationError(f"--backing {args.backing!r}: the sizes must be numbers (cm)") from None
        if not 1 <= len(sizes) <= 2:
            raise ValidationError(f"--backing {args.backing!r}: expected MATERIAL:THICKNESS[:RADIUS]")
        given["backing"] = Backing(material=parts[0], thickness_cm=sizes[0],
                                   radius_cm=sizes[1] if len(sizes) > 1 else 10.0)
    if getattr(args, "source_preset", None):
        if store is not None:
            from vital_desktop.services import calibration

            return calibration.resolve_source(store, args.source_preset, **given)
        return source_preset(args.source_preset, **given)
    defaults = {"kind": "point", "distance_cm": 10.0}
    return Source(**{**defaults, **{k: v for k, v in given.items() if v is not None}})


def _surroundings(args, config):
    """The configuration with the --absorber and --shield options added (validated)."""
    from vital_desktop.core.errors import ValidationError
    from vital_desktop.montecarlo import Absorber, Shield, validate

    def numbers(spec: str, what: str, low: int, high: int) -> tuple[str, list[float]]:
        parts = spec.split(":")
        if not low <= len(parts) <= high:
            form = "MATERIAL:THICKNESS[:RADIUS[:GAP]]" if what == "absorber" else "MATERIAL:WALL[:INNER_RADIUS]"
            raise ValidationError(f"--{what} {spec!r}: expected {form}")
        try:
            return parts[0], [float(x) for x in parts[1:]]
        except ValueError:
            raise ValidationError(f"--{what} {spec!r}: the sizes must be numbers (cm)") from None

    absorbers = []
    for spec in getattr(args, "absorber", None) or ():
        material, values = numbers(spec, "absorber", 2, 4)
        keys = ("thickness_cm", "radius_cm", "gap_cm")
        absorbers.append(Absorber(material=material, **dict(zip(keys, values, strict=False))))
    shield = None
    if getattr(args, "shield", None):
        material, values = numbers(args.shield, "shield", 2, 3)
        shield = Shield(material=material, wall_cm=values[0], inner_radius_cm=values[1] if len(values) > 1 else None)
    if not absorbers and shield is None:
        return config
    config = replace(config, absorbers=tuple(absorbers), shield=shield)
    validate(config)
    return config


def _run_text(info, results: dict) -> str:
    lines = [f"run {info.id}  {info.name}",
             f"  {info.histories:,} histories, seed {info.seed}, {info.duration_s:.2f} s, {info.engine_version}"]
    for line in results["lines"]:
        fep, tot, pt = line["peak_efficiency"], line["total_efficiency"], line["peak_to_total"]
        lines.append(f"  {line['energy_kev']:9.2f} keV  peak eff {fep['value']:.5e} +- {fep['sigma']:.1e}"
                     f"  total eff {tot['value']:.5e} +- {tot['sigma']:.1e}  P/T {pt['value']:.4f}")
    whole = results.get("whole_decay")
    if whole:
        correlation = "on" if whole.get("angular_correlation") else "off"
        lines.append(f"  whole decays ({whole['decays']:,}; angular correlation {correlation}): apparent peak area per decay"
                     " and true-coincidence-summing factor C = I eps / area")
        for peak in whole["peaks"]:
            area = peak["apparent_area_per_decay"]
            tcs = peak["tcs_factor"]
            tail = f"  C {tcs['value']:.4f} +- {tcs['sigma']:.1e}" if tcs else ""
            lines.append(f"  {peak['energy_kev']:9.2f} keV  {peak['kind']:12s} area {area['value']:.5e}"
                         f" +- {area['sigma']:.1e}{tail}")
    cf_total, cf_peak = results["total_cps_per_bq"], results["peak_cps_per_bq"]
    lines.append(f"  calibration factor: {cf_total['value']:.5e} +- {cf_total['sigma']:.1e} counts/s per Bq (all pulses)"
                 f", {cf_peak['value']:.5e} +- {cf_peak['sigma']:.1e} in full-energy peaks")
    return "\n".join(lines)


def _run(ctx: CliContext, args) -> dict:
    from vital_desktop.montecarlo import make_config
    from vital_desktop.services import calibration

    actor = ctx.actor
    config = make_config(detector=_detector(args, args.detector, ctx.store),
                         source=_source(args, args.distance_cm, ctx.store),
                         nuclide=args.nuclide, energies_kev=args.energy_kev, options=_options(args),
                         per_line=True if args.per_line else None)
    config = _surroundings(args, config)
    info, _ = calibration.run_calibration(ctx.store, actor=actor, config=config, histories=args.histories,
                                          seed=args.seed, name=args.name, workers=args.workers,
                                          progress=ctx.progress("mc run"))
    detail = calibration.get_run(ctx.store, info.id)
    return {**detail.to_dict(include_spectrum=args.spectrum), "text": _run_text(info, detail.results)}


def _split(text: str | None, cast=str) -> list:
    return [cast(x.strip()) for x in text.split(",") if x.strip()] if text else []


def _sweep(ctx: CliContext, args) -> dict:
    from vital_desktop.core.errors import ValidationError
    from vital_desktop.montecarlo import SimulationConfig, detector_preset, nuclide_lines, validate
    from vital_desktop.montecarlo.config import Line, canonical_nuclide
    from vital_desktop.montecarlo.decay import decay_scheme, has_scheme, scheme_name
    from vital_desktop.montecarlo.whole_decay import companion_lines
    from vital_desktop.services import calibration

    actor = ctx.actor
    try:
        distances = _split(args.distances_cm, float)
        energies = _split(args.energies_kev, float)
    except ValueError as exc:
        raise ValidationError(f"distances and energies must be comma-separated numbers: {exc}") from None
    emissions: list[tuple[str | None, tuple[Line, ...], str]] = [(None, (Line(e, 1.0),), "per_line")
                                                                 for e in energies]
    for n in _split(args.nuclides):
        if has_scheme(n) and not args.per_line:
            name = scheme_name(n)
            emissions.append((name, companion_lines(decay_scheme(name), _options(args).cutoff_kev), "whole_decay"))
        else:
            emissions.append((canonical_nuclide(n), nuclide_lines(n), "per_line"))
    if not emissions:
        raise ValidationError("give --energies-kev or --nuclides")
    configs = []
    for det_name in _split(args.detectors):
        detector_preset(det_name)  # unknown names fail here, before any work
        for distance in distances:
            for nuclide, lines, mode in emissions:
                config = SimulationConfig(detector=_detector(args, det_name), source=_source(args, distance, ctx.store),
                                          lines=lines, nuclide=nuclide, options=_options(args), mode=mode)
                validate(config)
                configs.append(config)
    infos, _ = calibration.run_sweep(ctx.store, actor=actor, configs=configs, histories=args.histories, seed=args.seed,
                                     name=args.name, scheduler=args.scheduler, processes=args.processes,
                                     progress=ctx.progress("mc sweep"))
    text = [f"{len(infos)} runs stored"]
    for info in infos:
        text.append(f"  {info.id[:8]}  {info.name:28s} {info.detector:16s} {info.distance_cm:7.2f} cm  "
                    f"CF {info.summary.get('calibration_factor_total_cps_per_bq', 0):.4e}")
    return {"runs": [i.to_dict() for i in infos], "text": "\n".join(text)}


def _list(ctx: CliContext, args) -> dict:
    from vital_desktop.services import calibration

    rows = calibration.list_runs(ctx.store, limit=args.limit)
    text = [f"{r.id[:8]}  {r.created_at}  {r.detector:18s} {r.source:6s} {r.distance_cm:7.2f} cm  "
            f"{(r.nuclide or ','.join(f'{e:g}' for e in r.energies_kev)):12s} {r.histories:>12,}  {r.name}" for r in rows]
    return {"runs": [r.to_dict() for r in rows], "text": "\n".join(text) or "no Monte Carlo runs yet"}


def _show(ctx: CliContext, args) -> dict:
    from vital_desktop.services import calibration

    detail = calibration.get_run(ctx.store, args.run_id)
    return {**detail.to_dict(include_spectrum=args.spectrum), "text": _run_text(detail.info, detail.results)}


def _presets(ctx: CliContext, args) -> dict:
    from vital_desktop.montecarlo import detector_presets, nuclide_library, source_presets

    from vital_desktop.services import calibration

    dets = detector_presets()
    nucs = nuclide_library()
    site = calibration.site_presets(ctx.store)
    text = ["detectors:"] + [f"  {k:18s} {v['title']}" for k, v in dets.items()]
    text += [f"  {k:18s} fitted at this site by {v['created_by']} ({v['created_at']})" for k, v in site.items()]
    sources = source_presets()
    site_sources = calibration.site_source_presets(ctx.store)
    text += ["sources:"] + [f"  {k:18s} {v['title']}" for k, v in sources.items()]
    text += [f"  {k:18s} defined at this site by {v['created_by']} ({v['created_at']})"
             for k, v in site_sources.items()]
    text += ["nuclides:"] + [f"  {k:8s} " + ", ".join(f"{e:g} keV ({p:.3g})" for e, p in v["lines"]) for k, v in nucs.items()]
    return {"detectors": dets, "site_detectors": site, "sources": sources, "site_sources": site_sources,
            "nuclides": nucs, "text": "\n".join(text)}


def _save_source(ctx: CliContext, args) -> dict:
    from dataclasses import asdict

    from vital_desktop.services import calibration

    source = _source(args, args.distance_cm, ctx.store)
    calibration.save_source_preset(ctx.store, actor=ctx.actor, name=args.preset_name, source=source, note=args.note)
    return {"name": args.preset_name, "source": asdict(source),
            "text": f"saved source preset {args.preset_name!r} ({source.kind}, "
                    f"{source.contents_volume_cm3:.1f} cm3 of contents)"}


def _curve(ctx: CliContext, args) -> dict:
    from pathlib import Path

    from vital_desktop.core.errors import ValidationError
    from vital_desktop.montecarlo import make_config
    from vital_desktop.montecarlo.curves import log_energies
    from vital_desktop.services import calibration

    if bool(args.energies_kev) == bool(args.range_kev):
        raise ValidationError("give --energies-kev or --range-kev (one of them)")
    try:
        if args.energies_kev:
            energies = _split(args.energies_kev, float)
        else:
            low, high = _split(args.range_kev, float)
            energies = log_energies(low, high, args.points)
    except ValueError as exc:
        raise ValidationError(f"energies must be comma-separated numbers (--range-kev LOW,HIGH): {exc}") from None
    if args.order == "auto":
        order = None
    else:
        try:
            order = int(args.order)
        except ValueError:
            raise ValidationError(f"--order must be a whole number or 'auto', got {args.order!r}") from None
    config = make_config(detector=_detector(args, args.detector), source=_source(args, args.distance_cm, ctx.store),
                         energies_kev=energies, options=_options(args))
    config = _surroundings(args, config)
    if args.csv and Path(args.csv).is_dir():
        raise ValidationError(f"--csv {args.csv} is a folder; give a file name")
    info, curve, _ = calibration.run_efficiency_curve(
        ctx.store, actor=ctx.actor, config=config, histories=args.histories, seed=args.seed, order=order,
        name=args.name, workers=args.workers, progress=ctx.progress("mc curve"))
    at = []
    if args.at:
        eps, sig = curve.evaluate(args.at)
        at = [{"energy_kev": e, "efficiency": float(v), "sigma": float(u)} for e, v, u in zip(args.at, eps, sig, strict=True)]
    if args.csv:
        Path(args.csv).write_text(curve.to_csv(), encoding="utf-8")
    text = [f"run {info.id}  {info.name}",
            (f"  ln(eps) = sum a_k ln(E/1 MeV)^k, order {curve.order} ({curve.order_choice}), "
             f"chi2 {curve.chi2:.2f} for {curve.dof} degrees of freedom"),
            "  coefficients: " + ", ".join(f"{c:.6g}" for c in curve.coefficients)]
    for e, y, sgm, r in zip(curve.energies_kev, curve.efficiencies, curve.sigmas, curve.residuals, strict=True):
        text.append(f"  {e:9.2f} keV  peak eff {y:.5e} +- {sgm:.1e}  residual {r:+.2f} sigma")
    for a in at:
        text.append(f"  at {a['energy_kev']:g} keV: {a['efficiency']:.5e} +- {a['sigma']:.1e}")
    if args.csv:
        text.append(f"  CSV written to {args.csv}")
    return {"run": info.to_dict(), "curve": curve.to_dict(), "at": at, "text": "\n".join(text)}


def _characterize(ctx: CliContext, args) -> dict:
    from pathlib import Path

    from vital_desktop.core.errors import ValidationError
    from vital_desktop.montecarlo.characterize import PARAMETERS, parse_grid, read_measurements
    from vital_desktop.services import calibration

    path = Path(args.measured)
    if not path.is_file():
        raise ValidationError(f"--measured {args.measured}: no such file")
    measurements = read_measurements(path.read_text(encoding="utf-8"))
    grids = dict(parse_grid(spec) for spec in args.fit)
    detector = _detector(args, args.detector, ctx.store)
    fit, _ = calibration.characterize_detector(
        ctx.store, actor=ctx.actor, detector=detector, source=_source(args, args.distance_cm, ctx.store),
        measurements=measurements, grids=grids, histories=args.histories, seed=args.seed, options=_options(args),
        save_as=args.save_preset, scheduler=args.scheduler, processes=args.processes,
        progress=ctx.progress("mc characterize"))
    text = [f"fit of {detector.name} to {len(measurements)} measured efficiencies over "
            f"{len(fit.grid)} grid points:"]
    for name in fit.parameters:
        text.append(f"  {name:18s} {fit.best[name]:.4f} +- {fit.sigma[name]:.4f} {PARAMETERS[name][1]}"
                    f"  ({PARAMETERS[name][2]})" + ("  AT THE GRID EDGE" if name in fit.at_grid_edge else ""))
    text.append(f"  chi2 {fit.chi2_min:.2f} for {fit.dof} degrees of freedom, p = {fit.p_value:.3g}")
    if args.save_preset:
        text.append(f"  saved as site preset {args.save_preset!r} (use --detector {args.save_preset})")
    return {"fit": fit.to_dict(), "preset": args.save_preset or None, "text": "\n".join(text)}
