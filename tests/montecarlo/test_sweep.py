"""Sweeps split into independent pure tasks: local processes and a Dask LocalCluster on loopback
must give exactly what a direct run gives."""

from __future__ import annotations

import pytest

from vital_desktop.montecarlo import Options, simulate
from vital_desktop.montecarlo.sweep import grid, run_sweep

OPTIONS = Options(medium="vacuum", spectrum_bins=64)


def _configs():
    return grid(detectors=["nai-2x2", "csi-1x1"], distances_cm=[5.0, 15.0], energies_kev=[662.0], options=OPTIONS)


def test_grid_is_the_cartesian_product() -> None:
    configs = _configs()
    assert [(c.detector.name, c.source.distance_cm) for c in configs] == [
        ("nai-2x2", 5.0), ("nai-2x2", 15.0), ("csi-1x1", 5.0), ("csi-1x1", 15.0)]


def test_dask_local_cluster_matches_direct_runs() -> None:
    distributed = pytest.importorskip("distributed")
    configs = _configs()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        results = run_sweep(configs, seed=3, histories=4000, scheduler=cluster.scheduler_address)
    assert len(results) == len(configs)
    for config, item in zip(configs, results, strict=False):
        direct = simulate(config, histories=4000, seed=3).to_dict()
        assert item["result"]["lines"] == direct["lines"]
    assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
    near, far = results[0]["result"]["lines"][0], results[1]["result"]["lines"][0]
    assert near["peak_efficiency"]["value"] > far["peak_efficiency"]["value"]


@pytest.mark.slow
def test_local_processes_match_direct_runs() -> None:
    configs = _configs()[:2]
    results = run_sweep(configs, seed=4, histories=2000, processes=2)
    for config, item in zip(configs, results, strict=False):
        assert item["result"]["lines"] == simulate(config, histories=2000, seed=4).to_dict()["lines"]


def test_unreachable_scheduler_is_a_clear_error() -> None:
    from vital_desktop.core.errors import ValidationError

    with pytest.raises(ValidationError, match="Dask scheduler"):
        run_sweep(_configs()[:1], seed=1, histories=1000, scheduler="tcp://127.0.0.1:9", connect_timeout_s=1.0)
