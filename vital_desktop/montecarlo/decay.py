"""Decay schemes: read, check and flatten the level schemes whole-decay transport samples from.

A decay is sampled as a walk down the daughter's level scheme: a branch (beta-, beta+ or EC)
feeds a level; each level de-excites by one of its transitions (branching by transition
intensity T = I_gamma (1 + alpha)), which emits the gamma ray with probability 1 / (1 + alpha)
or else converts (and, with probability alpha_K / (1 + alpha) x omega_K, a K X-ray of the
daughter follows); the walk goes on from the lower level until the ground state. A beta+
branch adds a back-to-back pair of 511 keV annihilation photons; an EC branch adds a K X-ray
with probability p_K x omega_K. Angular correlations between cascade photons are not
modelled (directions are independent and isotropic; the pair is back to back).

`decay_scheme(name)` checks a scheme before any work (branches sum to one within tolerance,
levels exist, transitions go down, probabilities in range) and returns the flat numpy tables
the kernel reads. `implied_intensities` propagates the branches down the scheme, so a test can
compare what the cascades imply with the evaluated emission intensities.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from dataclasses import dataclass
from importlib import resources

import numpy as np

from vital_desktop.core.errors import ValidationError

ELECTRON_MASS_KEV = 510.99895
MODES = ("beta-", "beta+", "ec")
#: Two peaks closer than this (in the raw, unbroadened deposit) are one peak.
PEAK_WINDOW_KEV = 0.2


@dataclass(frozen=True)
class GammaLine:
    """One gamma line of a scheme: energy, evaluated emission intensity per decay and its uncertainty."""

    energy_kev: float
    intensity: float
    sigma: float
    ref: str


@dataclass(frozen=True)
class DecayTables:
    """The flat arrays of one scheme, as the kernel reads them (energies in MeV)."""

    br_cum: np.ndarray  # cumulative branch probabilities (last == 1)
    br_level: np.ndarray  # level index each branch feeds
    br_pair: np.ndarray  # 1.0 for beta+ (an annihilation pair), else 0.0
    br_kx: np.ndarray  # probability of a K X-ray after the branch (EC: p_K omega_K)
    br_dau: np.ndarray  # daughter index of the branch (for the X-ray energies)
    lv_first: np.ndarray  # first transition of each level
    lv_n: np.ndarray  # number of transitions of each level (0: a ground state)
    lv_dau: np.ndarray
    tr_cum: np.ndarray  # cumulative branching within the level
    tr_to: np.ndarray
    tr_e: np.ndarray  # gamma energy (MeV)
    tr_pg: np.ndarray  # 1 / (1 + alpha)
    tr_pkx: np.ndarray  # alpha_K omega_K / (1 + alpha)
    dau_xa: np.ndarray  # mean K-alpha energy (MeV)
    dau_xb: np.ndarray  # mean K-beta energy (MeV)
    dau_xshare: np.ndarray  # K-beta share


@dataclass(frozen=True)
class DecayScheme:
    nuclide: str
    evaluation: str
    gamma_lines: tuple[GammaLine, ...]
    annihilation: GammaLine | None
    tables: DecayTables
    sum_peaks_kev: tuple[float, ...]
    omitted: str
    #: gamma-gamma angular correlation of consecutive cascade gammas, W = 1 + A22 P2 + A44 P4 (or None)
    angular_correlation: tuple[float, float] | None = None

    @property
    def max_photons(self) -> int:
        return 2 * (int(self.tables.lv_n.size) + 2)


def _resource() -> dict:
    with resources.files("vital_desktop").joinpath("resources", "decays.json").open("r", encoding="utf-8") as handle:
        return json.load(handle)


@functools.lru_cache(maxsize=1)
def decay_library() -> dict:
    """The decay-data resource as shipped (with its sources and tolerances)."""
    return _resource()


def _key(name: str) -> str:
    return str(name).lower().replace("-", "").replace(" ", "")


def scheme_name(name: str) -> str | None:
    """The library's spelling of `name` if it has a decay scheme, else None."""
    lookup = {_key(k): k for k in decay_library()["nuclides"]}
    return lookup.get(_key(name))


def has_scheme(name: str | None) -> bool:
    return name is not None and scheme_name(name) is not None


def _num(value, what: str, *, low: float = 0.0, high: float = math.inf) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(x) or x < low or x > high:
        raise ValidationError(f"{what} must be between {low:g} and {high:g}, got {value!r}")
    return x


def build_scheme(nuclide: str, data: dict, tolerances: dict | None = None) -> DecayScheme:
    """Check one scheme (as in the resource) and flatten it; refuse bad data naming the field."""
    tol = {"branch_sum": 0.005, **(tolerances or {})}
    where = f"decay data of {nuclide}"
    branches = data.get("branches") or []
    transitions = data.get("transitions") or []
    if not branches:
        raise ValidationError(f"{where}: no decay branches")
    daughters_x = data.get("daughters") or {}
    # levels: every branch target and transition end, per daughter
    levels: dict[tuple[str, float], int] = {}

    def level(daughter: str, energy: float) -> int:
        key = (daughter, round(energy, 3))
        if key not in levels:
            levels[key] = len(levels)
        return levels[key]

    total = 0.0
    for i, b in enumerate(branches):
        field = f"{where}: branch {i + 1}"
        if b.get("mode") not in MODES:
            raise ValidationError(f"{field} mode must be one of {', '.join(MODES)}, got {b.get('mode')!r}")
        p = _num(b.get("probability"), f"{field} probability", high=1.0)
        _num(b.get("level_kev"), f"{field} level_kev")
        _num(b.get("p_k", 0.0), f"{field} p_k", high=1.0)
        total += p
    if abs(total - 1.0) > tol["branch_sum"]:
        raise ValidationError(
            f"{where}: branch probabilities sum to {total:.5f}, not 1 within {tol['branch_sum']:g}")
    for i, t in enumerate(transitions):
        field = f"{where}: transition {i + 1} ({t.get('gamma_kev')} keV)"
        hi = _num(t.get("from_kev"), f"{field} from_kev")
        lo = _num(t.get("to_kev"), f"{field} to_kev")
        if hi <= lo:
            raise ValidationError(f"{field} must go down: from_kev {hi:g} <= to_kev {lo:g}")
        _num(t.get("gamma_kev"), f"{field} gamma_kev", low=1e-3)
        _num(t.get("gamma_intensity"), f"{field} gamma_intensity", high=1.0)
        alpha = _num(t.get("alpha", 0.0), f"{field} alpha")
        _num(t.get("alpha_k", 0.0), f"{field} alpha_k", high=alpha)
    for b in branches:
        level(b["daughter"], float(b["level_kev"]))
    for t in transitions:
        level(t["daughter"], float(t["from_kev"]))
        level(t["daughter"], float(t["to_kev"]))
    by_level: dict[int, list[dict]] = {i: [] for i in levels.values()}
    for t in transitions:
        by_level[level(t["daughter"], float(t["from_kev"]))].append(t)
    for (daughter, energy), index in levels.items():
        if energy > 0.0 and not by_level[index]:
            raise ValidationError(f"{where}: level {energy:g} keV of {daughter} has no transition down")
    daughters = sorted({d for d, _ in levels})
    dau_index = {d: i for i, d in enumerate(daughters)}

    def xray(daughter: str) -> tuple[float, float, float, float]:
        x = daughters_x.get(daughter)
        if not x:
            return 0.0, 0.0, 0.0, 0.0
        return (float(x["k_alpha_kev"]) / 1000.0, float(x["k_beta_kev"]) / 1000.0, float(x["k_beta_share"]),
                _num(x["omega_k"], f"{where}: omega_k of {daughter}", high=1.0))

    n_lv = len(levels)
    lv_first = np.zeros(n_lv, dtype=np.int64)
    lv_n = np.zeros(n_lv, dtype=np.int64)
    lv_dau = np.zeros(n_lv, dtype=np.int64)
    tr_cum: list[float] = []
    tr_to: list[int] = []
    tr_e: list[float] = []
    tr_pg: list[float] = []
    tr_pkx: list[float] = []
    for (daughter, _energy), index in sorted(levels.items(), key=lambda kv: kv[1]):
        outs = by_level[index]
        lv_first[index] = len(tr_to)
        lv_n[index] = len(outs)
        lv_dau[index] = dau_index[daughter]
        weights = [float(t["gamma_intensity"]) * (1.0 + float(t.get("alpha", 0.0))) for t in outs]
        wsum = sum(weights)
        if outs and wsum <= 0.0:
            raise ValidationError(f"{where}: level {_energy:g} keV of {daughter} has only zero-intensity transitions")
        omega = xray(daughter)[3]
        acc = 0.0
        for t, w in zip(outs, weights, strict=False):
            acc += w / wsum
            alpha = float(t.get("alpha", 0.0))
            tr_cum.append(acc)
            tr_to.append(level(daughter, float(t["to_kev"])))
            tr_e.append(float(t["gamma_kev"]) / 1000.0)
            tr_pg.append(1.0 / (1.0 + alpha))
            tr_pkx.append(float(t.get("alpha_k", 0.0)) * omega / (1.0 + alpha))
        if outs:
            tr_cum[-1] = 1.0
    cum = np.cumsum([float(b["probability"]) for b in branches]) / total
    cum[-1] = 1.0
    xs = [xray(d) for d in daughters]
    tables = DecayTables(
        br_cum=cum,
        br_level=np.array([level(b["daughter"], float(b["level_kev"])) for b in branches], dtype=np.int64),
        br_pair=np.array([1.0 if b["mode"] == "beta+" else 0.0 for b in branches]),
        br_kx=np.array([float(b.get("p_k", 0.0)) * xray(b["daughter"])[3] if b["mode"] == "ec" else 0.0
                        for b in branches]),
        br_dau=np.array([dau_index[b["daughter"]] for b in branches], dtype=np.int64),
        lv_first=lv_first, lv_n=lv_n, lv_dau=lv_dau,
        tr_cum=np.array(tr_cum), tr_to=np.array(tr_to, dtype=np.int64), tr_e=np.array(tr_e),
        tr_pg=np.array(tr_pg), tr_pkx=np.array(tr_pkx),
        dau_xa=np.array([x[0] for x in xs]), dau_xb=np.array([x[1] for x in xs]),
        dau_xshare=np.array([x[2] for x in xs]),
    )
    lines = tuple(GammaLine(float(t["gamma_kev"]), float(t["gamma_intensity"]), float(t.get("u", 0.0)),
                            str(t.get("ref", ""))) for t in transitions)
    ann = data.get("annihilation_intensity")
    annihilation = GammaLine(ELECTRON_MASS_KEV, float(ann["value"]), float(ann.get("u", 0.0)), str(ann.get("ref", ""))) \
        if ann else None
    scheme = DecayScheme(nuclide=nuclide, evaluation=str(data.get("evaluation", "")), gamma_lines=lines,
                         annihilation=annihilation, tables=tables, sum_peaks_kev=(), omitted=str(data.get("omitted", "")))
    sums = _sum_peaks(scheme, data)
    correlation = None
    if data.get("angular_correlation"):
        ac = data["angular_correlation"]
        a22 = _num(ac.get("a22"), f"{where}: angular_correlation a22", low=-1.0, high=1.0)
        a44 = _num(ac.get("a44"), f"{where}: angular_correlation a44", low=-1.0, high=1.0)
        if abs(a22) + abs(a44) >= 1.0:
            raise ValidationError(f"{where}: angular_correlation: |a22| + |a44| must be below 1 (W must stay positive)")
        correlation = (a22, a44)
    return DecayScheme(nuclide=nuclide, evaluation=scheme.evaluation, gamma_lines=lines, annihilation=annihilation,
                       tables=tables, sum_peaks_kev=sums, omitted=scheme.omitted, angular_correlation=correlation)


def _paths(tables: DecayTables, level: int) -> list[list[float]]:
    """Every gamma-energy sequence (keV) from `level` to a ground state."""
    n = int(tables.lv_n[level])
    if n == 0:
        return [[]]
    out = []
    first = int(tables.lv_first[level])
    for t in range(first, first + n):
        for rest in _paths(tables, int(tables.tr_to[t])):
            out.append([float(tables.tr_e[t]) * 1000.0, *rest])
    return out


def _sum_peaks(scheme: DecayScheme, data: dict) -> tuple[float, ...]:
    """Energies where two or more photons of one decay add up (gammas and annihilation quanta)."""
    t = scheme.tables
    singles = {round(line.energy_kev, 3) for line in scheme.gamma_lines}
    sums: set[float] = set()
    for b in range(t.br_cum.size):
        extra = [ELECTRON_MASS_KEV, ELECTRON_MASS_KEV] if t.br_pair[b] else []
        for path in _paths(t, int(t.br_level[b])):
            photons = path + extra
            for k in range(2, len(photons) + 1):
                for combo in itertools.combinations(photons, k):
                    sums.add(round(sum(combo), 3))
    out = sorted(e for e in sums if all(abs(e - s) > PEAK_WINDOW_KEV for s in singles))
    return tuple(out)


@functools.lru_cache(maxsize=32)
def decay_scheme(name: str) -> DecayScheme:
    """The checked scheme of `name`; ValidationError for an unknown nuclide or bad data."""
    key = scheme_name(name)
    library = decay_library()
    if key is None:
        raise ValidationError(f"no decay scheme for nuclide {name!r}; schemes: {', '.join(library['nuclides'])}")
    return build_scheme(key, library["nuclides"][key], library.get("tolerances"))


def implied_intensities(scheme: DecayScheme) -> dict[str, float]:
    """Emission intensities per decay that the branches and level branching imply.

    Keys: gamma energies as "%.4f" keV, "annihilation", "k_xray".
    """
    t = scheme.tables
    n_lv = t.lv_n.size
    population = np.zeros(n_lv)
    xray = 0.0
    pair = 0.0
    prev = 0.0
    for b in range(t.br_cum.size):
        p = float(t.br_cum[b]) - prev
        prev = float(t.br_cum[b])
        population[t.br_level[b]] += p
        xray += p * float(t.br_kx[b])
        pair += 2.0 * p * float(t.br_pair[b])
    # levels processed from the top energy down: a transition always goes down in energy
    order = sorted(range(n_lv), key=lambda i: -_level_energy(t, i))
    out: dict[str, float] = {}
    for lv in order:
        first, n = int(t.lv_first[lv]), int(t.lv_n[lv])
        prev_c = 0.0
        for tr in range(first, first + n):
            share = float(t.tr_cum[tr]) - prev_c
            prev_c = float(t.tr_cum[tr])
            rate = population[lv] * share
            population[t.tr_to[tr]] += rate
            key = f"{float(t.tr_e[tr]) * 1000.0:.4f}"
            out[key] = out.get(key, 0.0) + rate * float(t.tr_pg[tr])
            xray += rate * float(t.tr_pkx[tr])
    out["annihilation"] = pair
    out["k_xray"] = xray
    return out


def _level_energy(t: DecayTables, level: int) -> float:
    # the energy of a level is the sum of the gammas on any path to the ground (exact up to recoil)
    paths = _paths(t, level)
    return sum(paths[0]) if paths else 0.0
