"""Materials and photon cross sections for the transport kernel.

The NIST XCOM tables in `resources/physics/` are read once per process and turned into
linear attenuation coefficients (1/cm) on a fine uniform grid in ln E, so the kernel finds a
coefficient with one multiply, one truncation and one linear interpolation instead of a search
and four logarithms. The fine grid is filled by the interpolation the data README prescribes
(log-log between rows, edges taken from the correct side, pair terms linear in E); at 4,096
points per decade the extra error of the linear step is below 1e-6 except inside the one grid
cell (0.06 % wide in energy) that contains an absorption edge.

Materials are entries in a registry (`MATERIALS`), not branches in code: a crystal, a housing
layer or a source container names one, optionally with its own density.
"""

from __future__ import annotations

import csv
import functools
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from vital_desktop.core.errors import ValidationError

#: Energy range of the tables (MeV); the kernel refuses nothing inside it.
E_MIN_MEV = 1.0e-3
E_MAX_MEV = 10.0
#: Fine grid: points per decade of energy, and the total number of points.
POINTS_PER_DECADE = 4096
GRID_POINTS = 4 * POINTS_PER_DECADE + 1
LN_E_MIN = math.log(E_MIN_MEV)
D_LN_E = math.log(10.0) / POINTS_PER_DECADE

#: Rows of the per-material table handed to the kernel.
ROW_TOTAL, ROW_PHOTO, ROW_COMPTON, ROW_PAIR, ROW_COHERENT = range(5)
#: Perfectly absorbing pseudo-material (validation only): 1e6 /cm, all photoelectric.
BLACK_MU_PER_CM = 1.0e6


@dataclass(frozen=True)
class KShellElement:
    """What the kernel needs to emit an element's K X-ray after a photoabsorption.

    Line energies and fluorescence yields are standard X-ray data (LBNL X-ray Data Booklet,
    rounded); K-alpha and K-beta are each collapsed onto one intensity-weighted energy.
    """

    symbol: str
    k_alpha_kev: float
    k_beta_kev: float
    beta_share: float  # K-beta photons / all K photons
    fluorescence_yield: float


K_SHELL: dict[str, KShellElement] = {
    "Ge": KShellElement("Ge", 9.88, 10.98, 0.12, 0.535),
    "Br": KShellElement("Br", 11.91, 13.29, 0.14, 0.618),
    "Cd": KShellElement("Cd", 23.11, 26.10, 0.17, 0.842),
    "Sn": KShellElement("Sn", 25.19, 28.49, 0.17, 0.859),
    "I": KShellElement("I", 28.51, 32.39, 0.18, 0.882),
    "Cs": KShellElement("Cs", 30.85, 35.01, 0.19, 0.895),
    "La": KShellElement("La", 33.30, 37.80, 0.19, 0.906),
    "Pb": KShellElement("Pb", 74.24, 84.94, 0.22, 0.961),
    "Bi": KShellElement("Bi", 76.34, 87.35, 0.22, 0.961),
}


@dataclass(frozen=True)
class Material:
    """A registry entry: data file, nominal density, composition and an effective Z.

    `effective_z` only shapes the approximate coherent-scattering form factor. A material with
    `file == MIXTURE` has no table of its own: its coefficients are built from its elemental mass
    fractions by the mixture rule (mu/rho = sum_i w_i (mu/rho)_i, exact for photon attenuation)
    from the XCOM element tables; `source` cites the composition.
    """

    name: str
    title: str
    file: str | None
    density_g_cm3: float
    mass_fractions: tuple[tuple[str, float], ...]
    effective_z: float
    source: str = ""


#: `Material.file` of a material built from its elements (the element tables are in
#: `resources/physics/elements_mixtures.csv`).
MIXTURE = "elements"


#: Where the compositions of the mixture materials come from.
COMPOSITION_SOURCES = {
    "concrete": "NIST, Tables of X-Ray Mass Attenuation Coefficients (Hubbell & Seltzer, NIST SRD 126), "
                "Table 2 'Concrete, Ordinary': mass fractions and density 2.30 g/cm3 (real concretes vary: "
                "2.2-2.4 g/cm3; set density_g_cm3 for yours)",
    "pp": "stoichiometric (CH2)n (the same composition as NIST's polyethylene), density 0.90 g/cm3 "
          "(polypropylene beakers 0.90-0.91)",
}


def _m(name: str, title: str, density: float, fractions: dict[str, float], z_eff: float, file: str | None = "") -> Material:
    return Material(name, title, f"{name}.csv" if file == "" else file, density, tuple(fractions.items()), z_eff,
                    COMPOSITION_SOURCES.get(name, ""))


MATERIALS: dict[str, Material] = {
    m.name: m
    for m in [
        _m("nai", "NaI(Tl)", 3.67, {"Na": 0.153373, "I": 0.846627}, 50.0),
        _m("csi", "CsI(Tl)", 4.51, {"I": 0.488451, "Cs": 0.511549}, 54.0),
        _m("ge", "Ge (HPGe)", 5.323, {"Ge": 1.0}, 32.0),
        _m("labr3", "LaBr3(Ce)", 5.08, {"Br": 0.633124, "La": 0.366876}, 46.0),
        _m("bgo", "Bi4Ge3O12 (BGO)", 7.13, {"O": 0.154119, "Ge": 0.174859, "Bi": 0.671022}, 74.0),
        _m("pvt", "plastic scintillator (PVT)", 1.032, {"H": 0.085, "C": 0.915}, 5.7),
        _m("al", "aluminium", 2.699, {"Al": 1.0}, 13.0),
        _m("air", "dry air", 0.00120479, {"N": 0.755268, "O": 0.231781, "Ar": 0.012827, "C": 0.000124}, 7.6),
        _m("water", "water", 1.0, {"H": 0.111898, "O": 0.888102}, 7.4),
        _m("pb", "lead", 11.35, {"Pb": 1.0}, 82.0),
        _m("fe", "iron (steel approximation)", 7.874, {"Fe": 1.0}, 26.0),
        _m("cu", "copper", 8.96, {"Cu": 1.0}, 29.0),
        _m("sn", "tin", 7.31, {"Sn": 1.0}, 50.0),
        _m("cd", "cadmium", 8.65, {"Cd": 1.0}, 48.0),
        _m("be", "beryllium", 1.848, {"Be": 1.0}, 4.0),
        _m("mgo", "MgO reflector", 3.58, {"O": 0.396964, "Mg": 0.603036}, 10.4),
        _m("ptfe", "PTFE (Teflon)", 2.2, {"C": 0.240183, "F": 0.759817}, 8.4),
        _m("sio2", "SiO2 (quartz/glass window)", 2.2, {"O": 0.532565, "Si": 0.467435}, 11.0),
        _m("concrete", "ordinary concrete (NIST)", 2.30,
           {"H": 0.022100, "C": 0.002484, "O": 0.574930, "Na": 0.015208, "Mg": 0.001266, "Al": 0.019953,
            "Si": 0.304627, "K": 0.010045, "Ca": 0.042951, "Fe": 0.006435}, 11.0, file=MIXTURE),
        _m("pp", "polypropylene (CH2)n", 0.90, {"H": 0.143711, "C": 0.856289}, 5.5, file=MIXTURE),
        _m("vacuum", "vacuum", 0.0, {}, 0.0, file=None),
        _m("black", "perfect absorber (validation only)", 1.0, {}, 0.0, file=None),
        _m("absorber", "pure photoabsorber, mu = density x 1 cm2/g at every energy (validation only)", 1.0, {}, 0.0,
           file=None),
    ]
}

#: Materials that exist only to check the transport against exact integrals.
VALIDATION_ONLY = ("black", "absorber")

#: Names people write for the same material.
ALIASES = {
    "nai(tl)": "nai", "sodium-iodide": "nai", "csi(tl)": "csi", "csi(na)": "csi", "hpge": "ge",
    "germanium": "ge", "labr3(ce)": "labr3", "labr": "labr3", "plastic": "pvt", "polyvinyltoluene": "pvt",
    "aluminium": "al", "aluminum": "al", "lead": "pb", "steel": "fe", "iron": "fe", "copper": "cu", "tin": "sn",
    "cadmium": "cd", "beryllium": "be", "teflon": "ptfe", "quartz": "sio2", "glass": "sio2", "h2o": "water",
    "polypropylene": "pp", "ordinary-concrete": "concrete",
}


def resolve_material(name: str) -> Material:
    """Return the registry entry for a material name or alias; refuse unknown names clearly."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in MATERIALS:
        known = ", ".join(sorted(k for k in MATERIALS if k not in VALIDATION_ONLY))
        raise ValidationError(f"unknown material {name!r}; known materials: {known}")
    return MATERIALS[key]


def _physics_file(name: str):
    return resources.files("vital_desktop").joinpath("resources", "physics", name)


@functools.cache
def read_table(file: str) -> np.ndarray:
    """The raw XCOM rows of one material (energy MeV + 6 coefficients), read once per process."""
    with _physics_file(file).open("r", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        rows = [[float(x) for x in row] for row in reader if row]
    return np.asarray(rows, dtype=np.float64)


def _tables_by_element(file: str) -> dict[str, np.ndarray]:
    """A per-element data file's rows (column 1 the symbol, columns 3.. the values), by element."""
    with _physics_file(file).open("r", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        by_symbol: dict[str, list[list[float]]] = {}
        for row in reader:
            by_symbol.setdefault(row[1], []).append([float(x) for x in row[3:]])
    return {k: np.asarray(v) for k, v in by_symbol.items()}


@functools.cache
def _element_tables() -> dict[str, np.ndarray]:
    return _tables_by_element("elements_kshell.csv")


def interpolate_table(table: np.ndarray, energies_mev: np.ndarray) -> np.ndarray:
    """Coefficients (cm^2/g) at `energies_mev`, as the data README prescribes.

    Returns an array (n, 5): coherent, incoherent, photoelectric, pair (nuclear + electron),
    total with coherent (recomputed as the sum of the interpolated partials).
    At an edge energy the above-edge row is used (`side="right"` finds the bracket so).
    """
    energies = np.asarray(energies_mev, dtype=np.float64)
    grid = table[:, 0]
    upper = np.clip(np.searchsorted(grid, energies, side="right"), 1, len(grid) - 1)
    lower = upper - 1
    e0, e1 = grid[lower], grid[upper]
    out = np.empty((energies.size, 5))
    with np.errstate(divide="ignore", invalid="ignore"):
        t_log = np.log(energies / e0) / np.log(e1 / e0)
        t_lin = (energies - e0) / (e1 - e0)
        for column, target in ((1, 0), (2, 1), (3, 2)):
            y0, y1 = table[lower, column], table[upper, column]
            out[:, target] = np.exp(np.log(y0) + t_log * (np.log(y1) - np.log(y0)))
        pair = np.zeros(energies.size)
        for column in (4, 5):
            y0, y1 = table[lower, column], table[upper, column]
            both = (y0 > 0) & (y1 > 0)
            ln0 = np.log(np.where(both, y0, 1.0))
            loglog = np.exp(ln0 + t_log * (np.log(np.where(both, y1, 1.0)) - ln0))
            pair += np.where(both, loglog, y0 + t_lin * (y1 - y0))
    out[:, 3] = pair
    out[:, 4] = out[:, 0] + out[:, 1] + out[:, 2] + out[:, 3]
    return out


def grid_energies() -> np.ndarray:
    """Energies (MeV) of the kernel's fine grid."""
    return np.exp(LN_E_MIN + D_LN_E * np.arange(GRID_POINTS))


@functools.cache
def _mass_tables(file: str) -> np.ndarray:
    return interpolate_table(read_table(file), grid_energies())


@functools.cache
def _mixture_elements() -> dict[str, np.ndarray]:
    return _tables_by_element("elements_mixtures.csv")


def mixture_table(mass_fractions: tuple[tuple[str, float], ...], energies_mev: np.ndarray) -> np.ndarray:
    """Mass coefficients (n, 5) of a mixture: each element interpolated on its own table (its own
    edges), then summed with its mass fraction (the mixture rule)."""
    elements = _mixture_elements()
    out = np.zeros((np.asarray(energies_mev).size, 5))
    for symbol, fraction in mass_fractions:
        if symbol not in elements:
            raise ValidationError(f"no cross-section table for element {symbol!r} (have {', '.join(elements)})")
        out += fraction * interpolate_table(elements[symbol], energies_mev)
    return out


@functools.cache
def _material_mass(name: str) -> np.ndarray:
    material = MATERIALS[name]
    if material.file == MIXTURE:
        return mixture_table(material.mass_fractions, grid_energies())
    assert material.file is not None
    return _mass_tables(material.file)


def linear_coefficients(material: Material, density_g_cm3: float, *, coherent: bool) -> np.ndarray:
    """The kernel's table for one material: (5, GRID_POINTS) linear coefficients in 1/cm.

    Rows: total (with or without coherent, matching `coherent`), photoelectric, Compton,
    pair, coherent (zero when coherent scattering is switched off).
    """
    out = np.zeros((5, GRID_POINTS))
    if material.name == "vacuum":
        return out
    if material.name == "black":
        out[ROW_TOTAL] = BLACK_MU_PER_CM
        out[ROW_PHOTO] = BLACK_MU_PER_CM
        return out
    if material.name == "absorber":  # exact first-flight checks: attenuation without any scattering
        out[ROW_TOTAL] = density_g_cm3
        out[ROW_PHOTO] = density_g_cm3
        return out
    mass = _material_mass(material.name)
    out[ROW_PHOTO] = mass[:, 2] * density_g_cm3
    out[ROW_COMPTON] = mass[:, 1] * density_g_cm3
    out[ROW_PAIR] = mass[:, 3] * density_g_cm3
    if coherent:
        out[ROW_COHERENT] = mass[:, 0] * density_g_cm3
    out[ROW_TOTAL] = out[ROW_PHOTO] + out[ROW_COMPTON] + out[ROW_PAIR] + out[ROW_COHERENT]
    return out


def _k_edge_mev(table: np.ndarray) -> float | None:
    """The K edge of a pure element: the highest energy that appears twice."""
    energies = table[:, 0]
    repeated = energies[1:][np.diff(energies) == 0.0]
    return float(repeated.max()) if repeated.size else None


@dataclass(frozen=True)
class KShellTable:
    """Per material: up to two elements with K fluorescence, and the probability on the grid
    that a photoabsorption makes that element emit a K X-ray (K-shell share x yield)."""

    edges_mev: np.ndarray  # (2,)
    emission_probability: np.ndarray  # (2, GRID_POINTS)
    alpha_mev: np.ndarray  # (2,)
    beta_mev: np.ndarray  # (2,)
    beta_share: np.ndarray  # (2,)


def k_shell_table(material: Material) -> KShellTable:
    """Which share of photoabsorptions ends in each element's K X-ray.

    For element j with mass fraction w_j: P_j(E) = w_j * tau_j(E) * (1 - 1/J_j) / tau(E) * omega_j
    above the K edge, where tau is the photoelectric coefficient and J_j the K-edge jump ratio of
    the pure element (from the element tables). Elements beyond the first two by K-edge energy
    are ignored (no material here has more than two).
    """
    edges = np.full(2, 1.0e9)
    probability = np.zeros((2, GRID_POINTS))
    alpha = np.zeros(2)
    beta = np.zeros(2)
    share = np.zeros(2)
    if material.file is None:
        return KShellTable(edges, probability, alpha, beta, share)
    elements = _element_tables()
    energies = grid_energies()
    tau_material = _material_mass(material.name)[:, 2]
    slot = 0
    for symbol, fraction in material.mass_fractions:
        if symbol not in K_SHELL or symbol not in elements or slot >= 2:
            continue
        table = elements[symbol]
        edge = _k_edge_mev(table)
        if edge is None:
            continue
        at_edge = np.flatnonzero(table[:, 0] == edge)
        below, above = table[at_edge[0], 3], table[at_edge[-1], 3]
        k_share = 1.0 - below / above
        tau_element = interpolate_table(table, energies)[:, 2]
        data = K_SHELL[symbol]
        p = np.where(energies >= edge, fraction * tau_element * k_share / tau_material, 0.0)
        probability[slot] = np.clip(p, 0.0, 1.0) * data.fluorescence_yield
        edges[slot] = edge
        alpha[slot] = data.k_alpha_kev / 1000.0
        beta[slot] = data.k_beta_kev / 1000.0
        share[slot] = data.beta_share
        slot += 1
    return KShellTable(edges, probability, alpha, beta, share)


def coherent_screening_length_angstrom(material: Material) -> float:
    """Thomas-Fermi screening length a = 0.885 a0 Z^-1/3 used by the approximate form factor."""
    if material.effective_z <= 0:
        return 0.0
    return 0.885 * 0.529177 / material.effective_z ** (1.0 / 3.0)
