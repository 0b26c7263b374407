"""Reading telemetry items: numeric series from CSV/Parquet, one file per item or grouped by a key.

A series has an optional time column and one or more numeric channels. Every non-time column
whose values are numbers is a channel; a column that mixes numbers and other text (``12.5``,
``n/a``) is refused with the file, column, row and value named — a silent NaN would hide a
broken sensor. Columns holding no numbers at all (serial numbers, notes) are kept as the item's
descriptive fields. What the store keeps per item is a summary (per channel: count, min, max,
mean, standard deviation, first, last, trend per step) and a downsampled copy for the review
plot; the prompt code renders the summary as text (`item_text`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from vital_desktop.core.errors import ValidationError

#: A telemetry file larger than this is not read.
MAX_FILE_BYTES = 512 << 20
#: Rows read from one file (every group together).
MAX_ROWS = 5_000_000
#: Points per channel kept for the review plot (evenly strided).
PLOT_POINTS = 1000
MAX_CHANNELS = 32
TIME_NAMES = ("timestamp", "time", "datetime", "date", "t", "time_s", "elapsed_s")
MAX_REPORTED = 20


@dataclass(frozen=True)
class ChannelSummary:
    name: str
    count: int
    min: float
    max: float
    mean: float
    std: float
    first: float
    last: float
    trend_per_step: float

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class TelemetrySeries:
    """One item's series: channels, their summaries, the plot copy and the descriptive fields."""

    points: int
    time_column: str | None
    time_range: tuple[str, str] | None
    channels: list[ChannelSummary]
    plot: dict[str, list]  # {"t": [...], "<channel>": [...]} downsampled
    fields: dict[str, Any] = field(default_factory=dict)  # first value of each non-numeric column

    def summary(self) -> dict[str, Any]:
        return {"points": self.points, "time_column": self.time_column,
                "time_range": list(self.time_range) if self.time_range else None,
                "channels": [c.to_dict() for c in self.channels]}


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet telemetry file read in place (size capped; errors name the file)."""
    from vital_desktop.services.sheets import read_metadata

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ValidationError(f"telemetry file {path} cannot be read ({exc.strerror or exc})") from exc
    if size == 0:
        raise ValidationError(f"telemetry file {path.name} is empty (0 bytes)")
    if size > MAX_FILE_BYTES:
        raise ValidationError(f"telemetry file {path.name} is {size >> 20} MiB; files larger than "
                              f"{MAX_FILE_BYTES >> 20} MiB are not read (split it)")
    try:
        _, table = read_metadata(path)
    except ValidationError as exc:
        raise ValidationError(exc.message.replace("metadata file", "telemetry file", 1)) from exc
    if table.num_rows > MAX_ROWS:
        raise ValidationError(f"telemetry file {path.name} has {table.num_rows:,} rows; at most {MAX_ROWS:,} are read")
    return table


def _is_time_type(dtype: pa.DataType) -> bool:
    return pa.types.is_timestamp(dtype) or pa.types.is_date(dtype) or pa.types.is_time(dtype)


def pick_time_column(table: pa.Table, wanted: str | None, *, exclude: tuple[str, ...] = ()) -> str | None:
    """The given time column (checked), else a time-typed or conventionally named one, else None."""
    if wanted:
        if wanted not in table.column_names:
            raise ValidationError(f"time column {wanted!r} is not in the telemetry file; its columns are: "
                                  f"{', '.join(table.column_names)}")
        return wanted
    for name in table.column_names:
        if name not in exclude and _is_time_type(table.schema.field(name).type):
            return name
    for name in table.column_names:
        if name not in exclude and name.lower() in TIME_NAMES:
            return name
    return None


def _as_number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan  # marks "not a number" (distinct from an empty cell)


def numeric_columns(table: pa.Table, *, source: str, exclude: tuple[str, ...], wanted: list[str] | None,
                    row_numbers: list[int] | None = None) -> list[str]:
    """The channel columns: `wanted` (each checked to be numeric) or every numeric column.

    A text column where some values are numbers and others are not is an error naming the
    first offending rows (`row_numbers` maps table rows to the file's line numbers).
    """
    candidates = wanted if wanted else [c for c in table.column_names if c not in exclude]
    missing = [c for c in candidates if c not in table.column_names]
    if missing:
        raise ValidationError(f"{source}: column(s) {', '.join(missing)} are not there; its columns are: "
                              f"{', '.join(table.column_names)}")
    channels: list[str] = []
    for name in candidates:
        dtype = table.schema.field(name).type
        if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_boolean(dtype) \
                or pa.types.is_decimal(dtype):
            channels.append(name)
            continue
        if _is_time_type(dtype) and not wanted:
            continue
        values = table.column(name).to_pylist()
        parsed = [_as_number(v) for v in values]
        good = sum(1 for p in parsed if p is not None and not math.isnan(p))
        bad = [i for i, p in enumerate(parsed) if p is not None and math.isnan(p)]
        if bad and (good or wanted):
            rows = [(row_numbers[i] if row_numbers else i + 2) for i in bad[:MAX_REPORTED]]
            shown = "; ".join(f"row {r}: {str(values[i])[:40]!r}" for r, i in zip(rows, bad, strict=False))
            raise ValidationError(f"{source}: column {name!r} holds values that are not numbers ({len(bad)} of "
                                  f"{len(values)}): {shown}")
        if good and not bad:
            channels.append(name)
    if not channels:
        raise ValidationError(f"{source} has no numeric column to plot (columns: {', '.join(table.column_names)})")
    if len(channels) > MAX_CHANNELS:
        raise ValidationError(f"{source} has {len(channels)} numeric columns; at most {MAX_CHANNELS} are read "
                              "(choose them with --columns)")
    return channels


def text_columns(table: pa.Table, *, exclude: list[str]) -> list[str]:
    """Columns that are neither channels nor excluded and hold no numbers (serials, sites, notes)."""
    out = []
    for name in table.column_names:
        dtype = table.schema.field(name).type
        if name in exclude or pa.types.is_integer(dtype) or pa.types.is_floating(dtype) \
                or pa.types.is_boolean(dtype) or pa.types.is_decimal(dtype):
            continue
        out.append(name)
    return out


def _values(table: pa.Table, name: str) -> list[float]:
    out = []
    for v in table.column(name).to_pylist():
        number = _as_number(v)
        if number is not None and not math.isnan(number) and math.isfinite(number):
            out.append(number)
    return out


def _trend(values: list[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (y - mean_y) for i, y in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den if den else 0.0


def summarise(table: pa.Table, *, channels: list[str], time_column: str | None,
              descriptive: list[str]) -> TelemetrySeries:
    """Summary and plot copy of one item's rows (already sorted by time when there is a time column)."""
    if time_column is not None:
        table = table.sort_by(time_column)
    summaries = []
    for name in channels:
        values = _values(table, name)
        if not values:
            summaries.append(ChannelSummary(name, 0, math.nan, math.nan, math.nan, math.nan, math.nan, math.nan, 0.0))
            continue
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        summaries.append(ChannelSummary(name, len(values), min(values), max(values), mean, std, values[0],
                                        values[-1], _trend(values)))
    step = max(1, math.ceil(table.num_rows / PLOT_POINTS))
    picked = table.take(pa.array(range(0, table.num_rows, step))) if step > 1 else table
    plot: dict[str, list] = {}
    time_range = None
    if time_column is not None:
        times = picked.column(time_column).to_pylist()
        plot["t"] = [_plain(t) for t in times]
        ends = table.column(time_column)
        time_range = (str(_plain(pc.min(ends).as_py())), str(_plain(pc.max(ends).as_py())))
    else:
        plot["t"] = list(range(0, table.num_rows, step))
    for name in channels:
        plot[name] = [None if (n := _as_number(v)) is None or not math.isfinite(n) else n
                      for v in picked.column(name).to_pylist()]
    fields = {}
    for name in descriptive:  # only what holds for the whole item (a site, a model), not per reading
        values = table.column(name).unique()
        if len(values) == 1:
            fields[name] = _plain(values[0].as_py())
    return TelemetrySeries(table.num_rows, time_column, time_range, summaries, plot, fields)


def _plain(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def groups(table: pa.Table, key: str, *, source: str) -> dict[str, list[int]]:
    """Row indices of each value of `key`, in order of first appearance; blank keys are refused."""
    if key not in table.column_names:
        raise ValidationError(f"{source}: group column {key!r} is not there; its columns are: "
                              f"{', '.join(table.column_names)}")
    out: dict[str, list[int]] = {}
    blanks: list[int] = []
    for i, value in enumerate(table.column(key).to_pylist()):
        if value is None or str(value).strip() == "":
            blanks.append(i + 2)
            continue
        out.setdefault(str(value), []).append(i)
    if blanks:
        raise ValidationError(f"{source}: group column {key!r} is empty on row(s) "
                              f"{', '.join(map(str, blanks[:MAX_REPORTED]))}")
    return out
