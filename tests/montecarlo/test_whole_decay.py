"""Whole decays: decay data checks, true-coincidence summing against exact relations, bad input.

Statistical bound of every Monte Carlo comparison here: the difference from the exact relation
is within 4 combined standard deviations (batch estimates of both runs, added in quadrature),
and the effect itself is larger than 10 of them (so a missing effect fails the test).
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.montecarlo import Line, Options, SimulationConfig, Source, make_config, simulate_whole_decays
from vital_desktop.montecarlo.config import detector_preset
from vital_desktop.montecarlo.decay import build_scheme, decay_library, decay_scheme, implied_intensities

FAST = Options(medium="vacuum", coherent=False, k_xray_escape=False, spectrum_bins=256)
K = 4.0


def _bare(name: str = "nai-2x2"):
    return replace(detector_preset(name), housing=())


def _config(nuclide: str, distance_cm: float = 1.0) -> SimulationConfig:
    return make_config(detector=_bare(), source=Source(kind="point", distance_cm=distance_cm), nuclide=nuclide,
                       options=FAST)


def _within(value: float, sigma: float, expected: float, expected_sigma: float = 0.0) -> None:
    s = math.hypot(sigma, expected_sigma)
    assert abs(value - expected) <= K * s, f"{value:.5g} +- {sigma:.2g} vs {expected:.5g} +- {expected_sigma:.2g}"


# --- decay data ------------------------------------------------------------------------------


@pytest.mark.parametrize("nuclide", list(decay_library()["nuclides"]))
def test_cascades_imply_the_evaluated_emission_intensities(nuclide: str) -> None:
    tol = decay_library()["tolerances"]
    scheme = decay_scheme(nuclide)
    implied = implied_intensities(scheme)
    for line in scheme.gamma_lines:
        got = implied[f"{line.energy_kev:.4f}"]
        allowed = max(tol["intensity_relative"] * line.intensity, tol["intensity_absolute"], 3 * line.sigma)
        assert abs(got - line.intensity) <= allowed, f"{nuclide} {line.energy_kev} keV: {got:.5f} vs {line.intensity}"
    if scheme.annihilation is not None:
        assert implied["annihilation"] == pytest.approx(scheme.annihilation.intensity,
                                                        abs=max(3 * scheme.annihilation.sigma, 1e-3))
    # every value carries its provenance
    data = decay_library()["nuclides"][nuclide]
    for item in data["branches"] + data["transitions"]:
        assert item.get("ref"), item


def test_gamma_intensity_of_the_schemes_is_covered() -> None:
    """The schemes carry the lines of the one-line library (>= 99 % of its gamma intensity)."""
    from vital_desktop.montecarlo import nuclide_library

    for name in decay_library()["nuclides"]:
        scheme = decay_scheme(name)
        lines = nuclide_library().get(name, {}).get("lines", [])
        gammas = [(e, p) for e, p in lines if abs(e - 511.0) > 1]
        carried = sum(p for e, p in gammas if any(abs(e - g.energy_kev) < 0.5 for g in scheme.gamma_lines))
        assert carried >= 0.99 * sum(p for _e, p in gammas), name


def _broken(mutate) -> dict:
    data = copy.deepcopy(decay_library()["nuclides"]["Co-60"])
    mutate(data)
    return data


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["branches"][0].update(probability=0.9), "branch probabilities sum to"),
    (lambda d: d["branches"][0].update(mode="alpha"), "mode must be one of"),
    (lambda d: d["transitions"][0].update(alpha=-1.0), "alpha"),
    (lambda d: d["transitions"][0].update(to_kev=3000.0), "must go down"),
    (lambda d: d["transitions"].pop(1), "has no transition down"),
    (lambda d: d["transitions"][1].update(gamma_intensity="lots"), "gamma_intensity"),
])
def test_bad_decay_data_is_refused_naming_the_field(mutate, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        build_scheme("Co-60", _broken(mutate))
    assert message in info.value.message and "Co-60" in info.value.message


def test_modes_and_refusals() -> None:
    source = Source(kind="point", distance_cm=5.0)
    assert make_config(detector="nai-2x2", source=source, nuclide="co60").mode == "whole_decay"
    per_line = make_config(detector="nai-2x2", source=source, nuclide="Co-60", per_line=True)
    assert per_line.mode == "per_line" and len(per_line.lines) == 2
    assert make_config(detector="nai-2x2", source=source, nuclide="Am-241").mode == "per_line"
    with pytest.raises(ValidationError, match="no decay scheme"):
        make_config(detector="nai-2x2", source=source, nuclide="Am-241", per_line=False)
    with pytest.raises(ValidationError, match="unknown nuclide"):
        make_config(detector="nai-2x2", source=source, nuclide="Xx-999", per_line=False)
    with pytest.raises(ValidationError, match="no decay scheme"):
        from vital_desktop.montecarlo import validate

        validate(SimulationConfig(detector=_bare(), source=source, lines=(Line(662.0),), nuclide="Xx-1",
                                  mode="whole_decay"))


# --- true-coincidence summing against exact relations ------------------------------------------


@pytest.fixture(scope="module")
def co60():
    return simulate_whole_decays(_config("Co-60"), histories=400_000, seed=21, workers=2)


def test_co60_summing_out_equals_the_other_lines_total_efficiency(co60) -> None:
    """Two-photon cascade, no angular correlation: loss of one line = other line's total efficiency."""
    scheme = decay_scheme("Co-60")
    implied = implied_intensities(scheme)
    i1173, i1332 = implied["1173.2280"], implied["1332.4920"]
    alpha_1332 = 1.28e-4
    p1173, p1332 = co60.peak(1173.228), co60.peak(1332.492)
    # share of 1173 keV gammas followed by a 1332 keV gamma, and of 1332 keV gammas preceded by one
    follow = 1.0 / (1.0 + alpha_1332)
    precede = i1173 / (i1332 * (1.0 + alpha_1332))
    for peak, other, share in ((p1173, p1332, follow), (p1332, p1173, precede)):
        expected_area = peak.intensity * peak.peak_efficiency.value
        loss = 1.0 - peak.apparent_area_per_decay.value / expected_area
        loss_sigma = (peak.apparent_area_per_decay.value / expected_area) * math.hypot(
            peak.apparent_area_per_decay.relative, peak.peak_efficiency.relative)
        expected = share * other.total_efficiency.value
        _within(loss, loss_sigma, expected, share * other.total_efficiency.sigma)
        assert loss > 10 * loss_sigma  # the effect is there
        assert peak.tcs_factor.value == pytest.approx(1.0 / (1.0 - loss), rel=1e-9)


def test_co60_sum_peak_area_is_the_product_of_peak_efficiencies(co60) -> None:
    p1173, p1332, s = co60.peak(1173.228), co60.peak(1332.492), co60.peak(2505.72)
    assert s.kind == "sum"
    implied = implied_intensities(decay_scheme("Co-60"))
    expected = implied["1173.2280"] / (1.0 + 1.28e-4) * p1173.peak_efficiency.value * p1332.peak_efficiency.value
    rel = math.hypot(p1173.peak_efficiency.relative, p1332.peak_efficiency.relative)
    _within(s.apparent_area_per_decay.value, s.apparent_area_per_decay.sigma, expected, expected * rel)
    assert s.apparent_area_per_decay.value > 10 * s.apparent_area_per_decay.sigma
    assert co60.energy_balance_max_mev < 1e-9


def test_na22_annihilation_summing() -> None:
    """Back-to-back 511 keV pair: at most one half reaches the crystal from a point in front of it, so
    the pair's total efficiency is twice the single 511 keV photon's."""
    result = simulate_whole_decays(_config("Na-22"), histories=400_000, seed=22, workers=2)
    data = decay_library()["nuclides"]["Na-22"]["branches"]
    to_level = [b for b in data if b["level_kev"] > 0]
    beta_plus_share = sum(b["probability"] for b in to_level if b["mode"] == "beta+") / sum(
        b["probability"] for b in to_level)
    gamma, ann = result.peak(1274.537), result.peak(510.99895)
    expected_area = gamma.intensity * gamma.peak_efficiency.value
    loss = 1.0 - gamma.apparent_area_per_decay.value / expected_area
    loss_sigma = (1.0 - loss) * math.hypot(gamma.apparent_area_per_decay.relative, gamma.peak_efficiency.relative)
    _within(loss, loss_sigma, beta_plus_share * 2.0 * ann.total_efficiency.value,
            beta_plus_share * 2.0 * ann.total_efficiency.sigma)
    assert loss > 10 * loss_sigma
    sum_peak = result.peak(1274.537 + 510.99895)
    p_beta_plus = to_level[0]["probability"]
    expected = p_beta_plus * gamma.peak_efficiency.value * 2.0 * ann.peak_efficiency.value
    rel = math.hypot(gamma.peak_efficiency.relative, ann.peak_efficiency.relative)
    _within(sum_peak.apparent_area_per_decay.value, sum_peak.apparent_area_per_decay.sigma, expected, expected * rel)
    # the two halves of a pair never sum from a point in front of a bare crystal in vacuum: the
    # 1022 keV window holds only the 1274.5 keV Compton continuum, far below the real sum peak
    assert result.peak(2 * 510.99895).apparent_area_per_decay.value < 0.1 * sum_peak.apparent_area_per_decay.value


def test_whole_decays_do_not_depend_on_workers_and_far_away_summing_vanishes() -> None:
    config = _config("Co-60", distance_cm=30.0)
    one = simulate_whole_decays(config, histories=20_000, seed=5, workers=1)
    two = simulate_whole_decays(config, histories=20_000, seed=5, workers=2)
    assert one.to_dict()["whole_decay"] == two.to_dict()["whole_decay"]
    assert one.to_dict()["lines"] == two.to_dict()["lines"]
    tcs = one.peak(1332.492).tcs_factor
    assert abs(tcs.value - 1.0) < 0.02 + K * tcs.sigma


def test_stratified_emission_agrees_with_analog_emission_with_scatterers() -> None:
    """With air and a steel backing plate (photons outside the cone are transported and may scatter
    back) the cone-stratified emission and plain isotropic emission give the same tallies."""
    from vital_desktop.montecarlo import Backing

    source = Source(kind="point", distance_cm=3.0, backing=Backing(material="fe", radius_cm=5.0, thickness_cm=1.0))
    results = []
    for vr in (True, False):
        options = Options(medium="air", coherent=True, k_xray_escape=True, spectrum_bins=256, variance_reduction=vr)
        config = make_config(detector="nai-2x2", source=source, nuclide="Co-60", options=options)
        results.append(simulate_whole_decays(config, histories=300_000, seed=31, workers=2))
    biased, analog = results
    for energy in (1173.228, 1332.492, 2505.72):
        a, b = biased.peak(energy).apparent_area_per_decay, analog.peak(energy).apparent_area_per_decay
        _within(a.value, a.sigma, b.value, b.sigma)
    _within(biased.counts_per_decay.value, biased.counts_per_decay.sigma, analog.counts_per_decay.value,
            analog.counts_per_decay.sigma)


def test_service_and_cli_store_and_reproduce_whole_decays(small_site, monkeypatch, capsys) -> None:
    import json

    from tests.conftest import PASSWORDS
    from vital_desktop.cli import main
    from vital_desktop.services import calibration

    store, engineer = small_site.store, small_site.user("engineer")
    info, _ = calibration.run_calibration(store, actor=engineer, config=_config("Co-60", 1.0), histories=20_000,
                                          seed=3, workers=2)
    detail = calibration.get_run(store, info.id)
    assert info.mode == "whole_decay" and detail.results["whole_decay"]["peaks"][0]["tcs_factor"]["value"] > 1.0
    assert calibration.reproduce(store, info.id, workers=1)
    store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    outputs = []
    for extra in ([], ["--per-line"]):
        code = main(["--home", str(small_site.home), "--json", "mc", "run", "--detector", "nai-2x2", "--nuclide",
                     "Co-60", "--distance-cm", "2", "--histories", "2e4", "--vacuum", *extra])
        out = capsys.readouterr()
        assert code == 0, out.err
        outputs.append(json.loads(out.out))
    whole, per_line = outputs
    assert whole["mode"] == "whole_decay"
    assert any(p["kind"] == "sum" and p["energy_kev"] == pytest.approx(2505.72)
               for p in whole["results"]["whole_decay"]["peaks"])
    assert per_line["mode"] == "per_line" and "whole_decay" not in per_line["results"]
