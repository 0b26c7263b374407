"""Extract the evaluated gamma emission intensities the decay-scheme test compares against.

Reads the UKAEA decay_2012 gamma-line library (the EASY-II / FISPACT-II decay data, JEFF-3.1.1
based; for the usual calibration nuclides its radioactive-decay data are the DDEP evaluations)
as distributed in the Apache-2.0 PyPI package `actigamma` 0.1.5
(`actigamma/data/lines_decay_2012.min.json`), and writes
`vital_desktop/resources/decay_reference.json`: per nuclide of `resources/decays.json`, every
gamma line of at least 1e-4 per decay (energy keV, intensity per decay, its standard uncertainty),
and the annihilation-photon yield where the library lists it.

Run (the package is needed only here, not by the application):
    pip download --no-deps actigamma==0.1.5 && unzip actigamma-0.1.5-py3-none-any.whl -d actigamma_wheel
    python scripts/decay_reference.py actigamma_wheel/actigamma/data/lines_decay_2012.min.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: decays.json name -> library key(s); Cs-137's line is emitted by Ba-137m (fed in 94.7 % of decays)
KEYS = {"Co-60": "Co60", "Na-22": "Na22", "Y-88": "Y88", "Cs-134": "Cs134", "Ba-133": "Ba133",
        "Cs-137": "Ba137m", "Mn-54": "Mn54", "K-40": "K40", "Co-57": "Co57", "Eu-152": "Eu152"}
MIN_INTENSITY = 1.0e-4


def main(library_path: str) -> None:
    raw = Path(library_path).read_bytes()
    library = json.loads(raw)
    out: dict = {
        "_about": "Evaluated gamma emission intensities per decay (intensity x normalisation of the library, "
                  "per 1 decay), lines >= 1e-4, for checking resources/decays.json. Cs-137 is given as its "
                  "daughter Ba-137m (per Ba-137m decay). Made by scripts/decay_reference.py.",
        "_source": "UKAEA decay_2012 library (EASY-II/FISPACT-II decay data, JEFF-3.1.1 based; DDEP evaluations for "
                   "the common calibration nuclides) as shipped in the PyPI package actigamma 0.1.5 "
                   "(Apache-2.0), file actigamma/data/lines_decay_2012.min.json",
        "_source_sha256": hashlib.sha256(raw).hexdigest(),
        "nuclides": {},
    }
    for name, key in KEYS.items():
        entry = library[key]
        lines = []
        for kind in ("gamma", "x-ray"):
            block = entry.get(kind)
            if not block:
                continue
            data = block["lines"]
            for e, i, u, n, nu in zip(data["energies"], data["intensities"], data["intensities_unc"], data["norms"],
                                      data["norms_unc"], strict=True):
                value = i * n
                sigma = ((u * n) ** 2 + (i * nu) ** 2) ** 0.5
                is_annihilation = abs(e - 510999.0) < 5.0
                if (kind == "gamma" or is_annihilation) and value >= MIN_INTENSITY:
                    lines.append({"energy_kev": round(e / 1000.0, 4), "intensity": float(f"{value:.6g}"),
                                  "u": float(f"{sigma:.3g}"), "annihilation": is_annihilation})
        out["nuclides"][name] = {"library_key": key, "lines": sorted(lines, key=lambda x: x["energy_kev"])}
    target = ROOT / "vital_desktop" / "resources" / "decay_reference.json"
    target.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1])
