"""Marinelli beakers and off-axis volume sources.

The beaker (a region with a hole: the re-entrant well around the end cap) is checked against an
independent integral of the first-flight efficiency over the beaker's contents: a crystal, contents
and walls of a pure photoabsorber (attenuation without scattering, so only first flights count),
vacuum around: the efficiency is the volume average of
integral dOmega/4pi exp(-mu_c L_contents - mu_w L_wall) (1 - exp(-mu_x L_crystal)).
The integral is a product Gauss-Legendre quadrature over the contents' volume and a
(cos theta, phi) grid of directions, with chord lengths through each cylinder written here from
scratch (numpy), so it shares no code with the kernel. Bound: 4 sigma of the run's batch estimate
plus the quadrature's own error (estimated from a coarser grid).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.montecarlo import (
    Absorber,
    Detector,
    Line,
    Options,
    SimulationConfig,
    Source,
    detector_preset,
    simulate,
    validate,
)
from vital_desktop.montecarlo.config import source_preset, source_presets
from vital_desktop.montecarlo.reference import simulate_reference

VACUUM = Options(medium="vacuum", coherent=False, k_xray_escape=False, spectrum_bins=64)
CRYSTAL_R, CRYSTAL_H = 2.0, 3.0
MU_CONTENTS, MU_WALL, MU_CRYSTAL = 0.15, 1.0, 0.5  # 1/cm ("absorber" material: mu = density x 1 cm2/g)
BEAKER = dict(radius_cm=4.0, height_cm=6.0, well_radius_cm=2.3, well_depth_cm=3.5, wall_cm=0.2)
GAP = 0.3


def _chord(px, pz, ux, uy, uz, t_max, radius, z_lo, z_hi):
    """Length of the ray p + t u, 0 <= t <= t_max, inside a cylinder on the z axis (point at y = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (z_lo - pz) / uz
        t2 = (z_hi - pz) / uz
        lo = np.where(uz == 0, np.where((pz >= z_lo) & (pz <= z_hi), -np.inf, np.inf), np.minimum(t1, t2))
        hi = np.where(uz == 0, np.where((pz >= z_lo) & (pz <= z_hi), np.inf, -np.inf), np.maximum(t1, t2))
        a = ux * ux + uy * uy
        b = px * ux
        c = px * px - radius * radius
        disc = b * b - a * c
        sq = np.sqrt(np.maximum(disc, 0.0))
        r_lo = np.where(a > 0, (-b - sq) / a, np.where(c <= 0, -np.inf, np.inf))
        r_hi = np.where(a > 0, (-b + sq) / a, np.where(c <= 0, np.inf, -np.inf))
        r_lo = np.where((a > 0) & (disc <= 0), np.inf, r_lo)
    start = np.maximum(np.maximum(lo, r_lo), 0.0)
    end = np.minimum(np.minimum(hi, r_hi), t_max)
    return np.maximum(end - start, 0.0), start


def first_flight_integral(n_points: int, n_cos: int, n_phi: int) -> float:
    """Volume average over the contents of the uncollided fraction of photons reaching the crystal."""
    b = BEAKER
    big_r, h, r_w, d_w, t = b["radius_cm"], b["height_cm"], b["well_radius_cm"], b["well_depth_cm"], b["wall_cm"]
    z_well = -GAP
    z_rim = z_well + d_w
    contents = (big_r, z_rim - t - h, z_rim - t)
    contents_in_well_wall = (r_w + t, z_well - t, z_rim - t)
    outer = (big_r + t, z_rim - 2 * t - h, z_rim)
    outer_in_well = (r_w, z_well, z_rim)
    # directions: midpoints in cos(theta) and phi (phi over [0, pi]: the problem is mirror symmetric in y)
    cos_t = -1 + (np.arange(n_cos) + 0.5) * 2 / n_cos
    phi = (np.arange(n_phi) + 0.5) * np.pi / n_phi
    cc, pp = np.meshgrid(cos_t, phi, indexing="ij")
    sin_t = np.sqrt(1 - cc**2)
    ux, uy, uz = (sin_t * np.cos(pp)).ravel(), (sin_t * np.sin(pp)).ravel(), cc.ravel()
    # contents: a disk below the well (rho 0..R) and an annulus around it (rho r_w + t..R)
    # (split where the integrand has a kink: the crystal's radius below it, its front-face plane beside it)
    blocks = [(0.0, CRYSTAL_R, contents[1], z_well - t), (CRYSTAL_R, big_r, contents[1], z_well - t),
              (r_w + t, big_r, z_well - t, 0.0), (r_w + t, big_r, 0.0, contents[2])]
    nodes, weights = np.polynomial.legendre.leggauss(n_points)
    total, volume = 0.0, 0.0
    for rho_lo, rho_hi, z_lo, z_hi in blocks:
        rho = rho_lo + (rho_hi - rho_lo) * (nodes + 1) / 2
        w_rho = weights * (rho_hi - rho_lo) / 2 * rho
        zz = z_lo + (z_hi - z_lo) * (nodes + 1) / 2
        w_z = weights * (z_hi - z_lo) / 2
        for i, px in enumerate(rho):
            for j, pz in enumerate(zz):
                inside_crystal, t_hit = _chord(px, pz, ux, uy, uz, np.inf, CRYSTAL_R, 0.0, CRYSTAL_H)
                hits = inside_crystal > 0
                t_max = np.where(hits, t_hit, 0.0)
                l_c = (_chord(px, pz, ux, uy, uz, t_max, *contents)[0]
                       - _chord(px, pz, ux, uy, uz, t_max, *contents_in_well_wall)[0])
                l_beaker = (_chord(px, pz, ux, uy, uz, t_max, *outer)[0]
                            - _chord(px, pz, ux, uy, uz, t_max, *outer_in_well)[0])
                l_wall = l_beaker - l_c
                seen = np.where(hits, np.exp(-MU_CONTENTS * l_c - MU_WALL * l_wall)
                                * -np.expm1(-MU_CRYSTAL * inside_crystal), 0.0)
                total += w_rho[i] * w_z[j] * float(seen.mean())
                volume += w_rho[i] * w_z[j]
    return total / volume


def _beaker_config(**options) -> SimulationConfig:
    detector = Detector(name="absorber", material="absorber", density_g_cm3=MU_CRYSTAL, radius_cm=CRYSTAL_R,
                        height_cm=CRYSTAL_H)
    source = Source(kind="marinelli", distance_cm=GAP, material="absorber", density_g_cm3=MU_CONTENTS,
                    wall_material="absorber", **BEAKER)
    return SimulationConfig(detector=detector, source=source, lines=(Line(662.0),), options=VACUUM, **options)


@pytest.mark.slow
def test_marinelli_matches_the_first_flight_integral_over_its_volume() -> None:
    fine = first_flight_integral(6, 240, 120)
    coarse = first_flight_integral(6, 160, 80)
    quadrature_error = abs(fine - coarse)
    config = _beaker_config()
    est = simulate(config, histories=400_000, seed=81, workers=2).lines[0].total_efficiency
    assert quadrature_error < est.sigma, (fine, coarse, est)
    assert abs(est.value - fine) <= 4 * est.sigma + quadrature_error, (est, fine)
    assert abs(config.source.contents_volume_cm3 - (math.pi * 16 * 6 - math.pi * 2.5**2 * 3.5)) < 1e-9


def test_marinelli_tracking_agrees_with_the_numpy_reference() -> None:
    """Real materials (water in a plastic beaker on a canned NaI, air): the kernel's tree walk with a
    child that sticks out of its parent against the reference's always-measure-every-surface walk."""
    config = SimulationConfig(detector=detector_preset("nai-2x2"), lines=(Line(300.0),),
                              source=source_preset("marinelli-0.5l"),
                              options=Options(spectrum_bins=64))
    validate(config)
    kernel = simulate(config, histories=60_000, seed=82).lines[0]
    reference = simulate_reference(config, histories=60_000, seed=83)
    for name in ("peak_efficiency", "total_efficiency"):
        est = getattr(kernel, name)
        assert abs(est.value - reference[name]) <= 4 * math.sqrt(2) * est.sigma, (name, est, reference[name])


def test_presets_have_their_nominal_volume() -> None:
    presets = source_presets()
    assert {"marinelli-0.5l", "marinelli-1l"} <= set(presets)
    for name, litres in (("marinelli-0.5l", 0.5), ("marinelli-1l", 1.0)):
        source = source_preset(name)
        assert source.kind == "marinelli"
        assert abs(source.contents_volume_cm3 / 1000.0 - litres) / litres < 0.03, (name, source.contents_volume_cm3)
        validate(SimulationConfig(detector=detector_preset("nai-3x3"), source=source, lines=(Line(662.0),)))


def _point_fraction_off_axis(rho: float, d: float, radius: float) -> float:
    """Omega/4pi of a disk of `radius` seen from a point at lateral offset rho < radius, height d."""
    phi = np.linspace(0.0, 2.0 * np.pi, 4097)[:-1]
    edge = -rho * np.cos(phi) + np.sqrt(radius**2 - (rho * np.sin(phi)) ** 2)
    return float(np.mean(1.0 - d / np.sqrt(d**2 + edge**2)) / 2.0)


def test_off_axis_volume_matches_the_average_over_its_points() -> None:
    """A cylinder with its axis 0.8 cm off the detector axis, wholly within the crystal's radius, in
    front of a black crystal in vacuum: every point sees only the front face (a ray from inside the
    radius that reaches the side crosses the front face first), so the efficiency is the volume
    average of the points' disk solid angles."""
    offset, radius, height, d = 0.8, 1.0, 1.0, 2.0
    detector = Detector(name="black", material="black", radius_cm=CRYSTAL_R, height_cm=CRYSTAL_H)
    config = SimulationConfig(detector=detector, lines=(Line(662.0),), options=VACUUM,
                              source=Source(kind="volume", distance_cm=d, radius_cm=radius, height_cm=height,
                                            offset_cm=offset, material="vacuum"))
    est = simulate(config, histories=300_000, seed=84, workers=2).lines[0].total_efficiency
    nodes, weights = np.polynomial.legendre.leggauss(12)
    s_r = radius * (nodes + 1) / 2
    s_phi = np.pi * (nodes + 1)
    s_z = d + height * (nodes + 1) / 2
    total = 0.0
    for i, r in enumerate(s_r):
        for j, ph in enumerate(s_phi):
            rho = math.hypot(offset + r * math.cos(ph), r * math.sin(ph))
            for k, z in enumerate(s_z):
                total += weights[i] * weights[j] * weights[k] * r * _point_fraction_off_axis(rho, z, CRYSTAL_R)
    # the weights' Jacobians: r over [0, R] (R/2), phi over [0, 2 pi] (pi), z over [d, d + h] (h/2)
    expected = total * (radius / 2) * np.pi * (height / 2) / (math.pi * radius**2 * height)
    assert abs(est.value - expected) <= 4 * est.sigma + 2e-4, (est, expected)
    # off the axis sees less than on the axis
    coaxial = simulate(SimulationConfig(detector=detector, lines=(Line(662.0),), options=VACUUM,
                                        source=Source(kind="volume", distance_cm=d, radius_cm=radius,
                                                      height_cm=height, material="vacuum")),
                       histories=100_000, seed=85).lines[0].total_efficiency
    assert coaxial.value - est.value > 4 * math.hypot(coaxial.sigma, est.sigma)


@pytest.mark.parametrize("change, message", [
    ({"well_radius_cm": 1.9}, "does not fit in the Marinelli well"),
    ({"well_radius_cm": 3.9}, "must nest"),
    ({"well_depth_cm": 6.5}, "must nest"),
    ({"well_depth_cm": 0.1}, "must exceed the wall"),
    ({"wall_cm": -0.1}, "must not be negative"),
    ({"well_depth_cm": 0.0}, "well depth"),
    ({"offset_cm": 1.0}, "offset must be 0"),
    ({"distance_cm": -0.5}, "negative"),
])
def test_marinelli_that_does_not_nest_is_refused(change: dict, message: str) -> None:
    base = dict(kind="marinelli", distance_cm=0.0, material="water", **BEAKER)
    config = SimulationConfig(detector=Detector(name="d", material="nai", radius_cm=2.0, height_cm=3.0),
                              source=Source(**{**base, **change}), lines=(Line(662.0),))
    with pytest.raises(ValidationError, match=message):
        validate(config)


def test_marinelli_with_an_absorber_or_a_point_with_a_well_is_refused() -> None:
    config = _beaker_config(absorbers=(Absorber(material="cu", thickness_cm=0.1),))
    with pytest.raises(ValidationError, match="Marinelli well"):
        validate(config)
    with pytest.raises(ValidationError, match="belong to a Marinelli beaker"):
        validate(SimulationConfig(detector=detector_preset("nai-2x2"), lines=(Line(662.0),),
                                  source=Source(kind="point", distance_cm=5.0, well_radius_cm=3.0)))


def _cli(home, *argv, monkeypatch, capsys):
    import json

    from tests.conftest import PASSWORDS
    from vital_desktop.cli import main

    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    code = main(["--home", str(home), "--json", *argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


def test_cli_marinelli_preset_off_axis_volume_and_bad_input(small_site, monkeypatch, capsys) -> None:
    from tests.conftest import snapshot_tables

    small_site.store.close()
    home = small_site.home
    code, run, err = _cli(home, "mc", "run", "--detector", "nai-3x3", "--source-preset", "marinelli-1l",
                          "--source-density", "1.2", "--energy-kev", "662", "--histories", "2e4",
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    source = run["config"]["source"]
    assert source["kind"] == "marinelli" and source["well_radius_cm"] == 4.2 and source["density_g_cm3"] == 1.2
    assert 0 < run["results"]["lines"][0]["peak_efficiency"]["value"] < run["results"]["lines"][0][
        "total_efficiency"]["value"]
    code, run, err = _cli(home, "mc", "run", "--detector", "nai-2x2", "--source", "volume", "--offset-cm", "3",
                          "--source-radius-cm", "1", "--source-height-cm", "2", "--distance-cm", "1",
                          "--energy-kev", "662", "--histories", "2e4", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert run["config"]["source"]["offset_cm"] == 3.0
    code, presets, _ = _cli(home, "mc", "presets", monkeypatch=monkeypatch, capsys=capsys)
    assert "marinelli-0.5l" in presets["sources"]
    from vital_desktop.store import open_store

    store = open_store(home)
    before = snapshot_tables(store)
    store.close()
    for argv, message in [
        (["--source", "marinelli", "--source-radius-cm", "6", "--source-height-cm", "10"], "Marinelli well radius"),
        (["--source-preset", "marinelli-1l", "--detector", "nai-3x3", "--well-radius-cm", "3"], "does not fit"),
        (["--source-preset", "beaker-9l"], "unknown source preset"),
        (["--source-preset", "marinelli-1l", "--wall-cm", "-0.2"], "must not be negative"),
        (["--backing", "fe:x"], "--backing"),
        (["--source", "point", "--well-depth-cm", "2"], "belong to a Marinelli beaker"),
    ]:
        code, out, err = _cli(home, "mc", "run", *argv, "--energy-kev", "662", "--histories", "1000",
                              monkeypatch=monkeypatch, capsys=capsys)
        assert code != 0 and out is None and message in err, (argv, err)
    store = open_store(home)
    assert snapshot_tables(store) == before
    store.close()


def test_site_source_preset_is_saved_used_and_bad_ones_refused(small_site, monkeypatch, capsys) -> None:
    from tests.conftest import snapshot_tables
    from vital_desktop.store import open_store

    small_site.store.close()
    home = small_site.home
    code, saved, err = _cli(home, "mc", "save-source", "lab-beaker-2l", "--source", "marinelli",
                            "--source-radius-cm", "7.5", "--source-height-cm", "14", "--well-radius-cm", "4.3",
                            "--well-depth-cm", "8", "--wall-cm", "0.25", "--wall-material", "pp",
                            "--distance-cm", "0", "--note", "drawing LB-2000 rev C",
                            monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert saved["source"]["kind"] == "marinelli"
    code, presets, _ = _cli(home, "mc", "presets", monkeypatch=monkeypatch, capsys=capsys)
    assert presets["site_sources"]["lab-beaker-2l"]["provenance"]["note"] == "drawing LB-2000 rev C"
    code, run, err = _cli(home, "mc", "run", "--detector", "nai-3x3", "--source-preset", "lab-beaker-2l",
                          "--energy-kev", "662", "--histories", "2e4", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert run["config"]["source"]["radius_cm"] == 7.5 and run["config"]["source"]["wall_material"] == "pp"
    store = open_store(home)
    before = snapshot_tables(store)
    store.close()
    for argv, message in [
        (["lab-beaker-2l", "--source", "point"], "exists already"),
        (["marinelli-1l", "--source", "point"], "shipped preset"),
        (["bad", "--source", "marinelli", "--source-radius-cm", "3", "--source-height-cm", "5",
          "--well-radius-cm", "4", "--well-depth-cm", "2"], "must nest"),
        (["bad", "--source", "volume", "--source-radius-cm", "-1", "--source-height-cm", "2"], "radius"),
    ]:
        code, out, err = _cli(home, "mc", "save-source", *argv, monkeypatch=monkeypatch, capsys=capsys)
        assert code != 0 and out is None and message in err, (argv, err)
    monkeypatch.setenv("VITAL_USER", "inspector")
    from tests.conftest import PASSWORDS
    from vital_desktop.cli import main

    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["inspector"])
    assert main(["--home", str(home), "mc", "save-source", "mine", "--source", "point"]) != 0
    capsys.readouterr()
    store = open_store(home)
    assert snapshot_tables(store) == before
    store.close()
