"""The calibration service and `vital mc`: permission, storage, audit, reproduction, bad input."""

from __future__ import annotations

import json

import pytest

from tests.conftest import PASSWORDS, snapshot_tables
from vital_desktop.core.errors import Cancelled, NotFoundError, PermissionDenied, ValidationError
from vital_desktop.core.progress import CancelToken, Progress
from vital_desktop.montecarlo import Options, Source, make_config
from vital_desktop.services import calibration

FAST = Options(medium="vacuum", spectrum_bins=128)


@pytest.fixture(scope="module")
def shared_site(tmp_path_factory):
    """One store with an engineer, for tests that only read or are refused (nothing is written)."""
    from types import SimpleNamespace

    from vital_desktop.core.users import SYSTEM_USER
    from vital_desktop.services import accounts
    from vital_desktop.store import open_store

    home = tmp_path_factory.mktemp("mc-site")
    store = open_store(home)
    accounts.add_user(store, actor=SYSTEM_USER, username="engineer", password=PASSWORDS["engineer"], role="engineer")
    engineer = accounts.get_user(store, "engineer")
    store.close()
    return SimpleNamespace(home=home, engineer=engineer)


def _config(**source):
    return make_config(detector="nai-2x2", source=Source(kind="point", distance_cm=10.0, **source),
                       nuclide="Cs-137", options=FAST)


def test_run_is_stored_audited_and_reproducible(small_site) -> None:
    store, engineer = small_site.store, small_site.user("engineer")
    info, changes = calibration.run_calibration(store, actor=engineer, config=_config(), histories=20_000, seed=5,
                                                workers=2)
    assert changes.mc_runs
    assert [r.id for r in calibration.list_runs(store)] == [info.id]
    detail = calibration.get_run(store, info.id[:8])
    assert detail.info.seed == 5 and detail.info.histories == 20_000
    assert detail.results["lines"][0]["peak_efficiency"]["sigma"] > 0
    assert len(detail.spectrum["raw"]) == 128
    summary = detail.info.summary
    assert summary["calibration_factor_total_cps_per_bq"] > summary["calibration_factor_peak_cps_per_bq"] > 0
    assert calibration.reproduce(store, info.id, workers=1)
    insight = calibration.insight_input(detail, detector_serial="SN-1", measured_efficiency=0.004)
    assert insight["energy_kev"] == pytest.approx(661.657) and 0 < insight["simulated_efficiency"] < 1
    assert insight["detector_serial"] == "SN-1" and insight["measured_efficiency"] == 0.004  # bench values as given
    from vital_desktop.store import audit  # noqa: F401  (the chain is checked by the audit tests)
    with store.read() as s:
        from sqlalchemy import select

        from vital_desktop.store.models import AuditEntry

        actions = s.scalars(select(AuditEntry.action).where(AuditEntry.target == info.id)).all()
    assert actions == ["mc.run"]


def test_inspector_may_not_run_and_nothing_is_written(small_site) -> None:
    before = snapshot_tables(small_site.store)
    with pytest.raises(PermissionDenied):
        calibration.run_calibration(small_site.store, actor=small_site.user("inspector"), config=_config(),
                                    histories=1000, seed=1)
    assert snapshot_tables(small_site.store) == before


def test_cancel_writes_nothing(small_site) -> None:
    token = CancelToken()
    progress = Progress(cancel=token, on_update=lambda snap: token.cancel() if snap.done else None, min_interval_s=0)
    before = snapshot_tables(small_site.store)
    with pytest.raises(Cancelled):
        calibration.run_calibration(small_site.store, actor=small_site.user("engineer"), config=_config(),
                                    histories=2_000_000, seed=1, workers=2, progress=progress)
    assert progress.snapshot().done < 2_000_000
    assert snapshot_tables(small_site.store) == before


@pytest.mark.parametrize("histories", [0, -5, float("nan"), "lots", 10])
def test_bad_histories_are_refused(shared_site, histories) -> None:
    from vital_desktop.store import open_store

    store = open_store(shared_site.home)
    try:
        with pytest.raises(ValidationError):
            calibration.run_calibration(store, actor=shared_site.engineer, config=_config(), histories=histories, seed=1)
        with pytest.raises(NotFoundError):
            calibration.get_run(store, "no-such-run")
        assert calibration.list_runs(store) == []
    finally:
        store.close()


def _cli(home, *argv, user="engineer", monkeypatch, capsys):
    from vital_desktop.cli import main

    monkeypatch.setenv("VITAL_USER", user)
    monkeypatch.setenv("VITAL_PASSWORD", PASSWORDS[user])
    code = main(["--home", str(home), "--json", *argv])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if out.out.strip() else None), out.err


def test_cli_run_list_show(small_site, monkeypatch, capsys) -> None:
    small_site.store.close()
    home = small_site.home
    code, run, err = _cli(home, "mc", "run", "--detector", "nai-3x3", "--source", "point", "--distance-cm", "10",
                          "--nuclide", "Cs-137", "--histories", "2e4", "--seed", "1", "--vacuum",
                          monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert run["detector"] == "nai-3x3" and run["results"]["lines"][0]["energy_kev"] == pytest.approx(661.657)
    code, listed, _ = _cli(home, "mc", "list", monkeypatch=monkeypatch, capsys=capsys)
    assert [r["id"] for r in listed["runs"]] == [run["id"]]
    code, shown, _ = _cli(home, "mc", "show", run["id"], "--spectrum", monkeypatch=monkeypatch, capsys=capsys)
    assert shown["results"] == run["results"] and len(shown["spectrum"]["broadened"]) == 1024
    # custom dimensions on the command line
    code, custom, err = _cli(home, "mc", "run", "--crystal-material", "labr3", "--crystal-radius-cm", "1",
                             "--crystal-height-cm", "2", "--energy-kev", "662", "--energy-kev", "1332",
                             "--histories", "4000", "--seed", "2", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert custom["config"]["detector"]["material"] == "labr3" and len(custom["results"]["lines"]) == 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--crystal-radius-cm", "0"], "radius"),
        (["--crystal-height-cm", "-1"], "height"),
        (["--energy-kev", "20000"], "outside the cross-section data"),
        (["--crystal-material", "unobtainium"], "unknown material"),
        (["--nuclide", "Xx-999"], "unknown nuclide"),
        (["--detector", "nai-9x9"], "unknown detector preset"),
        (["--distance-cm", "-5"], "inside the detector"),
        (["--histories", "0"], "histories"),
        (["--distance-cm", "nan"], "finite"),
    ],
)
def test_cli_refuses_bad_input_before_any_work(shared_site, monkeypatch, capsys, argv, message) -> None:
    base = {"--nuclide": "Cs-137", "--histories": "1000"}
    args = list(argv)
    for key, value in base.items():
        if key not in args and not (key == "--nuclide" and "--energy-kev" in args):
            args += [key, value]
    code, out, err = _cli(shared_site.home, "mc", "run", *args, monkeypatch=monkeypatch, capsys=capsys)
    assert code != 0 and out is None
    assert message in err, err
    code, listed, _ = _cli(shared_site.home, "mc", "list", monkeypatch=monkeypatch, capsys=capsys)
    assert listed["runs"] == []
