"""Synthetic scintillator-crystal inspection data for the demo site.

The demo must work out of the box on an airgapped laptop, so its data is generated, not
shipped: ~500 grayscale PNGs whose defect classes look different (dark compact inclusions,
thin jagged cracks, broad layered delamination bands, speckled contamination patches, clean
crystals), an `inspection_records.csv` in the seeds' schema whose sensor values correlate with
some defects (cracks with temperature excursions, delamination with humidity), a
predictive-maintenance `detector_telemetry.csv`, and `ground_truth.csv` with the true class of
each image (kept out of the inspection records so the demo has something to label).

It is deliberately not easy: as on a real inspection bench, a share of the defects is faint or
small (each class has a difficulty mix in the recipe, and severity follows the strength, so a
faint defect is a "low" one), and every crystal carries nuisances that can pass for a mild
defect (polishing scratches, dust specks, residue, uneven illumination, sensor noise). The demo
classifier is then right most of the time but not always, and unsure where an expert would be,
which gives the review, feedback and monitoring loops real work to do.

Everything is a pure function of the recipe and the seed: each image draws from its own
generator seeded by ``(seed, index)``, and PNGs are written without timestamps, so the same
seed gives the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vital_desktop.core.progress import Progress

RECIPE_PATH = Path(__file__).resolve().parent.parent / "resources" / "demo" / "recipe.json"

IMAGES_FOLDER = "images"
INSPECTION_RECORDS = "inspection_records.csv"
TELEMETRY = "detector_telemetry.csv"
GROUND_TRUTH = "ground_truth.csv"

INSPECTION_COLUMNS = [
    "inspection_id",
    "image_path",
    "detector_serial",
    "crystal_batch_id",
    "temperature_c",
    "humidity_percent",
    "inspector_id",
    "inspection_timestamp",
]
TELEMETRY_COLUMNS = [
    "detector_serial",
    "reading_id",
    "timestamp",
    "hv_voltage",
    "count_rate",
    "temperature_c",
    "gain_drift_pct",
    "days_since_calibration",
    "failure_within_30d",
]
GROUND_TRUTH_COLUMNS = ["inspection_id", "image_path", "defect_type", "severity"]
#: the generator's severity (low/medium/high) -> the demo label type's severity class
_LABEL_SEVERITY = {"none": "none", "low": "minor", "medium": "major", "high": "critical"}


@dataclass(frozen=True)
class DemoFiles:
    """Where the generated demo data went, and the truth behind it."""

    out_dir: Path
    images_dir: Path
    inspection_records: Path
    telemetry: Path
    ground_truth: Path
    classes: list[str]
    #: inspection_id -> true defect class
    labels: dict[str, str]
    #: inspection_id -> severity (low/medium/high; "none" for clean crystals)
    severities: dict[str, str]
    #: inspection_id -> absolute image path
    image_paths: dict[str, Path]
    recipe: dict[str, Any] = field(default_factory=dict)

    def label_data(self, inspection_id: str) -> dict[str, Any]:
        """The item's true label as the demo's classification label type holds it."""
        defect = self.labels[inspection_id]
        severity = "none" if defect == "none" else _LABEL_SEVERITY.get(self.severities.get(inspection_id, "none"), "none")
        return {"defect_type": defect, "severity": severity}


def load_recipe(path: Path | None = None) -> dict[str, Any]:
    """The demo recipe (class mix, counts, sensor ranges) kept as data so it can be tuned without code."""
    return json.loads((path or RECIPE_PATH).read_text(encoding="utf-8"))


# --- image synthesis -----------------------------------------------------------------------
#
# Every defect draws a strength t in [0, 1] from its class's difficulty mix in the recipe
# ("faint" / "moderate" / "strong" tiers with their own t ranges); t sets contrast, size and
# extent by interpolating the recipe's [faint, strong] ranges, and the severity follows from t,
# so a barely visible inclusion is a "low" one. Nuisances (polishing scratches, dust specks,
# residue haze, uneven illumination, sensor noise) are drawn for every crystal, defective or
# not: on a clean crystal they are what makes a faint defect and "none" hard to tell apart.


def _lerp(bounds: Sequence[float], t: float) -> float:
    """The point `t` of the way from a recipe range's faint end to its strong end."""
    return float(bounds[0] + (bounds[1] - bounds[0]) * t)


def _uniform(rng: np.random.Generator, bounds: Sequence[float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _strength(rng: np.random.Generator, difficulty: dict[str, Any]) -> float:
    """A defect's strength t in [0, 1], drawn from its class's tiers (weights and t ranges)."""
    tiers = difficulty["tiers"]
    names = sorted(tiers)
    weights = np.array([float(tiers[name]["weight"]) for name in names])
    tier = tiers[names[int(rng.choice(len(names), p=weights / weights.sum()))]]
    return _uniform(rng, tier["t"])


def _background(rng: np.random.Generator, size: int, nuisance: dict[str, Any]) -> np.ndarray:
    """A polished crystal face: a tilted illumination gradient, vignetting, low-frequency texture."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    level = _uniform(rng, nuisance["level"])
    angle = rng.uniform(0, 2 * math.pi)
    slope = _uniform(rng, nuisance["illumination_slope"])
    image = level + slope * ((xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle))
    # Off-axis ring light: a little darker towards the corners, centre not always in the middle.
    cy, cx = rng.uniform(0.35, 0.65, size=2)
    image = image - _uniform(rng, nuisance["vignetting"]) * ((yy - cy) ** 2 + (xx - cx) ** 2)
    coarse = rng.normal(0.0, 1.0, size=(6, 6)).astype(np.float32)
    coarse_img = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    image = image + _uniform(rng, nuisance["texture"]) * np.asarray(coarse_img, dtype=np.float32)
    return image.astype(np.float32)


def _gaussian_blob(image: np.ndarray, cy: float, cx: float, ry: float, rx: float, amplitude: float) -> None:
    """Add an elliptical Gaussian in place, computed only on its own window (fast)."""
    size = image.shape[0]
    reach = 3.0 * max(ry, rx)
    y0, y1 = max(0, int(cy - reach)), min(size, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(size, int(cx + reach) + 1)
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    d2 = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
    image[y0:y1, x0:x1] += amplitude * np.exp(-0.5 * d2)


def _speckle(
    image: np.ndarray,
    rng: np.random.Generator,
    cy: float,
    cx: float,
    radius: float,
    count: int,
    contrast: float,
    big_fraction: float,
) -> None:
    """Scattered one-to-two-pixel specks of either polarity inside a disc (particles, residue)."""
    size = image.shape[0]
    angles = rng.uniform(0, 2 * math.pi, count)
    radii = radius * np.sqrt(rng.uniform(0, 1, count))
    ys = np.clip((cy + radii * np.sin(angles)).astype(int), 0, size - 2)
    xs = np.clip((cx + radii * np.cos(angles)).astype(int), 0, size - 2)
    values = rng.uniform(-contrast, contrast, count).astype(np.float32)
    big = rng.random(count) < big_fraction
    image[ys, xs] += values
    image[ys[big] + 1, xs[big]] += values[big]
    image[ys[big], xs[big] + 1] += values[big]


def _draw_inclusion(image: np.ndarray, rng: np.random.Generator, t: float, spec: dict[str, Any]) -> None:
    """Dark compact blobs: trapped particles or bubbles absorbing the transmitted light."""
    size = image.shape[0]
    contrast = _lerp(spec["contrast"], t)
    count = 1 + int(rng.integers(0, 1 + round(_lerp(spec["extra_count"], t))))
    for _ in range(count):
        radius = _lerp(spec["radius"], t) * rng.uniform(0.8, 1.25)
        cy, cx = rng.uniform(30, size - 30, size=2)
        amplitude = contrast * rng.uniform(0.8, 1.1)
        _gaussian_blob(image, cy, cx, radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.7, 1.3), -amplitude)


def _draw_crack(image: np.ndarray, rng: np.random.Generator, t: float, spec: dict[str, Any]) -> None:
    """Thin jagged lines that keep a general direction; a faint one is short, narrow and low-contrast."""
    size = image.shape[0]
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    contrast = _lerp(spec["contrast"], t)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    steps = round(_lerp(spec["steps"], t) * rng.uniform(0.8, 1.2))
    width = max(1, round(_lerp(spec["width"], t) + rng.uniform(-0.5, 0.5)))
    branches = 1 + int(rng.random() < _lerp(spec["branch_probability"], t))
    for branch in range(branches):
        x, y = rng.uniform(50, size - 50, size=2)
        base_heading = rng.uniform(0, 2 * math.pi)
        points = [(float(x), float(y))]
        # A crack keeps its general direction but zig-zags: jitter around a fixed heading.
        for _ in range(max(3, steps // (branch + 1))):
            heading = base_heading + rng.uniform(-0.7, 0.7)
            step = rng.uniform(5.0, 9.0)
            x = float(np.clip(x + step * math.cos(heading), 2, size - 3))
            y = float(np.clip(y + step * math.sin(heading), 2, size - 3))
            points.append((x, y))
        draw.line(points, fill=255, width=width)
    image += sign * contrast * (np.asarray(mask, dtype=np.float32) / 255.0)


def _draw_delamination(image: np.ndarray, rng: np.random.Generator, t: float, spec: dict[str, Any]) -> None:
    """A broad soft-edged band with layered stripes: separated layers reflect in bands."""
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    tilt = rng.uniform(-0.15, 0.15)
    y_rel = yy - tilt * (xx - size / 2)
    center = rng.uniform(60, size - 60)
    half_height = _lerp(spec["half_height"], t) * rng.uniform(0.85, 1.15)
    period = rng.uniform(6.0, 12.0)
    contrast = _lerp(spec["contrast"], t)
    sign = 1.0 if rng.random() < 0.75 else -1.0
    band = 1.0 / (1.0 + np.exp((np.abs(y_rel - center) - half_height) / 2.5))
    layers = 0.6 + 0.4 * np.sin(2 * math.pi * y_rel / period)
    image += sign * contrast * band * layers


def _draw_contamination(image: np.ndarray, rng: np.random.Generator, t: float, spec: dict[str, Any]) -> None:
    """Speckled patches (dried residue, particles) over a slight haze; mild ones are small and sparse."""
    size = image.shape[0]
    contrast = _lerp(spec["contrast"], t)
    patches = 1 + int(rng.integers(0, 1 + round(_lerp(spec["extra_patches"], t))))
    for _ in range(patches):
        cy, cx = rng.uniform(40, size - 40, size=2)
        radius = _lerp(spec["radius"], t) * rng.uniform(0.8, 1.2)
        _gaussian_blob(image, cy, cx, radius * 0.7, radius * 0.9, rng.uniform(-0.1, 0.1) * t)
        count = int(_lerp(spec["specks"], t) * rng.uniform(0.8, 1.2))
        _speckle(image, rng, cy, cx, radius, count, contrast, 0.3)


_DRAWERS = {
    "inclusion": _draw_inclusion,
    "crack": _draw_crack,
    "delamination": _draw_delamination,
    "surface_contamination": _draw_contamination,
}


def _add_nuisances(image: np.ndarray, rng: np.random.Generator, nuisance: dict[str, Any]) -> None:
    """What a clean crystal also shows: polishing scratches, dust specks, a faint residue haze."""
    size = image.shape[0]
    scratches = nuisance["scratches"]
    if rng.random() < scratches["probability"]:
        # Long, nearly straight, very thin lines from polishing, often in parallel sets.
        mask = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(mask)
        heading = rng.uniform(0, math.pi)
        for _ in range(int(rng.integers(scratches["count"][0], scratches["count"][1] + 1))):
            angle = heading + rng.uniform(-0.12, 0.12)
            length = _uniform(rng, scratches["length"])
            cy, cx = rng.uniform(20, size - 20, size=2)
            dx, dy = 0.5 * length * math.cos(angle), 0.5 * length * math.sin(angle)
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=int(rng.integers(120, 256)), width=1)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        image += sign * _uniform(rng, scratches["contrast"]) * (np.asarray(mask, dtype=np.float32) / 255.0)
    dust = nuisance["dust"]
    if rng.random() < dust["probability"]:
        # Dust on the face or the optics: small soft specks, mostly dark like a tiny inclusion.
        for _ in range(int(rng.integers(dust["count"][0], dust["count"][1] + 1))):
            cy, cx = rng.uniform(8, size - 8, size=2)
            radius = _uniform(rng, dust["radius"])
            sign = -1.0 if rng.random() < dust["dark_fraction"] else 1.0
            _gaussian_blob(
                image, cy, cx, radius, radius * rng.uniform(0.8, 1.2), sign * _uniform(rng, dust["contrast"])
            )
    residue = nuisance["residue"]
    if rng.random() < residue["probability"]:
        # A wiped-off fingerprint or drying mark: a sparse, low-contrast speckle, no real contamination.
        cy, cx = rng.uniform(40, size - 40, size=2)
        count = int(rng.integers(residue["specks"][0], residue["specks"][1] + 1))
        _speckle(image, rng, cy, cx, _uniform(rng, residue["radius"]), count, _uniform(rng, residue["contrast"]), 0.2)


def _severity(defect: str, strength: float, thresholds: Sequence[float] = (0.35, 0.7)) -> str:
    """Severity from the defect's strength t: what is faint is minor."""
    if defect == "none":
        return "none"
    if strength < thresholds[0]:
        return "low"
    if strength < thresholds[1]:
        return "medium"
    return "high"


def render_image(
    defect: str, seed: int, index: int, size: int = 256, recipe: dict[str, Any] | None = None
) -> tuple[np.ndarray, str]:
    """One synthetic inspection image (uint8, HxW) and its severity; a pure function of its inputs."""
    recipe = recipe or load_recipe()
    if defect != "none" and defect not in _DRAWERS:
        raise ValueError(f"unknown demo defect class {defect!r}")
    nuisance = recipe["nuisances"]
    rng = np.random.default_rng([seed, index])
    image = _background(rng, size, nuisance)
    _add_nuisances(image, rng, nuisance)
    strength = 0.0
    if defect != "none":
        spec = recipe["defects"][defect]
        strength = _strength(rng, spec["difficulty"])
        _DRAWERS[defect](image, rng, strength, spec)
    image += rng.normal(0.0, _uniform(rng, nuisance["noise_sd"]), size=image.shape).astype(np.float32)
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return pixels, _severity(defect, strength, recipe.get("severity_thresholds", (0.35, 0.7)))


# --- tables --------------------------------------------------------------------------------


def _class_sequence(recipe: dict[str, Any], n_images: int, rng: np.random.Generator) -> list[str]:
    classes = list(recipe["classes"])
    mix = recipe["class_mix"]
    counts = {name: round(mix[name] * n_images) for name in classes}
    # Fix rounding so the counts add up exactly; the most common class absorbs the difference.
    largest = max(classes, key=lambda name: mix[name])
    counts[largest] += n_images - sum(counts.values())
    sequence = [name for name in classes for _ in range(counts[name])]
    rng.shuffle(sequence)
    return sequence


def _sensor_row(defect: str, recipe: dict[str, Any], rng: np.random.Generator) -> tuple[float, float, str]:
    nominal = recipe["sensor_nominal"]
    temperature = rng.normal(nominal["temperature_c"], nominal["temperature_sd"])
    humidity = rng.normal(nominal["humidity_percent"], nominal["humidity_sd"])
    batches = recipe["crystal_batches"]
    if defect == "crack" and rng.random() < recipe["crack_temperature_excursion_probability"]:
        temperature += rng.choice([-1.0, 1.0]) * rng.uniform(5.0, 10.0)
    if defect == "delamination" and rng.random() < recipe["delamination_humidity_excursion_probability"]:
        humidity = rng.uniform(62.0, 82.0)
    if defect == "surface_contamination":
        humidity += rng.uniform(0.0, 8.0)
    if defect == "inclusion" and rng.random() < 0.6:
        batch = str(rng.choice(recipe["inclusion_prone_batches"]))
    else:
        batch = str(rng.choice(batches))
    return round(float(temperature), 1), round(float(np.clip(humidity, 5, 95)), 1), batch


def _write_csv(path: Path, columns: list[str], rows: list[list[Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)


def _telemetry_rows(recipe: dict[str, Any], serials: list[str], rng: np.random.Generator) -> list[list[Any]]:
    spec = recipe["telemetry"]
    start = dt.datetime.fromisoformat(recipe["start_timestamp"]) - dt.timedelta(days=60)
    readings = int(spec["readings_per_detector"])
    step_days = float(spec["days_between_readings"])
    span_days = readings * step_days
    failing = set(serials[: int(spec["failing_detectors"])])
    rows: list[list[Any]] = []
    reading = 0
    for serial in serials:
        fails_at = rng.uniform(0.6, 1.1) * span_days if serial in failing else None
        last_calibration = -rng.uniform(0, 90)
        hv_nominal = rng.uniform(780, 820)
        rate_nominal = rng.uniform(900, 1300)
        for index in range(readings):
            day = index * step_days
            if day - last_calibration > 120:
                last_calibration = day
            degradation = 0.0
            if fails_at is not None and day > fails_at - 45:
                degradation = min(1.0, (day - (fails_at - 45)) / 45)
            reading += 1
            rows.append(
                [
                    serial,
                    f"TEL-{reading:06d}",
                    (start + dt.timedelta(days=day, hours=float(rng.uniform(0, 8)))).isoformat(timespec="seconds"),
                    round(float(hv_nominal + rng.normal(0, 1.5) - 25 * degradation), 2),
                    round(float(rate_nominal * (1 - 0.3 * degradation) + rng.normal(0, 15)), 1),
                    round(float(rng.normal(23.0, 1.0) + 4 * degradation), 1),
                    round(float(rng.normal(0, 0.3) + 0.02 * (day - last_calibration) / 10 + 3.5 * degradation), 3),
                    int(day - last_calibration),
                    int(fails_at is not None and 0 <= fails_at - day <= 30),
                ]
            )
    return rows


# --- entry point ---------------------------------------------------------------------------


def generate_demo_files(
    out_dir: Path,
    seed: int = 7,
    n_images: int = 500,
    progress: Progress | None = None,
    recipe: dict[str, Any] | None = None,
) -> DemoFiles:
    """Write the demo images and CSVs under `out_dir` and return where they are and the truth.

    Byte-deterministic for a given seed and recipe (same Pillow/numpy versions), so tests and
    screenshots can rely on a given item looking the same every time.
    """
    recipe = dict(recipe or load_recipe())
    out_dir = Path(out_dir)
    images_dir = out_dir / IMAGES_FOLDER
    images_dir.mkdir(parents=True, exist_ok=True)
    size = int(recipe.get("image_size", 256))
    table_rng = np.random.default_rng([seed, 1_000_003])
    defects = _class_sequence(recipe, n_images, table_rng)
    serials = [f"DET-NAI-{index + 1:04d}" for index in range(int(recipe["detectors"]))]
    start = dt.datetime.fromisoformat(recipe["start_timestamp"])
    minutes = float(recipe["minutes_between_inspections"])

    if progress is not None:
        progress.start(n_images, "generating demo images")
    records: list[list[Any]] = []
    truth: list[list[Any]] = []
    labels: dict[str, str] = {}
    severities: dict[str, str] = {}
    image_paths: dict[str, Path] = {}
    for index, defect in enumerate(defects):
        if progress is not None:
            progress.check()
        inspection_id = f"INS-{index + 1:05d}"
        file_name = f"IMG_{index + 1:05d}.png"
        pixels, severity = render_image(defect, seed, index, size, recipe)
        Image.fromarray(pixels, mode="L").save(images_dir / file_name, format="PNG", compress_level=6)
        temperature, humidity, batch = _sensor_row(defect, recipe, table_rng)
        timestamp = start + dt.timedelta(minutes=index * minutes + float(table_rng.uniform(0, 20)))
        records.append(
            [
                inspection_id,
                file_name,
                str(table_rng.choice(serials)),
                batch,
                temperature,
                humidity,
                str(table_rng.choice(recipe["inspectors"])),
                timestamp.isoformat(timespec="seconds"),
            ]
        )
        truth.append([inspection_id, file_name, defect, severity])
        labels[inspection_id] = defect
        severities[inspection_id] = severity
        image_paths[inspection_id] = images_dir / file_name
        if progress is not None:
            progress.advance(1)

    inspection_path = out_dir / INSPECTION_RECORDS
    telemetry_path = out_dir / TELEMETRY
    truth_path = out_dir / GROUND_TRUTH
    _write_csv(inspection_path, INSPECTION_COLUMNS, records)
    _write_csv(truth_path, GROUND_TRUTH_COLUMNS, truth)
    _write_csv(telemetry_path, TELEMETRY_COLUMNS, _telemetry_rows(recipe, serials, table_rng))
    if progress is not None:
        progress.finish("demo data written")
    return DemoFiles(
        out_dir=out_dir,
        images_dir=images_dir,
        inspection_records=inspection_path,
        telemetry=telemetry_path,
        ground_truth=truth_path,
        classes=list(recipe["classes"]),
        labels=labels,
        severities=severities,
        image_paths=image_paths,
        recipe=recipe,
    )
