"""The kernel's coaxial variant (compiled without the off-axis and open-parent geometry) gives the
same bits as the general variant on cases both can run, per line and for whole decays; the
engine picks the coaxial one only where it applies."""

from __future__ import annotations

import numpy as np
import pytest

from vital_desktop.montecarlo import Backing, Source, make_config, source_preset
from vital_desktop.montecarlo.decay import decay_scheme
from vital_desktop.montecarlo.engine import run_one_chunk
from vital_desktop.montecarlo.geometry import Problem, build_problem
from vital_desktop.montecarlo.kernel import kernel_for
from vital_desktop.montecarlo.whole_decay import _peak_table, _run_chunk, companion_lines


def _with_variant(problem: Problem, general: bool) -> Problem:
    problem.general_geometry = general  # overrides the cached property
    return problem


@pytest.mark.parametrize("source", [
    Source(kind="point", distance_cm=2.0, offset_cm=1.5,
           backing=Backing(material="steel", radius_cm=4.0, thickness_cm=0.5)),
    Source(kind="volume", distance_cm=1.0, radius_cm=3.0, height_cm=2.0, wall_cm=0.2),
], ids=["point-off-axis-with-backing", "coaxial-volume"])
def test_per_line_coaxial_variant_is_bit_identical_to_general(source: Source) -> None:
    config = make_config(detector="nai-3x3", source=source, energies_kev=[59.5, 661.7, 1460.8])
    problem = build_problem(config)
    assert problem.general_geometry is False  # a point off the axis needs no off-axis cylinder
    coaxial = run_one_chunk(_with_variant(build_problem(config), False), 11, 3, 6000)
    general = run_one_chunk(_with_variant(build_problem(config), True), 11, 3, 6000)
    assert coaxial.total.sum() > 0 and coaxial.peak.sum() > 0 and coaxial.diag[2] > 0
    for name in ("total", "peak", "interacted", "hist", "diag"):
        assert np.array_equal(getattr(coaxial, name), getattr(general, name)), name


@pytest.mark.parametrize(("nuclide", "source"), [
    ("Co-60", Source(kind="point", distance_cm=0.5)),
    ("Na-22", Source(kind="volume", distance_cm=1.0, radius_cm=3.0, height_cm=2.0, wall_cm=0.2)),
])
def test_whole_decay_coaxial_variant_is_bit_identical_to_general(nuclide: str, source: Source) -> None:
    config = make_config(detector="nai-3x3", source=source, nuclide=nuclide)
    scheme = decay_scheme(config.nuclide or nuclide)
    peak_e, _ = _peak_table(scheme, companion_lines(scheme, config.options.cutoff_kev))
    runs = [_run_chunk(_with_variant(build_problem(config), general), scheme, peak_e, 5, 2, 4000)
            for general in (False, True)]
    sums, peaks, hist, diag = runs[0]
    assert sums[0] == 4000 and sums[1] > 0 and peaks.sum() > 0 and hist.sum() > 0
    for a, b in zip(runs[0], runs[1], strict=True):
        assert np.array_equal(a, b)


def test_engine_picks_the_general_variant_only_where_the_geometry_needs_it() -> None:
    coaxial = build_problem(make_config(detector="nai-3x3", source=Source(kind="point"), nuclide="Cs-137"))
    off_axis = build_problem(make_config(
        detector="nai-3x3", source=Source(kind="volume", distance_cm=1.0, offset_cm=2.0, radius_cm=2.0, height_cm=2.0),
        energies_kev=[661.7]))
    marinelli = build_problem(make_config(detector="hpge-coax-40pct", source=source_preset("marinelli-1l"),
                                          energies_kev=[661.7]))
    assert (coaxial.general_geometry, off_axis.general_geometry, marinelli.general_geometry) == (False, True, True)
    assert kernel_for(whole_decay=False, general=False) is kernel_for(whole_decay=False, general=False)
    assert kernel_for(whole_decay=False, general=False) is not kernel_for(whole_decay=False, general=True)
