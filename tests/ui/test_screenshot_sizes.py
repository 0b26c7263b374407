"""docs/screenshots: every page at both sizes, and each PNG really is the size its name says."""

from __future__ import annotations

import re
import struct
from pathlib import Path

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SIZES = ("1280x720", "1920x1080")


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (no image library needed)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", f"{path.name} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_every_screenshot_has_its_named_size_and_both_sizes_exist() -> None:
    shots = sorted(SHOTS.glob("*.png"))
    assert shots, "no screenshots"
    pages: dict[str, set[str]] = {}
    for path in shots:
        match = re.fullmatch(r"(.+)-(\d+)x(\d+)\.png", path.name)
        assert match, f"{path.name}: expected <page>-<width>x<height>.png"
        assert png_size(path) == (int(match[2]), int(match[3])), path.name
        pages.setdefault(match[1], set()).add(f"{match[2]}x{match[3]}")
    missing = {page: sorted(set(SIZES) - sizes) for page, sizes in pages.items() if set(SIZES) - sizes}
    assert missing == {}
    for stage in ("data", "generate", "label", "train", "deploy", "monitor", "improve", "calibration", "bundles",
                  "canonical", "users", "taxonomy"):
        assert stage in pages, f"no screenshot of the {stage} page"
