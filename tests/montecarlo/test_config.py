"""Configurations, presets, materials and refusal of bad input (no simulation needed for most)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from vital_desktop.core.errors import Cancelled, NotFoundError, ValidationError
from vital_desktop.core.progress import CancelToken, Progress
from vital_desktop.montecarlo import (
    Layer,
    Line,
    Options,
    SimulationConfig,
    Source,
    config_from_dict,
    detector_preset,
    detector_presets,
    make_config,
    nuclide_library,
    simulate,
    validate,
)
from vital_desktop.montecarlo.geometry import build_problem
from vital_desktop.montecarlo.materials import interpolate_table, read_table, resolve_material


def _base() -> SimulationConfig:
    return make_config(detector="nai-3x3", source=Source(kind="point", distance_cm=10.0), nuclide="Cs-137")


def test_every_preset_and_nuclide_is_valid() -> None:
    assert {"nai-3x3", "nai-2x2", "csi-1x1", "hpge-coax-40pct", "labr3-1.5x1.5", "bgo-2x2", "pvt-2x2"} <= set(detector_presets())
    assert {"Am-241", "Ba-133", "Cs-137", "Co-60", "Eu-152", "K-40"} <= set(nuclide_library())
    for name in detector_presets():
        for nuclide in nuclide_library():
            config = make_config(detector=name, source=Source(kind="point", distance_cm=5.0), nuclide=nuclide)
            problem = build_problem(config)
            assert problem.cyl_mat[0] >= 0 and problem.mu[problem.cyl_mat[0], 0].min() > 0


def test_config_round_trips_through_json() -> None:
    import json

    config = make_config(
        detector="hpge-coax-40pct",
        source=Source(kind="volume", distance_cm=0.0, radius_cm=4.0, height_cm=5.0, wall_cm=0.2),
        energies_kev=[59.54, 1332.5], options=Options(coherent=False),
    )
    assert config_from_dict(json.loads(config.to_json())) == config


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: replace(c, detector=replace(c.detector, radius_cm=0.0)), "crystal radius"),
        (lambda c: replace(c, detector=replace(c.detector, height_cm=-2.0)), "crystal height"),
        (lambda c: replace(c, detector=replace(c.detector, radius_cm=math.nan)), "finite"),
        (lambda c: replace(c, detector=replace(c.detector, material="kryptonite")), "unknown material"),
        (lambda c: replace(c, detector=replace(c.detector, housing=(Layer("al", -0.1, 0.1, 0.0),))), "must not be negative"),
        (lambda c: replace(c, detector=replace(c.detector, housing=(Layer("al"),))), "zero thickness"),
        (lambda c: replace(c, lines=(Line(0.5),)), "outside the cross-section data"),
        (lambda c: replace(c, lines=(Line(12000.0),)), "outside the cross-section data"),
        (lambda c: replace(c, lines=(Line(662.0, 0.0),)), "emission probability"),
        (lambda c: replace(c, lines=()), "no gamma lines"),
        (lambda c: replace(c, source=Source(kind="point", distance_cm=-2.0)), "inside the detector"),
        (lambda c: replace(c, source=Source(kind="point", distance_cm=-2.0, offset_cm=1.0)), "inside the detector"),
        (lambda c: replace(c, source=Source(kind="disk", distance_cm=1.0, radius_cm=0.0)), "disk source radius"),
        (lambda c: replace(c, source=Source(kind="volume", distance_cm=-1.0, radius_cm=2, height_cm=2)), "in front"),
        (lambda c: replace(c, source=Source(kind="volume", distance_cm=1.0, radius_cm=2, height_cm=0)), "height"),
        (lambda c: replace(c, source=Source(kind="sphere")), "unknown source kind"),
        (lambda c: replace(c, options=Options(medium="water")), "unknown medium"),
        (lambda c: replace(c, options=Options(cutoff_kev=700.0)), "cutoff"),
    ],
)
def test_bad_configurations_are_refused_with_a_clear_message(change, message) -> None:
    with pytest.raises(ValidationError, match=message):
        validate(change(_base()))


def test_unknown_preset_nuclide_and_histories() -> None:
    with pytest.raises(NotFoundError, match="unknown detector preset"):
        detector_preset("nai-9x9")
    with pytest.raises(ValidationError, match="unknown nuclide"):
        make_config(detector="nai-3x3", source=Source(), nuclide="Zz-1")
    with pytest.raises(ValidationError, match="either a nuclide or"):
        make_config(detector="nai-3x3", source=Source(), nuclide="Cs-137", energies_kev=[662.0])
    for bad in (0, -1, math.nan, math.inf, 1.5e3 + 0.5, "x"):
        with pytest.raises(ValidationError):
            simulate(_base(), histories=bad, seed=1)
    with pytest.raises(ValidationError, match="seed"):
        simulate(_base(), histories=1000, seed=-1)


def test_edges_are_taken_from_the_correct_side() -> None:
    table = read_table("nai.csv")
    edge = 33.1694e-3
    rows = table[np.isclose(table[:, 0], edge, rtol=1e-4)]
    assert len(rows) == 2 and rows[0, 3] < rows[1, 3]
    at, below = interpolate_table(table, np.array([rows[0, 0], rows[0, 0] * (1 - 1e-9)]))
    assert at[2] == pytest.approx(rows[1, 3])  # exactly at the edge: the above-edge row
    assert below[2] == pytest.approx(rows[0, 3], rel=1e-6)
    assert resolve_material("HPGe").name == "ge" and resolve_material("NaI(Tl)").name == "nai"


def test_cancel_stops_within_a_chunk() -> None:
    token = CancelToken()
    progress = Progress(cancel=token, on_update=lambda s: token.cancel() if s.done else None, min_interval_s=0)
    with pytest.raises(Cancelled):
        simulate(_base(), histories=50_000_000, seed=1, workers=2, progress=progress)
    # two chunks in flight at most when the token was seen (chunks are 100k histories)
    assert progress.snapshot().done <= 3 * 100_000
