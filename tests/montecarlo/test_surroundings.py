"""Sources and surroundings labs use: absorbers between source and detector, an off-axis disk, a
closed shield around everything; checked against exact integrals or analog emission, and volumes
that do not nest refused with the field named. Bound: 4 sigma of the batch estimates."""

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
    Shield,
    SimulationConfig,
    Source,
    simulate,
    simulate_whole_decays,
    validate,
)

VACUUM = Options(medium="vacuum", coherent=False, k_xray_escape=False, spectrum_bins=64)


def _black(radius: float = 2.0, height: float = 3.0) -> Detector:
    return Detector(name="black", material="black", radius_cm=radius, height_cm=height)


def test_absorber_transmission_matches_the_exact_integral() -> None:
    mu, t, gap, d, r = 0.8, 0.5, 1.0, 5.0, 2.0
    config = SimulationConfig(detector=_black(r), source=Source(kind="point", distance_cm=d), lines=(Line(662.0),),
                              absorbers=(Absorber(material="absorber", density_g_cm3=mu, thickness_cm=t,
                                                  radius_cm=10.0, gap_cm=gap),), options=VACUUM)
    result = simulate(config, histories=300_000, seed=61, workers=2)
    c_max = d / math.hypot(d, r)
    c = c_max + (1 - c_max) * (np.arange(20_000) + 0.5) / 20_000
    expected = 0.5 * (1 - c_max) * float(np.mean(np.exp(-mu * t / c)))
    est = result.lines[0].total_efficiency
    assert abs(est.value - expected) <= 4 * est.sigma, (est, expected)
    assert 0.5 * (1 - c_max) - expected > 20 * est.sigma  # the absorber attenuates


def _point_fraction_off_axis(rho: float, d: float, radius: float) -> float:
    """Omega/4pi of a disk of `radius` seen from a point at lateral offset rho < radius, height d."""
    phi = np.linspace(0.0, 2.0 * np.pi, 4097)[:-1]
    edge = -rho * np.cos(phi) + np.sqrt(radius**2 - (rho * np.sin(phi)) ** 2)
    return float(np.mean(1.0 - d / np.sqrt(d**2 + edge**2)) * 2.0 * np.pi / (4.0 * np.pi))


def test_off_axis_disk_matches_the_average_over_its_points() -> None:
    offset, src_r, d, r = 0.8, 0.6, 3.0, 2.0
    config = SimulationConfig(detector=_black(r), lines=(Line(662.0),), options=VACUUM,
                              source=Source(kind="disk", distance_cm=d, radius_cm=src_r, offset_cm=offset))
    est = simulate(config, histories=300_000, seed=62, workers=2).lines[0].total_efficiency
    nodes, weights = np.polynomial.legendre.leggauss(24)
    s_r = 0.5 * src_r * (nodes + 1)
    angles = np.linspace(0, 2 * np.pi, 97)[:-1]
    total = 0.0
    for rr, w in zip(s_r, weights, strict=True):
        vals = [_point_fraction_off_axis(math.hypot(offset + rr * math.cos(a), rr * math.sin(a)), d, r)
                for a in angles]
        total += w * rr * float(np.mean(vals))
    expected = total * 0.5 * src_r * 2.0 / src_r**2
    assert abs(est.value - expected) <= 4 * est.sigma, (est, expected)
    coaxial = simulate(SimulationConfig(detector=_black(r), lines=(Line(662.0),), options=VACUUM,
                                        source=Source(kind="disk", distance_cm=d, radius_cm=src_r)),
                       histories=100_000, seed=63).lines[0].total_efficiency
    assert coaxial.value - est.value > 10 * est.sigma


def test_shield_backscatter_is_unbiased_and_visible() -> None:
    base = dict(detector=Detector(name="nai", material="nai", radius_cm=2.54, height_cm=5.08), lines=(Line(662.0),),
                source=Source(kind="point", distance_cm=3.0))
    shield = Shield(material="pb", wall_cm=5.0, clearance_cm=2.0)
    rates = {}
    for vr in (True, False):
        opts = Options(medium="air", variance_reduction=vr, spectrum_bins=64)
        rates[vr] = simulate(SimulationConfig(**base, shield=shield, options=opts), histories=300_000, seed=64,
                             workers=2).lines[0].total_efficiency
    a, b = rates[True], rates[False]
    assert abs(a.value - b.value) <= 4 * math.hypot(a.sigma, b.sigma), (a, b)
    open_air = simulate(SimulationConfig(**base, options=Options(medium="air", spectrum_bins=64)), histories=300_000,
                        seed=65, workers=2).lines[0].total_efficiency
    assert a.value - open_air.value > 5 * math.hypot(a.sigma, open_air.sigma)  # scatter off the walls adds counts


def test_whole_decays_run_inside_a_shield_with_a_filter() -> None:
    config = SimulationConfig(detector=_black(), source=Source(kind="point", distance_cm=4.0), lines=(Line(1332.5),),
                              nuclide="Co-60", mode="whole_decay", shield=Shield(material="fe", wall_cm=2.0),
                              absorbers=(Absorber(material="cu", thickness_cm=0.2, gap_cm=0.5),),
                              options=Options(medium="air", spectrum_bins=64))
    result = simulate_whole_decays(config, histories=20_000, seed=66, workers=2)
    assert result.energy_balance_max_mev < 1e-9 and result.counts_per_decay.value > 0


@pytest.mark.parametrize("change, message", [
    ({"absorbers": (Absorber(material="pb", thickness_cm=2.0, gap_cm=4.0),)}, "overlaps the source"),
    ({"absorbers": (Absorber(material="pb", thickness_cm=1.0), Absorber(material="cu", thickness_cm=0.5,
                                                                          gap_cm=0.5))}, "overlaps absorber 1"),
    ({"absorbers": (Absorber(material="pb", thickness_cm=-1.0),)}, "thickness"),
    ({"absorbers": (Absorber(material="unobtainium", thickness_cm=1.0),)}, "unknown material"),
    ({"shield": Shield(material="pb", wall_cm=5.0, inner_radius_cm=1.0)}, "must nest"),
    ({"shield": Shield(material="pb", wall_cm=0.0)}, "shield wall"),
    ({"source": Source(kind="marinelli", distance_cm=0.0, radius_cm=5.0, height_cm=6.0, well_radius_cm=2.5,
                       well_depth_cm=3.0, offset_cm=1.0)}, "offset must be 0"),
])
def test_volumes_that_do_not_nest_or_overlap_are_refused(change: dict, message: str) -> None:
    config = SimulationConfig(**{"detector": _black(), "source": Source(kind="point", distance_cm=5.0),
                                 "lines": (Line(662.0),), **change})
    with pytest.raises(ValidationError, match=message):
        validate(config)


def test_cli_absorber_and_shield(small_site, monkeypatch, capsys) -> None:
    import json

    from tests.conftest import PASSWORDS
    from vital_desktop.cli import main

    small_site.store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    base = ["--home", str(small_site.home), "--json", "mc", "run", "--detector", "nai-2x2", "--energy-kev", "662",
            "--distance-cm", "5", "--histories", "2e4"]
    code = main([*base, "--absorber", "cu:0.3:4:1", "--shield", "pb:5"])
    out = capsys.readouterr()
    assert code == 0, out.err
    config = json.loads(out.out)["config"]
    assert config["absorbers"][0]["material"] == "cu" and config["shield"]["wall_cm"] == 5.0
    code = main([*base, "--absorber", "cu:9"])
    err = capsys.readouterr().err
    assert code != 0 and "overlaps the source" in err
