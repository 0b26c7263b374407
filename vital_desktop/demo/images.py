"""Synthetic scintillator-crystal inspection data for the demo site.

The demo must work out of the box on an airgapped laptop, so its data is generated, not
shipped: ~500 grayscale PNGs whose defect classes look different (dark compact inclusions,
thin jagged cracks, broad layered delamination bands, speckled contamination patches, clean
crystals), an `inspection_records.csv` in the seeds' schema whose sensor values correlate with
some defects (cracks with temperature excursions, delamination with humidity), a
predictive-maintenance `detector_telemetry.csv`, and `ground_truth.csv` with the true class of
each image (kept out of the inspection records so the demo has something to label).

Everything is a pure function of the recipe and the seed: each image draws from its own
generator seeded by ``(seed, index)``, and PNGs are written without timestamps, so the same
seed gives the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
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


def load_recipe(path: Path | None = None) -> dict[str, Any]:
    """The demo recipe (class mix, counts, sensor ranges) kept as data so it can be tuned without code."""
    return json.loads((path or RECIPE_PATH).read_text(encoding="utf-8"))


# --- image synthesis -----------------------------------------------------------------------


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A polished crystal face: a tilted illumination gradient plus low-frequency texture."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    level = rng.uniform(0.42, 0.62)
    angle = rng.uniform(0, 2 * math.pi)
    slope = rng.uniform(0.02, 0.10)
    image = level + slope * ((xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle))
    coarse = rng.normal(0.0, 1.0, size=(6, 6)).astype(np.float32)
    coarse_img = Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BICUBIC)
    image = image + rng.uniform(0.005, 0.02) * np.asarray(coarse_img, dtype=np.float32)
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


def _draw_inclusion(image: np.ndarray, rng: np.random.Generator) -> float:
    size = image.shape[0]
    contrast = rng.uniform(0.18, 0.45)
    for _ in range(int(rng.integers(1, 5))):
        radius = rng.uniform(3.0, 9.0)
        cy, cx = rng.uniform(30, size - 30, size=2)
        _gaussian_blob(image, cy, cx, radius * rng.uniform(0.7, 1.3), radius * rng.uniform(0.7, 1.3), -contrast)
    return contrast


def _draw_crack(image: np.ndarray, rng: np.random.Generator) -> float:
    size = image.shape[0]
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    contrast = rng.uniform(0.18, 0.4)
    sign = 1.0 if rng.random() < 0.5 else -1.0
    for branch in range(int(rng.integers(1, 3))):
        x, y = rng.uniform(50, size - 50, size=2)
        base_heading = rng.uniform(0, 2 * math.pi)
        points = [(float(x), float(y))]
        # A crack keeps its general direction but zig-zags: jitter around a fixed heading.
        for _ in range(int(rng.integers(14, 30)) // (branch + 1)):
            heading = base_heading + rng.uniform(-0.7, 0.7)
            step = rng.uniform(5.0, 9.0)
            x = float(np.clip(x + step * math.cos(heading), 2, size - 3))
            y = float(np.clip(y + step * math.sin(heading), 2, size - 3))
            points.append((x, y))
        draw.line(points, fill=255, width=int(rng.integers(2, 4)))
    image += sign * contrast * (np.asarray(mask, dtype=np.float32) / 255.0)
    return contrast


def _draw_delamination(image: np.ndarray, rng: np.random.Generator) -> float:
    size = image.shape[0]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    tilt = rng.uniform(-0.15, 0.15)
    y_rel = yy - tilt * (xx - size / 2)
    center = rng.uniform(60, size - 60)
    half_height = rng.uniform(18, 45)
    period = rng.uniform(6.0, 12.0)
    contrast = rng.uniform(0.10, 0.22)
    sign = 1.0 if rng.random() < 0.75 else -1.0
    # Soft-edged band with layered stripes inside: separated layers reflect in bands.
    band = 1.0 / (1.0 + np.exp((np.abs(y_rel - center) - half_height) / 2.5))
    layers = 0.6 + 0.4 * np.sin(2 * math.pi * y_rel / period)
    image += sign * contrast * band * layers
    return contrast * half_height / 30.0


def _draw_contamination(image: np.ndarray, rng: np.random.Generator) -> float:
    size = image.shape[0]
    contrast = rng.uniform(0.25, 0.45)
    for _ in range(int(rng.integers(1, 4))):
        cy, cx = rng.uniform(40, size - 40, size=2)
        radius = rng.uniform(18, 40)
        _gaussian_blob(image, cy, cx, radius * 0.7, radius * 0.9, rng.uniform(-0.1, 0.1))
        count = int(rng.integers(120, 300))
        angles = rng.uniform(0, 2 * math.pi, count)
        radii = radius * np.sqrt(rng.uniform(0, 1, count))
        ys = np.clip((cy + radii * np.sin(angles)).astype(int), 0, size - 2)
        xs = np.clip((cx + radii * np.cos(angles)).astype(int), 0, size - 2)
        values = rng.uniform(-contrast, contrast, count).astype(np.float32)
        big = rng.random(count) < 0.3
        image[ys, xs] += values
        image[ys[big] + 1, xs[big]] += values[big]
        image[ys[big], xs[big] + 1] += values[big]
    return contrast


_DRAWERS = {
    "inclusion": _draw_inclusion,
    "crack": _draw_crack,
    "delamination": _draw_delamination,
    "surface_contamination": _draw_contamination,
}


def _severity(defect: str, strength: float) -> str:
    if defect == "none":
        return "none"
    if strength < 0.22:
        return "low"
    if strength < 0.32:
        return "medium"
    return "high"


def render_image(defect: str, seed: int, index: int, size: int = 256) -> tuple[np.ndarray, str]:
    """One synthetic inspection image (uint8, HxW) and its severity; a pure function of its inputs."""
    rng = np.random.default_rng([seed, index])
    image = _background(rng, size)
    strength = 0.0
    drawer = _DRAWERS.get(defect)
    if drawer is not None:
        strength = drawer(image, rng)
    elif defect != "none":
        raise ValueError(f"unknown demo defect class {defect!r}")
    image += rng.normal(0.0, rng.uniform(0.008, 0.03), size=image.shape).astype(np.float32)
    pixels = np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
    return pixels, _severity(defect, strength)


# --- tables --------------------------------------------------------------------------------


def _class_sequence(recipe: dict[str, Any], n_images: int, rng: np.random.Generator) -> list[str]:
    classes = list(recipe["classes"])
    mix = recipe["class_mix"]
    counts = {name: int(round(mix[name] * n_images)) for name in classes}
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
        pixels, severity = render_image(defect, seed, index, size)
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
