"""The decay schemes against an evaluated library read from a file, not typed by hand.

`resources/decay_reference.json` holds the gamma emission intensities of the UKAEA decay_2012
library (JEFF-3.1.1 based) as extracted by `scripts/decay_reference.py` (its SHA-256 and source are
in the file). For every nuclide with a decay scheme: (1) every line of the scheme, both the intensity
written in decays.json and the intensity its cascades imply, agrees with the library within
max(3 combined sigma, 1.5 % relative, 2e-4 absolute); (2) the scheme carries >= 99 % of the
library's gamma intensity above 1e-4 per decay (every nuclide; Eu-152 99.4 %). A line
where the evaluations differ by more would go in KNOWN_DIFFERENCES with its reason (none today); the
test fails if that list is stale, so it can only shrink.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from vital_desktop.montecarlo.decay import decay_library, decay_scheme, implied_intensities

#: (nuclide, energy keV) -> why the scheme's value stays (the issue's evaluations are ENSDF/DDEP;
#: the reference library is an older JEFF-3.1.1 compilation)
KNOWN_DIFFERENCES: dict[tuple[str, float], str] = {}
REL, ABS = 0.015, 2.0e-4


def _reference() -> dict:
    text = resources.files("vital_desktop").joinpath("resources", "decay_reference.json").read_text("utf-8")
    return json.loads(text)


def _library_intensity(lines: list[dict], energy: float, intensity: float) -> tuple[float, float] | None:
    """The library line of this energy (within 0.1 keV; of two transitions at one energy, the one of
    the closest intensity)."""
    near = [x for x in lines if not x["annihilation"] and abs(x["energy_kev"] - energy) <= 0.1]
    if not near:
        return None
    best = min(near, key=lambda x: abs(x["intensity"] - intensity))
    return best["intensity"], best["u"]


def test_reference_names_its_source() -> None:
    ref = _reference()
    assert "actigamma 0.1.5" in ref["_source"] and len(ref["_source_sha256"]) == 64
    assert set(ref["nuclides"]) == set(decay_library()["nuclides"])


@pytest.mark.parametrize("nuclide", list(decay_library()["nuclides"]))
def test_scheme_intensities_match_the_evaluated_library(nuclide: str) -> None:
    lines = _reference()["nuclides"][nuclide]["lines"]
    scheme = decay_scheme(nuclide)
    implied = implied_intensities(scheme)
    # Cs-137's reference is its daughter Ba-137m, per Ba-137m decay: divide by the feeding of the isomer
    feed = 1.0
    if nuclide == "Cs-137":
        feed = sum(b["probability"] for b in decay_library()["nuclides"][nuclide]["branches"] if b["level_kev"] > 0)
    differing = set()
    for line in scheme.gamma_lines:
        found = _library_intensity(lines, line.energy_kev, line.intensity / feed)
        assert found is not None, f"{nuclide} {line.energy_kev} keV is not in the evaluated library"
        value, sigma = found
        for what, ours in (("written", line.intensity), ("implied", implied[f"{line.energy_kev:.4f}"])):
            ours /= feed
            allowed = max(3 * (sigma**2 + line.sigma**2) ** 0.5, REL * value, ABS)
            if abs(ours - value) > allowed:
                differing.add((nuclide, line.energy_kev))
                assert (nuclide, line.energy_kev) in KNOWN_DIFFERENCES, (
                    f"{nuclide} {line.energy_kev} keV ({what}): {ours:.5f} vs evaluated {value:.5f} +- {sigma:.1g}")
    stale = {k for k in KNOWN_DIFFERENCES if k[0] == nuclide} - differing
    assert not stale, f"these lines agree now; drop them from KNOWN_DIFFERENCES: {stale}"
    annihilation = [x for x in lines if x["annihilation"]]
    if scheme.annihilation is not None and annihilation and annihilation[0]["intensity"] > 0.01:
        ref = annihilation[0]
        assert implied["annihilation"] == pytest.approx(ref["intensity"], rel=REL), (implied["annihilation"], ref)


#: the share of the library's gamma intensity every scheme must carry (the issue's 99 %)
NEEDED_SHARE = 0.99


@pytest.mark.parametrize("nuclide", list(decay_library()["nuclides"]))
def test_schemes_carry_99_percent_of_the_evaluated_gamma_intensity(nuclide: str) -> None:
    lines = [x for x in _reference()["nuclides"][nuclide]["lines"] if not x["annihilation"]]
    scheme = decay_scheme(nuclide)
    feed = 1.0
    if nuclide == "Cs-137":
        feed = sum(b["probability"] for b in decay_library()["nuclides"][nuclide]["branches"] if b["level_kev"] > 0)
    claimed = set()
    for g in scheme.gamma_lines:
        found = [i for i, x in enumerate(lines) if abs(x["energy_kev"] - g.energy_kev) <= 0.1 and i not in claimed]
        if found:
            claimed.add(min(found, key=lambda i: abs(lines[i]["intensity"] - g.intensity / feed)))
    carried = sum(lines[i]["intensity"] for i in claimed)
    total = sum(x["intensity"] for x in lines)
    assert carried >= NEEDED_SHARE * total, f"{nuclide}: {carried / total:.4f} of the evaluated gamma intensity"
