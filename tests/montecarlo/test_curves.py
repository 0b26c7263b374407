"""Efficiency curves: the fit recovers a known curve within its covariance, cross-validation picks a
sensible order, interpolation carries the uncertainty, and the service/CLI store and export it."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest

from vital_desktop.core.errors import ValidationError
from vital_desktop.montecarlo.curves import fit_efficiency_curve, log_energies


def _truth(e: np.ndarray) -> np.ndarray:
    x = np.log(e / 1000.0)
    return np.exp(-4.0 - 0.9 * x - 0.25 * x**2)


def test_fit_recovers_a_known_quadratic_within_its_covariance() -> None:
    rng = np.random.default_rng(7)
    energies = np.array(log_energies(60.0, 2000.0, 12))
    rel = 0.01
    pulls = []
    for _ in range(40):
        y = _truth(energies) * (1.0 + rel * rng.standard_normal(energies.size))
        curve = fit_efficiency_curve(energies, y, rel * _truth(energies), order=2)
        eps, sig = curve.evaluate([500.0])
        pulls.append((eps[0] - _truth(np.array([500.0]))[0]) / sig[0])
    # the pulls of the interpolated value follow a unit normal (40 fits: mean within 0.6, spread 0.6-1.5)
    assert abs(np.mean(pulls)) < 0.6 and 0.6 < np.std(pulls) < 1.5
    assert curve.coefficients[0] == pytest.approx(-4.0, abs=0.05)


def test_cross_validation_picks_the_needed_order() -> None:
    rng = np.random.default_rng(3)
    energies = np.array(log_energies(60.0, 2000.0, 14))
    y = _truth(energies) * (1.0 + 0.003 * rng.standard_normal(energies.size))
    curve = fit_efficiency_curve(energies, y, 0.003 * _truth(energies))
    assert curve.order_choice == "cross-validation" and curve.order in (2, 3)
    assert curve.cv_scores[1] > 10 * curve.cv_scores[curve.order]  # a straight line is clearly worse
    assert curve.dof == energies.size - curve.order - 1 and len(curve.residuals) == energies.size


@pytest.mark.parametrize("energies, effs, sigmas, order, message", [
    ([100, 200], [0.1, 0.05], [0.001, 0.001], 1, "at least 3"),
    ([100, 200, 300], [0.1, -0.05, 0.02], [0.001] * 3, 1, "positive"),
    ([100, 100, 300], [0.1, 0.05, 0.02], [0.001] * 3, 1, "distinct"),
    ([100, 200, 300, 400], [0.1, 0.05, 0.02, 0.01], [0.001] * 4, 9, "order must be"),
])
def test_bad_curve_input_is_refused(energies, effs, sigmas, order, message) -> None:
    with pytest.raises(ValidationError, match=message):
        fit_efficiency_curve(energies, effs, sigmas, order=order)


def test_no_extrapolation() -> None:
    e = log_energies(100.0, 1000.0, 5)
    curve = fit_efficiency_curve(e, _truth(np.array(e)), 0.01 * _truth(np.array(e)), order=2)
    with pytest.raises(ValidationError, match="outside the fitted range"):
        curve.evaluate([2000.0])


def test_cli_curve_stores_fits_interpolates_and_exports(small_site, monkeypatch, capsys, tmp_path) -> None:
    from tests.conftest import PASSWORDS, snapshot_tables
    from vital_desktop.cli import main
    from vital_desktop.services import calibration

    small_site.store.close()
    monkeypatch.setenv("VITAL_USER", "engineer")
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS["engineer"])
    out_csv = tmp_path / "curve.csv"
    code = main(["--home", str(small_site.home), "--json", "mc", "curve", "--detector", "nai-2x2", "--vacuum",
                 "--range-kev", "80,1500", "--points", "6", "--histories", "6e4", "--order", "auto", "--at", "662",
                 "--csv", str(out_csv)])
    out = capsys.readouterr()
    assert code == 0, out.err
    data = json.loads(out.out)
    assert data["curve"]["order_choice"] == "cross-validation" and len(data["curve"]["points"]) == 6
    at = data["at"][0]
    assert 0 < at["sigma"] < 0.1 * at["efficiency"]
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text())))
    assert {r["kind"] for r in rows} == {"point", "curve"}
    from vital_desktop.store import open_store

    store = open_store(small_site.home)
    try:
        detail = calibration.get_run(store, data["run"]["id"])
        curve = calibration.stored_curve(detail)
        assert curve.evaluate([662.0])[0][0] == pytest.approx(at["efficiency"], rel=1e-12)
        before = snapshot_tables(store)
    finally:
        store.close()
    # bad input: refused before any work, nothing stored
    code = main(["--home", str(small_site.home), "--json", "mc", "curve", "--energies-kev", "100,200",
                 "--histories", "1e4"])
    err = capsys.readouterr().err
    assert code != 0 and "at least 3" in err
    store = open_store(small_site.home)
    try:
        assert snapshot_tables(store) == before
    finally:
        store.close()
    assert math.isfinite(at["efficiency"])
