"""Characterization round trip: efficiencies "measured" with the engine from hidden parameters are
fitted back; the fit recovers them within 3 of its stated standard uncertainties, and the fitted
detector is saved as a site preset with its provenance. Bad input is refused before any work."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.conftest import snapshot_tables
from vital_desktop.core.errors import ValidationError
from vital_desktop.montecarlo import Line, Options, SimulationConfig, Source, simulate
from vital_desktop.montecarlo.characterize import PARAMETERS, Measurement, parse_grid, read_measurements
from vital_desktop.montecarlo.config import detector_preset
from vital_desktop.services import calibration

ENERGIES = (59.54, 88.0, 122.06, 344.28, 661.66, 1332.49)
SOURCE = Source(kind="point", distance_cm=5.0)
OPTIONS = Options(medium="vacuum", spectrum_bins=64)
HIDDEN = {"dead_layer_cm": 0.11, "endcap_gap_cm": 0.62}


def _measured() -> list[Measurement]:
    det = detector_preset("hpge-coax-40pct")
    for name, value in HIDDEN.items():
        det = PARAMETERS[name][0](det, value)
    config = SimulationConfig(detector=det, source=SOURCE, lines=tuple(Line(e) for e in ENERGIES), options=OPTIONS)
    result = simulate(config, histories=1_200_000, seed=99, workers=2)
    return [Measurement(x.energy_kev, x.peak_efficiency.value, max(x.peak_efficiency.sigma, 0.004 *
                                                                   x.peak_efficiency.value)) for x in result.lines]


def test_round_trip_recovers_hidden_parameters_and_saves_a_preset(small_site) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    measurements = _measured()
    grids = {"dead_layer_cm": [0.05, 0.09, 0.13, 0.17], "endcap_gap_cm": [0.4, 0.55, 0.7, 0.85]}
    fit, changes = calibration.characterize_detector(
        store, actor=engineer, detector=detector_preset("hpge-coax-40pct"), source=SOURCE,
        measurements=measurements, grids=grids, histories=150_000, seed=5, options=OPTIONS, save_as="my-hpge",
        processes=2)
    for name, value in HIDDEN.items():
        assert fit.sigma[name] > 0
        assert abs(fit.best[name] - value) <= 3 * fit.sigma[name], (name, fit.best, fit.sigma)
    assert fit.sigma["dead_layer_cm"] < 0.03 and not fit.at_grid_edge
    assert fit.dof == len(ENERGIES) - 2 and 0.0 <= fit.p_value <= 1.0
    assert changes.mc_runs
    presets = calibration.site_presets(store)
    assert presets["my-hpge"]["provenance"]["measurements"][0]["energy_kev"] == ENERGIES[0]
    detector = calibration.resolve_detector(store, "my-hpge")
    dead = next(layer for layer in detector.housing if layer.name == "dead layer")
    assert dead.front_cm == pytest.approx(fit.best["dead_layer_cm"])
    # the same name again, or a shipped name: refused before any work, nothing written
    before = snapshot_tables(store)
    for name in ("my-hpge", "nai-3x3"):
        with pytest.raises(ValidationError, match="preset"):
            calibration.characterize_detector(store, actor=engineer, detector=detector, source=SOURCE,
                                              measurements=measurements, grids=grids, histories=1000, seed=1,
                                              save_as=name)
    assert snapshot_tables(store) == before


@pytest.mark.parametrize("spec, message", [
    ("dead_layer_cm=0.1:0.05:5", "LOW < HIGH"),
    ("wobble=0:1:3", "unknown fit parameter"),
    ("dead_layer_cm=-1:1:3", "LOW < HIGH"),
    ("dead_layer_cm", "NAME=LOW:HIGH:POINTS"),
])
def test_bad_grids_are_refused(spec: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_grid(spec)


def test_bad_measurements_and_grid_points_are_refused() -> None:
    with pytest.raises(ValidationError, match="line 3"):
        read_measurements("energy_kev,efficiency,sigma\n100,0.01,0.0001\n200,lots,0.0001\n")
    with pytest.raises(ValidationError, match="columns"):
        read_measurements("energy,eff\n1,2\n")
    from vital_desktop.montecarlo.characterize import grid_configs

    meas = [Measurement(100.0, 0.01, 1e-4), Measurement(200.0, 0.005, 1e-4)]
    with pytest.raises(ValidationError, match="crystal height"):
        grid_configs(detector_preset("hpge-coax-40pct"), SOURCE, meas, {"crystal_length_cm": [-1.0, 4.0, 5.0]})
    with pytest.raises(ValidationError, match="no housing layer"):
        grid_configs(replace(detector_preset("hpge-coax-40pct"), housing=()), SOURCE, meas,
                     {"dead_layer_cm": [0.05, 0.1, 0.15]})


def test_cli_characterize_refuses_bad_input_before_any_work(small_site, monkeypatch, capsys, tmp_path) -> None:
    from tests.conftest import PASSWORDS
    from vital_desktop.cli import main

    small_site.store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    good = tmp_path / "measured.csv"
    good.write_text("energy_kev,efficiency,sigma\n122,0.01,0.0001\n662,0.004,0.00004\n1332,0.002,0.00002\n")
    cases = [
        (["--measured", str(tmp_path / "missing.csv"), "--fit", "dead_layer_cm=0.05:0.15:3"], "no such file"),
        (["--measured", str(good), "--fit", "wobble=0:1:3"], "unknown fit parameter"),
        (["--measured", str(good), "--fit", "dead_layer_cm=0.05:0.15:3", "--save-preset", "nai-3x3"], "shipped"),
        (["--measured", str(good), "--fit", "crystal_length_cm=-1:5:3"], "LOW < HIGH"),
    ]
    for extra, message in cases:
        code = main(["--home", str(small_site.home), "--json", "mc", "characterize", "--detector", "hpge-coax-40pct",
                     "--histories", "1e4", *extra])
        err = capsys.readouterr().err
        assert code != 0 and message in err, (extra, err)
    code = main(["--home", str(small_site.home), "--json", "mc", "presets"])
    out = capsys.readouterr().out
    import json

    assert code == 0 and json.loads(out)["site_detectors"] == {}
