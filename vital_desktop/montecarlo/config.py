"""What a simulation is: detector, source, gamma lines and options, as plain frozen dataclasses.

A configuration round-trips through JSON (`to_dict` / `config_from_dict`) so it can be stored
with a run, shipped to a Dask or Spark worker and rebuilt bit for bit. `validate` refuses bad
input with a specific message before any work starts.

Coordinates: the detector axis is z. The crystal's front face is the plane z = 0 and the crystal
fills 0 <= z <= height; housing layers wrap it; the source sits at negative z. Distances are
measured from the detector's outer front face (the end cap) to the source plane (point, disk),
to the outer bottom of the source container (volume), or to the inner closed end of a Marinelli
beaker's well (marinelli: 0 when the beaker sits on the end cap).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field, replace
from importlib import resources
from typing import Any

from vital_desktop.core.errors import NotFoundError, ValidationError
from vital_desktop.montecarlo.materials import E_MAX_MEV, E_MIN_MEV, resolve_material

SOURCE_KINDS = ("point", "disk", "volume", "marinelli")
MEDIA = ("air", "vacuum")
#: "per_line": one photon per history, line by line; "whole_decay": every photon of a decay in one
#: history (true-coincidence summing), from the nuclide's decay scheme.
MODES = ("per_line", "whole_decay")


@dataclass(frozen=True)
class Resolution:
    """Gaussian energy broadening, FWHM(E) = a + b*sqrt(E + c*E^2) with E and FWHM in MeV."""

    a_mev: float = 0.0
    b_sqrt_mev: float = 0.05694
    c_per_mev: float = 0.0

    def fwhm_mev(self, energy_mev: float) -> float:
        return self.a_mev + self.b_sqrt_mev * math.sqrt(max(energy_mev + self.c_per_mev * energy_mev**2, 0.0))


@dataclass(frozen=True)
class Layer:
    """One housing layer around everything inside it (thicknesses in cm)."""

    material: str
    side_cm: float = 0.0
    front_cm: float = 0.0
    back_cm: float = 0.0
    name: str = ""
    density_g_cm3: float | None = None


@dataclass(frozen=True)
class Detector:
    name: str
    material: str
    radius_cm: float
    height_cm: float
    housing: tuple[Layer, ...] = ()
    resolution: Resolution = field(default_factory=Resolution)
    density_g_cm3: float | None = None
    #: closed-end coaxial core hole (p-type HPGe): a vacuum cylinder on the axis, open at the back face
    core_hole_radius_cm: float = 0.0
    core_hole_depth_cm: float = 0.0
    #: the stated relative efficiency of a preset (1332 keV, 25 cm, vs 1.2e-3 for a 3"x3" NaI), if any
    relative_efficiency: float | None = None

    @property
    def front_thickness_cm(self) -> float:
        return sum(layer.front_cm for layer in self.housing)

    @property
    def outer_radius_cm(self) -> float:
        return self.radius_cm + sum(layer.side_cm for layer in self.housing)


@dataclass(frozen=True)
class Backing:
    """A plate right behind a point or disk source (a source holder, a shelf)."""

    material: str
    radius_cm: float
    thickness_cm: float
    density_g_cm3: float | None = None


@dataclass(frozen=True)
class Source:
    """Point or disk (on or off axis), a cylindrical volume in a container (coaxial or with its
    axis moved `offset_cm` off the detector axis), or a Marinelli beaker around the end cap.

    Volume: `radius_cm` / `height_cm` are the contents' (inner) radius and fill height; the
    container wall adds `wall_cm` on every side. Marinelli (always coaxial): `radius_cm` and
    `height_cm` are the inner radius and inner height of the beaker, `well_radius_cm` the inner
    radius of its re-entrant well (the detector's end cap goes in it) and `well_depth_cm` the well's
    inner depth from the rim; `wall_cm` is the wall everywhere. Contents volume:
    pi R^2 H - pi (r_well + wall)^2 d_well.
    """

    kind: str = "point"
    distance_cm: float = 10.0
    offset_cm: float = 0.0
    radius_cm: float = 0.0
    height_cm: float = 0.0
    material: str = "water"
    density_g_cm3: float | None = None
    wall_material: str = "pvt"
    wall_cm: float = 0.0
    backing: Backing | None = None
    well_radius_cm: float = 0.0
    well_depth_cm: float = 0.0

    @property
    def contents_volume_cm3(self) -> float:
        """Volume of the radioactive contents (0 for a point or disk)."""
        if self.kind == "volume":
            return math.pi * self.radius_cm**2 * self.height_cm
        if self.kind == "marinelli":
            return (math.pi * self.radius_cm**2 * self.height_cm
                    - math.pi * (self.well_radius_cm + self.wall_cm) ** 2 * self.well_depth_cm)
        return 0.0


@dataclass(frozen=True)
class Absorber:
    """A coaxial disk (filter, absorber layer) between the source and the detector.

    `gap_cm` is the distance from the detector's outer front face to the absorber's detector-side
    face; the absorber fills gap_cm <= distance <= gap_cm + thickness_cm in front of the detector.
    """

    material: str
    thickness_cm: float
    radius_cm: float = 5.0
    gap_cm: float = 0.0
    density_g_cm3: float | None = None
    name: str = ""


@dataclass(frozen=True)
class Shield:
    """A closed cylindrical shield (a lead castle, a steel drum) around source and detector.

    The cavity reaches `clearance_cm` beyond everything inside it axially and, unless
    `inner_radius_cm` is given, radially; the walls are `wall_cm` thick on every side.
    """

    material: str
    wall_cm: float
    inner_radius_cm: float | None = None
    clearance_cm: float = 5.0
    density_g_cm3: float | None = None


@dataclass(frozen=True)
class Line:
    energy_kev: float
    probability: float = 1.0


@dataclass(frozen=True)
class Options:
    """Physics switches and run settings. `outside_fraction=None` picks it automatically:
    0 when nothing outside the detector can scatter a photon back (vacuum, no container),
    else 0.1 of the photons are still emitted outside the cone (with their proper weight)."""

    coherent: bool = True
    k_xray_escape: bool = True
    medium: str = "air"
    variance_reduction: bool = True
    outside_fraction: float | None = None
    cutoff_kev: float = 1.0
    spectrum_bins: int = 1024
    spectrum_max_kev: float | None = None
    #: whole decays: gamma-gamma angular correlation of consecutive cascade gammas where the decay
    #: data give it (Co-60); off by default; emission is then analog (no cone)
    angular_correlation: bool = False


@dataclass(frozen=True)
class SimulationConfig:
    detector: Detector
    source: Source
    lines: tuple[Line, ...]
    nuclide: str | None = None
    options: Options = field(default_factory=Options)
    mode: str = "per_line"
    absorbers: tuple[Absorber, ...] = ()
    shield: Shield | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# --- building from dicts, presets and nuclides -------------------------------------------


def _layer(d: dict) -> Layer:
    return Layer(**d)


def detector_from_dict(d: dict) -> Detector:
    d = dict(d)
    if "crystal" in d:  # preset file form
        crystal = d.pop("crystal")
        d.update(material=crystal["material"], radius_cm=crystal["radius_cm"], height_cm=crystal["height_cm"],
                 density_g_cm3=crystal.get("density_g_cm3"),
                 core_hole_radius_cm=crystal.get("core_hole_radius_cm", 0.0),
                 core_hole_depth_cm=crystal.get("core_hole_depth_cm", 0.0))
        for key in ("title", "provenance", "notes"):
            d.pop(key, None)
    housing = tuple(_layer(x) for x in d.pop("housing", ()))
    resolution = Resolution(**d.pop("resolution", {})) if d.get("resolution") is not None else Resolution()
    d.pop("resolution", None)
    return Detector(housing=housing, resolution=resolution, **d)


def config_from_dict(d: dict) -> SimulationConfig:
    """Rebuild a configuration stored by `to_dict` (for reproduction and remote workers)."""
    try:
        source = dict(d["source"])
        backing = source.pop("backing", None)
        return SimulationConfig(
            detector=detector_from_dict(d["detector"]),
            source=Source(backing=Backing(**backing) if backing else None, **source),
            lines=tuple(Line(**x) if isinstance(x, dict) else Line(*x) for x in d["lines"]),
            nuclide=d.get("nuclide"),
            options=Options(**d.get("options", {})),
            mode=d.get("mode", "per_line"),
            absorbers=tuple(Absorber(**a) for a in d.get("absorbers", ())),
            shield=Shield(**d["shield"]) if d.get("shield") else None,
        )
    except (KeyError, TypeError) as exc:
        raise ValidationError(f"not a valid Monte Carlo configuration: {exc}") from None


def _resource_json(name: str) -> dict:
    with resources.files("vital_desktop").joinpath("resources", name).open("r", encoding="utf-8") as handle:
        return json.load(handle)


@functools.lru_cache(maxsize=1)
def detector_presets() -> dict[str, dict]:
    return _resource_json("detectors.json")["detectors"]


@functools.lru_cache(maxsize=1)
def nuclide_library() -> dict[str, dict]:
    return _resource_json("nuclides.json")["nuclides"]


def detector_preset(name: str) -> Detector:
    presets = detector_presets()
    if name not in presets:
        raise NotFoundError(f"unknown detector preset {name!r}; presets: {', '.join(sorted(presets))}")
    return detector_from_dict({"name": name, **presets[name]})


@functools.lru_cache(maxsize=1)
def source_presets() -> dict[str, dict]:
    """Shipped source container presets (the common Marinelli beakers): name -> fields."""
    return _resource_json("sources.json")["sources"]


def source_preset(name: str, **overrides: Any) -> Source:
    """A shipped source preset as a `Source`, with any field overridden (distance, contents...)."""
    presets = source_presets()
    if name not in presets:
        raise NotFoundError(f"unknown source preset {name!r}; presets: {', '.join(sorted(presets))}")
    fields = {k: v for k, v in presets[name].items() if k not in ("title", "provenance")}
    fields.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Source(**fields)
    except TypeError as exc:
        raise ValidationError(f"not a valid source: {exc}") from None


def nuclide_lines(name: str) -> tuple[Line, ...]:
    library = nuclide_library()
    lookup = {k.lower().replace("-", ""): k for k in library}
    key = lookup.get(str(name).lower().replace("-", "").replace(" ", ""))
    if key is None:
        raise ValidationError(f"unknown nuclide {name!r}; the library has {', '.join(library)}")
    return tuple(Line(e, p) for e, p in library[key]["lines"])


def canonical_nuclide(name: str) -> str:
    library = nuclide_library()
    lookup = {k.lower().replace("-", ""): k for k in library}
    return lookup[str(name).lower().replace("-", "").replace(" ", "")]


def make_config(
    *,
    detector: str | Detector,
    source: Source,
    nuclide: str | None = None,
    energies_kev: list[float] | None = None,
    options: Options | None = None,
    per_line: bool | None = None,
) -> SimulationConfig:
    """Assemble and validate a configuration from a preset name (or a Detector) and a source.

    A nuclide with a decay scheme runs as whole decays unless `per_line` is True; one without a
    scheme runs per line (asking for whole decays of it with `per_line=False` is refused).
    """
    from vital_desktop.montecarlo.decay import decay_scheme, has_scheme, scheme_name

    det = detector_preset(detector) if isinstance(detector, str) else detector
    if (nuclide is None) == (not energies_kev):
        raise ValidationError("give either a nuclide or one or more energies (not both, not neither)")
    opts = options or Options()
    mode = "per_line"
    if nuclide is not None:
        if per_line is False and not has_scheme(nuclide):
            nuclide_lines(nuclide)  # an unknown nuclide is named as such first
            raise ValidationError(f"nuclide {nuclide!r} has no decay scheme for whole decays; run it per line")
        if has_scheme(nuclide) and not per_line:
            from vital_desktop.montecarlo.whole_decay import companion_lines

            mode = "whole_decay"
            nuclide = scheme_name(nuclide)
            lines = companion_lines(decay_scheme(nuclide), opts.cutoff_kev)
        else:
            lines = nuclide_lines(nuclide)
            nuclide = canonical_nuclide(nuclide)
    else:
        if per_line is False:
            raise ValidationError("whole decays need a nuclide, not energies")
        lines = tuple(Line(float(e), 1.0) for e in energies_kev or ())
    config = SimulationConfig(detector=det, source=source, lines=lines, nuclide=nuclide, options=opts, mode=mode)
    validate(config)
    return config


# --- validation -----------------------------------------------------------------------------


def _number(value: Any, what: str, *, positive: bool = False, non_negative: bool = False) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    if positive and x <= 0:
        raise ValidationError(f"{what} must be greater than zero, got {x:g}")
    if non_negative and x < 0:
        raise ValidationError(f"{what} must not be negative, got {x:g}")
    return x


def _material(name: str, what: str, density: float | None) -> None:
    try:
        material = resolve_material(name)
    except ValidationError as exc:
        raise ValidationError(f"{what}: {exc.message}") from None
    if density is not None:
        _number(density, f"{what} density (g/cm3)", positive=True)
    if material.name == "vacuum" and what.startswith("crystal"):
        raise ValidationError("the crystal cannot be vacuum")


def validate(config: SimulationConfig) -> None:
    """Refuse anything that would make the run meaningless, with a message naming the field."""
    det = config.detector
    _material(det.material, "crystal material", det.density_g_cm3)
    _number(det.radius_cm, "crystal radius (cm)", positive=True)
    _number(det.height_cm, "crystal height (cm)", positive=True)
    hole_r = _number(det.core_hole_radius_cm, "core hole radius (cm)", non_negative=True)
    hole_d = _number(det.core_hole_depth_cm, "core hole depth (cm)", non_negative=True)
    if (hole_r > 0) != (hole_d > 0):
        raise ValidationError("core hole: give both its radius and its depth (or neither)")
    if hole_r >= det.radius_cm:
        raise ValidationError(f"core hole radius {hole_r:g} cm must be smaller than the crystal radius "
                              f"{det.radius_cm:g} cm (the volumes must nest)")
    if hole_d >= det.height_cm:
        raise ValidationError(f"core hole depth {hole_d:g} cm must be smaller than the crystal height "
                              f"{det.height_cm:g} cm (a closed-end coaxial crystal)")
    for i, layer in enumerate(det.housing):
        label = f"housing layer {i + 1} ({layer.name or layer.material})"
        _material(layer.material, label, layer.density_g_cm3)
        values = [_number(getattr(layer, k), f"{label} {k.replace('_cm', '')} thickness (cm)", non_negative=True)
                  for k in ("side_cm", "front_cm", "back_cm")]
        if sum(values) <= 0:
            raise ValidationError(f"{label} has zero thickness everywhere")
    res = det.resolution
    _number(res.a_mev, "resolution a (MeV)")
    _number(res.b_sqrt_mev, "resolution b", non_negative=True)
    _number(res.c_per_mev, "resolution c", non_negative=True)

    src = config.source
    if src.kind not in SOURCE_KINDS:
        raise ValidationError(f"unknown source kind {src.kind!r}; choose {', '.join(SOURCE_KINDS)}")
    _validate_surroundings(config)
    distance = _number(src.distance_cm, "source distance (cm)")
    offset = _number(src.offset_cm, "source offset (cm)", non_negative=True)
    if src.kind == "point":
        inside_radially = offset <= det.outer_radius_cm
        depth = det.front_thickness_cm + det.height_cm + sum(layer.back_cm for layer in det.housing)
        if inside_radially and -depth <= distance <= 0.0:
            raise ValidationError(
                f"the point source (distance {distance:g} cm, offset {offset:g} cm) lies inside the detector; "
                "it must be outside the crystal and its housing"
            )
        if distance < 0 and src.backing is not None:
            raise ValidationError("a source backing plate needs the source in front of the detector (distance >= 0)")
    else:
        if distance < 0:
            raise ValidationError(
                f"a {src.kind} source must be in front of the detector: distance {distance:g} cm is negative"
            )
        if offset != 0.0 and src.kind == "marinelli":
            raise ValidationError("a Marinelli beaker sits coaxially around the end cap; its offset must be 0")
        _number(src.radius_cm, f"{src.kind} source radius (cm)", positive=True)
    if src.kind in ("volume", "marinelli"):
        _number(src.height_cm, f"{src.kind} source height (cm)", positive=True)
        _material(src.material, f"{src.kind} source material", src.density_g_cm3)
        _number(src.wall_cm, "container wall thickness (cm)", non_negative=True)
        _material(src.wall_material, "container wall material", None)
        if src.backing is not None:
            raise ValidationError(f"a {src.kind} source has a container, not a backing plate")
    if src.kind == "marinelli":
        _validate_marinelli(config)
    elif src.well_radius_cm or src.well_depth_cm:
        raise ValidationError(f"well radius and well depth belong to a Marinelli beaker, not a {src.kind} source")
    if src.backing is not None:
        _material(src.backing.material, "backing material", src.backing.density_g_cm3)
        _number(src.backing.radius_cm, "backing radius (cm)", positive=True)
        _number(src.backing.thickness_cm, "backing thickness (cm)", positive=True)
        if src.kind == "disk" and src.backing.radius_cm < src.radius_cm:
            pass  # a smaller backing is allowed; it only scatters less

    if config.mode not in MODES:
        raise ValidationError(f"unknown mode {config.mode!r}; choose {', '.join(MODES)}")
    if config.mode == "whole_decay":
        from vital_desktop.montecarlo.decay import decay_scheme

        if not config.nuclide:
            raise ValidationError("whole-decay mode needs a nuclide with a decay scheme")
        decay_scheme(config.nuclide)  # unknown nuclide or inconsistent decay data: refused here
    if not config.lines:
        raise ValidationError("no gamma lines: give a nuclide or at least one energy")
    for line in config.lines:
        energy = _number(line.energy_kev, "line energy (keV)", positive=True)
        if not (E_MIN_MEV * 1000.0 < energy <= E_MAX_MEV * 1000.0):
            raise ValidationError(
                f"energy {energy:g} keV is outside the cross-section data ({E_MIN_MEV * 1000:g} keV - {E_MAX_MEV * 1000:g} keV)"
            )
        _number(line.probability, f"emission probability of the {energy:g} keV line", positive=True)

    opts = config.options
    if opts.medium not in MEDIA:
        raise ValidationError(f"unknown medium {opts.medium!r}; choose {', '.join(MEDIA)}")
    cutoff = _number(opts.cutoff_kev, "cutoff energy (keV)", positive=True)
    if cutoff < E_MIN_MEV * 1000.0:
        raise ValidationError(f"cutoff energy must be at least {E_MIN_MEV * 1000:g} keV (the data start there)")
    if cutoff >= min(line.energy_kev for line in config.lines):
        raise ValidationError("cutoff energy must be below every line energy")
    if opts.outside_fraction is not None:
        fraction = _number(opts.outside_fraction, "outside fraction")
        if not 0.0 <= fraction < 1.0:
            raise ValidationError("outside fraction must be in [0, 1)")
    if int(opts.spectrum_bins) < 16 or int(opts.spectrum_bins) > 65536:
        raise ValidationError("spectrum bins must be between 16 and 65536")
    if opts.spectrum_max_kev is not None:
        _number(opts.spectrum_max_kev, "spectrum maximum (keV)", positive=True)


def _validate_marinelli(config: SimulationConfig) -> None:
    """The beaker's volumes must nest: the well inside the beaker, the end cap inside the well."""
    src, det = config.source, config.detector
    radius, height, wall = src.radius_cm, src.height_cm, src.wall_cm
    well_r = _number(src.well_radius_cm, "Marinelli well radius (cm)", positive=True)
    well_d = _number(src.well_depth_cm, "Marinelli well depth (cm)", positive=True)
    if well_r + wall >= radius:
        raise ValidationError(f"Marinelli well radius {well_r:g} cm plus the wall {wall:g} cm must be smaller than "
                              f"the beaker's inner radius {radius:g} cm (the volumes must nest)")
    if well_d >= height:
        raise ValidationError(f"Marinelli well depth {well_d:g} cm must be smaller than the beaker's inner height "
                              f"{height:g} cm (the volumes must nest)")
    if well_d <= wall:
        raise ValidationError(f"Marinelli well depth {well_d:g} cm must exceed the wall thickness {wall:g} cm")
    if det.outer_radius_cm > well_r:
        raise ValidationError(f"the detector's end cap (radius {det.outer_radius_cm:g} cm) does not fit in the "
                              f"Marinelli well (radius {well_r:g} cm): the volumes overlap")
    if config.absorbers:
        raise ValidationError("absorbers between source and detector do not fit inside a Marinelli well")


def _validate_surroundings(config: SimulationConfig) -> None:
    """Absorbers between source and detector, not overlapping anything; a shield that encloses all."""
    src, det = config.source, config.detector
    distance = _number(src.distance_cm, "source distance (cm)")
    spans: list[tuple[float, float, str]] = []
    for i, a in enumerate(config.absorbers):
        label = f"absorber {i + 1} ({a.name or a.material})"
        _material(a.material, label, a.density_g_cm3)
        t = _number(a.thickness_cm, f"{label} thickness (cm)", positive=True)
        _number(a.radius_cm, f"{label} radius (cm)", positive=True)
        g = _number(a.gap_cm, f"{label} gap to the detector (cm)", non_negative=True)
        if g + t > distance + 1e-12:
            raise ValidationError(f"{label} overlaps the source: it reaches {g + t:g} cm from the detector but the "
                                  f"source is at {distance:g} cm (absorbers lie between source and detector)")
        for lo, hi, other in spans:
            if g < hi and lo < g + t:
                raise ValidationError(f"{label} overlaps {other} ({g:g}-{g + t:g} cm vs {lo:g}-{hi:g} cm)")
        spans.append((g, g + t, label))
    sh = config.shield
    if sh is None:
        return
    _material(sh.material, "shield", sh.density_g_cm3)
    _number(sh.wall_cm, "shield wall thickness (cm)", positive=True)
    _number(sh.clearance_cm, "shield clearance (cm)", non_negative=True)
    if sh.inner_radius_cm is not None:
        r_in = _number(sh.inner_radius_cm, "shield inner radius (cm)", positive=True)
        radii = [det.outer_radius_cm, abs(src.offset_cm) + (src.radius_cm if src.kind == "disk" else 0.0)]
        if src.kind in ("volume", "marinelli"):
            radii.append(abs(src.offset_cm) + src.radius_cm + src.wall_cm)
        if src.backing is not None:
            radii.append(src.backing.radius_cm)
        radii += [a.radius_cm for a in config.absorbers]
        if r_in <= max(radii):
            raise ValidationError(f"shield inner radius {r_in:g} cm must enclose the detector, the source and the "
                                  f"absorbers (largest radius {max(radii):g} cm): the volumes must nest")


def validate_histories(histories: Any, n_lines: int = 1) -> int:
    """Histories as an int (accepts 1e7); refuse zero, negative, NaN and too few to batch."""
    value = _number(histories, "number of histories", positive=True)
    if value != math.floor(value):
        raise ValidationError(f"number of histories must be a whole number, got {value:g}")
    if value > 1e13:
        raise ValidationError("number of histories above 1e13 is not supported")
    minimum = 20 * max(n_lines, 1)
    if value < minimum:
        raise ValidationError(f"at least {minimum} histories are needed for {n_lines} line(s) (batch statistics)")
    return int(value)


def validate_seed(seed: Any) -> int:
    value = _number(seed, "seed", non_negative=True)
    if value != math.floor(value) or value >= 2**63:
        raise ValidationError(f"seed must be a whole number between 0 and 2^63-1, got {seed!r}")
    return int(value)


def with_distance(config: SimulationConfig, distance_cm: float) -> SimulationConfig:
    return replace(config, source=replace(config.source, distance_cm=distance_cm))
